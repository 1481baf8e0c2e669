"""Data: Speech Commands v0.01 (download, official splits) and any ``<word>/*.wav|flac|...`` folder.

A dataset item is a :class:`Clip` (path, label, speaker). :func:`load_waveforms` decodes a list of
clips into one int16 tensor ``[n, 16000]`` (the 1 s each model hears, :func:`speech.audio.model_window`)
so that training and evaluation can index batches straight from memory.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch
from torchaudio.datasets import SPEECHCOMMANDS
from torchaudio.datasets.speechcommands import _CHECKSUMS, HASH_DIVIDER
from tqdm.auto import tqdm

from speech.audio import CLIP_SAMPLES, load_audio, model_window, to_int16
from speech.catalog import AUDIO_SUFFIXES, CLASSES, CREDIT  # noqa: F401  (CLASSES, CREDIT: part of this module's API)

SPEECH_COMMANDS_VERSION = "speech_commands_v0.01"
SPEECH_COMMANDS_URL = f"http://download.tensorflow.org/data/{SPEECH_COMMANDS_VERSION}.tar.gz"
BACKGROUND_FOLDER = "_background_noise_"

VALIDATION_PERCENT = 15.0  # share of speakers a folder source gives to validation (speech.train's default)
ProgressCallback = Callable[[int, Optional[int]], None]  # (done, total or None)


@dataclass(frozen=True)
class Clip:
    """One labelled recording: its file, its word, and who spoke it."""

    path: Path
    label: str
    speaker: str


def speaker_of(path: Path) -> str:
    """Speaker id: the file name before ``_nohash_`` (the whole stem when there is none)."""
    return path.name.split(HASH_DIVIDER)[0] if HASH_DIVIDER in path.name else path.stem


def split_of(speaker: str, validation_percent: float = 10.0, testing_percent: float = 10.0) -> str:
    """'training', 'validation' or 'testing' by a stable hash of the speaker, like the dataset's
    own ``which_set``: every clip of one speaker lands in the same part."""
    percent = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 10_000 / 100
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + testing_percent:
        return "testing"
    return "training"


def folder_clips(root: str | Path, classes: Optional[Sequence[str]] = CLASSES) -> list[Clip]:
    """All clips of a ``<word>/<file>`` tree, sorted by path.

    Only folders named in ``classes`` are used (all word folders when ``classes`` is None; a ``_unknown_``
    folder counts when ``classes`` names it); ``_background_noise_`` and hidden folders never count.
    Raises FileNotFoundError for a missing root.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"No such folder: {root}")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        named = folder.name in classes if classes is not None else not folder.name.startswith("_")
        if folder.name.startswith(".") or folder.name == BACKGROUND_FOLDER or not named:
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in AUDIO_SUFFIXES:
                clips.append(Clip(path, folder.name, speaker_of(path)))
    return clips


def split_clips(clips: Iterable[Clip], subset: str, validation_percent: float = 10.0,
                testing_percent: float = 10.0) -> list[Clip]:
    """The clips of one speaker-disjoint subset ('training', 'validation' or 'testing')."""
    return [c for c in clips if split_of(c.speaker, validation_percent, testing_percent) == subset]


def speaker_split(root: str | Path, validation_percent: float) -> tuple[list[Clip], list[Clip]]:
    """(training, validation) clips of a ``<word>/*`` folder, split by a stable hash of the speaker: the split
    ``speech.train`` uses, so a benchmark can score exactly the speakers a checkpoint never heard."""
    every = folder_clips(root)
    return (split_clips(every, "training", validation_percent, 0),
            split_clips(every, "validation", validation_percent, 0))


def class_counts(clips: Iterable[Clip], classes: Sequence[str] = CLASSES) -> dict[str, int]:
    counts = {c: 0 for c in classes}
    for clip in clips:
        counts[clip.label] = counts.get(clip.label, 0) + 1
    return counts


