"""Speech Commands Lab core: audio loading, data, features, model, training, evaluation, plots.

Conventions used throughout: a *waveform* is a float32 tensor of shape ``[time]`` (one clip)
or ``[batch, time]`` (a batch), mono, at :data:`speech.audio.SAMPLE_RATE` (16 kHz), with
amplitudes in [-1, 1].
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"        # bundled clips: examples/<word>/<voice>_nohash_0.flac
SHIPPED_CHECKPOINTS = REPO_ROOT / "checkpoints"  # <variant>.pt beside .log.csv, .lr_find.csv, .card.json


def checkpoints_dir() -> Path:
    """Where the app looks for checkpoints: $SPEECH_LAB_CHECKPOINTS (your own runs) or the shipped ones."""
    return Path(os.environ.get("SPEECH_LAB_CHECKPOINTS", SHIPPED_CHECKPOINTS))


def checkpoint_files(folder: Path | None = None) -> dict[str, Path]:
    """name -> checkpoint file in ``folder`` (default: :func:`checkpoints_dir`), the book's three variants
    first, then any others (e.g. ``tcresnet``) by name; resumable ``*.last.pt`` states are left out."""
    folder = checkpoints_dir() if folder is None else folder
    found = {p.stem: p for p in sorted(folder.glob("*.pt")) if not p.name.endswith(".last.pt")}
    order = ["baseline", "mel", "complex"]
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0])))


def model_card(checkpoint: Path) -> dict:
    """The model card (``NAME.card.json``) beside a checkpoint; empty when missing or unreadable."""
    try:
        return json.loads(checkpoint.with_suffix(".card.json").read_text())
    except (OSError, ValueError):
        return {}


def best_checkpoint(checkpoints: dict[str, Path]) -> str | None:
    """The name whose model card reports the highest validation macro accuracy (None without cards)."""
    scored = {name: model_card(path).get("validation", {}).get("macro_accuracy") for name, path in checkpoints.items()}
    scored = {name: score for name, score in scored.items() if isinstance(score, (int, float))}
    return max(scored, key=scored.get) if scored else None
