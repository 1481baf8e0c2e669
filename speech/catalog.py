"""What the lab has on disk: the bundled examples and the checkpoints with their model cards.

Standard library only, so the Home page lists them without importing torch (a cold start stays fast).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from speech import EXAMPLES_DIR, SHIPPED_CHECKPOINTS

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
# The 30 words of Speech Commands v0.01, in alphabetical order as in the book.
CLASSES: tuple[str, ...] = (
    "bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy",
    "house", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
    "sheila", "six", "stop", "three", "tree", "two", "up", "wow", "yes", "zero",
)
# The spotting model's two extra classes (as in the dataset's 12-class task and TF.js speech-commands):
# no speech at all, and speech that is not one of the 30 words.
SILENCE, UNKNOWN = "_silence_", "_unknown_"
SPOTTING_CLASSES: tuple[str, ...] = CLASSES + (SILENCE, UNKNOWN)
# Real words of Speech Commands v0.02 in the shared folder that no shipped model may be trained on: they are the
# test bed for rejecting words outside the vocabulary and for learning new words.
RESERVED_WORDS: tuple[str, ...] = ("backward", "follow", "forward", "learn", "visual")
CREDIT = "Speech Commands dataset by Google, CC BY 4.0 (Warden 2018, arXiv:1804.03209)"
BOOK_VARIANTS_FIRST = ["baseline", "mel", "complex"]
# The shipped model trained for bad microphones and phone lines (telephone band, clipping, noise, quiet takes).
ROBUST = "robust"


def example_files() -> dict[str, dict[str, Path]]:
    """word -> voice -> bundled example file (``examples/<word>/<voice>_nohash_0.flac``)."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(EXAMPLES_DIR.glob("*/*")):
        if path.suffix.lower() in AUDIO_SUFFIXES and not path.parent.name.startswith(("_", ".")):
            found.setdefault(path.parent.name, {})[path.name.split("_nohash_")[0]] = path
    return found


def recording_files() -> list[Path]:
    """The bundled long recordings for word spotting (``examples/_recordings/*``); each may have its words in a
    ``.json`` beside it."""
    return sorted(p for p in (EXAMPLES_DIR / "_recordings").glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def checkpoints_dir() -> Path:
    """Where the app looks for checkpoints: $SPEECH_LAB_CHECKPOINTS (your own runs) or the shipped ones."""
    return Path(os.environ.get("SPEECH_LAB_CHECKPOINTS", SHIPPED_CHECKPOINTS))


def checkpoint_files(folder: Path | None = None) -> dict[str, Path]:
    """name -> checkpoint file in ``folder`` (default: :func:`checkpoints_dir`), the book's three variants
    first, then any others (e.g. ``tcresnet``) by name; resumable ``*.last.pt`` states are left out."""
    folder = checkpoints_dir() if folder is None else folder
    found = {p.stem: p for p in sorted(folder.glob("*.pt")) if not p.name.endswith(".last.pt")}
    order = BOOK_VARIANTS_FIRST
    return dict(sorted(found.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0])))


def read_model_card(checkpoint: Path) -> dict:
    """The model card (``NAME.card.json``) beside a checkpoint; empty when missing or unreadable."""
    try:
        return json.loads(checkpoint.with_suffix(".card.json").read_text())
    except (OSError, ValueError):
        return {}


def features_summary(card: dict) -> str:
    """Markdown naming a model card's input: '**mel** features', then the mel bands' number and range and the
    dB floor when the card has them (e.g. the robust model's 300-3400 Hz)."""
    features = card.get("features", {})
    details = []
    if card.get("variant") == "mel" and features.get("n_mels"):
        details.append(f"{features['n_mels']} bands")
    if features.get("f_min") or features.get("f_max"):
        top = features.get("f_max") or features.get("sample_rate", 16000) / 2
        details.append(f"{features.get('f_min', 0):g}–{top:g} Hz")
    if features.get("top_db"):
        details.append(f"floored {features['top_db']:g} dB under the peak")
    return f"**{card.get('variant', '?')}** features" + (f": {', '.join(details)}" if details else "")


def card_summary(card: dict) -> str:
    """What a model card says in two sentences (Markdown): architecture and features, the validation figures, and
    how it was trained (best epoch) or, for an ensemble, its members' own macro accuracies; for a model with an
    open-set gate, its figures without the gate."""
    text = f"Architecture **{card.get('arch', 'book')}** on {features_summary(card)}. "
    validation, training, members = card.get("validation"), card.get("training", {}), card.get("members")
    if not validation:  # e.g. a model taught new words: only its base was validated
        return text + "Not validated on held-out speakers."
    text += (f"Validation (speakers never trained on): accuracy **{validation['accuracy']:.3f}**, "
             f"macro accuracy **{validation['macro_accuracy']:.3f}** on {validation['n']} clips.")
    if members:
        scores = ", ".join(f"{m['validation']['macro_accuracy']:.3f}" for m in members
                           if isinstance(m.get("validation", {}).get("macro_accuracy"), (int, float)))
        return text + (f" The mean of {len(members)} models' probabilities; on their own they reach macro "
                       f"accuracy {scores}.")
    if "best_epoch" in training:
        text += (f" Best epoch {training['best_epoch']} of {training['epochs_run']}, "
                 f"{card.get('data', {}).get('training_clips', '?')} training clips.")
    if training.get("more_words"):
        text += (f" Trained to tell {training['more_words']:,} more English words apart as well (outputs dropped "
                 "after training): a base for your own words.")
    ungated = card.get("open_set", {}).get("ungated_validation")
    if ungated:
        text += (f" With an open-set gate (quantile {card['open_set']['quantile']}); without it: accuracy "
                 f"{ungated['accuracy']:.3f}, macro accuracy {ungated['macro_accuracy']:.3f}.")
    return text


ENSEMBLE_ARCH = re.compile(r"(\d+)x(\w+)")  # an ensemble's architecture: "4xtcresnet" is four tcresnets averaged
OPEN_SET_ARCH = re.compile(r"openset-(\w+)")  # a model with an open-set gate (speech.openset)


def single_models(checkpoints: dict[str, Path]) -> dict[str, Path]:
    """The checkpoints whose cards name neither an ensemble (``NxARCH``) nor an open-set gate (``openset-ARCH``):
    those a new word can be taught to."""
    return {name: path for name, path in checkpoints.items()
            if not any(pattern.fullmatch(read_model_card(path).get("arch", ""))
                       for pattern in (ENSEMBLE_ARCH, OPEN_SET_ARCH))}


def teaching_base(checkpoints: dict[str, Path]) -> str | None:
    """The model to teach new words to by default: one trained on more words (``speech.train --more-words``),
    whose embedding places new words best (README, Few-shot), else :func:`best_checkpoint`."""
    singles = single_models(checkpoints)
    trained_wider = [name for name, path in singles.items()
                     if read_model_card(path).get("training", {}).get("more_words")]
    return trained_wider[0] if trained_wider else best_checkpoint(singles)


def best_checkpoint(checkpoints: dict[str, Path]) -> str | None:
    """The 30-word model whose card reports the highest validation macro accuracy (None without cards). The
    spotting model's figure counts its two rejection classes too, so it does not compete."""
    cards = {name: read_model_card(path) for name, path in checkpoints.items()}
    scored = {name: card.get("validation", {}).get("macro_accuracy") for name, card in cards.items()
              if card.get("classes", list(CLASSES)) == list(CLASSES)}
    scored = {name: score for name, score in scored.items() if isinstance(score, (int, float))}
    return max(scored, key=scored.get) if scored else None
