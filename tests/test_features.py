import numpy as np
import pytest
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from speech.explore import (
    bin_frequencies,
    dft,
    fft_size,
    filter_bank,
    filter_bank_check,
    frame_times,
    inverse_dft_error,
    mel_centres,
    mel_spectrogram,
    mfcc,
    resolution,
    spectrogram,
    sum_of_sines,
)
from speech.features import FeatureConfig, Featurizer

SR = 16_000


@pytest.mark.parametrize("variant,shape", [("baseline", (1, 257, 101)), ("mel", (1, 128, 101)),
                                           ("complex", (2, 257, 101))])
def test_book_shapes_batched(variant, shape):
    features = Featurizer(FeatureConfig(variant=variant))(torch.randn(4, SR) * 0.1)
    assert features.shape == (4, *shape) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert Featurizer(FeatureConfig(variant=variant))(torch.randn(SR) * 0.1).shape == (1, *shape)


def test_baseline_is_log_power_of_a_numpy_stft():
    config = FeatureConfig(normalized=False)
    wave = torch.randn(SR, dtype=torch.float64).float() * 0.1
    ours = spectrogram(wave, config)
    # numpy reference: centred (reflect-padded) frames, periodic Hann of 480 zero-padded to 512, |rfft|^2
    x = np.pad(wave.numpy().astype(np.float64), 256, mode="reflect")
    n = np.arange(480)
    window = np.zeros(512)
    window[16:496] = 0.5 - 0.5 * np.cos(2 * np.pi * n / 480)
    frames = np.stack([x[i * 160:i * 160 + 512] * window for i in range(101)], axis=1)
    reference = np.abs(np.fft.rfft(frames, axis=0)) ** 2
    assert ours.shape == reference.shape == (257, 101)
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-3, atol=1e-4 * reference.max())
    log_features = Featurizer(FeatureConfig(normalized=False, standardize=False))(wave)[0, 0]
    np.testing.assert_allclose(log_features.exp().numpy(), reference, rtol=1e-3, atol=1e-3 * reference.max())


def test_complex_channels_keep_the_phase():
    config = FeatureConfig(variant="complex", standardize=False)
    wave = torch.randn(SR) * 0.1
    features = Featurizer(config)(wave)[0]
    stft = T.Spectrogram(n_fft=512, win_length=480, hop_length=160, power=None, normalized=True)(wave)
    angle = torch.atan2(features[1], features[0])
    assert torch.allclose(angle[1:-1], stft.angle()[1:-1], atol=1e-3)  # skip DC/Nyquist rows (phase 0 or pi)
    assert torch.allclose(features.pow(2).sum(0).sqrt(), stft.abs() ** 0.3, rtol=1e-3, atol=1e-4)


def test_filter_bank_equals_torchaudio_and_mel_matches():
    config = FeatureConfig(variant="mel", n_mels=16, f_min=50.0, f_max=7000.0)
    bank = filter_bank(config)
    assert bank.shape == (257, 16)
    assert torch.equal(bank, AF.melscale_fbanks(257, 50.0, 7000.0, 16, SR))
    # each filter peaks at its centre frequency (within one 31.25 Hz bin)
    peaks = bin_frequencies(config)[bank.argmax(0)]
    assert torch.allclose(peaks, mel_centres(config), atol=SR / 512)
    wave = sum_of_sines([300.0, 2000.0], [1.0, 0.5], SR)
    assert filter_bank_check(wave, config) < 1e-5


def test_dft_peaks_land_on_the_sines():
    wave = sum_of_sines([220.0, 1250.0], [1.0, 0.5], SR)
    spectrum = dft(wave, SR)
    assert spectrum.frequencies[-1] == SR / 2 and spectrum.frequencies.numel() == SR // 2 + 1
    top = spectrum.frequencies[spectrum.magnitude.topk(2).indices].sort().values
    assert top.tolist() == [220.0, 1250.0]
    assert inverse_dft_error(wave) < 1e-6


