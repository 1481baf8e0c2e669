"""Evaluation: accuracy, macro accuracy, per-word accuracy, confusion, most confused pairs.

    python -m speech.evaluate --checkpoint checkpoints/mel.pt --data ../shared/speech_commands_real [--json]

DIR is any ``<word>/*`` tree; folders that are not classes of the checkpoint are ignored; each clip is heard
as in training (:func:`speech.audio.model_window`). With ``--json`` stdout is exactly one JSON object.

Validation inside ``speech.train`` runs :func:`predict_batches` too, so both give the same numbers.
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

from speech.audio import from_int16
from speech.data import Clip, folder_clips, labels_tensor, load_waveforms
from speech.model import CheckpointError
from speech.predict import Predictor

BATCH_SIZE = 128


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
def predict_batches(model: nn.Module, featurizer: nn.Module, waves: torch.Tensor, batch_size: int = BATCH_SIZE,
                    device: torch.device | str = "cpu",
                    progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Logits float32 ``[n, n_classes]`` for int16 or float waveforms ``[n, 16000]``, in eval mode and fp32
    (training's validation and evaluation both call this, so their figures agree)."""
    model.eval()
    outputs = []
    for start in tqdm(range(0, len(waves), batch_size), desc="evaluating", unit="batch", leave=False,
                      file=sys.stderr, disable=len(waves) <= batch_size):
        batch = from_int16(waves[start:start + batch_size]).to(device)
        outputs.append(model(featurizer(batch)).float())
        if progress is not None:
            progress(min(start + batch_size, len(waves)), len(waves))
    return torch.cat(outputs) if outputs else torch.zeros(0, 0, device=device)


def evaluate_waves(predictor: Predictor, waves: torch.Tensor, targets: torch.Tensor,
                   progress: Optional[Callable[[int, int], None]] = None) -> tuple[Report, torch.Tensor]:
    """Report and predicted class indices int64 ``[n]`` for waveforms ``[n, 16000]`` with ``targets [n]``
    (indices into ``predictor.classes``)."""
    predictions = predict_batches(predictor.model, predictor.featurizer, waves, progress=progress).argmax(1)
    confusion = confusion_matrix(targets, predictions, len(predictor.classes))
    return report_from_confusion(confusion, predictor.classes), predictions


def evaluate_clips(predictor: Predictor, clips: Sequence[Clip],
                   progress: Optional[Callable[[int, int], None]] = None) -> tuple[Report, torch.Tensor]:
    """Decode ``clips`` (words among ``predictor.classes``) and evaluate them: (report, predictions ``[n]``)."""
    waves = load_waveforms(clips, progress=progress)
    return evaluate_waves(predictor, waves, labels_tensor(clips, predictor.classes))


def evaluate_folder(checkpoint: str, data: str) -> Report:
    """Evaluate a checkpoint on a ``<word>/*`` tree. Raises CheckpointError, FileNotFoundError, or
    ValueError when the tree has no clip of the checkpoint's words."""
    predictor = Predictor.from_checkpoint(checkpoint)
    clips = folder_clips(data, predictor.classes)
    if not clips:
        raise ValueError(f"No clips of the model's words under {data} (expected <word>/<file>.wav|flac…).")
    return evaluate_clips(predictor, clips)[0]


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
    lines += [f"  {c:>{width}s} " + " ".join(f"{v:3d}" for v in row)
              for c, row in zip(report.classes, report.confusion)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="a <word>/* folder of clips")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    args = parser.parse_args(argv)
    try:
        report = evaluate_folder(args.checkpoint, args.data)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict()) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
