"""Does the input matter? The book's CNN on its three inputs, trained with equal budgets over several seeds.

    scripts/compare_inputs.sh [short|long]                            # trains the runs, then:
    python -m speech.compare runs/compare --out checkpoints/compare_inputs.json

Reads the runs ``VARIANT-seedN`` (``.card.json`` and ``.log.csv``, as ``speech.train`` writes them) of a folder,
checks that they share one budget (data, augmentation, epochs, schedule), and summarises accuracy and macro
accuracy on the validation speakers as mean ± sd over seeds, with per-word means. The summary is plain JSON
that README and the Results page show; :func:`answer` puts it in words.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Sequence

from speech import SHIPPED_CHECKPOINTS
from speech.features import VARIANTS
from speech.results import read_log

RUN_NAME = re.compile(r"^(?P<variant>" + "|".join(VARIANTS) + r")-seed(?P<seed>\d+)$")
# Test accuracy the book reports for each input (the full v0.01 training set; its own test list).
BOOK_ACCURACY = {"baseline": 0.890, "mel": 0.855, "complex": 0.932}
INPUT_NAMES = {"baseline": "power spectrogram", "mel": "mel spectrogram", "complex": "complex STFT"}
# Two budgets, each written by scripts/compare_inputs.sh: "short" (8 epochs, three seeds) and "long" (the shipped
# book models' recipe, 50 epochs, two seeds).
SHIPPED_SUMMARIES = (SHIPPED_CHECKPOINTS / "compare_inputs.json", SHIPPED_CHECKPOINTS / "compare_inputs_long.json")
MANY_CLIPS = 20  # a word with at least this many validation clips is "common"; the shared folder's others have <= 11


def spread(values: Sequence[float]) -> dict:
    """``{"mean", "sd"}`` of ``values``; sd is the sample standard deviation (0 for a single value)."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def budget(card: dict) -> dict:
    """What must be equal for a fair comparison: data sources, augmentation, epochs run, clips per epoch,
    batch size and learning-rate schedule (everything but the seed and the input)."""
    training = card["training"]
    return {"sources": sorted(card["data"]["sources"]), "training_clips": card["data"]["training_clips"],
            "validation_clips": card["data"]["validation_clips"], "augmentation": card["augmentation"],
            **{k: training[k] for k in ("max_epochs", "epochs_run", "epoch_size", "batch_size", "max_lr")}}


def summarize(folder: str | Path) -> dict:
    """The comparison of the runs in ``folder``: ``{"budget", "validation_counts" (clips per word), "runs",
    "variants"}``. Raises ValueError when there is no run, or when the runs do not share one budget (then the
    comparison would not be fair)."""
    runs, budgets, cards = [], {}, []
    for card_path in sorted(Path(folder).glob("*.card.json")):
        name = card_path.name.removesuffix(".card.json")
        match = RUN_NAME.match(name)
        if not match:
            continue
        card = json.loads(card_path.read_text())
        budgets[name] = budget(card)
        cards.append(card)
        validation = card["validation"]
        runs.append({"name": name, "variant": match["variant"], "seed": int(match["seed"]),
                     "accuracy": validation["accuracy"], "macro_accuracy": validation["macro_accuracy"],
                     "per_class": validation["per_class"], "best_epoch": card["training"]["best_epoch"],
                     "train_seconds": card["training"]["train_seconds"],
                     "history": read_log(card_path.with_name(f"{name}.log.csv"))})
    runs.sort(key=lambda r: (VARIANTS.index(r["variant"]), r["seed"]))  # the book's order: baseline, mel, complex
    if not runs:
        raise ValueError(f"No runs named VARIANT-seedN with a model card in {folder}; run scripts/compare_inputs.sh.")
    first = next(iter(budgets.values()))
    different = [name for name, b in budgets.items() if b != first]
    if different:
        raise ValueError(f"The runs do not share one budget ({', '.join(different)} differ from "
                         f"{next(iter(budgets))}); an unequal budget would make the comparison unfair.")
    variants = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        words = mine[0]["per_class"]
        variants[variant] = {
            "seeds": [r["seed"] for r in mine],
            "accuracy": spread([r["accuracy"] for r in mine]),
            "macro_accuracy": spread([r["macro_accuracy"] for r in mine]),
            "per_class": {w: spread([r["per_class"][w] for r in mine]) for w in words if words[w] is not None},
            "train_seconds": statistics.fmean(r["train_seconds"] for r in mine),
        }
    # equal budgets mean the same validation clips, so any card's counts are every run's
    sources, words = cards[0]["data"]["sources"].values(), cards[0]["validation"]["per_class"]
    counts = {w: sum(source["validation"].get(w, 0) for source in sources) for w in words}
    return {"budget": first, "validation_counts": counts, "runs": runs, "variants": variants}


