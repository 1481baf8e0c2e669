"""Hear what the model hears: each model input turned back into sound.

Every function takes a float32 waveform ``[time]`` at 16 kHz and a :class:`~speech.features.FeatureConfig`
(window, hop, n_fft, mel bands) and returns float32 audio ``[time]`` of the same length:

==========  ======================================================  ==============================
input       back to sound                                           what is lost
==========  ======================================================  ==============================
complex     the inverse STFT (exact)                                nothing
baseline    Griffin-Lim: guess a phase that fits the power          the phase
mel         InverseMelScale (least squares), then Griffin-Lim       detail within each band, phase
MFCC        the first coefficients' mel envelope, then as mel       the fine structure (pitch)
==========  ======================================================  ==============================

The model's input is also standardized per clip, which drops the loudness: the reconstructions keep the original
level so that they can be compared by ear.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from speech.audio import SAMPLE_RATE
from speech.explore import bin_frequencies, filter_bank, mel_spectrogram, spectrogram
from speech.features import WINDOWS, FeatureConfig, spectrogram_transform

GRIFFIN_LIM_ITERATIONS = 32
MFCC_LOG_OFFSET = 1e-6  # torchaudio's MFCC(log_mels=True) takes log(mel + 1e-6)
MAX_SECONDS = 10.0       # the explorer pages reconstruct at most this much audio (Griffin-Lim iterates)


def audible_part(waveform: torch.Tensor, seconds: float = MAX_SECONDS) -> torch.Tensor:
    """The first ``seconds`` of ``waveform [time]`` (16 kHz): what the explorer pages turn back into sound."""
    return waveform[:int(seconds * SAMPLE_RATE)]


def window_energy(config: FeatureConfig) -> float:
    """sum(window^2): what ``normalized=True`` divides the STFT magnitude by (its square divides the power)."""
    window = WINDOWS[config.window](config.win_length)
    return float(window.pow(2).sum())


def masked(waveform: torch.Tensor, config: FeatureConfig, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The sound of the STFT cells ``mask`` keeps, inverted exactly: ``mask`` (0..1) is ``[n_fft//2+1]`` (a band)
    or ``[n_fft//2+1, frames]`` (cells); without a mask, the complex input's sound (the whole STFT)."""
    stft = spectrogram_transform(config, power=None)(waveform)
    if mask is not None:
        stft = stft * (mask.unsqueeze(1) if mask.dim() == 1 else mask).to(stft.real.dtype)
    inverse = T.InverseSpectrogram(n_fft=config.n_fft, win_length=config.win_length, hop_length=config.hop_length,
                                   window_fn=WINDOWS[config.window], normalized=config.normalized)
    return inverse(stft, length=waveform.numel())


def griffin_lim(power: torch.Tensor, config: FeatureConfig, length: int,
                iterations: int = GRIFFIN_LIM_ITERATIONS) -> torch.Tensor:
    """Sound whose STFT power fits ``power [n_fft//2+1, frames]`` (as :func:`speech.explore.spectrogram` gives it
    for ``config``), its phase found by Griffin-Lim from zero phase (deterministic)."""
    unnormalised = power * window_energy(config) if config.normalized else power  # GriffinLim's STFT is plain
    transform = T.GriffinLim(n_fft=config.n_fft, n_iter=iterations, win_length=config.win_length,
                             hop_length=config.hop_length, window_fn=WINDOWS[config.window], power=2.0,
                             length=length, rand_init=False)
    return transform(unnormalised.clamp_min(0))


def from_power(waveform: torch.Tensor, config: FeatureConfig, iterations: int = GRIFFIN_LIM_ITERATIONS) -> torch.Tensor:
    """The baseline input's sound: its power spectrogram through Griffin-Lim."""
    return griffin_lim(spectrogram(waveform, config), config, waveform.numel(), iterations)


