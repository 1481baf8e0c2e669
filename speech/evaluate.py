"""Evaluation: accuracy, macro accuracy, per-word accuracy, confusion, most confused pairs.

    python -m speech.evaluate --checkpoint checkpoints/mel.pt --data ../shared/speech_commands_real [--json]

DIR is any ``<word>/*`` tree; folders that are not classes of the checkpoint are ignored, clips are
padded/cut to 1 s like in training. With ``--json`` stdout is exactly one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn
from tqdm import tqdm

from speech.features import Featurizer
from speech.data import folder_clips, labels_tensor, load_waveforms
from speech.model import CheckpointError, load_checkpoint, model_from_checkpoint


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, n_classes: int) -> torch.Tensor:
    """int64 ``[n_classes, n_classes]``: rows are targets, columns predictions."""
    flat = targets.long() * n_classes + predictions.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass
class Report:
    """Figures of one evaluation; ``confusion[t][p]`` counts clips of word t predicted as p."""

    classes: list[str]
    n: int
    accuracy: float
    macro_accuracy: float
    per_class: dict[str, Optional[float]]  # None for a word with no clip
    confusion: list[list[int]]
    most_confused: list[dict]  # [{"target", "prediction", "count"}], most frequent first

    def to_dict(self) -> dict:
        return asdict(self)


def report_from_confusion(confusion: torch.Tensor, classes: Sequence[str], top: int = 10) -> Report:
    """Summarise a confusion matrix. Macro accuracy averages over the words that have clips."""
    confusion = confusion.long()
    support = confusion.sum(1)
    correct = confusion.diag()
    n = int(support.sum())
    per_class = {c: (float(correct[i] / support[i]) if support[i] else None) for i, c in enumerate(classes)}
    present = [v for v in per_class.values() if v is not None]
    errors = confusion.clone().fill_diagonal_(0)
    order = errors.flatten().argsort(descending=True)[:top]
    k = len(classes)
    pairs = [{"target": classes[int(i) // k], "prediction": classes[int(i) % k], "count": int(errors.flatten()[i])}
             for i in order if errors.flatten()[i] > 0]
    return Report(list(classes), n, float(correct.sum() / n) if n else 0.0,
                  sum(present) / len(present) if present else 0.0, per_class, confusion.tolist(), pairs)


@torch.inference_mode()
def predict_batches(model: nn.Module, featurizer: nn.Module, waves: torch.Tensor, batch_size: int = 128,
                    device: torch.device | str = "cpu",
                    progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Logits float32 ``[n, n_classes]`` for int16 or float waveforms ``[n, 16000]``."""
    model.eval()
    outputs = []
    for start in tqdm(range(0, len(waves), batch_size), desc="evaluating", unit="batch", leave=False,
                      file=sys.stderr):
        batch = as_float(waves[start:start + batch_size]).to(device)
        outputs.append(model(featurizer(batch)).float().cpu())
        if progress is not None:
            progress(min(start + batch_size, len(waves)), len(waves))
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def as_float(waves: torch.Tensor) -> torch.Tensor:
    """int16 PCM -> float32 in [-1, 1]; float input is passed through."""
    return waves.float() / 32768 if waves.dtype == torch.int16 else waves.float()


def evaluate_waves(model: nn.Module, featurizer: nn.Module, waves: torch.Tensor, targets: torch.Tensor,
                   classes: Sequence[str], batch_size: int = 128,
                   progress: Optional[Callable[[int, int], None]] = None) -> tuple[Report, torch.Tensor]:
    """Report and predicted class indices int64 ``[n]`` for waveforms ``[n, 16000]`` with ``targets [n]``."""
    predictions = predict_batches(model, featurizer, waves, batch_size, progress=progress).argmax(1)
    return report_from_confusion(confusion_matrix(targets, predictions, len(classes)), classes), predictions


def evaluate_folder(checkpoint: str, data: str, batch_size: int = 128) -> Report:
    """Evaluate a checkpoint on a ``<word>/*`` tree. Raises CheckpointError, FileNotFoundError, or
    ValueError when the tree has no clip of the checkpoint's words."""
    payload = load_checkpoint(checkpoint)
    model, features = model_from_checkpoint(payload)
    classes = payload["classes"]
    clips = folder_clips(data, classes)
    if not clips:
        raise ValueError(f"No clips of the model's words under {data} (expected <word>/<file>.wav|flac…).")
    report, _ = evaluate_waves(model, Featurizer(features), load_waveforms(clips), labels_tensor(clips, classes),
                               classes, batch_size)
    return report


def format_report(report: Report) -> str:
    lines = [f"clips: {report.n}", f"accuracy: {report.accuracy:.4f}",
             f"macro accuracy: {report.macro_accuracy:.4f}", "", "per word:"]
    for word, acc in report.per_class.items():
        count = sum(report.confusion[report.classes.index(word)])
        lines.append(f"  {word:8s} {'-' if acc is None else f'{acc:.3f}':>6s}  (n={count})")
    lines += ["", "most confused (target -> prediction: count):"]
    lines += [f"  {p['target']} -> {p['prediction']}: {p['count']}" for p in report.most_confused]
    width = max(len(c) for c in report.classes)
    lines += ["", "confusion matrix (rows: targets, columns: predictions in class order):"]
    lines += [f"  {c:>{width}s} " + " ".join(f"{v:3d}" for v in row) for c, row in zip(report.classes, report.confusion)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="a <word>/* folder of clips")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    try:
        report = evaluate_folder(args.checkpoint, args.data, args.batch_size)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict()) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
