"""Word spotting: the decoder on made-up probabilities, the detector on recordings assembled from the bundled
examples, stream against file, the scoring, the CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from speech import EXAMPLES_DIR, REPO_ROOT, SHIPPED_CHECKPOINTS
from speech.audio import SAMPLE_RATE, load_audio
from speech.catalog import RESERVED_WORDS, SPOTTING_CLASSES, recording_files
from speech.data import non_words, read_whole, silence_clips
from speech.predict import Predictor
from speech.recordings import Spoken, assemble, cut_word, read_truth, score
from speech.spot import (
    Decoder,
    Detection,
    SpotConfig,
    Spotter,
    detect,
    row_times,
    smoothed,
    spot,
    window_count,
    window_posteriors,
)
from speech.tts import UNKNOWN_WORDS

CLASSES = ["yes", "no", "_silence_", "_unknown_"]
SPOTTING = SHIPPED_CHECKPOINTS / "spotting.pt"
needs_spotting = pytest.mark.skipif(not SPOTTING.is_file(), reason="no shipped spotting model")


def bumps(rows: int, events: list[tuple[str, int, int, float]]) -> torch.Tensor:
    """Probabilities [rows, 4]: silence everywhere except (word, first row, last row, height) plateaus."""
    p = torch.zeros(rows, len(CLASSES))
    p[:, 2] = 1.0
    for word, first, last, height in events:
        p[first:last + 1] = 0.0
        p[first:last + 1, CLASSES.index(word)] = height
        p[first:last + 1, 3] = 1 - height
    return p


def test_one_detection_per_word_at_its_time():
    config = SpotConfig(smooth=1, threshold=0.5, refractory=0.5)
    found = detect(bumps(60, [("yes", 10, 16, 0.9), ("no", 40, 44, 0.8)]), CLASSES, config)
    assert [d.word for d in found] == ["yes", "no"]
    assert found[0].start == pytest.approx(1.0) and found[0].end == pytest.approx(2.0)  # window of row 10
    assert found[1].confidence == pytest.approx(0.8)


def test_refractory_and_rearming_stop_repeats():
    config = SpotConfig(smooth=1, threshold=0.5, refractory=0.5)
    assert len(detect(bumps(80, [("yes", 10, 60, 0.9)]), CLASSES, config)) == 1  # a long plateau: fires once
    assert len(detect(bumps(40, [("yes", 10, 12, 0.9), ("no", 13, 14, 0.9)]), CLASSES, config)) == 1  # too close
    later = detect(bumps(40, [("yes", 10, 12, 0.9), ("no", 13, 16, 0.9)]), CLASSES, config)  # outlasts the pause
    assert [d.word for d in later] == ["yes", "no"] and later[1].start == pytest.approx(1.5)
    assert len(detect(bumps(40, [("yes", 10, 12, 0.9), ("yes", 20, 22, 0.9)]), CLASSES, config)) == 2


def test_smoothing_removes_a_single_odd_window_and_thresholds_are_per_word():
    spike = bumps(30, [("yes", 10, 10, 0.9)])
    assert len(detect(spike, CLASSES, SpotConfig(smooth=1))) == 1
    assert detect(spike, CLASSES, SpotConfig(smooth=3)) == []
    both = bumps(60, [("yes", 10, 14, 0.8), ("no", 40, 44, 0.8)])
    assert [d.word for d in detect(both, CLASSES, SpotConfig(smooth=1, thresholds={"yes": 0.9}))] == ["no"]


def test_smoothed_curves_are_what_the_decoder_thresholds():
    p = torch.rand(20, 4).softmax(1)
    decoder, config = Decoder(CLASSES, SpotConfig(smooth=4)), SpotConfig(smooth=4)
    curves = smoothed(p, 4)
    for i, row in enumerate(p):
        decoder.push(row)
        assert torch.allclose(torch.stack(tuple(decoder.recent)).mean(0), curves[i], atol=1e-6)
    assert row_times(3, config).tolist() == pytest.approx([0.5, 0.55, 0.6])


def test_scoring_counts_each_spoken_word_once_and_oov_detections():
    spoken = [Spoken("yes", 1.0, 1.4), Spoken("learn", 3.0, 3.5), Spoken("no", 5.0, 5.3)]
    detections = [Detection("yes", 0.9, 1.3, 0.9), Detection("yes", 1.0, 1.5, 0.8),  # a repeat: false alarm
                  Detection("go", 3.1, 3.4, 0.7),                                   # on the unknown word
                  Detection("no", 5.35, 5.75, 0.9)]                                 # centre 5.55: within 0.3 s
    result = score(detections, spoken, ["yes", "no", "go"], 60.0)
    assert (result.hits, result.false_alarms, result.oov_detections) == (2, 2, 1)
    assert result.recall == 1.0 and result.precision == 0.5 and result.false_alarms_per_minute == 2.0


def test_assembled_recording_places_words_where_it_says():
    clips = [(w, read_whole(EXAMPLES_DIR / w / "flite-kal16_nohash_0.flac")) for w in ("yes", "stop")]
    wave, spoken = assemble(clips, [0.5, 0.5])
    for word in spoken:
        inside = wave[round(word.start * SAMPLE_RATE):round(word.end * SAMPLE_RATE)]
        assert inside.abs().max() > 0.1
    assert spoken[1].start - spoken[0].end > 0.5 and wave[:SAMPLE_RATE // 4].abs().max() == 0


def test_a_cut_word_keeps_its_quiet_consonant():
    # "s" + "top": 150 ms of hiss 26 dB under a 300 ms vowel, in silence; the hiss is part of the word
    hiss = 0.04 * (torch.rand(2400, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    vowel = 0.8 * torch.sin(torch.arange(4800) * 2 * torch.pi * 220 / SAMPLE_RATE)
    clip = torch.cat([torch.zeros(4000), hiss, vowel, torch.zeros(4800)])
    cut = cut_word(clip)
    assert cut.numel() >= hiss.numel() + vowel.numel() and torch.equal(cut[800:800 + 2400], hiss)


def test_spotting_training_data_never_holds_a_reserved_word_or_one_of_the_30():
    assert not set(UNKNOWN_WORDS) & (set(SPOTTING_CLASSES) | set(RESERVED_WORDS))
    waves = torch.randint(-3000, 3000, (6, 16000), dtype=torch.int16)
    made = non_words(waves, torch.tensor([0, 0, 1, 1, 2, 2]), 10, seed=0)
    assert made.shape == (10, 16000) and torch.equal(made, non_words(waves, torch.tensor([0, 0, 1, 1, 2, 2]), 10, 0))
    assert torch.equal(made[0], waves[int(torch.randint(6, (2,), generator=torch.Generator().manual_seed(0))[0])]
                       .flip(0))
    quiet = silence_clips(torch.randn(50_000) * 0.1, 20, 16000, seed=1)
    peaks = quiet.abs().amax(1)
    assert peaks[::10].max() == 0 and peaks[[i for i in range(20) if i % 10]].min() > 0  # one in ten is digital zero


@needs_spotting
def test_bundled_examples_are_found_at_the_right_times():
    predictor = Predictor.from_checkpoint(SPOTTING)
    words = ["yes", "stop", "seven", "left", "marvin"]
    clips = [(w, read_whole(EXAMPLES_DIR / w / "flite-rms_nohash_0.flac")) for w in words]
    wave, spoken = assemble(clips, [0.8] * len(words), torch.randn(30 * SAMPLE_RATE), snr_db=30)
    found = spot(predictor, wave)
    result = score(found, spoken, SPOTTING_CLASSES[:30], wave.numel() / SAMPLE_RATE)
    assert result.hits >= 4 and result.false_alarms <= 1, found


@needs_spotting
def test_silence_and_noise_give_no_detections():
    predictor = Predictor.from_checkpoint(SPOTTING)
    generator = torch.Generator().manual_seed(0)
    for quiet in (torch.zeros(5 * SAMPLE_RATE), 0.05 * torch.randn(5 * SAMPLE_RATE, generator=generator),
                  0.3 * torch.randn(5 * SAMPLE_RATE, generator=generator).cumsum(0).div(300).sin()):
        assert spot(predictor, quiet) == []


@needs_spotting
@pytest.mark.parametrize("chunk", [1600, 1234, 40_000])
def test_the_stream_gives_what_the_file_gives(chunk):
    predictor = Predictor.from_checkpoint(SPOTTING)
    wave = load_audio(recording_files()[0]).waveform
    stream = Spotter(predictor)
    found = [d for start in range(0, wave.numel(), chunk) for d in stream.feed(wave[start:start + chunk])]
    found += stream.flush()
    whole = spot(predictor, wave)  # the same, up to float rounding of batched against single windows
    assert len(whole) >= 5 and [d.to_dict() for d in found] == [d.to_dict() for d in whole]
    assert stream.decoder.index == window_count(wave.numel(), SpotConfig().hop_samples)  # every window, the last too
    assert window_posteriors(predictor, wave).shape == (-(-wave.numel() // 1600), len(predictor.classes))


@needs_spotting
def test_bundled_recordings_have_their_words_found():
    """Measured with the shipped model: 11 of 12 and 5 of 8 words (it misses 'up', 'go' and 'no' of the flite-slt
    voice), no false alarm, nothing on the four words outside the vocabulary."""
    predictor = Predictor.from_checkpoint(SPOTTING)
    for path in recording_files():
        truth = read_truth(path)
        wave = load_audio(path).waveform
        result = score(spot(predictor, wave), truth, SPOTTING_CLASSES[:30], wave.numel() / SAMPLE_RATE)
        assert result.recall >= 0.6 and result.false_alarms <= 1 and result.oov_detections == 0, (path.name, result)


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speech.spot", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


@needs_spotting
def test_cli_prints_json_detections():
    done = run_cli(recording_files()[0], "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found and set(found[0]) == {"word", "start", "end", "confidence"}
    assert all(d["word"] in SPOTTING_CLASSES[:30] and 0 <= d["start"] < d["end"] for d in found)


def test_cli_reports_bad_input_in_one_line(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    checkpoint = SHIPPED_CHECKPOINTS / "tcresnet.pt"
    for args in ([broken, "--checkpoint", checkpoint], [silent, "--checkpoint", checkpoint],
                 [silent, "--checkpoint", broken], [silent, "--checkpoint", checkpoint, "--threshold", "1.5"],
                 [tmp_path / "missing.wav", "--checkpoint", checkpoint]):
        done = run_cli(*args)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, args
