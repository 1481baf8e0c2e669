import math

import torch

from speech.augment import (
    CONDITIONS,
    AugmentConfig,
    add_neighbours,
    add_noise,
    augment,
    band_pass,
    change_speed,
    clip_peaks,
    random_clipping,
    random_gain,
    random_quiet,
    time_shift,
)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sine(freq: float, batch: int = 4, length: int = 16_000) -> torch.Tensor:
    t = torch.arange(length) / 16_000
    return torch.sin(2 * math.pi * freq * t).repeat(batch, 1)


def peak_hz(wave: torch.Tensor) -> float:
    return float(torch.fft.rfft(wave).abs().argmax()) * 16_000 / wave.numel()


def test_speed_one_is_the_identity():
    waves = torch.randn(3, 16_000)
    assert torch.equal(change_speed(waves, (1.0, 1.0), generator()), waves)


def test_speed_scales_the_pitch_and_keeps_the_centre():
    waves = sine(400.0, batch=2)
    faster = change_speed(waves, (1.25, 1.25), generator())
    slower = change_speed(waves, (0.8, 0.8), generator())
    assert abs(peak_hz(faster[0]) - 500.0) <= 2 and abs(peak_hz(slower[0][2000:14000]) - 320.0) <= 3
    assert torch.allclose(faster[:, 8000], waves[:, 8000], atol=0.05)  # stretched about the middle
    assert faster[:, :1500].abs().max() == 0 and faster[:, -1500:].abs().max() == 0  # ends zero-filled


def test_speed_factors_differ_per_clip_and_repeat_with_the_seed():
    waves = sine(400.0, batch=8)
    first = change_speed(waves, (0.9, 1.1), generator(3))
    assert not torch.allclose(first[0], first[1])
    assert torch.equal(first, change_speed(waves, (0.9, 1.1), generator(3)))


def test_time_shift_moves_and_zero_fills():
    waves = torch.arange(1, 101, dtype=torch.float32).repeat(16, 1)
    shifted = time_shift(waves, 10, generator())
    for row in shifted:
        nonzero = row[row != 0]
        assert torch.equal(nonzero, torch.arange(nonzero[0], nonzero[0] + nonzero.numel()))  # a contiguous run
        assert nonzero.numel() >= 90


def test_a_neighbouring_word_reaches_only_the_window_edge():
    """Each clip (value k, a 0.4 s word in the middle) hears the previous clip's word at its start or end only."""
    batch = 64
    waves = torch.zeros(batch, 16_000)
    waves[:, 4_800:11_200] = torch.arange(1, batch + 1, dtype=torch.float32).unsqueeze(1)
    mixed = add_neighbours(waves, (0.4, 0.8), 1.0, generator())
    assert torch.equal(mixed[:, 4_800:11_200], waves[:, 4_800:11_200])  # the clip's own word stays as it was
    heard = 0
    for k, row in enumerate(mixed):
        extra = (row - waves[k]).nonzero().flatten()
        if extra.numel():
            heard += 1
            assert set((row - waves[k]).unique().tolist()) == {0.0, float((k - 1) % batch + 1)}  # the previous clip
            assert extra.max() < 4_800 or extra.min() >= 11_200  # only one edge
    assert batch / 2 < heard < batch  # the farthest offsets leave a 0.4 s word outside the window
    assert torch.equal(add_neighbours(waves, (0.4, 0.8), 0.0, generator()), waves)


def test_noise_lands_at_the_asked_snr():
    waves = sine(300.0, batch=64)
    noise = torch.randn(48_000)
    noisy = add_noise(waves, noise, (10.0, 10.0), 1.0, generator())
    snr = 10 * torch.log10(waves.pow(2).mean(1) / (noisy - waves).pow(2).mean(1))
    assert torch.allclose(snr, torch.full_like(snr, 10.0), atol=0.01)
    assert torch.equal(add_noise(waves, noise, (10.0, 10.0), 0.0, generator()), waves)  # probability 0


def test_gain_stays_in_range_and_augment_keeps_the_shape():
    waves = 0.5 * sine(300.0, batch=32)
    gained = random_gain(waves, (-6.0, 6.0), generator())
    ratio = gained.abs().amax(1) / waves.abs().amax(1)
    assert (ratio > 0.49).all() and gained.abs().max() <= 1.0
    out = augment(waves, torch.randn(32_000), AugmentConfig(speed=(0.9, 1.1)), generator())
    assert out.shape == waves.shape and torch.isfinite(out).all()


def test_clipping_flattens_the_peaks_and_keeps_the_level_when_random():
    waves = 0.5 * sine(300.0, batch=8)
    assert clip_peaks(waves, 4.0).abs().max() == 1.0
    clipped = random_clipping(waves, (8.0, 8.0), 1.0, generator())
    assert torch.allclose(clipped.abs().amax(1), waves.abs().amax(1))  # scaled back to the clip's own peak
    assert (clipped.abs() >= 0.499).float().mean() > 0.5  # most samples now sit on the flat tops
    assert torch.equal(random_clipping(waves, (8.0, 8.0), 0.0, generator()), waves)


def test_band_pass_keeps_only_the_band():
    waves = sine(200.0, batch=1) + sine(1000.0, batch=1) + sine(5000.0, batch=1)
    kept = torch.fft.rfft(band_pass(waves, 300.0, 3400.0)[0]).abs()
    assert kept[1000] > 1000 and kept[200] < 1e-3 and kept[5000] < 1e-3  # 1 Hz bins for 1 s


def test_quiet_takes_are_requantised_to_16_bits():
    waves = 0.5 * sine(300.0, batch=2)
    quiet = random_quiet(waves, (-40.0, -40.0), 1.0, generator())
    steps = quiet * 32767
    assert torch.allclose(steps, steps.round(), atol=1e-3) and quiet.abs().max() < 0.006


def test_every_condition_keeps_the_shape_and_changes_the_clip():
    waves = 0.3 * sine(300.0, batch=3) + 0.05 * sine(5000.0, batch=3)
    for name, degrade in CONDITIONS.items():
        out = degrade(waves)
        assert out.shape == waves.shape and torch.isfinite(out).all(), name
        assert torch.equal(out, waves) == (name == "clean"), name
