"""Audio loading for every place a clip enters the app: files, uploads, microphone recordings.

Everything leaves as a float32 mono waveform at 16 kHz, shape ``[time]``, amplitudes in [-1, 1].
Every failure raises :class:`AudioError` with a message a user can act on.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # the dataset's clips are 1 s long
MAX_SECONDS = 600.0
MIN_SECONDS = 0.1
SILENCE_PEAK = 1e-4  # below this peak amplitude a recording is treated as silence
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

AudioSource = Union[str, Path, bytes, BinaryIO]


class AudioError(ValueError):
    """A clip cannot be used; ``str(error)`` says why and what to do, in words for a user."""


@dataclass(frozen=True)
class LoadedAudio:
    """A decoded clip.

    waveform: float32 ``[time]``, mono, at ``SAMPLE_RATE``.
    source_rate: the file's own sample rate in Hz.
    source_channels: the file's channel count before the downmix.
    """

    waveform: torch.Tensor
    source_rate: int
    source_channels: int

    @property
    def seconds(self) -> float:
        return self.waveform.numel() / SAMPLE_RATE


def _open(source: AudioSource):
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError("The file is empty (0 bytes). Record or choose another file.")
        return io.BytesIO(source), "the upload"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No such file: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"{path.name} is empty (0 bytes). Choose another file.")
        return str(path), path.name
    data = source.read()
    return _open(bytes(data))


def load_audio(
    source: AudioSource,
    *,
    max_seconds: float = MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
    reject_silence: bool = True,
) -> LoadedAudio:
    """Decode any format soundfile reads (WAV, FLAC, OGG, MP3), any rate, any channel count.

    Returns float32 mono at 16 kHz (channels averaged, resampled with torchaudio).
    Raises AudioError for an empty, non-audio, corrupt or unsupported file, a clip shorter
    than ``min_seconds`` or longer than ``max_seconds``, NaN/inf samples, or (when
    ``reject_silence``) a clip that is all silence.
    """
    handle, name = _open(source)
    try:
        info = sf.info(handle)
    except sf.LibsndfileError as error:
        raise AudioError(
            f"Cannot read {name} as audio ({error.error_string}). "
            "Use a WAV, FLAC, OGG or MP3 file."
        ) from None
    except Exception as error:  # soundfile raises TypeError/RuntimeError for some garbage
        raise AudioError(f"Cannot read {name} as audio ({error}). Use a WAV, FLAC, OGG or MP3 file.") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{name} has no usable sample rate or channels; it looks corrupt.")
    if info.frames > 0 and info.frames / info.samplerate > max_seconds:
        raise AudioError(
            f"{name} is {info.frames / info.samplerate:.0f} s long; the limit is {max_seconds:.0f} s. "
            "Trim it to the part with the word."
        )
    if hasattr(handle, "seek"):
        handle.seek(0)
    try:
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{name} is corrupt or truncated and cannot be decoded ({error}).") from None
    if data.shape[0] == 0:
        raise AudioError(f"{name} contains no samples. Record or choose another file.")
    if not np.isfinite(data).all():
        raise AudioError(f"{name} contains NaN or infinite samples; it is corrupt.")
    seconds = data.shape[0] / rate
    if seconds > max_seconds:
        raise AudioError(f"{name} is {seconds:.0f} s long; the limit is {max_seconds:.0f} s.")
    if seconds < min_seconds:
        raise AudioError(
            f"{name} is only {seconds * 1000:.0f} ms long; at least {min_seconds * 1000:.0f} ms "
            "are needed to hear a word. Record a little longer."
        )
    waveform = torch.from_numpy(data.mean(axis=1))
    if rate != SAMPLE_RATE:
        waveform = AF.resample(waveform, rate, SAMPLE_RATE)
    if reject_silence and waveform.abs().max().item() < SILENCE_PEAK:
        raise AudioError(f"{name} is silent. Check the microphone and speak a word.")
    return LoadedAudio(waveform.contiguous(), int(rate), int(info.channels))


def fix_length(waveform: torch.Tensor, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """Pad with zeros at the end or cut the end so the last dimension is ``length`` (the book's pad_to)."""
    missing = length - waveform.shape[-1]
    if missing > 0:
        return torch.nn.functional.pad(waveform, (0, missing))
    return waveform[..., :length]


def loudest_window_start(waveform: torch.Tensor, length: int = CLIP_SAMPLES, hop: int = 160) -> int:
    """Start sample of the ``length``-sample window of ``waveform [time]`` with the most energy."""
    if waveform.numel() <= length:
        return 0
    energy = torch.cat([torch.zeros(1, dtype=torch.float64), (waveform.double() ** 2).cumsum(0)])
    starts = torch.arange(0, waveform.numel() - length + 1, hop)
    best = (energy[starts + length] - energy[starts]).argmax()
    return int(starts[best])


def loudest_window(waveform: torch.Tensor, length: int = CLIP_SAMPLES) -> tuple[torch.Tensor, int]:
    """The most energetic ``length``-sample window of ``waveform [time]`` (padded if shorter) and its start."""
    start = loudest_window_start(waveform, length)
    return fix_length(waveform[start:start + length], length), start


def to_wav_bytes(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes of ``waveform [time]``, for st.audio playback and downloads."""
    buffer = io.BytesIO()
    sf.write(buffer, waveform.detach().cpu().numpy(), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
