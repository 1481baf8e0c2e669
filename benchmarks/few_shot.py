"""Few-shot teaching on real words no model was trained on: the five reserved words of the shared folder.

    .venv/bin/python benchmarks/few_shot.py [--data ../shared/speech_commands_real] [--base A.pt [B.pt ...]]

For K = 1, 3, 5, 10 takes per word and 5 seeds: the takes come from K speakers of each reserved word
(backward, follow, forward, learn, visual), the test clips from all its other speakers. Both ways of building
the new rows (``speech.teach``) are scored:
- imprint: each word's row is its takes' mean embedding direction;
- imprint + fit: then the new rows alone are trained against the augmented takes and the bundled examples.
Printed per K: the new-word accuracy in the full 35-way model (mean +- sd over seeds), and the 30-word macro
accuracy of the base and of the custom model on the validation speakers. Then the time ``teach`` takes for
5 words x 5 takes (leave-one-out check and warnings included) on this CPU. With several ``--base`` checkpoints
(default: the shipped tcresnet) each gets its table on the same takes, and the times are compared as ratios.

``--ceiling`` adds what no few-shot method on a base's embedding can beat by much: new rows fitted with half of
each reserved word's speakers as takes (about ten per word instead of K), against all the base's real training
clips of the 30 words instead of the bundled examples, the takes weighted to carry a given share of the loss,
and tested on the other half (3 seeds).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech.audio import from_int16  # noqa: E402
from speech.catalog import RESERVED_WORDS, checkpoints_dir  # noqa: E402
from speech.data import VALIDATION_PERCENT, folder_clips, load_waveforms, speaker_split  # noqa: E402
from speech.embedding import embed  # noqa: E402
from speech.evaluate import confusion_matrix, report_from_confusion  # noqa: E402
from speech.predict import Predictor  # noqa: E402
from speech.teach import base_examples, fit_new_rows, imprint, negative_embeddings, new_head, take_embeddings, teach  # noqa: E402


def split_takes(clips, word: str, shots: int, seed: int):
    """(take indices, test indices) into ``clips`` for ``word``: takes from ``shots`` speakers, one each."""
    speakers = sorted({c.speaker for c in clips if c.label == word})
    random.Random(f"{seed}-{word}").shuffle(speakers)
    chosen = set(speakers[:shots])
    takes = [i for i, c in enumerate(clips) if c.label == word and c.speaker in chosen]
    takes = [next(i for i in takes if clips[i].speaker == s) for s in speakers[:shots]]
    tests = [i for i, c in enumerate(clips) if c.label == word and c.speaker not in chosen]
    return takes, tests


def split_speakers(clips, word: str, seed: int):
    """(take indices, test indices) into ``clips`` for ``word``: all clips of half its speakers, and the rest."""
    speakers = sorted({c.speaker for c in clips if c.label == word})
    random.Random(f"{seed}-{word}").shuffle(speakers)
    chosen = set(speakers[:len(speakers) // 2])
    return ([i for i, c in enumerate(clips) if c.label == word and c.speaker in chosen],
            [i for i, c in enumerate(clips) if c.label == word and c.speaker not in chosen])


def mean_sd(values) -> str:
    return f"{statistics.mean(values):.3f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


@dataclass
class Scoring:
    """Scores new rows on one base: its last layer ``weight [30, d]`` and ``bias [30]``, the embeddings of the
    reserved words' clips and of the validation clips (with their class indices ``targets``)."""

    weight: torch.Tensor
    bias: torch.Tensor
    reserved: list
    reserved_embeddings: torch.Tensor
    validation_embeddings: torch.Tensor
    targets: torch.Tensor

    def macro(self, weight: torch.Tensor, bias: torch.Tensor) -> float:
        """The 30-word macro accuracy on the validation clips of a last layer with these rows."""
        predictions = (self.validation_embeddings @ weight.T + bias).argmax(1)
        classes = [str(k) for k in range(len(weight))]
        return report_from_confusion(confusion_matrix(self.targets, predictions, len(classes)), classes).macro_accuracy

    @cached_property
    def base_macro(self) -> float:
        """The base's own 30-word macro accuracy."""
        return self.macro(self.weight, self.bias)

    def score(self, splits: dict, rows: torch.Tensor, biases: torch.Tensor) -> tuple[float, float]:
        """(new-word accuracy on the test clips of ``splits`` in the model with the new ``rows``, its 30-word
        macro accuracy)."""
        weight, bias = torch.cat([self.weight, rows]), torch.cat([self.bias, biases])
        tests = [i for _, test in splits.values() for i in test]
        expected = torch.tensor([len(self.weight) + RESERVED_WORDS.index(self.reserved[i].label) for i in tests])
        guessed = (self.reserved_embeddings[tests] @ weight.T + bias).argmax(1)
        return float((guessed == expected).float().mean()), self.macro(weight, bias)

    def print_row(self, label: str, scores: list[tuple[float, float]]) -> None:
        """One table row: new-word accuracy and 30-word macro accuracy over seeds, and the drop from the base's."""
        accuracies, macros = zip(*scores)
        print(f"{label} {mean_sd(accuracies):>22s} {mean_sd(macros):>16s} "
              f"{self.base_macro - statistics.mean(macros):7.3f}")


