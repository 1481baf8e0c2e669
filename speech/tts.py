"""Synthetic voices from offline Debian text-to-speech engines, placed in 1 s clips like the dataset.

    python -m speech.tts --set examples --out examples          # the bundled examples (free voices)
    python -m speech.tts --set training --out data/tts --per-word 78
    python -m speech.tts --set extra-training --out data/tts-extra --per-word 50
    python -m speech.tts --set accented-training --out data/tts-accented --per-word 52
    python -m speech.tts --set unknown --out data/tts-unknown --per-word 12    # _unknown_ speech for spotting
    python -m speech.tts --set unknown-accented --out data/tts-unknown-accented --per-word 13
    python -m speech.tts --set more-words --out data/tts-more-words --per-word 12    # the few-shot base's words
    python -m speech.tts --set recordings --out examples/_recordings           # the Word spotting examples

Each voice speaks each word with a random rate (0.8-1.3x) and pitch (+-20 %); the word is trimmed,
given a random peak level and placed at a random offset in a 1 s, 16 kHz mono clip, written as
``<out>/<word>/<voice>_nohash_<n>.flac`` so the voice counts as the speaker. The app never needs TTS
at run time; this only makes data. Needs the Debian packages listed in README.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from speech.audio import CLIP_SAMPLES, SAMPLE_RATE
from speech.catalog import CLASSES, UNKNOWN, example_files
from speech.data import read_whole
from speech.recordings import assemble, write_truth


def _rhvoice(voice):
    def speak(word, rate, pitch, out):
        subprocess.run(["RHVoice-test", "-p", voice, "-r", str(int(100 * rate)), "-t", str(int(100 * pitch)),
                        "-o", out], input=word.encode(), check=True, capture_output=True)
    return speak


def _pico(lang):
    def speak(word, rate, pitch, out):
        markup = f"<speed level='{int(100 * rate)}'><pitch level='{int(100 * pitch)}'>{word}</pitch></speed>"
        subprocess.run(["pico2wave", "-l", lang, "-w", out, markup], check=True, capture_output=True)
    return speak


def _espeak(voice, base_speed=160):
    def speak(word, rate, pitch, out):
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(base_speed * rate)), "-p", str(int(50 * pitch)),
                        "-w", out, word], check=True, capture_output=True)
    return speak


def _mbrolas(*voices):
    """MBROLA voices through espeak-ng, named ``mbrola-<voice>``; they speak short, so slower than espeak-ng's own."""
    return {f"mbrola-{v}": _espeak(f"mb-{v}", base_speed=130) for v in voices}


def _flite(voice):
    def speak(word, rate, pitch, out):
        subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={1 / rate:.2f}",
                        "--setf", f"int_f0_target_mean={int(110 * pitch)}", "-t", word, "-o", out],
                       check=True, capture_output=True)
    return speak


def _festival(voice):
    def speak(word, rate, pitch, out):
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-eval",
                        f"(Parameter.set 'Duration_Stretch {1 / rate:.2f})", "-o", out],
                       input=word.encode(), check=True, capture_output=True)
    return speak


