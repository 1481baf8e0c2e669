"""Accuracy of each checkpoint under what real microphones do, on the validation speakers, in one run.

    .venv/bin/python benchmarks/robustness.py [--data ../shared/speech_commands_real] [--checkpoint PATH ...]

The clips are the speakers that training holds out for validation (the same stable speaker hash and share
as ``speech.train``), so no checkpoint has heard them. Each condition of ``speech.augment.CONDITIONS``
(clipping, telephone band, white noise, a quiet take) is applied to all of them; the table gives accuracy
and macro accuracy per condition and the loss against clean, and names each checkpoint's worst condition.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech.audio import from_int16  # noqa: E402
from speech.augment import CONDITIONS  # noqa: E402
from speech.catalog import checkpoint_files  # noqa: E402
from speech.data import VALIDATION_PERCENT, load_waveforms, speaker_split  # noqa: E402
from speech.evaluate import evaluate_waves  # noqa: E402
from speech.predict import Predictor  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/speech_commands_real")
    parser.add_argument("--validation-percent", type=float, default=VALIDATION_PERCENT)
    parser.add_argument("--checkpoint", nargs="+", help="default: every shipped checkpoint")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.checkpoint] if args.checkpoint else list(checkpoint_files().values())
    try:
        clips = speaker_split(args.data, args.validation_percent)[1]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    waves = from_int16(load_waveforms(clips, desc="validation clips"))
    print(f"{len(clips)} validation clips of {len({c.speaker for c in clips})} speakers from {args.data}\n")
    header = f"{'checkpoint':12s} {'condition':30s} {'accuracy':>9s} {'macro':>7s} {'vs clean':>9s}"
    print(header)
    print("-" * len(header))
    for path in paths:
        predictor = Predictor.from_checkpoint(path)
        targets = torch.tensor([predictor.classes.index(c.label) for c in clips])
        clean, worst = None, None
        for condition, degrade in CONDITIONS.items():
            report, _ = evaluate_waves(predictor, degrade(waves), targets)
            clean = report.accuracy if clean is None else clean
            loss = clean - report.accuracy
            worst = max(worst or (loss, condition), (loss, condition))
            print(f"{path.stem:12s} {condition:30s} {report.accuracy:9.3f} {report.macro_accuracy:7.3f} "
                  f"{-loss:+9.3f}")
        print(f"{path.stem:12s} worst: {worst[1]} loses {worst[0]:.3f} against clean\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