def report_ceiling(base: Predictor, scoring: Scoring, training, training_waves, shares=(0.01, 0.05, 0.2, 1.0),
                   seeds: int = 3) -> None:
    """Print new-word accuracy and the 30-word drop for rows fitted on half of each reserved word's speakers
    against the base's real ``training`` clips, the takes carrying each of ``shares`` of the loss."""
    negatives = embed(base, training_waves)
    negative_labels = torch.tensor([base.classes.index(c.label) for c in training])
    print(f"\nceiling: half of each reserved word's speakers as takes, fitted against {len(training)} real training "
          f"clips, tested on the other half ({seeds} seeds)")
    print(f"{'takes share':>11s} {'new-word acc (35-way)':>22s} {'30-word macro':>16s} {'drop':>7s}")
    for share in shares:
        scores = []
        for seed in range(seeds):
            splits = {w: split_speakers(scoring.reserved, w, seed) for w in RESERVED_WORDS}
            takes = torch.cat([scoring.reserved_embeddings[t] for t, _ in splits.values()])
            labels = torch.cat([torch.full((len(t),), k) for k, (t, _) in enumerate(splits.values())])
            rows, biases = imprint(takes, labels, len(RESERVED_WORDS), scoring.weight, scoring.bias)
            weights = torch.cat([torch.full((len(takes),), share * len(negatives) / len(takes)),
                                 torch.ones(len(negatives))])
            scores.append(scoring.score(splits, *fit_new_rows(
                scoring.weight, scoring.bias, rows, biases, torch.cat([takes, negatives]),
                torch.cat([labels + len(scoring.weight), negative_labels]), weights=weights)))
        scoring.print_row(f"{share:11.2f}", scores)


def report_base(path: Path, reserved, reserved_waves, validation, validation_waves, shots: list[int],
                seeds: int, training=None, training_waves=None) -> float:
    """Print the K-shot table of one base checkpoint (and its ceiling, given the ``training`` clips); return the
    seconds ``teach`` took for 5 words x 5 takes."""
    base = Predictor.from_checkpoint(path)
    last = base.model.classifier[-1]
    scoring = Scoring(last.weight.detach(), last.bias.detach(), reserved, embed(base, reserved_waves),
                      embed(base, validation_waves), torch.tensor([base.classes.index(c.label) for c in validation]))
    examples = base_examples(base)  # read once; every fit is calibrated against them
    print(f"\nbase {path.name}; {len(reserved)} clips of {len(RESERVED_WORDS)} reserved words; "
          f"{len(validation)} validation clips; base 30-word macro accuracy "
          f"{scoring.base_macro:.3f}\n")
    print(f"{'K':>3s} {'method':14s} {'new-word acc (35-way)':>22s} {'30-word macro':>16s} {'drop':>7s}")
    for k in shots:
        for fit in (False, True):
            scores = []
            for seed in range(seeds):
                splits = {w: split_takes(reserved, w, k, seed) for w in RESERVED_WORDS}
                takes = {w: reserved_waves[t] for w, (t, _) in splits.items()}
                negatives = negative_embeddings(base, examples, seed) if fit else None
                scores.append(scoring.score(splits, *new_head(base, take_embeddings(base, takes, seed), negatives)))
            scoring.print_row(f"{k:3d} {'imprint + fit' if fit else 'imprint':14s}", scores)
    if training is not None:
        report_ceiling(base, scoring, training, training_waves)
    splits = {w: split_takes(reserved, w, 5, 0) for w in RESERVED_WORDS}
    tick = time.perf_counter()
    taught = teach(base, {w: reserved_waves[t] for w, (t, _) in splits.items()})
    seconds = time.perf_counter() - tick
    print(f"\nteach(): 5 words x 5 takes in {seconds:.1f} s on this CPU "
          f"(leave-one-out accuracy of the takes {taught.leave_one_out:.2f}, {len(taught.warnings)} warnings)")
    for warning in taught.warnings:
        print(f"  {warning}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/speech_commands_real"))
    parser.add_argument("--base", type=Path, nargs="+", default=[checkpoints_dir() / "tcresnet.pt"],
                        help="one or more base checkpoints, each scored on the same takes and test clips")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ceiling", action="store_true",
                        help="also fit rows on half the speakers against the real training clips (see above)")
    args = parser.parse_args(argv)
    reserved = folder_clips(args.data, RESERVED_WORDS)
    training, validation = speaker_split(args.data, VALIDATION_PERCENT)
    reserved_waves = from_int16(load_waveforms(reserved, desc="reserved words"))
    validation_waves = from_int16(load_waveforms(validation, desc="validation clips"))
    training_waves = from_int16(load_waveforms(training, desc="training clips")) if args.ceiling else None
    seconds = {path.name: report_base(path, reserved, reserved_waves, validation, validation_waves, args.shots,
                                      args.seeds, training if args.ceiling else None, training_waves)
               for path in args.base}
    if len(seconds) > 1:  # times from one run on one machine, so their ratio holds even when the machine is busy
        first = next(iter(seconds))
        print("\nteach() time against " + first + ": " + ", ".join(
            f"{name} {t / seconds[first]:.1f}x" for name, t in seconds.items() if name != first))
    return 0


if __name__ == "__main__":
    sys.exit(main())
