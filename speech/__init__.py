"""Speech Commands Lab core: audio loading, data, features, model, training, evaluation, plots.

Conventions used throughout: a *waveform* is a float32 tensor of shape ``[time]`` (one clip)
or ``[batch, time]`` (a batch), mono, at :data:`speech.audio.SAMPLE_RATE` (16 kHz), with
amplitudes in [-1, 1].
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"        # bundled clips: examples/<word>/<voice>_nohash_0.flac
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"  # shipped models: <variant>.pt with .log.csv, .card.json, ...
