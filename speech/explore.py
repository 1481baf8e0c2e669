"""Computations behind the explorer pages: DFT, spectrogram at any window, mel filter bank, MFCC.

Inputs are float32 waveforms ``[time]`` at ``sample_rate`` Hz; outputs say their shapes and units.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from speech.features import FeatureConfig, mel_transform, spectrogram_transform


@dataclass
class Spectrum:
    """One-sided DFT of a whole clip: ``frequencies`` Hz ``[n//2+1]``, ``magnitude`` and ``phase`` (rad) alike."""

    frequencies: torch.Tensor
    magnitude: torch.Tensor
    phase: torch.Tensor


def dft(waveform: torch.Tensor, sample_rate: int) -> Spectrum:
    coefficients = torch.fft.rfft(waveform.double())
    frequencies = torch.fft.rfftfreq(waveform.numel(), d=1 / sample_rate)
    return Spectrum(frequencies, coefficients.abs().float(), coefficients.angle().float())


def inverse_dft_error(waveform: torch.Tensor) -> float:
    """Max absolute difference between ``waveform`` and the inverse DFT of its DFT."""
    restored = torch.fft.irfft(torch.fft.rfft(waveform.double()), n=waveform.numel())
    return float((restored - waveform.double()).abs().max())


def sum_of_sines(frequencies: list[float], amplitudes: list[float], sample_rate: int,
                 seconds: float = 1.0) -> torch.Tensor:
    """float32 ``[sample_rate * seconds]``: the sum of the given sines, scaled to a 0.9 peak."""
    t = torch.arange(int(sample_rate * seconds), dtype=torch.float64) / sample_rate
    signal = sum(a * torch.sin(2 * math.pi * f * t) for f, a in zip(frequencies, amplitudes))
    peak = signal.abs().max().clamp_min(1e-12)
    return (0.9 * signal / peak).float()


def spectrogram(waveform: torch.Tensor, config: FeatureConfig, power: float = 2.0) -> torch.Tensor:
    """float32 ``[n_fft//2+1, frames]``: |STFT|^power (power 1 = magnitude)."""
    return spectrogram_transform(config, power=power)(waveform)


def overview_spectrogram(waveform: torch.Tensor, sample_rate: int, frames: int = 2000,
                         n_fft: int = 512) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A spectrogram of audio of any length with at most about ``frames`` frames (the hop grows with the length):
    (dB ``[n_fft//2+1, frames]``, frame times s, bin frequencies Hz)."""
    hop = max(sample_rate // 100, math.ceil(waveform.numel() / frames))
    power = T.Spectrogram(n_fft=n_fft, win_length=min(n_fft, round(0.025 * sample_rate)), hop_length=hop)(waveform)
    times = torch.arange(power.shape[1]) * hop / sample_rate
    return 10 * torch.log10(power.clamp_min(1e-10)), times, torch.fft.rfftfreq(n_fft, 1 / sample_rate)


MIN_BAND_HZ = 200  # the narrowest f_min..f_max range the Mel page accepts
WINDOW_SIZES = [64, 128, 256, 480, 512, 1024, 2048]  # the Spectrogram page offers these
# Width of each window's main lobe, null to null, in units of sample_rate / window length: two sines closer
# than about half of it melt into one peak.
MAIN_LOBE_WIDTH = {"rectangular": 2.0, "hann": 4.0, "hamming": 4.0, "blackman": 6.0}


@dataclass(frozen=True)
class Resolution:
    """The time/frequency trade-off of an STFT in numbers (ms and Hz)."""

    window_ms: float
    hop_ms: float
    frequency_hz: float   # what the window can separate: sample rate / window length
    main_lobe_hz: float   # the window's main lobe, null to null
    bin_spacing_hz: float  # sample rate / n_fft: finer with zero-padding, which separates nothing more


def resolution(config: FeatureConfig) -> Resolution:
    rate = config.sample_rate
    return Resolution(1000 * config.win_length / rate, 1000 * config.hop_length / rate, rate / config.win_length,
                      MAIN_LOBE_WIDTH[config.window] * rate / config.win_length, rate / config.n_fft)


def fft_size(win_length: int, padding: int = 1) -> int:
    """n_fft for a window: the smallest power of two that holds ``padding`` x the window (padding 1: no
    deliberate zero-padding; 480 samples -> 512, as the model uses)."""
    return 1 << math.ceil(math.log2(win_length * padding))


def bin_frequencies(config: FeatureConfig) -> torch.Tensor:
    """Hz of each STFT row ``[n_fft//2+1]``."""
    return torch.linspace(0, config.sample_rate / 2, config.n_fft // 2 + 1)


def row_frequencies(config: FeatureConfig) -> torch.Tensor:
    """Hz of each row of the model input ``[n_bins]``: the mel band centres for mel, else the STFT bins."""
    return mel_centres(config) if config.variant == "mel" else bin_frequencies(config)


def frame_times(n_frames: int, config: FeatureConfig) -> torch.Tensor:
    """Centre time in s of each STFT frame ``[n_frames]`` (torchaudio centres frames)."""
    return torch.arange(n_frames) * config.hop_length / config.sample_rate


def filter_bank(config: FeatureConfig) -> torch.Tensor:
    """Mel filter bank ``[n_fft//2+1, n_mels]`` (HTK mel scale, torchaudio's default). Empty filters (too many
    bands for the bins) are allowed: the Mel page shows them, and says so."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        return AF.melscale_fbanks(config.n_fft // 2 + 1, config.f_min, config.f_max or config.sample_rate / 2,
                                  config.n_mels, config.sample_rate)


def mel_centres(config: FeatureConfig) -> torch.Tensor:
    """Centre frequency in Hz of each mel filter ``[n_mels]``."""
    fmax = config.f_max or config.sample_rate / 2
    mels = torch.linspace(2595 * math.log10(1 + config.f_min / 700), 2595 * math.log10(1 + fmax / 700),
                          config.n_mels + 2)[1:-1]
    return 700 * (10 ** (mels / 2595) - 1)


def mel_spectrogram(waveform: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """float32 ``[n_mels, frames]`` mel power spectrogram via torchaudio's MelSpectrogram."""
    return mel_transform(config)(waveform)


def filter_bank_check(waveform: torch.Tensor, config: FeatureConfig) -> float:
    """Max abs difference between (filter bank)^T x power spectrogram and torchaudio's MelSpectrogram."""
    by_hand = filter_bank(config).T @ spectrogram(waveform, config)
    return float((by_hand - mel_spectrogram(waveform, config)).abs().max())


def mfcc(waveform: torch.Tensor, config: FeatureConfig, n_mfcc: int = 13) -> torch.Tensor:
    """float32 ``[n_mfcc, frames]``: DCT of the log mel spectrogram (torchaudio's MFCC)."""
    transform = T.MFCC(sample_rate=config.sample_rate, n_mfcc=n_mfcc, log_mels=True,
                       melkwargs={"n_fft": config.n_fft, "win_length": config.win_length,
                                  "hop_length": config.hop_length, "n_mels": config.n_mels,
                                  "f_min": config.f_min, "f_max": config.f_max,
                                  "normalized": config.normalized})
    return transform(waveform)
