"""Teaching new words: a custom model from takes the test makes, the 30 words kept, bad input, round trip."""
import io

import pytest
import soundfile as sf
import torch

from speech import EXAMPLES_DIR, SHIPPED_CHECKPOINTS
from speech.audio import AudioError
from speech.data import read_clip
from speech.model import CheckpointError
from speech.predict import Predictor
from speech.teach import (
    MAX_TAKES,
    MAX_WORDS,
    MIN_TAKES,
    TakeBook,
    TeachError,
    as_bytes,
    fit_new_rows,
    imprint,
    main,
    save,
    teach,
)
from tests.conftest import chirp

BASE = SHIPPED_CHECKPOINTS / "tcresnet.pt"
pytestmark = pytest.mark.skipif(not BASE.is_file(), reason="no shipped tcresnet")


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


def wav(wave: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave.numpy(), 16000, format="WAV")
    return buffer.getvalue()


def test_take_book_keeps_each_upload_once_and_enforces_the_limits():
    book = TakeBook()
    with pytest.raises(TeachError, match="already one of"):
        book.add_word("yes", ["yes", "no"])
    book.add_word(" whoop ", ["yes", "no"])  # stray spaces are trimmed
    with pytest.raises(TeachError, match="already on the list"):
        book.add_word("whoop", ["yes"])
    data = [wav(w) for w in takes(range(MAX_TAKES + 1))["whoop"]]
    assert book.add_take("whoop", data[0], "a.wav") and not book.add_take("whoop", data[0], "a.wav")
    assert book.problems() == [f"'whoop' needs at least {MIN_TAKES} takes (1 so far)."]
    with pytest.raises(AudioError):
        book.add_take("whoop", b"not audio" * 50, "junk.wav")
    book.remove_take("whoop", 0)
    assert not book.add_take("whoop", data[0], "a.wav")  # still in its upload widget: it must not come back
    for i, d in enumerate(data[1:MAX_TAKES + 1]):
        book.add_take("whoop", d, f"{i}.wav")
    assert len(book.takes["whoop"]) == MAX_TAKES and book.problems() == []
    with pytest.raises(TeachError, match="remove one"):
        book.add_take("whoop", wav(chirp(100.0, 200.0, 99)), "extra.wav")
    assert book.waves()["whoop"].shape == (MAX_TAKES, 16000)
    for i in range(MAX_WORDS - 1):
        book.add_word(f"w{i}", [])
    with pytest.raises(TeachError, match=f"At most {MAX_WORDS}"):
        book.add_word("one_more", [])


def test_checkpoint_bytes_load_like_the_file_and_a_foreign_upload_is_refused(taught, tmp_path):
    loaded = Predictor.from_checkpoint(as_bytes(taught.predictor), name="mine.pt")
    assert loaded.classes == taught.predictor.classes
    clip = takes([8])["drop"][0]
    assert torch.allclose(loaded.predict(clip).probabilities, taught.predictor.predict(clip).probabilities, atol=1e-6)
    for data in (b"junk" * 100, as_bytes(taught.predictor)[:5000]):
        with pytest.raises(CheckpointError, match="mine.pt is not a readable checkpoint"):
            Predictor.from_checkpoint(data, name="mine.pt")
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    with pytest.raises(CheckpointError, match="not a Speech Commands Lab checkpoint"):
        Predictor.from_checkpoint(buffer.getvalue(), name="other.pt")


def test_the_map_places_the_takes_among_the_bundled_examples(taught):
    points = taught.map
    assert points.coordinates.shape == (len(points.words), 2) and points.highlighted == list(WORDS)
    assert points.words.count("whoop") == 5 and "yes" in points.words and 0 < points.variance_kept <= 1


def test_the_signature_tells_a_replaced_take_from_the_built_one():
    book = TakeBook()
    book.add_word("whoop", [])
    data = [wav(w) for w in takes(range(4))["whoop"]]
    for i, d in enumerate(data[:3]):
        book.add_take("whoop", d, f"{i}.wav")
    built = book.signature()
    book.remove_take("whoop", 1)
    book.add_take("whoop", data[3], "3.wav")  # as many takes as before, one of them new
    assert len(book.takes["whoop"]) == 3 and book.signature() != built


def test_weighting_the_takes_lets_the_new_row_take_more_of_the_base_words():
    torch.manual_seed(0)
    weight, bias = torch.eye(2, 4) * 3, torch.zeros(2)     # two base words along the first two axes
    takes = torch.randn(8, 4) * 0.5 + torch.tensor([1.0, 0.0, 0.5, 0.0])  # a new word close to the first base word
    base = torch.randn(64, 4) * 0.5 + torch.tensor([1.0, 0.0, 0.0, 0.0])
    embeddings = torch.cat([takes, base])
    targets = torch.cat([torch.full((8,), 2), torch.zeros(64, dtype=torch.long)])
    rows, biases = imprint(takes, torch.zeros(8, dtype=torch.long), 1, weight, bias)
    equal = fit_new_rows(weight, bias, rows, biases, embeddings, targets)
    assert all(torch.allclose(a, b) for a, b in zip(equal, fit_new_rows(weight, bias, rows, biases, embeddings,
                                                                         targets, weights=torch.full((72,), 2.0))))

    def taken(row_and_bias):  # the share of the base word's clips the new row wins
        row, new_bias = row_and_bias
        logits = base @ torch.cat([weight, row]).T + torch.cat([bias, new_bias])
        return float((logits.argmax(1) == 2).float().mean())

    favoured = fit_new_rows(weight, bias, rows, biases, embeddings, targets,
                            weights=torch.cat([torch.full((8,), 100.0), torch.ones(64)]))
    assert taken(equal) < 0.1 and taken(favoured) > 0.5
