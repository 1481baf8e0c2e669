import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.audio import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    AudioError,
    fix_length,
    from_int16,
    is_clipped,
    load_audio,
    model_window,
    to_int16,
    to_mono_16k,
    to_wav_bytes,
)
from tests.conftest import tone


def encode(data: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"),
                                         ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                         ("MP3", "MPEG_LAYER_III")])
def test_formats_decode_to_16k_mono_float32(fmt, subtype):
    loaded = load_audio(encode(tone(440.0), SAMPLE_RATE, fmt, subtype))
    assert loaded.waveform.dtype == torch.float32 and loaded.waveform.dim() == 1
    assert abs(loaded.waveform.numel() - SAMPLE_RATE) < 0.06 * SAMPLE_RATE  # lossy codecs add padding
    assert 0.3 < loaded.waveform.abs().max() < 0.7


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    left, right = tone(440.0, rate=44_100), tone(440.0, rate=44_100) * 0
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44_100)
    loaded = load_audio(path)
    assert (loaded.source_rate, loaded.source_channels) == (44_100, 2)
    assert loaded.waveform.numel() == SAMPLE_RATE
    assert math.isclose(float(loaded.waveform.abs().max()), 0.25, rel_tol=0.1)  # mean of the two channels
    spectrum = torch.fft.rfft(loaded.waveform).abs()
    assert int(spectrum.argmax()) == 440  # 1 Hz bins for a 1 s clip: the tone survived resampling


@pytest.mark.parametrize("data,message", [
    (b"", "Empty file"),
    (b"this is not audio at all" * 20, "Cannot read"),
])
def test_bad_bytes(data, message):
    with pytest.raises(AudioError, match=message):
        load_audio(data)


def test_truncated_flac_is_reported():
    data = encode(tone(440.0, seconds=2.0), SAMPLE_RATE, "FLAC", "PCM_16")
    with pytest.raises(AudioError, match="Corrupt file|Cannot read"):
        load_audio(data[: len(data) // 3] + b"\x00garbage" * 50)


def test_silence_tiny_long_and_nan():
    with pytest.raises(AudioError, match="Silent"):
        load_audio(encode(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE, "WAV"))
    with pytest.raises(AudioError, match="ms long"):
        load_audio(encode(tone(440.0, seconds=0.05), SAMPLE_RATE, "WAV"))
    with pytest.raises(AudioError, match="limit"):
        load_audio(encode(tone(440.0, seconds=3.0), SAMPLE_RATE, "WAV"), max_seconds=2.0)
    bad = tone(440.0)
    bad[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_audio(encode(bad, SAMPLE_RATE, "WAV", "FLOAT"))
    assert load_audio(encode(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE, "WAV"),
                      reject_silence=False).seconds == 1.0


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(AudioError, match="No such file"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="Empty file"):
        load_audio(tmp_path / "empty.wav")


def test_fix_length_pads_and_cuts():
    assert torch.equal(fix_length(torch.ones(10), 16)[10:], torch.zeros(6))
    assert fix_length(torch.ones(2, 20000)).shape == (2, CLIP_SAMPLES)


def test_loudest_window_finds_the_word():
    wave = torch.zeros(3 * SAMPLE_RATE)
    wave[int(1.7 * SAMPLE_RATE):int(2.2 * SAMPLE_RATE)] = 0.5
    window, start = model_window(wave)
    assert window.numel() == CLIP_SAMPLES
    assert start <= 1.7 * SAMPLE_RATE and start + CLIP_SAMPLES >= 2.2 * SAMPLE_RATE
    assert float(window.abs().sum()) == pytest.approx(0.5 * 0.5 * SAMPLE_RATE)
    short, start = model_window(torch.ones(100))
    assert start == 0 and short.numel() == CLIP_SAMPLES


def test_wav_bytes_round_trip():
    wave = torch.from_numpy(tone(440.0))
    loaded = load_audio(to_wav_bytes(wave))
    assert torch.allclose(loaded.waveform, wave, atol=1e-4)


def test_clipping_is_detected_and_a_pure_tone_is_not():
    loud = torch.from_numpy(tone(300.0, amplitude=0.5))
    assert not is_clipped(loud) and not is_clipped(torch.sin(torch.arange(16_000) / 5.0))
    assert is_clipped((loud * 8).clamp(-1, 1)) and is_clipped((loud * 4).clamp(-1, 1) * 0.7)  # even scaled after


def test_a_truncated_wav_is_used_and_marked():
    data = encode(tone(300.0, seconds=2.0), SAMPLE_RATE, "WAV", "PCM_16")
    whole, cut = load_audio(data), load_audio(data[:20_000], name="cut.wav")
    assert not whole.truncated and cut.truncated and cut.seconds < 1.0


def test_the_int16_pair_round_trips():
    wave = torch.linspace(-1, 1, 1001)
    assert to_int16(wave).dtype == torch.int16
    assert torch.allclose(from_int16(to_int16(wave)), wave, atol=2 / 32767)  # one step of 16-bit PCM


def test_to_mono_16k_averages_and_resamples():
    stereo = np.stack([tone(440.0, rate=44_100), np.zeros(44_100, dtype=np.float32)], axis=1)
    mono = to_mono_16k(stereo, 44_100)
    assert mono.shape == (16_000,) and mono.abs().max() == pytest.approx(0.25, abs=0.02)
