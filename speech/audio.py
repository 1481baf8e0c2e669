"""The one path of a clip: decode, downmix, resample to 16 kHz, and choose the 1 s the model hears.

Every place a clip enters (dataset files, uploads, microphone recordings, synthetic voices) goes through
:func:`load_audio`, which leaves a float32 mono waveform at 16 kHz, shape ``[time]``, amplitudes in [-1, 1];
every failure raises :class:`AudioError` with a message a user can act on. :func:`model_window` is the one
rule for what a 1 s model hears of a clip of any length, in training, evaluation and prediction alike.
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
HEADER_BYTES = 65_536  # enough of a file's start to find a WAV's data chunk
CLIPPING_MIN_PEAK = 0.25  # quieter recordings cannot have hit full scale
CLIPPED_SHARE = 1e-3

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
    truncated: bool = False  # the WAV header promised more samples than the file holds

    @property
    def seconds(self) -> float:
        return self.waveform.numel() / SAMPLE_RATE


def _open(source: AudioSource, name: str | None):
    """(what soundfile opens: a path string or a BytesIO, the name for messages)."""
    if isinstance(source, (bytes, bytearray)):
        name = name or "the upload"
        if len(source) == 0:
            raise AudioError(f"Empty file: {name} has 0 bytes. Record or choose another file.")
        return io.BytesIO(source), name
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No such file: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"Empty file: {path.name} has 0 bytes. Choose another file.")
        return str(path), name or path.name
    return _open(bytes(source.read()), name)


def _head_and_size(handle) -> tuple[bytes, int]:
    """The first bytes of what :func:`_open` returned, and its size in bytes."""
    if isinstance(handle, io.BytesIO):
        return handle.getbuffer()[:HEADER_BYTES].tobytes(), handle.getbuffer().nbytes
    with open(handle, "rb") as file:
        return file.read(HEADER_BYTES), Path(handle).stat().st_size


def _reason(error: Exception) -> str:
    """A decoder's complaint without its closing full stop, to sit inside our own sentence."""
    return str(getattr(error, "error_string", error)).strip().rstrip(".")


def _wav_truncated(head: bytes, size: int) -> bool:
    """True when a RIFF/WAVE file's data chunk declares more bytes than the file holds (a cut-off download or
    copy; soundfile silently decodes what is there)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    position = 12
    while position + 8 <= len(head):
        chunk, length = head[position:position + 4], int.from_bytes(head[position + 4:position + 8], "little")
        if chunk == b"data":
            return 0 < length < 0xFFFFFFFF and position + 8 + length > size  # 0 / 0xFFFFFFFF: a streamed WAV
        position += 8 + length + (length & 1)
    return False


def to_mono_16k(data: np.ndarray, rate: int) -> torch.Tensor:
    """float32 ``[frames, channels]`` at ``rate`` Hz -> float32 ``[time]`` mono at 16 kHz (channels averaged,
    resampled with torchaudio's band-limited sinc interpolation)."""
    waveform = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32).mean(axis=1))
    if rate != SAMPLE_RATE:
        waveform = AF.resample(waveform, rate, SAMPLE_RATE)
    return waveform.contiguous()


