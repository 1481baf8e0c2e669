"""Spectrogram features: the book's three variants, computed batched on the batch's device.

Input: waveform float32 ``[batch, time]`` (or ``[time]``) at 16 kHz.
Output for a 1 s clip with the defaults (window 480 = 30 ms, hop 160 = 10 ms, n_fft 512):

=========  ==================================================  =====================
variant    what                                                shape per clip
=========  ==================================================  =====================
baseline   log power spectrogram                               ``[1, 257, 101]``
mel        log 128-band mel power spectrogram                  ``[1, 128, 101]``
complex    real and imaginary parts (magnitude compressed)     ``[2, 257, 101]``
=========  ==================================================  =====================

Each clip's features are standardized (``FeatureConfig.standardize``) so that loud and quiet
recordings of a word look alike to the model. With ``FeatureConfig.top_db`` the log variants are in dB,
floored at each clip's peak minus ``top_db`` (torchaudio's ``AmplitudeToDB``).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torchaudio.transforms as T
from torch import nn

from speech.audio import SAMPLE_RATE

VARIANTS = ("baseline", "mel", "complex")
LOG_FLOOR = 1e-6
COMPLEX_COMPRESSION = 0.3  # |X|^0.3 keeps phase and tames the dynamic range, like log does for power

WINDOWS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
    "rectangular": torch.ones,
}


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of a feature transform; sizes in samples, frequencies in Hz."""

    variant: str = "baseline"
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 480
    hop_length: int = 160
    window: str = "hann"
    normalized: bool = True
    n_mels: int = 128
    f_min: float = 0.0
    f_max: Optional[float] = None
    standardize: bool = True  # per clip: zero mean, unit variance (log variants) or unit RMS (complex)
    top_db: Optional[float] = None  # log variants: floor each clip's power at its peak minus this many dB

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"Unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}.")
        if self.window not in WINDOWS:
            raise ValueError(f"Unknown window {self.window!r}; choose one of {', '.join(WINDOWS)}.")
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must not exceed n_fft ({self.n_fft}).")
        if self.top_db is not None and (self.top_db <= 0 or self.variant == "complex"):
            raise ValueError(f"top_db ({self.top_db}) must be a positive number of dB, for a log variant.")
        nyquist = self.sample_rate / 2
        if not 0 <= self.f_min < (self.f_max or nyquist) <= nyquist:
            raise ValueError(f"The mel band {self.f_min:g}-{self.f_max or nyquist:g} Hz must rise from f_min "
                             f"to f_max within 0-{nyquist:g} Hz.")
        if (self.f_min or self.f_max is not None) and self.variant != "mel":
            raise ValueError(f"f_min and f_max set the mel bands; the {self.variant} variant has none.")

    @property
    def channels(self) -> int:
        return 2 if self.variant == "complex" else 1

    @property
    def n_bins(self) -> int:
        """Frequency rows of the feature image."""
        return self.n_mels if self.variant == "mel" else self.n_fft // 2 + 1

    def to_dict(self) -> dict:
        return asdict(self)


def spectrogram_transform(config: FeatureConfig, power: Optional[float] = 2.0) -> T.Spectrogram:
    """torchaudio's Spectrogram for ``config``; ``power=None`` gives the complex STFT."""
    return T.Spectrogram(n_fft=config.n_fft, win_length=config.win_length, hop_length=config.hop_length,
                         window_fn=WINDOWS[config.window], power=power, normalized=config.normalized)


def mel_transform(config: FeatureConfig, power: float = 2.0) -> T.MelSpectrogram:
    with warnings.catch_warnings():
        # The book's 128 bands over 257 bins leave the lowest filters empty; that is the lesson, not an error.
        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        return T.MelSpectrogram(sample_rate=config.sample_rate, n_fft=config.n_fft, win_length=config.win_length,
                                hop_length=config.hop_length, window_fn=WINDOWS[config.window], power=power,
                                normalized=config.normalized, n_mels=config.n_mels, f_min=config.f_min,
                                f_max=config.f_max)


class Featurizer(nn.Module):
    """Waveform ``[batch, time]`` float32 -> model input ``[batch, channels, n_bins, frames]`` float32.

    A module so that ``.to(device)`` moves its window and filter bank and features are computed
    where the batch lives.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.config = config
        if config.variant == "mel":
            self.transform = mel_transform(config)
        else:
            self.transform = spectrogram_transform(config, power=None if config.variant == "complex" else 2.0)
        # The floor makes a band a microphone or phone line removed look like the quiet parts of any clip,
        # instead of an extreme log(0) that dominates the standardisation.
        self.to_db = None if config.top_db is None else T.AmplitudeToDB("power", top_db=config.top_db)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        spec = self.transform(waveform)  # [batch, bins, frames]
        if self.config.variant == "complex":
            magnitude = spec.abs().clamp_min(LOG_FLOOR)
            spec = spec * magnitude ** (COMPLEX_COMPRESSION - 1)
            features = torch.view_as_real(spec).permute(0, 3, 1, 2).contiguous()  # [batch, 2, bins, frames]
            if self.config.standardize:  # scale only: the sign of real/imaginary parts carries the phase
                features = features / features.pow(2).mean((1, 2, 3), keepdim=True).sqrt().clamp_min(LOG_FLOOR)
            return features
        if self.to_db is None:
            features = torch.log(spec + LOG_FLOOR).unsqueeze(1)
        else:  # 4-D, so that AmplitudeToDB floors each clip at its own peak
            features = self.to_db(spec.unsqueeze(1))
        if self.config.standardize:  # a gain change is an offset in log power: removing the mean ignores it
            mean = features.mean((1, 2, 3), keepdim=True)
            features = (features - mean) / features.std((1, 2, 3), keepdim=True).clamp_min(LOG_FLOOR)
        return features
