"""Take any checkpoint out of the lab: one ONNX file with the feature extraction inside.

    python -m speech.export checkpoints/tcresnet.pt --onnx tcresnet.onnx

The file takes float32 waveforms ``[batch, 16000]`` (1 s at 16 kHz, mono, amplitudes in [-1, 1]) and returns
class probabilities ``[batch, classes]``; the class names are in its metadata (``classes``, a JSON list), so
elsewhere only onnxruntime is needed::

    session = onnxruntime.InferenceSession("tcresnet.onnx")
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    probabilities = session.run(None, {"waveform": clips})[0]

torch's ONNX exporter turns torchaudio's STFT into the ONNX ``STFT`` operator, so book variants (power, mel,
complex), tcresnet, the spotting model and custom models all export as they are; the tests check onnxruntime
against torch on real clips.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn

from speech.audio import CLIP_SAMPLES, SAMPLE_RATE
from speech.catalog import CREDIT
from speech.model import CheckpointError
from speech.predict import Predictor

OPSET = 18  # the first opset with a standard STFT and the exporter's default


class WaveformClassifier(nn.Module):
    """float32 waveforms ``[batch, 16000]`` at 16 kHz -> class probabilities ``[batch, classes]``: a checkpoint's
    Featurizer and model as one module, which is what the ONNX file holds."""

    def __init__(self, predictor: Predictor):
        super().__init__()
        self.featurizer, self.model = predictor.featurizer, predictor.model.eval()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.model(self.featurizer(waveform)).softmax(1)


def onnx_bytes(predictor: Predictor) -> bytes:
    """The ONNX file of ``predictor`` (input ``waveform``, output ``probabilities``, any batch size), with its
    classes, variant, architecture and the dataset's credit in the metadata."""
    with tempfile.TemporaryDirectory() as folder, _quiet_exporter():
        path = Path(folder) / "model.onnx"
        batch = torch.export.Dim("batch", min=1)
        torch.onnx.export(WaveformClassifier(predictor).eval(), (torch.zeros(2, CLIP_SAMPLES),), str(path),
                          input_names=["waveform"], output_names=["probabilities"], opset_version=OPSET,
                          dynamic_shapes={"waveform": {0: batch}}, dynamo=True, external_data=False)
        model = onnx.load(str(path))
    card = predictor.card
    onnx.helper.set_model_props(model, {
        "classes": json.dumps(list(predictor.classes)), "variant": predictor.variant,
        "arch": str(getattr(predictor.model, "arch", "")), "sample_rate": str(SAMPLE_RATE),
        "input": f"waveform: float32 [batch, {CLIP_SAMPLES}], mono, {SAMPLE_RATE} Hz, amplitudes in [-1, 1]",
        "output": "probabilities: float32 [batch, classes] in the order of 'classes'",
        "validation_macro_accuracy": str(card.get("validation", {}).get("macro_accuracy", "")),
        "credit": CREDIT})
    model.doc_string = "Speech Commands Lab keyword model with its feature extraction inside"
    return model.SerializeToString()


def export_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the ONNX file of a checkpoint (loaded safely, ``weights_only=True``); raises CheckpointError."""
    out = Path(out)
    data = onnx_bytes(Predictor.from_checkpoint(checkpoint))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


class OnnxClassifier:
    """An exported file run by onnxruntime: ``probabilities(waves)`` for float32 ``[batch, 16000]``."""

    def __init__(self, source: str | Path | bytes, threads: int = 0):
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                                    providers=["CPUExecutionProvider"])
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.classes = json.loads(self.metadata["classes"])

    def probabilities(self, waves: torch.Tensor | np.ndarray) -> np.ndarray:
        waves = waves.numpy() if isinstance(waves, torch.Tensor) else waves
        return self.session.run(None, {"waveform": np.ascontiguousarray(waves, dtype=np.float32)})[0]


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter reports every step and optional package it misses; a user only needs our one line."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="any checkpoint of the lab (.pt)")
    parser.add_argument("--onnx", required=True, help="the ONNX file to write")
    args = parser.parse_args(argv)
    try:
        out = export_onnx(args.checkpoint, args.onnx)
    except (CheckpointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    exported = OnnxClassifier(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): waveform float32 [batch, {CLIP_SAMPLES}] at "
          f"{SAMPLE_RATE} Hz -> probabilities of {len(exported.classes)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
