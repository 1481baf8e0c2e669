"""Waveform-batch augmentation, run on the batch's device after collation.

All functions take float32 ``[batch, time]`` at 16 kHz and a ``torch.Generator`` on the same
device, so a run is reproducible and resumable from the generator's state.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from speech.audio import SAMPLE_RATE


@dataclass(frozen=True)
class AugmentConfig:
    shift_seconds: float = 0.1   # random time shift in [-s, s]
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (5.0, 25.0)  # background noise mixed at a random SNR in this range
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed: tuple[float, float] = (1.0, 1.0)  # play each clip at a random speed in this range (1 = off)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) * (high - low) + low


def time_shift(waves: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each clip by a random whole number of samples in [-max_shift, max_shift], zero-filling."""
    batch, length = waves.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (batch, 1), generator=generator, device=generator.device)
    source = torch.arange(length, device=waves.device).unsqueeze(0) - shifts
    valid = (source >= 0) & (source < length)
    return waves.gather(1, source.clamp(0, length - 1)) * valid


def change_speed(waves: torch.Tensor, speed: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Play each clip at a random speed in ``speed`` (tempo and pitch change together, like a faster or
    slower, higher or lower voice), stretched about the clip's centre, zero-filling; linear interpolation."""
    batch, length = waves.shape
    factors = _uniform(batch, *speed, generator).unsqueeze(1)
    centre = (length - 1) / 2
    source = centre + (torch.arange(length, device=waves.device) - centre) * factors  # [batch, length]
    valid = (source >= 0) & (source <= length - 1)
    left = source.floor().long().clamp(0, length - 2)
    weight = source - left
    stretched = waves.gather(1, left) * (1 - weight) + waves.gather(1, left + 1) * weight
    return stretched * valid


def add_noise(waves: torch.Tensor, noise: torch.Tensor, snr_db: tuple[float, float], probability: float,
              generator: torch.Generator) -> torch.Tensor:
    """Mix a random excerpt of ``noise [time]`` into each clip with the given probability, at a random SNR."""
    batch, length = waves.shape
    if noise.numel() < length:
        return waves
    starts = torch.randint(0, noise.numel() - length + 1, (batch, 1), generator=generator, device=generator.device)
    excerpts = noise[starts + torch.arange(length, device=waves.device)]
    signal_power = waves.pow(2).mean(1, keepdim=True).clamp_min(1e-8)
    noise_power = excerpts.pow(2).mean(1, keepdim=True).clamp_min(1e-8)
    snr = _uniform(batch, *snr_db, generator).unsqueeze(1)
    scale = torch.sqrt(signal_power / (noise_power * 10 ** (snr / 10)))
    use = (torch.rand(batch, 1, generator=generator, device=generator.device) < probability)
    return waves + excerpts * scale * use


def random_gain(waves: torch.Tensor, gain_db: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    gain = 10 ** (_uniform(waves.shape[0], *gain_db, generator) / 20)
    return (waves * gain.unsqueeze(1)).clamp(-1, 1)


def augment(waves: torch.Tensor, noise: torch.Tensor, config: AugmentConfig,
            generator: torch.Generator) -> torch.Tensor:
    """Speed, time shift, background noise, gain, in that order."""
    if config.speed != (1.0, 1.0):  # skipped when off, so runs without it draw the same random numbers as before
        waves = change_speed(waves, config.speed, generator)
    waves = time_shift(waves, int(config.shift_seconds * SAMPLE_RATE), generator)
    waves = add_noise(waves, noise, config.snr_db, config.noise_probability, generator)
    return random_gain(waves, config.gain_db, generator)