# Free voices (flite, BSD-style licence) for the examples shipped in the repo; none is used for training,
# so the bundled examples are voices the models never heard.
EXAMPLE_VOICES = {f"flite-{v}": _flite(v) for v in ("kal16", "awb", "rms", "slt")}
# Training voices. MBROLA databases are non-free: they only ever reach training, never the repo.
TRAINING_VOICES = {
    **{f"rhvoice-{v}": _rhvoice(v) for v in ("alan", "bdl", "clb", "slt")},
    "pico-us": _pico("en-US"), "pico-gb": _pico("en-GB"),
    **_mbrolas("us1", "us2", "us3", "en1"),
    "festival-kal": _festival("kal_diphone"),
    "espeak-us-m3": _espeak("en-us+m3"), "espeak-gb-f2": _espeak("en+f2"),
}
# More speakers for a second round of training: English with a German or French accent (the dataset's
# speakers are not all native) and two British festival voices. Kept apart from TRAINING_VOICES so that
# the first set stays exactly reproducible.
EXTRA_TRAINING_VOICES = {
    **_mbrolas("de1-en", "de2-en", "fr1-en"),
    **{f"festival-{v}": _festival(f"{v}_diphone") for v in ("rab", "don")},
}
# A third round: thirteen more MBROLA speakers of English with an accent (Afrikaans, Dutch, Swedish, Hungarian,
# Polish, German, French, Romanian, Greek), each a different recorded donor. Debian contrib packages
# ``mbrola-af1 mbrola-nl2 ...`` (README).
ACCENTED_TRAINING_VOICES = _mbrolas("af1-en", "nl2-en", "sw1-en", "sw2-en", "hu1-en", "pl1-en", "de3-en", "de4-en",
                                    "de5-en", "de6-en", "fr4-en", "ro1-en", "gr2-en")
VOICE_SETS = {"examples": EXAMPLE_VOICES, "training": TRAINING_VOICES, "extra-training": EXTRA_TRAINING_VOICES,
              "accented-training": ACCENTED_TRAINING_VOICES,
              "unknown": {**TRAINING_VOICES, **EXTRA_TRAINING_VOICES}, "unknown-accented": ACCENTED_TRAINING_VOICES,
              "more-words": {**TRAINING_VOICES, **EXTRA_TRAINING_VOICES}}
UNKNOWN_SETS = ("unknown", "unknown-accented")  # the sets that say UNKNOWN_WORDS instead of the 30

# English words outside the vocabulary, spoken by every training voice into one ``_unknown_`` folder: what the
# spotting model learns to reject. Near misses (cup/up, town/down, free/tree, nice/nine) are there on purpose;
# homophones of the 30 (to, won, fore) and the reserved words are not.
UNKNOWN_WORDS: tuple[str, ...] = tuple("""
apple baby bad ball bank bath bear bell belt big bit black blue boat book box boy bread bring brown bus but buy
cake call can cap car card care chair cheese chin city clock cloud coat cold come cook cool cot cup cut dark day
deep desk did dig dish door dot duck dust ear earth east egg face fall far farm fast fat fed feet fill find fish
fit flag floor fly food foot fork fox free fresh friend frog fun game gate get gift girl give glass gold good got
grass gray green hair half hand hat head hear heat help hen high hill hit hold hope horse hot how ice ink jam job
jump keep key kid king kiss kite lake lamp land last late leg let light line lion lip long look lot love low make
man map mark may meat milk moon more most mouse much name neck nest new next nice night nose not now nut old open
page park pen pet pig pink place plan play pull push put queen rain read red rest ring road rock roof room rose
run sad salt sand say sea seat see shoe shop short sing sit sky sleep slow small snow soap sock soft song soon
star step sun table tail take talk tall tea ten test that thin thing this time top town toy train true turn van
very wait walk wall want warm wash watch water way week well wet what when where white why wide wind wish with
wolf wood word work world year yellow you young
""".split())


# 1,000 common English words, a folder each, that the few-shot base learns to tell apart besides the 30
# (``speech.train --more-words``); how they were chosen is in the file.
MORE_WORDS: tuple[str, ...] = tuple(w for line in (Path(__file__).parent / "more_words.txt").read_text().splitlines()
                                    if not line.startswith("#") for w in line.split())


def place_in_clip(waveform: torch.Tensor, rng: random.Random, threshold: float = 0.02) -> torch.Tensor:
    """Trim quiet ends of ``waveform [time]`` (16 kHz), scale to a random peak, put it at a random
    offset in a 1 s clip: float32 ``[16000]``."""
    loud = (waveform.abs() > threshold * waveform.abs().max()).nonzero().flatten()
    word = waveform[loud[0]:loud[-1] + 1][:CLIP_SAMPLES] if loud.numel() else waveform[:CLIP_SAMPLES]
    word = word / word.abs().max().clamp_min(1e-9) * rng.uniform(0.2, 0.9)
    clip = torch.zeros(CLIP_SAMPLES)
    offset = rng.randint(0, CLIP_SAMPLES - word.numel())
    clip[offset:offset + word.numel()] = word
    return clip


