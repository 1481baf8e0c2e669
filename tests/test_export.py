"""ONNX export: every shipped checkpoint runs in onnxruntime as it runs in torch, features included."""
import json

import numpy as np
import pytest
import torch

from speech import EXAMPLES_DIR, SHIPPED_CHECKPOINTS
from speech.catalog import checkpoint_files
from speech.data import read_clip
from speech.export import OnnxClassifier, WaveformClassifier, export_onnx, main
from speech.predict import Predictor

CHECKPOINTS = checkpoint_files(SHIPPED_CHECKPOINTS)


@pytest.fixture(scope="module")
def real_clips() -> torch.Tensor:
    """float32 [12, 16000]: bundled examples of several words and voices."""
    paths = sorted(EXAMPLES_DIR.glob("*/flite-*_nohash_0.flac"))[::10]
    return torch.stack([read_clip(p) for p in paths])


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_onnxruntime_equals_torch_on_real_clips(name, real_clips, tmp_path):
    out = export_onnx(CHECKPOINTS[name], tmp_path / f"{name}.onnx")
    assert not list(tmp_path.glob("*.data")), "the weights must be inside the one file"
    exported = OnnxClassifier(out)
    predictor = Predictor.from_checkpoint(CHECKPOINTS[name])
    with torch.inference_mode():
        expected = WaveformClassifier(predictor)(real_clips).numpy()
    got = exported.probabilities(real_clips)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert exported.classes == predictor.classes and exported.metadata["variant"] == predictor.variant
    assert exported.probabilities(real_clips[:1]).shape == (1, len(predictor.classes))  # any batch size
    assert "CC BY 4.0" in exported.metadata["credit"]


def test_cli_writes_a_file_and_rejects_a_foreign_one(tmp_path, capsys):
    assert main([str(CHECKPOINTS["tcresnet"]), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "probabilities of 30 classes" in capsys.readouterr().out
    assert json.loads(OnnxClassifier(tmp_path / "m.onnx").metadata["classes"])[0] == "bed"
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    assert main([str(foreign), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err.startswith("error: ") and not (tmp_path / "x.onnx").exists()
