import json
import subprocess
import sys

import pytest
import torch

from speech import REPO_ROOT
from speech.data import speaker_split
from speech.evaluate import confusion_matrix, evaluate_clips, evaluate_folder, main, report_from_confusion
from speech.model import load_checkpoint
from speech.predict import Predictor

CLASSES = ["a", "b", "c"]


def test_confusion_and_macro_accuracy():
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    predictions = torch.tensor([0, 0, 0, 1, 1, 0, 2])
    confusion = confusion_matrix(targets, predictions, 3)
    assert confusion.tolist() == [[3, 1, 0], [1, 1, 0], [0, 0, 1]]
    report = report_from_confusion(confusion, CLASSES)
    assert report.accuracy == pytest.approx(5 / 7)
    assert report.macro_accuracy == pytest.approx((0.75 + 0.5 + 1) / 3)
    assert report.per_class == {"a": 0.75, "b": 0.5, "c": 1.0}
    assert {(p["target"], p["prediction"], p["count"]) for p in report.most_confused} == {("a", "b", 1), ("b", "a", 1)}


def test_words_without_clips_do_not_count_in_macro():
    report = report_from_confusion(torch.tensor([[2, 0, 0], [0, 0, 0], [1, 0, 1]]), CLASSES)
    assert report.per_class["b"] is None and report.macro_accuracy == pytest.approx(0.75)


def test_cli_json_on_a_tiny_tree(trained_checkpoint, tiny_tree):
    result = subprocess.run([sys.executable, "-m", "speech.evaluate", "--checkpoint", str(trained_checkpoint),
                             "--data", str(tiny_tree), "--json"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert {"accuracy", "macro_accuracy", "per_class", "confusion", "classes", "n"} <= set(report)
    assert report["n"] == 48  # 3 words x 8 speakers x 2; backward and _background_noise_ ignored
    assert len(report["confusion"]) == 30 and all(len(row) == 30 for row in report["confusion"])
    assert sum(map(sum, report["confusion"])) == 48
    assert set(k for k, v in report["per_class"].items() if v is not None) == {"yes", "no", "up"}
    assert evaluate_folder(str(trained_checkpoint), str(tiny_tree)).n == 48


def test_cli_text_and_errors(trained_checkpoint, tiny_tree, tmp_path, capsys):
    assert main(["--checkpoint", str(trained_checkpoint), "--data", str(tiny_tree)]) == 0
    out = capsys.readouterr().out
    assert "macro accuracy" in out and "confusion matrix" in out
    assert main(["--checkpoint", str(tmp_path / "none.pt"), "--data", str(tiny_tree)]) == 2
    assert "No checkpoint" in capsys.readouterr().err
    assert main(["--checkpoint", str(trained_checkpoint), "--data", str(tmp_path)]) == 2
    assert "No clips" in capsys.readouterr().err


def test_validation_in_training_and_evaluate_agree(trained_checkpoint):
    """The card's validation figures (computed inside training) equal speech.evaluate on the same speakers."""
    card = load_checkpoint(trained_checkpoint)["card"]["validation"]
    validation = speaker_split(trained_checkpoint.parent.parent / "clips", 30)[1]
    report, _ = evaluate_clips(Predictor.from_checkpoint(trained_checkpoint), validation)
    assert report.n == card["n"] == len(validation)
    assert report.per_class == pytest.approx(card["per_class"]) and report.accuracy == pytest.approx(card["accuracy"])
    assert report.accuracy > 0.5  # the tiny model has learned something, so the comparison means something
