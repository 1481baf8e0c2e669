"""Give a spotting model an open-set gate: a word answer far from where that word's training clips lie becomes
``_unknown_``.

    python -m speech.openset runs/spotrob/spotting-s1.pt --data ../shared/speech_commands_real \
        --extra-train data/tts data/tts-extra --out checkpoints/spotting.pt

Why: the ``_unknown_`` class learns the non-words it was shown (other English words in synthetic voices, real
clips cut, reversed or spliced), but a real word it never met, such as "forward", can still look more like
"four" than like any of those. The gate asks a second question in the model's own embedding (the input of its
last layer): is this clip as close to some word's centre as that word's training clips are? It fits one centre
per word and a covariance shared by all words on the model's training clips of its words, each also once
augmented (shift, speed, background noise, gain: new speakers and rooms spread wider than the clips the model
memorised), takes the ``--quantile`` of those clips' squared Mahalanobis distances to their own word's centre
as the limit, and stores all of it in the checkpoint (:class:`speech.model.OpenSetGate`). Beyond the limit from
every centre, the word probabilities move to ``_unknown_``.

The card keeps the base's training record and gets the gated model's figures on the validation part
``speech.train`` builds (the same speakers, non-words and noise excerpts, from the base's seed);
``benchmarks/spotting.py`` measures the detector with it.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

from speech.audio import from_int16
from speech.augment import AugmentConfig, augment
from speech.catalog import CLASSES, SPOTTING_CLASSES, UNKNOWN
from speech.data import VALIDATION_PERCENT
from speech.embedding import embed
from speech.evaluate import evaluate_waves
from speech.model import CheckpointError, Ensemble, OpenSetGate, save_checkpoint
from speech.predict import Predictor
from speech.spot import is_word
from speech.train import TrainConfig, TrainError, gather_data

QUANTILE = 0.995        # of the training clips' distances to their own word's centre: the limit
SOFTNESS = 0.05         # the sigmoid step's width, as a share of the limit
SHRINKAGE = 1e-3        # added to the covariance's diagonal, as a share of its mean variance (keeps it invertible)
CALIBRATION_AUGMENTATION = AugmentConfig(shift_seconds=0.1, noise_probability=0.8, snr_db=(10.0, 30.0),
                                         gain_db=(-6.0, 6.0), speed=(0.9, 1.1))


class OpenSetError(ValueError):
    """The model or the clips cannot make a gate; the message says why."""


def check_base(predictor: Predictor) -> None:
    """Raise OpenSetError unless ``predictor`` is one plain model with an ``_unknown_`` class."""
    if UNKNOWN not in predictor.classes:
        raise OpenSetError(f"The model has no {UNKNOWN} class to move rejected answers to; train it with --spotting.")
    if isinstance(predictor.model, (Ensemble, OpenSetGate)):
        raise OpenSetError(f"A gate needs one plain model, not {predictor.model.arch}.")


def fit_gate(predictor: Predictor, waves: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor,
             quantile: float = QUANTILE, softness: float = SOFTNESS, seed: int = 0) -> Predictor:
    """A copy of ``predictor`` (a model with an ``_unknown_`` class) with an :class:`OpenSetGate` fitted on its
    training clips of words, float32 ``waves [n, 16000]`` at 16 kHz with class indices ``labels [n]``, and on one
    copy of each augmented with background ``noise`` (float32 ``[time]``). Raises OpenSetError for a model without
    ``_unknown_``, an ensemble or a gated model, or a word without clips."""
    check_base(predictor)
    if not 0 < quantile < 1:
        raise OpenSetError(f"--quantile must lie between 0 and 1, not {quantile}.")
    words = [k for k, c in enumerate(predictor.classes) if is_word(c)]
    missing = [predictor.classes[k] for k in words if not bool((labels == k).any())]
    if missing:
        raise OpenSetError(f"No training clips of {', '.join(missing)}: every word needs a centre.")
    copies = augment(waves, noise, CALIBRATION_AUGMENTATION, torch.Generator().manual_seed(seed))
    embeddings, labels = embed(predictor, torch.cat([waves, copies])).double(), torch.cat([labels, labels])
    centres = torch.zeros(len(predictor.classes), embeddings.shape[1], dtype=torch.float64)
    for k in words:
        centres[k] = embeddings[labels == k].mean(0)
    spread = embeddings - centres[labels]
    covariance = spread.T @ spread / len(spread)
    covariance += SHRINKAGE * covariance.diagonal().mean() * torch.eye(len(covariance), dtype=torch.float64)
    precision = torch.linalg.inv(covariance)
    own = ((spread @ precision) * spread).sum(1)  # each clip's squared distance to its own word's centre
    gate = OpenSetGate(copy.deepcopy(predictor.model), len(predictor.classes))
    gate.centres.copy_(centres)
    gate.precision.copy_(precision)
    gate.words.copy_(torch.tensor([is_word(c) for c in predictor.classes]))
    gate.unknown.copy_(torch.tensor([float(c == UNKNOWN) for c in predictor.classes]))
    gate.limit.fill_(float(own.quantile(quantile)))
    gate.width.fill_(softness * float(gate.limit))
    return Predictor(gate.eval(), predictor.features, list(predictor.classes), dict(predictor.card))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a spotting model without a gate, e.g. runs/spotrob/spotting-s1.pt")
    parser.add_argument("--out", required=True, help="the gated checkpoint to write (.pt; may be the input)")
    parser.add_argument("--data", default="../shared/speech_commands_real",
                        help="the folder the model was trained on: its training speakers fit the gate, its "
                             "validation speakers score it")
    parser.add_argument("--extra-train", nargs="*", default=[],
                        help="the model's other training folders (their word clips fit the gate too)")
    parser.add_argument("--validation-percent", type=float, default=VALIDATION_PERCENT)
    parser.add_argument("--quantile", type=float, default=QUANTILE,
                        help="the share of the training clips (and their noisy copies) the limit keeps")
    parser.add_argument("--softness", type=float, default=SOFTNESS,
                        help="the width of the step from kept to moved, as a share of the limit")
    args = parser.parse_args(argv)
    try:
        base = Predictor.from_checkpoint(args.checkpoint)
        check_base(base)
        if list(base.classes) != list(SPOTTING_CLASSES):
            raise OpenSetError(f"{args.checkpoint} knows {len(base.classes)} classes, not the spotting model's "
                               f"{len(CLASSES)} words, _silence_ and _unknown_.")
        seed = int(base.card.get("training", {}).get("seed", 0))  # the base's validation non-words and noise
        data = gather_data(TrainConfig(data=[args.data], extra_train=args.extra_train, spotting=True, seed=seed,
                                       validation_percent=args.validation_percent))
        words = data.train_labels < len(CLASSES)
        gated = fit_gate(base, from_int16(data.train_waves[words]), data.train_labels[words], data.noise,
                         args.quantile, args.softness, seed)
        report = evaluate_waves(gated, from_int16(data.val_waves), data.val_labels)[0]
    except (CheckpointError, FileNotFoundError, TrainError, OpenSetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    card = dict(base.card)
    card["arch"] = gated.model.arch
    card["open_set"] = {"command": "python -m speech.openset " + " ".join(sys.argv[1:] if argv is None else argv),
                        "quantile": args.quantile, "softness": args.softness, "limit": float(gated.model.limit),
                        "fitted_on_clips": int(words.sum()), "augmented_copies": 1,
                        "ungated_validation": base.card.get("validation")}
    card["validation"] = {"accuracy": report.accuracy, "macro_accuracy": report.macro_accuracy,
                          "per_class": report.per_class, "n": report.n}
    card = json.loads(json.dumps(card))  # plain JSON types, so the card in the checkpoint equals the file
    out = Path(args.out)
    save_checkpoint(out, gated.model, gated.features, gated.classes, card=card)
    out.with_suffix(".card.json").write_text(json.dumps(card, indent=2) + "\n")
    before = card["open_set"]["ungated_validation"] or {}
    print(f"wrote {out}: {gated.model.arch}, limit {card['open_set']['limit']:.1f} (quantile {args.quantile} of "
          f"{card['open_set']['fitted_on_clips']} training clips); validation ({report.n} clips): accuracy "
          f"{report.accuracy:.3f}, macro accuracy {report.macro_accuracy:.3f} (ungated: "
          f"{before.get('accuracy', float('nan')):.3f}, {before.get('macro_accuracy', float('nan')):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
