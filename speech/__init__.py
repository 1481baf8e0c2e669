"""Speech Commands Lab core: audio loading, data, features, models, checkpoints, training, evaluation, plots.

Conventions used throughout: a *waveform* is a float32 tensor of shape ``[time]`` (one clip)
or ``[batch, time]`` (a batch), mono, at :data:`speech.audio.SAMPLE_RATE` (16 kHz), with
amplitudes in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"        # bundled clips: examples/<word>/<voice>_nohash_0.flac
SHIPPED_CHECKPOINTS = REPO_ROOT / "checkpoints"  # NAME.pt beside .log.csv, .lr_find.csv, .card.json
