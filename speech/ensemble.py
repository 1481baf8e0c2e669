"""Average trained models into one checkpoint: an ensemble.

    python -m speech.ensemble A.pt B.pt [C.pt ...] --out checkpoints/ensemble.pt [--data ../shared/speech_commands_real]

Models trained from different seeds or recipes make different mistakes, so the mean of their probabilities is
usually right more often than any one of them (``benchmarks/ensembles.py`` measures every group). The members
must share their architecture, features and classes; the result is an ordinary checkpoint (architecture
``NxARCH``, e.g. ``4xtcresnet``) that ``speech.predict``, ``speech.evaluate``, ``speech.spot`` and
``speech.export`` take unchanged. Its card holds each member's training and the ensemble's own figures on the
validation speakers of ``--data`` (the same split and evaluation as ``speech.train``). Each prediction costs
the sum of the members' time.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Sequence

from speech.catalog import CREDIT
from speech.data import VALIDATION_PERCENT, speaker_split
from speech.evaluate import evaluate_clips
from speech.model import CheckpointError, Ensemble, save_checkpoint
from speech.predict import Predictor


class EnsembleError(ValueError):
    """The checkpoints cannot be averaged; the message says why."""


def ensemble_of(paths: Sequence[str | Path]) -> Predictor:
    """One predictor averaging the checkpoints ``paths`` (2 or more, one architecture, the same features and
    classes). Raises CheckpointError for a file that is no checkpoint, EnsembleError for members that differ."""
    if len(paths) < 2:
        raise EnsembleError("An ensemble needs at least two checkpoints.")
    members = [Predictor.from_checkpoint(path) for path in paths]
    first, first_path = members[0], paths[0]
    for member, path in zip(members[1:], paths[1:]):
        for what, mine, theirs in [("classes", member.classes, first.classes),
                                   ("features", member.features.to_dict(), first.features.to_dict()),
                                   ("architecture", member.model.arch, first.model.arch)]:
            if mine != theirs:
                raise EnsembleError(f"{path} and {first_path} differ in their {what}: {mine} against {theirs}. "
                                    "Average only models of one architecture, features and classes.")
    try:
        model = Ensemble([member.model for member in members])
    except ValueError as error:  # e.g. an ensemble among the members, or too many
        raise EnsembleError(str(error)) from None
    card = {"variant": first.variant, "arch": model.arch, "date": datetime.date.today().isoformat(),
            "classes": list(first.classes), "features": first.features.to_dict(),
            "members": [{"checkpoint": str(path), "training": member.card.get("training", {}),
                         "validation": {k: member.card.get("validation", {}).get(k)
                                        for k in ("accuracy", "macro_accuracy", "n")}}
                        for path, member in zip(paths, members)],
            "data": merged_data([member.card.get("data", {}) for member in members]),
            "credit": CREDIT}
    return Predictor(model, first.features, list(first.classes), card)


def merged_data(cards_data: list[dict]) -> dict:
    """The members' training data as one card entry: every source any member trained on (its counts from the first
    member that names it) and the largest training set."""
    sources = {}
    for data in cards_data:
        for name, counts in data.get("sources", {}).items():
            sources.setdefault(name, counts)
    return {"sources": sources, "training_clips": max((d.get("training_clips", 0) for d in cards_data), default=0),
            "split": next((d["split"] for d in cards_data if "split" in d), "")}


def validate(predictor: Predictor, data: str | Path, validation_percent: float = VALIDATION_PERCENT) -> dict:
    """The card's ``validation`` entry: the ensemble on the validation speakers of the folder ``data`` (the split
    ``speech.train`` makes with the same ``validation_percent``)."""
    clips = speaker_split(data, validation_percent)[1]
    if not clips:
        raise EnsembleError(f"No validation clips of the model's words under {data}.")
    report = evaluate_clips(predictor, clips)[0]
    return {"accuracy": report.accuracy, "macro_accuracy": report.macro_accuracy, "per_class": report.per_class,
            "n": report.n}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="two or more checkpoints of one architecture")
    parser.add_argument("--out", required=True, help="the ensemble checkpoint to write (.pt)")
    parser.add_argument("--data", default="../shared/speech_commands_real",
                        help="the folder the members were trained on; its validation speakers score the ensemble")
    parser.add_argument("--validation-percent", type=float, default=VALIDATION_PERCENT,
                        help="the members' --validation-percent (the share of speakers held out)")
    args = parser.parse_args(argv)
    try:
        predictor = ensemble_of(args.checkpoints)
        predictor.card["validation"] = validate(predictor, args.data, args.validation_percent)
    except (CheckpointError, FileNotFoundError, ValueError) as error:  # EnsembleError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    card = predictor.card
    card["data"]["validation_clips"] = card["validation"]["n"]
    card["training"] = {"command": "python -m speech.ensemble " + " ".join(sys.argv[1:] if argv is None else argv)}
    card = json.loads(json.dumps(card))  # plain JSON types, so the card in the checkpoint equals the file
    out = Path(args.out)
    save_checkpoint(out, predictor.model, predictor.features, predictor.classes, card=card)
    out.with_suffix(".card.json").write_text(json.dumps(card, indent=2) + "\n")
    figures = card["validation"]
    print(f"wrote {out}: {predictor.model.arch}; validation speakers ({figures['n']} clips): accuracy "
          f"{figures['accuracy']:.3f}, macro accuracy {figures['macro_accuracy']:.3f} (members: "
          + ", ".join(f"{m['validation']['macro_accuracy']:.3f}" for m in card["members"]
                      if m["validation"]["macro_accuracy"] is not None) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
