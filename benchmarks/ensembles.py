"""Would averaging models beat the best one? Each checkpoint and every group of them, on the validation speakers.

    .venv/bin/python benchmarks/ensembles.py --checkpoint A.pt B.pt [C.pt ...] [--data ../shared/speech_commands_real]

The clips are the speakers that training holds out for validation (the same split as ``speech.train``). Each
checkpoint's probabilities come from the same ``evaluate.predict_batches`` as ``speech.evaluate``; a group
predicts the word of the mean of its members' probabilities. Printed: accuracy and macro accuracy of each
checkpoint, then the lowest and highest of every group size, and the best group, so a lucky pick is visible as
such. All checkpoints must have the same classes.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech.data import VALIDATION_PERCENT, labels_tensor, load_waveforms, speaker_split  # noqa: E402
from speech.evaluate import confusion_matrix, predict_batches, report_from_confusion  # noqa: E402
from speech.model import CheckpointError  # noqa: E402
from speech.predict import Predictor  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", nargs="+", required=True, type=Path)
    parser.add_argument("--data", default="../shared/speech_commands_real")
    args = parser.parse_args(argv)
    try:
        predictors = [Predictor.from_checkpoint(path) for path in args.checkpoint]
        clips = speaker_split(args.data, VALIDATION_PERCENT)[1]
    except (CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    classes = predictors[0].classes
    if any(p.classes != classes for p in predictors):
        print("error: the checkpoints have different classes; an ensemble averages the same classes", file=sys.stderr)
        return 2
    waves, targets = load_waveforms(clips, desc="validation clips"), labels_tensor(clips, classes)
    probabilities = [predict_batches(p.model, p.featurizer, waves).softmax(1) for p in predictors]

    def scores(members: tuple[int, ...]) -> tuple[float, float]:
        predicted = torch.stack([probabilities[i] for i in members]).mean(0).argmax(1)
        report = report_from_confusion(confusion_matrix(targets, predicted, len(classes)), classes)
        return report.accuracy, report.macro_accuracy

    names = [str(path) for path in args.checkpoint]
    print(f"{len(clips)} validation clips from {args.data}\n\n{'accuracy':>8s} {'macro':>6s}  checkpoint")
    for i, name in enumerate(names):
        print("{:8.3f} {:6.3f}  ".format(*scores((i,))) + name)
    for size in range(2, len(names) + 1):
        groups = {members: scores(members) for members in itertools.combinations(range(len(names)), size)}
        macros = sorted(macro for _, macro in groups.values())
        best = max(groups, key=lambda members: groups[members][1])
        print(f"\ngroups of {size} ({len(groups)}): macro {macros[0]:.3f} to {macros[-1]:.3f}; best "
              f"{groups[best][0]:.3f} / {groups[best][1]:.3f}: " + " + ".join(names[i] for i in best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
