"""Waveform-batch augmentation, run on the batch's device after collation.

All functions take float32 ``[batch, time]`` at 16 kHz and a ``torch.Generator`` on the same
device, so a run is reproducible and resumable from the generator's state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from speech.audio import SAMPLE_RATE, to_int16


@dataclass(frozen=True)
class AugmentConfig:
    shift_seconds: float = 0.1   # random time shift in [-s, s]
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (5.0, 25.0)  # background noise mixed at a random SNR in this range
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed: tuple[float, float] = (1.0, 1.0)  # play each clip at a random speed in this range (1 = off)
    # What real microphones do (off by default; --robust turns them on): a voice too close clips, a phone
    # line passes only a band, a quiet take is a few bits of 16-bit PCM.
    clip_probability: float = 0.0
    clip_drive: tuple[float, float] = (1.5, 12.0)  # the clip's peak is driven to this multiple of full scale
    band_probability: float = 0.0
    band_low_hz: tuple[float, float] = (0.0, 400.0)     # random high-pass edge
    band_high_hz: tuple[float, float] = (3000.0, 8000.0)  # random low-pass edge
    quiet_probability: float = 0.0
    quiet_db: tuple[float, float] = (-40.0, -10.0)  # level of a quiet take, re-quantised to 16 bits
    # Continuous speech (off by default; --neighbours P turns it on): a window centred on one word also hears the
    # edge of the word before or after it.
    neighbour_probability: float = 0.0
    neighbour_offset: tuple[float, float] = (0.4, 0.8)  # seconds between this clip's centre and the neighbour's


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) * (high - low) + low


def _chosen(batch: int, probability: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(batch, 1, generator=generator, device=generator.device) < probability


def shifted(waves: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each clip moved later by its ``shifts [batch, 1]`` samples (earlier when negative), zero-filling."""
    length = waves.shape[1]
    source = torch.arange(length, device=waves.device).unsqueeze(0) - shifts
    valid = (source >= 0) & (source < length)
    return waves.gather(1, source.clamp(0, length - 1)) * valid