def inverse_mel(mel_power: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Power spectrogram ``[n_fft//2+1, frames]`` whose mel bands give ``mel_power [n_mels, frames]``
    (torchaudio's InverseMelScale: least squares, clamped to be non-negative)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        # 128 bands over 257 rows leave empty filters: "gelsd" (SVD) solves such rank-deficient systems
        inverse = T.InverseMelScale(n_stft=config.n_fft // 2 + 1, n_mels=config.n_mels,
                                    sample_rate=config.sample_rate, f_min=config.f_min, f_max=config.f_max,
                                    driver="gelsd")
    return inverse(mel_power).clamp_min(0)


def from_mel(waveform: torch.Tensor, config: FeatureConfig, iterations: int = GRIFFIN_LIM_ITERATIONS) -> torch.Tensor:
    """The mel input's sound: mel power, back to a power spectrogram (InverseMelScale), then Griffin-Lim."""
    return griffin_lim(inverse_mel(mel_spectrogram(waveform, config), config), config, waveform.numel(), iterations)


def from_mfcc(waveform: torch.Tensor, config: FeatureConfig, n_mfcc: int = 13,
              iterations: int = GRIFFIN_LIM_ITERATIONS) -> torch.Tensor:
    """Sound from the first ``n_mfcc`` MFCCs: the truncated cepstrum back to a smooth log mel spectrogram
    (the DCT is orthonormal, so its transpose inverts it), then as :func:`from_mel`."""
    dct = AF.create_dct(n_mfcc, config.n_mels, "ortho")  # [n_mels, n_mfcc]
    # the cepstrum torchaudio's MFCC(log_mels=True) computes
    cepstrum = dct.T @ torch.log(mel_spectrogram(waveform, config) + MFCC_LOG_OFFSET)
    smooth = (torch.exp(dct @ cepstrum) - MFCC_LOG_OFFSET).clamp_min(0)
    return griffin_lim(inverse_mel(smooth, config), config, waveform.numel(), iterations)


def band_mask(config: FeatureConfig, low_hz: float, high_hz: float) -> torch.Tensor:
    """1 for the STFT rows between ``low_hz`` and ``high_hz``, else 0: ``[n_fft//2+1]``."""
    frequencies = bin_frequencies(config)
    return ((frequencies >= low_hz) & (frequencies <= high_hz)).float()


def mel_filter_mask(config: FeatureConfig, band: int) -> torch.Tensor:
    """Mel filter ``band``'s triangle as a mask over the STFT rows, peak 1: ``[n_fft//2+1]``."""
    weights = filter_bank(config)[:, band]
    return weights / weights.max().clamp_min(1e-12)


def spectral_convergence(original: torch.Tensor, reconstruction: torch.Tensor, config: FeatureConfig) -> float:
    """|| |S| - |S_hat| || / || |S| || of the two sounds' STFT magnitudes (0: the same magnitudes)."""
    reference = spectrogram(original, config, power=1.0)
    difference = reference - spectrogram(reconstruction, config, power=1.0)
    return float(difference.norm() / reference.norm().clamp_min(1e-12))


@dataclass
class Reconstruction:
    """A model input turned back into sound: float32 ``waveform [time]`` at 16 kHz, what was lost in words, the
    spectral convergence to the original and, for the exact inverse, its largest sample error."""

    title: str
    waveform: torch.Tensor
    lost: str
    convergence: float
    max_error: Optional[float] = None


def reconstruct(waveform: torch.Tensor, config: FeatureConfig, iterations: int = GRIFFIN_LIM_ITERATIONS,
                n_mfcc: Optional[int] = None) -> Reconstruction:
    """What the input ``config`` describes keeps of ``waveform``, as sound (``n_mfcc``: the MFCC of a mel
    config instead)."""
    window_ms = 1000 * config.win_length / config.sample_rate
    if n_mfcc is not None:
        sound = from_mfcc(waveform, config, n_mfcc, iterations)
        title, lost = (f"{n_mfcc} MFCCs", f"Keeps only the rough shape of the {config.n_mels} bands (the first "
                       f"{n_mfcc} cepstral coefficients): the pitch and fine detail are gone, and so is the phase.")
    elif config.variant == "complex":
        sound = masked(waveform, config)
        title, lost = "complex STFT (exact inverse)", ("Nothing is lost: real and imaginary parts keep magnitude "
                                                       "and phase, so the inverse STFT gives the clip back.")
    elif config.variant == "mel":
        sound = from_mel(waveform, config, iterations)
        title, lost = f"{config.n_mels} mel bands", (
            f"Each band's detail is averaged away (wide bands at high frequencies) and the phase is lost: "
            f"{iterations} Griffin-Lim iterations guess it.")
    else:
        sound = from_power(waveform, config, iterations)
        title, lost = "power spectrogram", (
            f"The phase is lost ({window_ms:.0f} ms windows smear time); {iterations} Griffin-Lim iterations guess "
            "it, which sounds rough or metallic.")
    error = float((sound - waveform).abs().max()) if config.variant == "complex" and n_mfcc is None else None
    return Reconstruction(title, sound, lost, spectral_convergence(waveform, sound, config), error)