def read_summary(path: str | Path) -> dict | None:
    """A summary written by ``python -m speech.compare --out``; None when the file is missing. Raises ValueError
    when it is not such a summary."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name} is not a comparison summary: {error}") from None
    if not isinstance(summary, dict) or not {"budget", "validation_counts", "runs", "variants"} <= set(summary):
        raise ValueError(f"{path.name} is not a comparison summary (written by python -m speech.compare).")
    return summary


def shipped_summaries(paths: Sequence[Path] = SHIPPED_SUMMARIES) -> tuple[dict[str, dict], list[str]]:
    """The comparisons that exist among ``paths``, keyed by :func:`budget_label`, and a message for each file that
    is there but is not a summary."""
    found, problems = {}, []
    for path in paths:
        try:
            summary = read_summary(path)
        except ValueError as error:
            problems.append(str(error))
            continue
        if summary:
            found[budget_label(summary)] = summary
    return found, problems


def gap(summary: dict, better: str, worse: str, metric: str = "macro_accuracy") -> tuple[float, float]:
    """The difference of the mean ``metric`` of two variants and its standard error over their seeds."""
    a, b = summary["variants"][better], summary["variants"][worse]
    error = math.sqrt(a[metric]["sd"] ** 2 / len(a["seeds"]) + b[metric]["sd"] ** 2 / len(b["seeds"]))
    return a[metric]["mean"] - b[metric]["mean"], error


def ranking(summary: dict, metric: str = "macro_accuracy") -> list[str]:
    """Variants from best to worst mean ``metric``."""
    return sorted(summary["variants"], key=lambda v: -summary["variants"][v][metric]["mean"])


def most_different_words(summary: dict, top: int = 5) -> list[tuple[str, dict]]:
    """The words whose mean accuracy differs most between the variants: ``[(word, {variant: mean})]``."""
    variants = summary["variants"]
    words = set.intersection(*(set(v["per_class"]) for v in variants.values()))
    table = {w: {v: variants[v]["per_class"][w]["mean"] for v in variants} for w in words}
    return sorted(table.items(), key=lambda item: (min(item[1].values()) - max(item[1].values()), item[0]))[:top]


def seed_count(summary: dict) -> int:
    """The fewest seeds any variant has: what each figure of the comparison rests on."""
    return min(len(v["seeds"]) for v in summary["variants"].values())


def seeds_each(summary: dict) -> str:
    """E.g. "3 seeds each", "1 seed each"."""
    seeds = seed_count(summary)
    return f"{seeds} seed{'s' if seeds > 1 else ''} each"


def budget_label(summary: dict) -> str:
    """A budget in a few words, e.g. "8 epochs, 3 seeds each" (the Results page's choice between budgets)."""
    return f"{summary['budget']['epochs_run']} epochs, {seeds_each(summary)}"


def accuracy_by_word_count(summary: dict, many: int = MANY_CLIPS) -> dict[str, dict]:
    """Mean per-word accuracy of each variant on the words with at least ``many`` validation clips ("common")
    and on the others ("rare"): ``{"common": {"words": count, variant: mean, ...}, "rare": {...}}``; a group
    without words is left out. It shows whether a gap between inputs lies in the words the data has plenty of."""
    counts, groups = summary["validation_counts"], {}
    for group, keep in (("common", lambda n: n >= many), ("rare", lambda n: n < many)):
        words = [w for w, n in counts.items() if n > 0 and keep(n)]  # a word without clips has no accuracy
        means = {v: statistics.fmean(s["per_class"][w]["mean"] for w in words if w in s["per_class"])
                 for v, s in summary["variants"].items() if any(w in s["per_class"] for w in words)}
        if means:
            groups[group] = {"words": len(words), **means}
    return groups


def answer(summary: dict) -> str:
    """The comparison in plain words (markdown): which input did best, whether the gaps exceed the seed-to-seed
    spread, where this agrees or disagrees with the book, and likely reasons."""
    order = ranking(summary)
    variants, b = summary["variants"], summary["budget"]
    seeds = seed_count(summary)
    passes = b["epochs_run"] * b["epoch_size"] / b["training_clips"]
    lines = [f"**With equal budgets** ({b['epochs_run']} epochs of {b['epoch_size']} clips, the same data, "
             f"augmentation and one-cycle schedule; {seeds_each(summary)}), macro accuracy "
             "on the validation speakers ranks the inputs " + " > ".join(f"**{INPUT_NAMES[v]}** "
                                                        f"({variants[v]['macro_accuracy']['mean']:.3f})"
                                                        for v in order) + "."]
    verdicts = []
    for better, worse in zip(order, order[1:]):
        difference, error = gap(summary, better, worse)
        verdict = ("one seed, so no spread to judge it by" if seeds < 2 else
                   "larger than the seeds' spread explains" if difference > 2 * error else
                   "within what another seed could change: no clear winner")
        verdicts.append(f"{INPUT_NAMES[better]} vs {INPUT_NAMES[worse]}: {difference:+.3f} ± {error:.3f}, {verdict}")
    if verdicts:
        rough = f" With {seeds} seeds each the spread is itself a rough estimate." if seeds == 2 else ""
        lines.append("Gap (mean difference ± its standard error over seeds): " + "; ".join(verdicts) + "." + rough)
    book_order = sorted(BOOK_ACCURACY, key=lambda v: -BOOK_ACCURACY[v])
    book = (" > ".join(INPUT_NAMES[v] for v in book_order) + " ("
            + " / ".join(f"{BOOK_ACCURACY[v]:.3f}" for v in book_order) + " on the full dataset's test list)")
    ours_by_accuracy = ranking(summary, "accuracy")
    if ours_by_accuracy == book_order:
        lines.append(f"By plain accuracy this is **the book's order**: {book}.")
    else:
        lines.append(
            "By plain accuracy the order is " + " > ".join(INPUT_NAMES[v] for v in ours_by_accuracy)
            + f"; **the book found** {book}. Likely reasons, not tested "
            "here: the book trained on the full dataset (about 51,000 training clips) to convergence, "
            f"while these runs make about {passes:.0f} passes over {b['training_clips']:,} clips, synthetic voices "
            "included. The mel input is small (128 rows instead "
            "of 257) and spends its rows where speech lives, which helps most when data and epochs are scarce; "
            "the complex input doubles the numbers and carries phase, which a model can only learn to use, or to "
            "ignore, from much more data.")
    groups = accuracy_by_word_count(summary)
    if len(groups) == 2:
        named = " / ".join(v for v in VARIANTS if v in variants)
        common, rare = ({v: g[v] for v in VARIANTS if v in g} for g in (groups["common"], groups["rare"]))
        lines.append(
            f"Common and rare words (mean per-word accuracy, {named}): the {groups['common']['words']} words with "
            f"at least {MANY_CLIPS} validation clips " + " / ".join(f"{m:.2f}" for m in common.values())
            + f"; the {groups['rare']['words']} words with fewer, which also have far fewer real training clips, "
            + " / ".join(f"{m:.2f}" for m in rare.values()) + ".")
    spread_words = ", ".join(f"*{w}* (" + " / ".join(f"{means[v]:.2f}" for v in VARIANTS if v in means) + ")"
                             for w, means in most_different_words(summary, 4))
    lines.append("The words on which the inputs differ most (" + " / ".join(v for v in VARIANTS if v in variants)
                 + f"): {spread_words}.")
    return "\n\n".join(lines)


def table_rows(summary: dict) -> list[dict]:
    """One row per variant for README and the page: mean ± sd of both figures, seeds, the book's accuracy."""
    return [{"input": f"{INPUT_NAMES[v]} ({v})",
             "accuracy": f"{s['accuracy']['mean']:.3f} ± {s['accuracy']['sd']:.3f}",
             "macro accuracy": f"{s['macro_accuracy']['mean']:.3f} ± {s['macro_accuracy']['sd']:.3f}",
             "seeds": len(s["seeds"]), "minutes per run": f"{s['train_seconds'] / 60:.0f}",
             "book (test accuracy)": f"{BOOK_ACCURACY[v]:.3f}"}
            for v, s in summary["variants"].items()]


def markdown_table(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as a markdown table, as README shows it."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="the runs' folder (scripts/compare_inputs.sh writes runs/compare)")
    parser.add_argument("--out", help="write the summary JSON here (default: print it)")
    args = parser.parse_args(argv)
    try:
        summary = summarize(args.folder)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(summary, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    print(markdown_table(table_rows(summary)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