def time_shift(waves: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each clip by a random whole number of samples in [-max_shift, max_shift], zero-filling."""
    shifts = torch.randint(-max_shift, max_shift + 1, (waves.shape[0], 1), generator=generator,
                           device=generator.device)
    return shifted(waves, shifts)


def add_neighbours(waves: torch.Tensor, offset: tuple[float, float], probability: float,
                   generator: torch.Generator) -> torch.Tensor:
    """With ``probability``, add the previous clip of the batch moved a random ``offset`` (seconds, either way), so
    that only the edge of its word lies in this window: the neighbouring word of continuous speech, which the
    model must not take for the word it is centred on. The label stays this clip's."""
    batch = waves.shape[0]
    sign = torch.where(_chosen(batch, 0.5, generator), 1.0, -1.0)
    shifts = (_uniform(batch, *offset, generator).unsqueeze(1) * sign * SAMPLE_RATE).round().long()
    return waves + shifted(waves.roll(1, 0), shifts) * _chosen(batch, probability, generator)


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


def clip_peaks(waves: torch.Tensor, gain: torch.Tensor | float) -> torch.Tensor:
    """Amplify by ``gain`` (a number or ``[batch, 1]``) and clip to [-1, 1], as an overdriven microphone does."""
    return (waves * gain).clamp(-1, 1)


def band_pass(waves: torch.Tensor, low_hz: torch.Tensor | float, high_hz: torch.Tensor | float) -> torch.Tensor:
    """Keep only the frequencies in [low_hz, high_hz] (numbers or ``[batch, 1]``): an ideal filter on the DFT."""
    spectrum = torch.fft.rfft(waves)
    frequencies = torch.fft.rfftfreq(waves.shape[-1], 1 / SAMPLE_RATE, device=waves.device)
    keep = (frequencies >= low_hz) & (frequencies <= high_hz)
    return torch.fft.irfft(spectrum * keep, n=waves.shape[-1])


def quantize(waves: torch.Tensor) -> torch.Tensor:
    """Round to 16-bit PCM steps, as a file of a quiet recording holds it."""
    return to_int16(waves).float() / 32767


def random_clipping(waves: torch.Tensor, drive: tuple[float, float], probability: float,
                    generator: torch.Generator) -> torch.Tensor:
    """With ``probability``, drive a clip's peak to a random multiple of full scale (log-uniform in ``drive``),
    clip, and scale back to the clip's own peak, so only the shape changes, not the level."""
    batch = waves.shape[0]
    peak = waves.abs().amax(1, keepdim=True).clamp_min(1e-4)
    log_drive = _uniform(batch, math.log(drive[0]), math.log(drive[1]), generator).unsqueeze(1)
    clipped = clip_peaks(waves, log_drive.exp() / peak) * peak
    return torch.where(_chosen(batch, probability, generator), clipped, waves)


def random_band(waves: torch.Tensor, low_hz: tuple[float, float], high_hz: tuple[float, float], probability: float,
                generator: torch.Generator) -> torch.Tensor:
    """With ``probability``, band-limit a clip to random edges drawn from ``low_hz`` and ``high_hz``."""
    batch = waves.shape[0]
    low, high = _uniform(batch, *low_hz, generator).unsqueeze(1), _uniform(batch, *high_hz, generator).unsqueeze(1)
    return torch.where(_chosen(batch, probability, generator), band_pass(waves, low, high), waves)


def random_quiet(waves: torch.Tensor, level_db: tuple[float, float], probability: float,
                 generator: torch.Generator) -> torch.Tensor:
    """With ``probability``, attenuate a clip by a random level in ``level_db`` and re-quantise it to 16 bits."""
    batch = waves.shape[0]
    gain = 10 ** (_uniform(batch, *level_db, generator).unsqueeze(1) / 20)
    return torch.where(_chosen(batch, probability, generator), quantize(waves * gain), waves)


def augment(waves: torch.Tensor, noise: torch.Tensor, config: AugmentConfig,
            generator: torch.Generator) -> torch.Tensor:
    """Speed, time shift, a neighbouring word's edge, background noise, gain, then the microphone effects
    (clipping, band, quiet level)."""
    if config.speed != (1.0, 1.0):  # skipped when off, so runs without it draw the same random numbers as before
        waves = change_speed(waves, config.speed, generator)
    waves = time_shift(waves, int(config.shift_seconds * SAMPLE_RATE), generator)
    if config.neighbour_probability > 0:  # skipped when off, for the same reason as the speed change
        waves = add_neighbours(waves, config.neighbour_offset, config.neighbour_probability, generator)
    waves = add_noise(waves, noise, config.snr_db, config.noise_probability, generator)
    waves = random_gain(waves, config.gain_db, generator)
    if config.clip_probability > 0:  # each effect is skipped when off, for the same reason as the speed change
        waves = random_clipping(waves, config.clip_drive, config.clip_probability, generator)
    if config.band_probability > 0:
        waves = random_band(waves, config.band_low_hz, config.band_high_hz, config.band_probability, generator)
    if config.quiet_probability > 0:
        waves = random_quiet(waves, config.quiet_db, config.quiet_probability, generator)
    return waves


# Degradations of real microphones and lines, for benchmarks/robustness.py: name -> waves [batch, time] -> same.
CONDITIONS = {
    "clean": lambda waves: waves,
    "clipping x4": lambda waves: clip_peaks(waves, 4.0),
    "clipping x8": lambda waves: clip_peaks(waves, 8.0),
    "telephone band (300-3400 Hz)": lambda waves: band_pass(waves, 300.0, 3400.0),
    "white noise at 10 dB SNR": lambda waves: add_white_noise(waves, 10.0),
    "20x quieter": lambda waves: quantize(waves / 20),
}


def add_white_noise(waves: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    """Add Gaussian white noise at ``snr_db`` relative to each clip's power (reproducible with ``seed``)."""
    noise = torch.randn(waves.shape, generator=torch.Generator().manual_seed(seed)).to(waves.device)
    power = waves.pow(2).mean(1, keepdim=True)
    return waves + noise * (power / 10 ** (snr_db / 10)).sqrt()
