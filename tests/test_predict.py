import json

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.audio import AudioError, load_audio
from speech.predict import Predictor
from tests.conftest import TONES, tone


@pytest.fixture(scope="module")
def predictor(trained_checkpoint):
    return Predictor.from_checkpoint(trained_checkpoint)


@pytest.mark.parametrize("seconds,rate,channels", [(1.0, 16_000, 1), (1.0, 44_100, 2), (0.3, 16_000, 1),
                                                   (5.0, 8_000, 1)])
def test_odd_input_gives_a_distribution(predictor, tmp_path, seconds, rate, channels):
    wave = tone(300.0, seconds=seconds, rate=rate)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    sf.write(tmp_path / "clip.wav", data, rate)
    loaded = load_audio(tmp_path / "clip.wav")
    prediction = predictor.predict(loaded.waveform)
    assert prediction.probabilities.shape == (30,)
    assert float(prediction.probabilities.sum()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.features.shape == (1, 128, 101) and prediction.window.shape == (16_000,)
    assert prediction.word == "yes"  # the 300 Hz tone, at any rate, length and channel count
    assert [w for w, _ in prediction.top(3)] == [prediction.word] + [w for w, _ in prediction.top(3)][1:]
    assert prediction.top(3)[0][1] == pytest.approx(prediction.confidence)
    assert prediction.feature_image().shape == (128, 101)


@pytest.mark.parametrize("word", list(TONES))
def test_the_tiny_model_tells_its_tones_apart(predictor, word):
    """Tones it never saw (another seed, 3 % off in pitch) are classified as the word they stand for."""
    prediction = predictor.predict(torch.from_numpy(tone(TONES[word] * 1.03, seed=101)))
    assert prediction.word == word, prediction.top(3)
    assert prediction.confidence > 0.4


def test_only_mono_16k_recordings_are_accepted(predictor):
    stereo = torch.from_numpy(np.stack([tone(300.0)] * 2))
    with pytest.raises(AudioError, match="mono"):
        predictor.predict(stereo)
    with pytest.raises(AudioError):
        predictor.predict(torch.zeros(0))


def test_long_recording_uses_the_loudest_second(predictor):
    wave = torch.zeros(5 * 16_000)
    wave[3 * 16_000:int(3.5 * 16_000)] = torch.from_numpy(tone(300.0, seconds=0.5))
    prediction = predictor.predict(wave)
    assert 2.5 * 16_000 <= prediction.window_start <= 3 * 16_000


def test_cli_prints_each_clips_top_words_and_reports_bad_files_without_dropping_the_good(trained_checkpoint,
                                                                                        tmp_path, capsys):
    from speech.predict import main
    sf.write(tmp_path / "yes.wav", tone(TONES["yes"] * 1.03, seed=101), 16_000)
    sf.write(tmp_path / "long.flac", np.concatenate([np.zeros(48_000), tone(TONES["up"] * 1.03, seed=101)]), 16_000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    files = [str(tmp_path / name) for name in ("yes.wav", "broken.wav", "long.flac")]
    assert main([*files, "--checkpoint", str(trained_checkpoint), "--top", "2", "--json"]) == 2  # one bad file
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert [r["file"] for r in results] == [files[0], files[2]]
    assert [r["top"][0][0] for r in results] == ["yes", "up"] and all(len(r["top"]) == 2 for r in results)
    assert "broken.wav" in err and "long.flac lasts 4.0 s; the model heard its loudest second" in err
    assert main([files[0], "--checkpoint", str(trained_checkpoint)]) == 0
    assert capsys.readouterr().out.startswith(f"{files[0]}: yes ")
    assert main([files[0], "--checkpoint", files[1]]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert main([files[0], "--checkpoint", str(trained_checkpoint), "--top", "0"]) == 2
