"""Teaching new words: a custom model from takes the test makes, the 30 words kept, bad input, round trip."""
import numpy as np
import pytest
import soundfile as sf
import torch

from speech import EXAMPLES_DIR, SHIPPED_CHECKPOINTS
from speech.data import read_clip
from speech.predict import Predictor
from speech.teach import TeachError, main, save, teach

BASE = SHIPPED_CHECKPOINTS / "tcresnet.pt"
pytestmark = pytest.mark.skipif(not BASE.is_file(), reason="no shipped tcresnet")


def chirp(start_hz: float, end_hz: float, seed: int) -> torch.Tensor:
    """A 0.5 s sweep in a 1 s clip with a little noise and a random offset: one 'take' of a made-up word."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    sweep = 0.4 * np.sin(2 * np.pi * (start_hz * t + (end_hz - start_hz) * t ** 2))
    clip = np.zeros(16000)
    offset = rng.integers(1000, 7000)
    clip[offset:offset + 8000] = sweep * np.hanning(8000)
    return torch.tensor(clip + 0.005 * rng.standard_normal(16000), dtype=torch.float32)


WORDS = {"whoop": (300.0, 2500.0), "drop": (2500.0, 300.0)}


def takes(seeds) -> dict[str, torch.Tensor]:
    return {w: torch.stack([chirp(*hz, seed) for seed in seeds]) for w, hz in WORDS.items()}


@pytest.fixture(scope="module")
def taught():
    return teach(Predictor.from_checkpoint(BASE), takes(range(5)), seed=0)


def test_the_custom_model_recognises_new_takes_of_its_words(taught):
    assert taught.predictor.classes[-2:] == list(WORDS) and len(taught.predictor.classes) == 32
    for word, waves in takes(range(100, 104)).items():
        assert [taught.predictor.predict(w).word for w in waves] == [word] * 4
    assert taught.leave_one_out == 1.0


def test_the_30_words_survive(taught):
    base = Predictor.from_checkpoint(BASE)
    clips = [read_clip(p) for p in sorted(EXAMPLES_DIR.glob("*/flite-*_nohash_0.flac"))]
    same = sum(base.predict(c).word == taught.predictor.predict(c).word for c in clips)
    assert same >= 0.95 * len(clips)


def test_checkpoint_round_trip(taught, tmp_path):
    path = save(taught, tmp_path / "mine.pt")
    loaded = Predictor.from_checkpoint(path)  # weights_only=True inside
    clip = takes([7])["whoop"][0]
    assert loaded.classes == taught.predictor.classes
    assert torch.allclose(loaded.predict(clip).probabilities, taught.predictor.predict(clip).probabilities, atol=1e-6)


def test_a_name_that_is_already_a_word_is_refused():
    with pytest.raises(TeachError, match="already one of the model's words"):
        teach(Predictor.from_checkpoint(BASE), {"yes": takes([0])["whoop"]})


def test_cli_bad_inputs_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.wav").write_bytes(b"not audio")
    good = tmp_path / "good"
    good.mkdir()
    for i, wave in enumerate(takes(range(3))["whoop"]):
        sf.write(good / f"take{i}.wav", wave.numpy(), 16000)
    cases = [["--word", f"x={tmp_path / 'empty'}"], ["--word", f"x={tmp_path / 'junk'}"],
             ["--word", f"yes={good}"], ["--word", f"x={good}", "--base", str(good / "take0.wav")],
             ["--word", "nofolder"], ["--word", f"x={tmp_path / 'missing'}"]]
    for args in cases:
        assert main([*args, "--out", str(tmp_path / "out.pt")]) == 2, args
        assert capsys.readouterr().err.startswith("error: ")
    assert main(["--word", f"whoop={good}", "--shots", "2", "--only-new", "--out", str(tmp_path / "out.pt")]) == 0
    assert Predictor.from_checkpoint(tmp_path / "out.pt").classes == ["whoop"]