def synthesize(voices: dict, out: Path, per_word: int, seed: int = 0, words=CLASSES, folder: str = "") -> int:
    """Write ``per_word`` clips of every word, cycling through ``voices`` (each word starting where the last
    left off); returns the number written. Clips go to ``out/<word>/``, or all to ``out/<folder>/`` when given."""
    rng = random.Random(seed)
    names = sorted(voices)
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        raw = str(Path(tmp) / "raw.wav")
        for index, word in enumerate(tqdm(words, desc="words")):
            (out / (folder or word)).mkdir(parents=True, exist_ok=True)
            for n in range(per_word):
                voice = names[(index * per_word + n) % len(names)]
                rate, pitch = rng.uniform(0.8, 1.3), rng.uniform(0.8, 1.2)
                voices[voice](word, rate, pitch, raw)
                clip = place_in_clip(read_whole(raw), rng)
                take = f"{word}_{n // len(names)}" if folder else str(n // len(names))
                sf.write(str(out / (folder or word) / f"{voice}_nohash_{take}.flac"), clip.numpy(),
                         SAMPLE_RATE, subtype="PCM_16")
                written += 1
    return written


# The bundled long recordings of the Word spotting page: bundled example clips (flite voices, never trained on),
# with words outside the vocabulary spoken by the same voices (two reserved words and two that no training
# set holds), over quiet white noise: name -> (words, voice).
RECORDINGS = {
    "commands": (["yes", "no", "up", "down", "hello", "left", "right", "stop", "visual", "go"], "flite-slt"),
    "numbers_and_names": (["one", "two", "three", "music", "four", "five", "six", "seven", "eight", "forward",
                           "nine", "zero", "marvin", "sheila"], "flite-awb"),
}


def make_recordings(out: Path, seed: int = 0) -> int:
    """Write :data:`RECORDINGS` as ``out/<name>.flac`` with their words in ``out/<name>.json``."""
    rng = random.Random(seed)
    examples = example_files()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = str(Path(tmp) / "raw.wav")
        for name, (words, voice) in RECORDINGS.items():
            clips = []
            for word in words:
                if word in examples:
                    clips.append((word, read_whole(examples[word][voice])))
                else:
                    EXAMPLE_VOICES[voice](word, 1.0, 1.0, raw)
                    clips.append((word, place_in_clip(read_whole(raw), rng)))
            noise = torch.randn(60 * SAMPLE_RATE, generator=torch.Generator().manual_seed(seed))
            recording, spoken = assemble(clips, [rng.uniform(0.4, 1.0) for _ in words], noise, snr_db=28, seed=seed)
            sf.write(str(out / f"{name}.flac"), recording.numpy(), SAMPLE_RATE, subtype="PCM_16")
            write_truth(out / f"{name}.flac", spoken)
    return len(RECORDINGS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=(*VOICE_SETS, "recordings"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-word", type=int, help="clips per word (default: one per voice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.set == "recordings":
        print(f"wrote {make_recordings(args.out, args.seed)} recordings to {args.out}")
        return
    voices = VOICE_SETS[args.set]
    words, folder = ((UNKNOWN_WORDS, UNKNOWN) if args.set in UNKNOWN_SETS else
                     (MORE_WORDS, "") if args.set == "more-words" else (CLASSES, ""))
    count = synthesize(voices, args.out, args.per_word or len(voices), args.seed, words, folder)
    print(f"wrote {count} clips to {args.out}")


if __name__ == "__main__":
    main()
