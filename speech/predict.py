"""Prediction from one recording: what the app's live page calls.

    predictor = Predictor.from_checkpoint("checkpoints/mel.pt")
    result = predictor.predict(load_audio("clip.wav").waveform)   # float32 [time], mono, 16 kHz
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from speech.audio import AudioError, model_window
from speech.features import FeatureConfig, Featurizer
from speech.model import load_checkpoint, model_from_checkpoint

LOW_CONFIDENCE = 0.5  # below this top probability the app says it is not sure


@dataclass
class Prediction:
    """probabilities: float32 ``[n_classes]`` in ``classes`` order; features: the model's input
    ``[channels, n_bins, frames]``; window: the 1 s float32 ``[16000]`` clip the model heard, taken
    from the input at ``window_start`` (samples at 16 kHz)."""

    classes: list[str]
    variant: str
    probabilities: torch.Tensor
    features: torch.Tensor
    window: torch.Tensor
    window_start: int

    @property
    def word(self) -> str:
        return self.classes[int(self.probabilities.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        values, indices = self.probabilities.topk(min(k, len(self.classes)))
        return [(self.classes[int(i)], float(v)) for v, i in zip(values, indices)]

    def feature_image(self) -> torch.Tensor:
        """``[n_bins, frames]`` to display what the model saw: the log power (baseline, mel) or, for
        complex, the compressed magnitude sqrt(real^2 + imaginary^2)."""
        if self.variant == "complex":
            return self.features.pow(2).sum(0).sqrt()
        return self.features[0]


class Predictor:
    """A loaded checkpoint, ready to classify clips on the CPU."""

    def __init__(self, model: torch.nn.Module, features: FeatureConfig, classes: list[str], card: dict | None):
        self.model = model.eval()
        self.features = features
        self.featurizer = Featurizer(features)
        self.classes = classes
        self.card = card or {}

    @classmethod
    def from_checkpoint(cls, source: str | Path | bytes, expect_variant: str | None = None,
                        name: str | None = None) -> "Predictor":
        """From a checkpoint file or an uploaded one's bytes (``name`` for messages), loaded with
        ``weights_only=True``. Raises CheckpointError for a missing, corrupt, foreign or mismatched file."""
        payload = load_checkpoint(source, expect_variant, name)
        model, features = model_from_checkpoint(payload)
        return cls(model, features, payload["classes"], payload.get("card"))

    @property
    def variant(self) -> str:
        return self.features.variant

    @torch.inference_mode()
    def predict(self, waveform: torch.Tensor) -> Prediction:
        """Classify what the model hears of ``waveform`` (float32 ``[time]``, mono, 16 kHz, as
        :func:`speech.audio.load_audio` returns it): its :func:`speech.audio.model_window`."""
        if waveform.dim() != 1 or waveform.numel() == 0:
            raise AudioError(f"Expected a mono recording with samples, got a tensor of shape {tuple(waveform.shape)}.")
        window, start = model_window(waveform.float())
        features = self.featurizer(window.unsqueeze(0))
        probabilities = self.model(features).softmax(1)[0]
        return Prediction(self.classes, self.variant, probabilities, features[0], window, start)