def test_window_size_changes_shape_and_resolution():
    wave = torch.randn(SR) * 0.1
    short = FeatureConfig(win_length=128, hop_length=32, n_fft=128)
    long = FeatureConfig(win_length=2048, hop_length=512, n_fft=2048)
    assert spectrogram(wave, short).shape == (65, 501)
    assert spectrogram(wave, long).shape == (1025, 32)
    numbers = resolution(short)
    assert (numbers.window_ms, numbers.hop_ms, numbers.frequency_hz, numbers.bin_spacing_hz) == (8.0, 2.0, 125.0, 125.0)
    assert numbers.main_lobe_hz == 500.0  # Hann: 4 bins of sample rate / window
    assert resolution(long).bin_spacing_hz == pytest.approx(7.8125)
    padded = FeatureConfig(win_length=64, hop_length=16, n_fft=fft_size(64, 4))
    assert padded.n_fft == 256 and resolution(padded).frequency_hz == 250.0
    assert resolution(padded).bin_spacing_hz == 62.5
    assert fft_size(480) == 512 and fft_size(2048) == 2048
    assert frame_times(101, FeatureConfig())[-1] == pytest.approx(1.0)


def test_mfcc_shape():
    assert mfcc(torch.randn(SR) * 0.1, FeatureConfig(variant="mel", n_mels=40), 13).shape == (13, 101)


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="variant"):
        FeatureConfig(variant="wavelet")
    with pytest.raises(ValueError, match="n_fft"):
        FeatureConfig(win_length=1024, n_fft=512)
    with pytest.raises(ValueError, match="top_db"):
        FeatureConfig(variant="complex", top_db=45.0)
    with pytest.raises(ValueError, match="must rise"):
        FeatureConfig(variant="mel", f_min=3400.0, f_max=300.0)
    with pytest.raises(ValueError, match="must rise"):
        FeatureConfig(variant="mel", f_max=9000.0)
    with pytest.raises(ValueError, match="has none"):
        FeatureConfig(variant="baseline", f_min=300.0)


@pytest.mark.parametrize("variant", ["baseline", "mel", "complex"])
def test_standardized_features_ignore_the_recording_level(variant):
    wave = torch.randn(SR) * 0.1
    featurizer = Featurizer(FeatureConfig(variant=variant))
    quiet, loud = featurizer(wave * 0.3), featurizer(wave)
    # log variants: a gain is an offset except near the log floor, so agreement is close, not exact
    assert float((quiet - loud).abs().mean()) < (0.1 if variant != "complex" else 1e-4)
    if variant != "complex":
        assert abs(float(loud.mean())) < 1e-4 and float(loud.std()) == pytest.approx(1.0, abs=1e-3)


def test_top_db_floors_each_clip_at_its_own_peak():
    """A removed band sits top_db below the clip's peak instead of at log(0), whatever else is in the batch."""
    config = FeatureConfig(variant="mel", n_mels=64, standardize=False, top_db=45.0)
    speech_like = torch.randn(SR, generator=torch.Generator().manual_seed(0)) * 0.1
    phone_line = torch.fft.irfft(torch.fft.rfft(speech_like) * (torch.fft.rfftfreq(SR, 1 / SR) < 3400), n=SR)
    floored = Featurizer(config)(torch.stack([phone_line, phone_line * 0.1]))  # [2, 1, 64, 101] in dB
    unfloored = 10 * torch.log10(mel_spectrogram(phone_line, config).clamp_min(1e-10))  # [64, 101]
    peak = float(unfloored.max())
    assert torch.allclose(floored[0, 0], unfloored.clamp_min(peak - 45.0), atol=1e-3)
    assert torch.allclose(floored[1], floored[0] - 20.0, atol=1e-2)  # 0.1 in amplitude: its own peak, 20 dB down
    # the top band, far above the line's 3400 Hz, is the floor (but for the two frames at each edge, which hear the
    # wrap-around of the band-limited noise)
    top_band = floored[0, 0, -1, 2:-2]
    assert float(mel_centres(config)[-1]) > 3400 and torch.allclose(top_band, torch.full_like(top_band, peak - 45.0))