def load_audio(
    source: AudioSource,
    *,
    name: str | None = None,
    max_seconds: float = MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
    reject_silence: bool = True,
) -> LoadedAudio:
    """Decode any format soundfile reads (WAV, FLAC, OGG, MP3), any rate, any channel count.

    ``source`` is a path, bytes or a binary file; ``name`` names it in messages (default: the file name, or
    "the upload" for bytes). Returns float32 mono at 16 kHz (:func:`to_mono_16k`). Raises AudioError for an
    empty, non-audio, corrupt or unsupported file, a clip shorter than ``min_seconds`` or longer than
    ``max_seconds``, NaN/inf samples, or (when ``reject_silence``) a clip that is all silence. A WAV cut off
    before its declared end is decoded as far as it goes, with ``truncated`` set.
    """
    handle, name = _open(source, name)
    try:
        info = sf.info(handle)
    except sf.LibsndfileError as error:
        raise AudioError(
            f"Cannot read {name} as audio ({_reason(error)}). "
            "Use a WAV, FLAC, OGG or MP3 file."
        ) from None
    except Exception as error:  # soundfile raises TypeError/RuntimeError for some garbage
        raise AudioError(f"Cannot read {name} as audio ({_reason(error)}). Use a WAV, FLAC, OGG or MP3 file.") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"Corrupt file: {name} has no usable sample rate or channels.")
    if info.frames > 0 and info.frames / info.samplerate > max_seconds:
        raise AudioError(
            f"Too long: {name} is {info.frames / info.samplerate:.0f} s; the limit is {max_seconds:.0f} s. "
            "Trim it to the part with the word."
        )
    if hasattr(handle, "seek"):
        handle.seek(0)
    try:
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"Corrupt file: {name} cannot be decoded ({_reason(error)}).") from None
    if data.shape[0] == 0:
        raise AudioError(f"No samples: {name} holds no audio. Record or choose another file.")
    if not np.isfinite(data).all():
        raise AudioError(f"Corrupt file: {name} contains NaN or infinite samples.")
    seconds = data.shape[0] / rate
    if seconds > max_seconds:
        raise AudioError(f"Too long: {name} is {seconds:.0f} s; the limit is {max_seconds:.0f} s.")
    if seconds < min_seconds:
        raise AudioError(
            f"Too short: {name} is only {seconds * 1000:.0f} ms long; at least {min_seconds * 1000:.0f} ms "
            "are needed to hear a word. Record a little longer."
        )
    waveform = to_mono_16k(data, rate)
    if reject_silence and waveform.abs().max().item() < SILENCE_PEAK:
        raise AudioError(f"Silent: {name} holds no sound. Check the microphone and speak a word.")
    # only a WAV declares its data size, so only a WAV's header is read to find a cut-off file
    truncated = info.format in ("WAV", "WAVEX") and _wav_truncated(*_head_and_size(handle))
    return LoadedAudio(waveform, int(rate), int(info.channels), truncated)


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


def model_window(waveform: torch.Tensor, length: int = CLIP_SAMPLES) -> tuple[torch.Tensor, int]:
    """What a model hears of a clip: float32 ``[length]`` and its start sample in ``waveform [time]``.

    The one rule everywhere (training, evaluation, prediction): the most energetic ``length`` samples, since
    speech carries far more energy than the silence around it, so that is where the word is; a shorter clip is
    padded with zeros at the end, which for the dataset's clips (1 s or less) is exactly the book's pad_to.
    """
    start = loudest_window_start(waveform, length)
    return fix_length(waveform[start:start + length], length), start


def to_int16(waves: torch.Tensor) -> torch.Tensor:
    """float waveforms in [-1, 1] -> int16 PCM (half the memory of float32; how training keeps clips in RAM)."""
    return (waves.clamp(-1, 1) * 32767).round().to(torch.int16)


def from_int16(waves: torch.Tensor) -> torch.Tensor:
    """int16 PCM -> float32 in [-1, 1]; float input is passed through as float32."""
    return waves.float() / 32768 if waves.dtype == torch.int16 else waves.float()


def clipped_share(waveform: torch.Tensor, tolerance: float = 1e-3) -> float:
    """Share of samples of ``waveform [time]`` on flat tops at the peak: a clipped recording holds its extreme
    value for several samples in a row, a clean one (even a pure tone) never does exactly."""
    peak = waveform.abs().max()
    if waveform.numel() < 3 or peak < CLIPPING_MIN_PEAK:
        return 0.0
    at_peak = waveform.abs() >= peak * (1 - tolerance)
    flat = at_peak[1:] & at_peak[:-1] & ((waveform[1:] - waveform[:-1]).abs() <= peak * tolerance)
    return float(flat.sum()) / waveform.numel()


def is_clipped(waveform: torch.Tensor) -> bool:
    """True when at least 0.1 % of the samples (16 per second) sit on flat tops at the peak."""
    return clipped_share(waveform) >= CLIPPED_SHARE


def to_wav_bytes(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes of ``waveform [time]``, for st.audio playback and downloads."""
    buffer = io.BytesIO()
    sf.write(buffer, waveform.detach().cpu().numpy(), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
