"""What the Results page computes: training histories across stages, evaluation sources and their clips,
and which clips lie behind a cell of the confusion matrix. Plain functions; the page caches them."""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from speech import EXAMPLES_DIR, REPO_ROOT
from speech.catalog import read_model_card
from speech.data import VALIDATION_PERCENT, Clip, folder_clips, speaker_split, speech_commands_clips

SHARED_REAL = REPO_ROOT.parent / "shared" / "speech_commands_real"


def read_csv_rows(path: Path) -> list[dict]:
    """The rows of a CSV with a header, numbers as float (empty when the file is missing)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def read_log(path: Path) -> list[dict]:
    """Rows ``{"epoch", "set", "loss", "acc"}`` of a training log CSV (empty when missing)."""
    return [{**row, "epoch": int(row["epoch"])} for row in read_csv_rows(path)]


def training_history(checkpoint: Path) -> list[dict]:
    """The whole history of a checkpoint: the rows of every earlier stage it was continued from (kept in its
    card) and then its own log, each row with ``stage`` (1, 2, …) and ``epoch`` counted over all stages."""
    card = read_model_card(checkpoint)
    earlier = list(card.get("initialized_from", {}).get("history", []))
    stage = max((r["stage"] for r in earlier), default=0) + 1
    offset = max((r["epoch"] for r in earlier), default=0)
    own = [{**row, "epoch": row["epoch"] + offset, "stage": stage}
           for row in read_log(checkpoint.with_suffix(".log.csv"))]
    return earlier + own


@dataclass(frozen=True)
class Source:
    """Clips to evaluate on, and what a learner should know about them."""

    label: str
    clips: tuple[Clip, ...]
    note: str
    seen_in_training: bool = False


SOURCE_KINDS = ("examples", "validation", "test", "folder")


def evaluation_source(kind: str, location: str, trained_on: Sequence[str] = ()) -> Source:
    """The clips of one evaluation source. ``kind`` is one of :data:`SOURCE_KINDS`; ``location`` is the
    folder (the shared real clips for "validation", the download root for "test"; ignored for "examples");
    a "folder" that is one of ``trained_on`` (data sources of the model cards) is flagged as seen in training."""
    folder = Path(location)
    if kind == "examples":
        return Source("bundled examples", tuple(folder_clips(EXAMPLES_DIR)),
                      "Synthetic flite voices that no model heard in training; a quick, small check.")
    if kind == "validation":
        return Source("validation speakers", tuple(speaker_split(folder, VALIDATION_PERCENT)[1]),
                      f"The real speakers of {folder.name} that training held out ({VALIDATION_PERCENT:g} % by a "
                      "stable hash of the speaker): the honest estimate of how the models do on new voices.")
    if kind == "test":
        return Source("Speech Commands test subset", tuple(speech_commands_clips(folder, "testing")),
                      "The official test list of Speech Commands v0.01: speakers never used in training.")
    if kind != "folder":
        raise ValueError(f"Unknown source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}.")
    trained_folders = {(REPO_ROOT / s).resolve() for s in trained_on if not s.startswith("speechcommands:")}
    seen = folder.resolve() in trained_folders
    note = ("This folder holds the speakers the models were **trained on**, so these figures are inflated. Choose "
            "*Validation speakers* for an honest estimate." if seen else "Your folder.")
    return Source(f"folder {folder.name}", tuple(folder_clips(folder)), note, seen)


def training_sources(checkpoints: dict[str, Path]) -> list[str]:
    """Every data source named in the model cards of ``checkpoints``."""
    return sorted({s for p in checkpoints.values() for s in read_model_card(p).get("data", {}).get("sources", {})})


class Progress:
    """A progress callback ``(done, total)`` that also says how long the rest will take, from the pace so far."""

    def __init__(self, report: Callable[[float, str], None], what: str, unit: str = "clips"):
        self.report, self.what, self.unit, self.started = report, what, unit, time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (total - done) if done else None
        self.report(done / max(total, 1), f"{self.what}: {done} of {total} {self.unit}"
                    + (f", about {left:.0f} s left" if left is not None and done < total else ""))


def clips_behind(predictions: torch.Tensor, clips: Sequence[Clip], classes: Sequence[str], target: str,
                 prediction: str, limit: Optional[int] = None) -> list[Clip]:
    """The clips of word ``target`` that the model predicted as ``prediction`` (one cell of the confusion)."""
    guessed = classes.index(prediction)
    chosen = [c for c, guess in zip(clips, predictions.tolist()) if c.label == target and guess == guessed]
    return chosen[:limit] if limit else chosen


def selected_cells(points: Sequence[dict]) -> list[tuple[str, str]]:
    """(target, prediction) of the confusion cells selected in :func:`speech.plots.confusion_figure` (the
    points of a Streamlit selection event: x is the prediction, y the target), in order, without repeats."""
    return list(dict.fromkeys((str(p["y"]), str(p["x"])) for p in points if "x" in p and "y" in p))
