"""The book's CNN and its checkpoints.

Input: features float32 ``[batch, channels, n_bins, frames]`` (see :mod:`speech.features`).
Output: logits float32 ``[batch, n_classes]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from speech.features import FeatureConfig

CHECKPOINT_FORMAT = "speech-commands-lab/1"


def conv_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
    if pool:
        layers += [nn.MaxPool2d(2), nn.Dropout2d(0.2)]
    return nn.Sequential(*layers)


class SpeechCNN(nn.Module):
    """Five 3x3 conv blocks (32-64-128-256-512; batch norm, ReLU; max-pool 2 and dropout2d 0.2 after
    the first four), adaptive average pool to 1x1, classifier 512-512 (batch norm, ReLU, dropout 0.5)
    to ``n_classes``. Works for any input size and for a batch of one."""

    def __init__(self, in_channels: int = 1, n_classes: int = 30):
        super().__init__()
        widths = [in_channels, 32, 64, 128, 256, 512]
        self.features = nn.Sequential(*[conv_block(widths[i], widths[i + 1], pool=i < 4) for i in range(5)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why."""


def save_checkpoint(path: str | Path, model: nn.Module, features: FeatureConfig, classes: Sequence[str],
                    **extra) -> None:
    """Write weights plus everything needed to use them; ``extra`` holds plain values (e.g. training state)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "variant": features.variant, "features": features.to_dict(),
               "classes": list(classes), "sample_rate": features.sample_rate,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a broken checkpoint


def load_checkpoint(path: str | Path, expect_variant: str | None = None) -> dict:
    """Read a checkpoint safely (``weights_only=True``) and check it; raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path.name} is not a readable checkpoint ({type(error).__name__}); "
                              "it may be corrupt or truncated. Re-train or restore it.") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path.name} is not a Speech Commands Lab checkpoint.")
    if expect_variant is not None and payload["variant"] != expect_variant:
        raise CheckpointError(f"{path.name} holds the {payload['variant']!r} variant, "
                              f"not {expect_variant!r}.")
    return payload


def model_from_checkpoint(payload: dict) -> tuple[SpeechCNN, FeatureConfig]:
    """Build the model and feature config a checkpoint describes; raises CheckpointError on a mismatch."""
    features = FeatureConfig(**payload["features"])
    model = SpeechCNN(features.channels, len(payload["classes"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"The weights do not fit the {features.variant!r} model: "
                              f"{str(error).splitlines()[0]}") from None
    return model.eval(), features