# --- Speech Commands v0.01 through torchaudio -------------------------------------------------

def speech_commands_folder(root: str | Path) -> Path:
    """Where torchaudio's SPEECHCOMMANDS keeps the extracted v0.01 clips under ``root``."""
    return Path(root) / "SpeechCommands" / SPEECH_COMMANDS_VERSION


def is_downloaded(root: str | Path) -> bool:
    return (speech_commands_folder(root) / "testing_list.txt").is_file()


def download_speech_commands(root: str | Path, url: str = SPEECH_COMMANDS_URL,
                             progress: Optional[ProgressCallback] = None) -> Path:
    """Download and extract Speech Commands v0.01 under ``root``; return the clips folder.

    The archive is fetched into a staging folder (progress reported to ``progress`` and a tqdm bar),
    checked against torchaudio's checksum, extracted by torchaudio's SPEECHCOMMANDS, and only then
    moved into place, so a failure leaves nothing half-extracted. Raises RuntimeError with a clear
    message when the server cannot be reached.
    """
    root = Path(root)
    target = speech_commands_folder(root)
    if is_downloaded(root):
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        archive = staging / os.path.basename(url)
        _fetch(url, archive, progress)
        expected = _CHECKSUMS.get(url)
        if expected is not None and _sha256(archive) != expected:
            raise RuntimeError(f"The download from {url} is damaged (checksum mismatch); try again.")
        SPEECHCOMMANDS(staging, url=url, download=True)  # archive present: torchaudio only extracts
        extracted = speech_commands_folder(staging)
        if not (extracted / "testing_list.txt").is_file():
            raise RuntimeError(f"{url} did not contain a Speech Commands tree (no testing_list.txt).")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        extracted.rename(target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch(url: str, destination: Path, progress: Optional[ProgressCallback]) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(
            f"Cannot download Speech Commands from {url}: {getattr(error, 'reason', error)}. "
            "Check the internet connection, or extract the archive yourself and point the app to it."
        ) from None
    total = int(response.headers.get("Content-Length") or 0) or None
    done = 0
    with response, open(destination, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                                         desc="Speech Commands") as bar:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            bar.update(len(chunk))
            if progress is not None:
                progress(done, total)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def speech_commands_clips(root: str | Path, subset: Optional[str] = None,
                          classes: Sequence[str] = CLASSES) -> list[Clip]:
    """Clips of the extracted v0.01 dataset under ``root`` for an official subset
    ('training', 'validation', 'testing' from validation_list.txt / testing_list.txt, or None).

    Uses torchaudio's SPEECHCOMMANDS for the file list and its metadata (no torchaudio.load).
    """
    dataset = SPEECHCOMMANDS(root, url=SPEECH_COMMANDS_VERSION, download=False, subset=subset)
    archive = Path(root) / "SpeechCommands"
    clips = []
    for n in range(len(dataset)):
        relpath, _, label, speaker, _ = dataset.get_metadata(n)
        if label in classes:
            clips.append(Clip(archive / relpath, label, speaker))
    return clips


# --- decoding --------------------------------------------------------------------------------

def read_clip(path: str | Path, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """The float32 ``[length]`` a model hears of a dataset file (decoded by :func:`speech.audio.load_audio`
    without the checks meant for user input: dataset clips may be short or silent)."""
    return model_window(read_whole(path), length)[0]


def read_whole(path: str | Path) -> torch.Tensor:
    """A whole file as float32 ``[time]`` mono at 16 kHz, with no length or silence check."""
    return load_audio(path, max_seconds=math.inf, min_seconds=0.0, reject_silence=False).waveform


def load_waveforms(clips: Sequence[Clip], length: int = CLIP_SAMPLES, desc: str = "decoding",
                   progress: Optional[ProgressCallback] = None) -> torch.Tensor:
    """Decode ``clips`` into int16 ``[n, length]`` (:func:`speech.audio.from_int16` gives float amplitudes).

    int16 halves the memory of float32 so the whole training set stays in RAM.
    """
    out = torch.empty(len(clips), length, dtype=torch.int16)
    for i, clip in enumerate(tqdm(clips, desc=desc, unit="clip", leave=False)):
        out[i] = to_int16(read_clip(clip.path, length))
        if progress is not None:
            progress(i + 1, len(clips))
    return out


def load_background_noise(folder: str | Path) -> torch.Tensor:
    """All recordings in a ``_background_noise_`` folder, concatenated: float32 ``[time]`` at 16 kHz.

    Returns an empty tensor when the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return torch.zeros(0)
    parts = [read_whole(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES]
    return torch.cat(parts) if parts else torch.zeros(0)


def labels_tensor(clips: Sequence[Clip], classes: Sequence[str] = CLASSES) -> torch.Tensor:
    """Class indices int64 ``[n]`` of ``clips`` in ``classes`` order."""
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[c.label] for c in clips], dtype=torch.int64)



# --- the spotting model's extra classes -------------------------------------------------------

def loud_span(wave: torch.Tensor, fraction: float = 0.1, frame: int = 160) -> tuple[int, int]:
    """(start, end) samples of the part of float ``wave [time]`` whose 10 ms frame peaks exceed ``fraction``
    of the loudest frame: where the word is. The whole clip when it is silent."""
    peaks = wave[: wave.numel() // frame * frame].abs().reshape(-1, frame).amax(1)
    loud = (peaks > fraction * peaks.max()).nonzero().flatten() if peaks.numel() and peaks.max() > 0 else []
    if len(loud) == 0:
        return 0, wave.numel()
    return int(loud[0]) * frame, (int(loud[-1]) + 1) * frame


def non_words(waves: torch.Tensor, labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` clips of speech that is no word of the vocabulary, made from int16 ``[n, length]`` word clips
    (labels ``[n]``): a clip played backwards (same voice and spectrum, no word), or the first part of one word
    joined to the last part of a different word ("yes" + "no" -> "yeo"). int16 ``[count, length]``."""
    generator = torch.Generator().manual_seed(seed)
    out = torch.zeros(count, waves.shape[1], dtype=torch.int16)
    several_words = labels.unique().numel() > 1
    for i in range(count):
        a, b = torch.randint(len(waves), (2,), generator=generator).tolist()
        while labels[b] == labels[a] and several_words:
            b = int(torch.randint(len(waves), (1,), generator=generator))
        if i % 2 == 0:
            out[i] = waves[a].flip(0)
            continue
        (a0, a1), (b0, b1) = loud_span(waves[a].float()), loud_span(waves[b].float())
        cut = float(torch.empty(1).uniform_(0.35, 0.65, generator=generator))
        head, tail = waves[a, a0:a0 + int((a1 - a0) * cut)], waves[b, b0 + int((b1 - b0) * cut):b1]
        joined = torch.cat([head, tail])[: waves.shape[1]]
        start = (waves.shape[1] - joined.numel()) // 2
        out[i, start:start + joined.numel()] = joined
    return out


def silence_clips(noise: torch.Tensor, count: int, length: int, seed: int) -> torch.Tensor:
    """``count`` clips with no speech: excerpts of background ``noise`` (float ``[time]``) at a random level
    (-45 to 0 dB of the recording's own), and one in ten digital silence. int16 ``[count, length]``."""
    generator = torch.Generator().manual_seed(seed)
    out = torch.zeros(count, length, dtype=torch.int16)
    if noise.numel() < length:
        return out
    for i in range(count):
        if i % 10 == 0:
            continue
        start = int(torch.randint(noise.numel() - length + 1, (1,), generator=generator))
        level = 10 ** (float(torch.empty(1).uniform_(-45, 0, generator=generator)) / 20)
        out[i] = to_int16(noise[start:start + length] * level)
    return out
