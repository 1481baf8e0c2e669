"""Teach a model your own words from a few takes each, in seconds, on top of a trained model.

    python -m speech.teach --word hello=takes/hello --word lamp=takes/lamp --out mine.pt
    python -m speech.teach --word NAME=FOLDER ... [--base CHECKPOINT] [--shots K] [--seed S] [--only-new] --out PATH

Why a few takes are enough: the base model's last layer is linear, so what it learned is a space of
*embeddings* (the input of that layer) in which takes of one word lie together. A new word needs only its own
row in the last layer:

1. **Imprinting.** Each take is augmented (shift, speed, noise, gain) and embedded; the word's row is the mean
   direction of its embeddings, scaled like the base words' rows (the "prototype").
2. **A short fit of the new rows.** Only the new rows and biases are trained, a few hundred steps on the stored
   embeddings, against the base words' bundled examples, so the 30 words keep their rows exactly.
   (``benchmarks/few_shot.py`` measures both steps.)

The result is an ordinary checkpoint (classes: the base's, then the new words in the order given; or only the
new words), so ``speech.predict``, ``speech.evaluate``, ``speech.spot`` and ``speech.export`` take it unchanged.
Words too close to each other or to a base word, and takes that sound like another word (a leave-one-out check
on the takes), get warnings that name the neighbour.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from speech.audio import AudioError, load_audio, model_window
from speech.augment import AugmentConfig, augment
from speech.catalog import AUDIO_SUFFIXES, CREDIT, best_checkpoint, checkpoint_files, example_files, single_models
from speech.data import read_clip
from speech.embedding import EmbeddingMap, embed, embedding_map
from speech.model import CheckpointError, Ensemble, OpenSetGate, checkpoint_bytes, save_checkpoint
from speech.predict import Predictor

MAX_WORDS, MIN_TAKES, MAX_TAKES = 10, 3, 10  # the page's limits
AUGMENTED_COPIES = 16      # augmented versions of each take
NEGATIVE_COPIES = 4        # ... and of each bundled example the new rows are fitted against
FIT_STEPS = 300
SIMILAR_WORDS = 0.85       # cosine similarity of two word prototypes above which they are easily confused
TAKE_AUGMENTATION = AugmentConfig(shift_seconds=0.1, noise_probability=0.8, snr_db=(10.0, 30.0),
                                  gain_db=(-6.0, 6.0), speed=(0.9, 1.1))


class TeachError(ValueError):
    """The takes or the base cannot make a model; the message says what to change."""


@dataclass
class Taught:
    """A custom model and what the lab learned about the takes."""

    predictor: Predictor
    new_words: list[str]
    leave_one_out: float                       # share of takes recognised from the others (35-way)
    map: EmbeddingMap                          # the takes among the base words' bundled examples
    warnings: list[str] = field(default_factory=list)
    take_predictions: dict = field(default_factory=dict)  # word -> what each take was taken for, left out


def augmented(takes: torch.Tensor, copies: int, seed: int) -> torch.Tensor:
    """``copies`` augmented versions of each take, the takes themselves first: float32 ``[n * copies, 16000]``."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(5 * takes.shape[1], generator=generator) * 0.05
    repeated = takes.repeat(copies - 1, 1)
    return torch.cat([takes, augment(repeated, noise, TAKE_AUGMENTATION, generator)]) if copies > 1 else takes


def imprint(embeddings: torch.Tensor, labels: torch.Tensor, count: int, weight: torch.Tensor,
            bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[count, d]`` and biases ``[count]`` for new classes: each class's mean normalised embedding, scaled to
    the mean norm of the base rows ``weight [classes, d]``; biases the mean base bias."""
    directions = torch.stack([F.normalize(embeddings[labels == k], dim=1).mean(0) for k in range(count)])
    rows = F.normalize(directions, dim=1) * weight.norm(dim=1).mean()
    return rows, bias.mean().expand(count).clone()


def fit_new_rows(weight: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor, biases: torch.Tensor,
                 embeddings: torch.Tensor, targets: torch.Tensor, steps: int = FIT_STEPS, lr: float = 0.01,
                 weights: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Train only the new ``rows``/``biases`` (from :func:`imprint`) with cross-entropy over all classes, the base
    ``weight``/``bias`` fixed; ``targets`` index the extended classes, ``weights [n]`` (default: equal) say how much
    each embedding counts. Full-batch Adam on stored embeddings."""
    rows, biases = rows.clone().requires_grad_(), biases.clone().requires_grad_()
    weights = torch.ones(len(targets)) if weights is None else weights
    optimizer = torch.optim.Adam([rows, biases], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            logits = embeddings @ torch.cat([weight, rows]).T + torch.cat([bias, biases])
            loss = (F.cross_entropy(logits, targets, reduction="none") * weights).sum() / weights.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return rows.detach(), biases.detach()


@dataclass
class Examples:
    """The bundled examples of a base's words: float32 ``waves [n, 16000]``, class indices ``labels [n]``, and
    each one's file name."""

    waves: torch.Tensor
    labels: torch.Tensor
    names: list[str]


def base_examples(predictor: Predictor) -> Examples:
    """The bundled examples of the base's words (none when there are no bundled examples)."""
    files = [(path, predictor.classes.index(word)) for word, voices in example_files().items()
             if word in predictor.classes for path in voices.values()]
    if not files:
        return Examples(torch.zeros(0, 16000), torch.zeros(0, dtype=torch.long), [])
    return Examples(torch.stack([read_clip(path) for path, _ in files]), torch.tensor([c for _, c in files]),
                    [f"{path.parent.name}/{path.name}" for path, _ in files])


def take_embeddings(predictor: Predictor, takes: dict[str, torch.Tensor], seed: int,
                    copies: int = AUGMENTED_COPIES) -> dict[str, torch.Tensor]:
    """word -> embeddings ``[k, copies, d]`` of each take's augmented versions (copy 0: the take itself)."""
    embedded = {}
    for i, (word, waves) in enumerate(takes.items()):
        flat = embed(predictor, augmented(waves, copies, seed + i))  # copy-major: [copies * k, d]
        embedded[word] = flat.reshape(copies, len(waves), -1).transpose(0, 1)
    return embedded


def stacked(embedded: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings of :func:`take_embeddings` as one ``[n, d]`` with each one's word index ``[n]``."""
    embeddings = torch.cat([e.flatten(0, 1) for e in embedded.values()])
    labels = torch.cat([torch.full((e.shape[0] * e.shape[1],), k) for k, e in enumerate(embedded.values())])
    return embeddings, labels


def negative_embeddings(predictor: Predictor, examples: Examples, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings ``[NEGATIVE_COPIES * n, d]`` of the bundled examples and of their augmented versions (the first
    ``n`` rows are the examples themselves), with their class indices."""
    return (embed(predictor, augmented(examples.waves, NEGATIVE_COPIES, seed)),
            examples.labels.repeat(NEGATIVE_COPIES))


def new_head(predictor: Predictor, embedded: dict[str, torch.Tensor],
             negatives: Optional[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[new, d]`` and biases ``[new]`` for the words of ``embedded`` (from :func:`take_embeddings`):
    imprinted, then, given the base words' ``negatives`` (:func:`negative_embeddings`), trained against them;
    ``negatives=None`` stops after imprinting."""
    last = predictor.model.classifier[-1]
    weight, bias = last.weight.detach(), last.bias.detach()
    embeddings, labels = stacked(embedded)
    rows, biases = imprint(embeddings, labels, len(embedded), weight, bias)
    if negatives is None:
        return rows, biases
    negative_rows, negative_labels = negatives
    targets = torch.cat([labels + weight.shape[0], negative_labels])
    return fit_new_rows(weight, bias, rows, biases, torch.cat([embeddings, negative_rows]), targets)


def extended(predictor: Predictor, rows: torch.Tensor, biases: torch.Tensor, words: Sequence[str],
             only_new: bool = False) -> Predictor:
    """A copy of the base predictor whose last layer has the new rows (after the base's, or alone)."""
    model = copy.deepcopy(predictor.model)
    last = model.classifier[-1]
    weight = rows if only_new else torch.cat([last.weight.detach(), rows])
    bias = biases if only_new else torch.cat([last.bias.detach(), biases])
    model.classifier[-1] = torch.nn.Linear(weight.shape[1], weight.shape[0])
    model.classifier[-1].weight.data.copy_(weight)
    model.classifier[-1].bias.data.copy_(bias)
    classes = list(words) if only_new else list(predictor.classes) + list(words)
    return Predictor(model.eval(), predictor.features, classes, {})


def check_takes(predictor: Predictor, embedded: dict[str, torch.Tensor]) -> tuple[float, dict, list[str]]:
    """Leave-one-out over the takes: each take is classified by rows imprinted from all the other takes (the base
    words' rows included). Returns (share recognised, word -> what each take was taken for, warnings)."""
    classes = list(predictor.classes) + list(embedded)
    last = predictor.model.classifier[-1]
    weight, bias = last.weight.detach(), last.bias.detach()
    right = total = 0
    predicted, warnings = {}, []
    for word, held in embedded.items():
        predicted[word] = []
        for i in range(len(held)):
            kept = {w: (e if w != word else torch.cat([e[:i], e[i + 1:]])) for w, e in embedded.items()}
            if any(len(e) == 0 for e in kept.values()):  # a single take cannot be checked against itself
                predicted[word].append(None)
                continue
            rows, biases = imprint(*stacked(kept), len(kept), weight, bias)
            guess = classes[int((held[i, 0] @ torch.cat([weight, rows]).T + torch.cat([bias, biases])).argmax())]
            predicted[word].append(guess)
            total, right = total + 1, right + (guess == word)
            if guess != word:
                warnings.append(f"Take {i + 1} of '{word}' sounds more like '{guess}' than like the other takes of "
                                f"'{word}': record it again, or check it is the same word.")
    return (right / total if total else float("nan")), predicted, warnings


def similarity_warnings(predictor: Predictor, embedded: dict[str, torch.Tensor], example_embeddings: torch.Tensor,
                        example_labels: torch.Tensor, threshold: float = SIMILAR_WORDS) -> list[str]:
    """Words whose prototypes are closer than ``threshold`` (cosine) to another new word or to a base word's
    bundled examples (their embeddings ``[n, d]`` and class indices ``[n]``): they will be confused."""
    prototypes = {w: F.normalize(F.normalize(e[:, 0], dim=1).mean(0), dim=0) for w, e in embedded.items()}
    normalised = F.normalize(example_embeddings, dim=1)
    base = {predictor.classes[int(c)]: F.normalize(normalised[example_labels == c].mean(0), dim=0)
            for c in example_labels.unique()}
    warnings, names = [], list(prototypes)
    for i, word in enumerate(names):
        for other in names[i + 1:]:
            similarity = float(prototypes[word] @ prototypes[other])
            if similarity > threshold:
                warnings.append(f"'{word}' and '{other}' sound alike to the model (similarity {similarity:.2f}): "
                                "expect them to be confused.")
        if base:
            neighbour, similarity = max(((b, float(prototypes[word] @ p)) for b, p in base.items()),
                                        key=lambda pair: pair[1])
            if similarity > threshold:
                warnings.append(f"'{word}' sounds like the built-in word '{neighbour}' (similarity {similarity:.2f}): "
                                "expect them to be confused.")
    return warnings


def check_word_name(word: str, classes: Sequence[str]) -> None:
    """Raise TeachError when ``word`` cannot name a new class of a model with ``classes``."""
    if not word.strip() or word.startswith("_") or word != word.strip():
        raise TeachError(f"'{word}' cannot be a word name (empty, spaces around it, or starting with '_').")
    if word in classes:
        raise TeachError(f"'{word}' is already one of the model's words; pick another name.")


def teach(base: Predictor, takes: dict[str, torch.Tensor], seed: int = 0, only_new: bool = False) -> Taught:
    """The custom model for ``takes`` (word -> float32 ``[k, 16000]``, at least one take each) on ``base``.
    Raises TeachError for a word that is already a class or has no takes."""
    if not takes:
        raise TeachError("No words to teach.")
    if isinstance(base.model, Ensemble):
        raise TeachError(f"The base is an ensemble ({base.model.arch}): it has no single last layer to give new "
                         "words a row in. Teach on one model, e.g. tcresnet.")
    if isinstance(base.model, OpenSetGate):
        raise TeachError(f"The base has an open-set gate ({base.model.arch}) fitted to its own words only: a new "
                         "word would always be moved to _unknown_. Teach on a 30-word model, e.g. tcresnet.")
    for word, waves in takes.items():
        check_word_name(word, base.classes)
        if len(waves) == 0:
            raise TeachError(f"'{word}' has no takes.")
    torch.manual_seed(seed)
    embedded, examples = take_embeddings(base, takes, seed), base_examples(base)
    negatives = negative_embeddings(base, examples, seed)
    rows, biases = new_head(base, embedded, negatives)
    custom = extended(base, rows, biases, list(takes), only_new)
    leave_one_out, predicted, warnings = check_takes(base, embedded)
    custom.card = {"variant": base.variant, "arch": base.model.arch, "classes": custom.classes,
                   "taught": {"base_classes": len(base.classes), "new_words": {w: len(t) for w, t in takes.items()},
                              "method": f"imprinted rows, then {FIT_STEPS} steps on the new rows only",
                              "leave_one_out_accuracy": leave_one_out, "seed": seed, "only_new": only_new,
                              # the base's figure: the custom model itself was not validated
                              "base_validation_macro_accuracy": base.card.get("validation", {}).get("macro_accuracy")},
                   "credit": CREDIT}
    example_embeddings = negatives[0][:len(examples.labels)]  # the examples themselves, not augmented
    warnings += similarity_warnings(base, embedded, example_embeddings, examples.labels)
    take_points = {w: e[:, 0] for w, e in embedded.items()}  # the takes themselves, not their augmented copies
    the_map = embedding_map(
        torch.cat([example_embeddings, *take_points.values()]),
        [base.classes[int(c)] for c in examples.labels] + [w for w, e in take_points.items() for _ in e],
        examples.names + [f"take {i + 1}" for e in take_points.values() for i in range(len(e))], list(takes))
    return Taught(custom, list(takes), leave_one_out, the_map, warnings, predicted)


def save(taught: Taught, path: str | Path) -> Path:
    """Write the custom model as an ordinary checkpoint (loadable with ``weights_only=True``)."""
    predictor = taught.predictor
    save_checkpoint(path, predictor.model, predictor.features, predictor.classes, card=predictor.card)
    return Path(path)


def as_bytes(predictor: Predictor) -> bytes:
    """The checkpoint of a (custom) model as bytes: what :func:`save` writes, for the page's download."""
    return checkpoint_bytes(predictor.model, predictor.features, predictor.classes, card=predictor.card)


@dataclass
class Take:
    """One take: where it came from, a digest of its bytes (so one upload is not added twice) and the 1 s the
    model hears, float32 ``[16000]`` at 16 kHz."""

    name: str
    digest: str
    wave: torch.Tensor


class TakeBook:
    """The words and takes a user collects on the page before building, with the page's limits
    (:data:`MAX_WORDS` words, :data:`MAX_TAKES` takes each, at least :data:`MIN_TAKES` to build)."""

    def __init__(self):
        self.takes: dict[str, list[Take]] = {}
        self.seen: dict[str, set[str]] = {}  # digests added (or removed since) per word: an upload stays in its
        #                                        widget, and must not come back after the user removed its take

    def add_word(self, word: str, classes: Sequence[str]) -> None:
        """Raise TeachError for a bad name, a word already added, or one word too many."""
        word_name = word.strip()
        check_word_name(word_name, classes)
        if word_name in self.takes:
            raise TeachError(f"'{word_name}' is already on the list.")
        if len(self.takes) >= MAX_WORDS:
            raise TeachError(f"At most {MAX_WORDS} words; remove one first.")
        self.takes[word_name], self.seen[word_name] = [], set()

    def remove_word(self, word: str) -> None:
        self.takes.pop(word, None)
        self.seen.pop(word, None)

    def add_take(self, word: str, data: bytes, name: str) -> bool:
        """Decode ``data`` as a take of ``word`` (its loudest second). False when these bytes were added to
        the word before; raises TeachError when the word is full and AudioError when the audio is bad."""
        digest = hashlib.sha1(data).hexdigest()
        if digest in self.seen[word]:
            return False
        if len(self.takes[word]) >= MAX_TAKES:
            raise TeachError(f"'{word}' has {MAX_TAKES} takes already; remove one to add another.")
        wave = model_window(load_audio(data, name=name).waveform)[0]
        self.seen[word].add(digest)
        self.takes[word].append(Take(name, digest, wave))
        return True

    def remove_take(self, word: str, index: int) -> None:
        del self.takes[word][index]

    def problems(self) -> list[str]:
        """What stops a build: no words, or a word with fewer than :data:`MIN_TAKES` takes."""
        if not self.takes:
            return ["Add a word first."]
        return [f"'{w}' needs at least {MIN_TAKES} takes ({len(t)} so far)."
                for w, t in self.takes.items() if len(t) < MIN_TAKES]

    def signature(self) -> tuple:
        """What a build depends on: each word with the digests of its takes, in order."""
        return tuple((w, tuple(t.digest for t in takes)) for w, takes in self.takes.items())

    def waves(self) -> dict[str, torch.Tensor]:
        """word -> float32 ``[k, 16000]``: what :func:`teach` takes."""
        return {w: torch.stack([t.wave for t in takes]) for w, takes in self.takes.items()}


def read_takes(folder: str | Path, shots: Optional[int] = None, seed: int = 0) -> torch.Tensor:
    """The takes in ``folder`` as float32 ``[k, 16000]`` (each its loudest second); ``shots`` of them chosen with
    ``seed``. Raises TeachError when the folder is missing, empty or has no readable audio."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TeachError(f"No such folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise TeachError(f"{folder} holds no audio files (WAV, FLAC, OGG or MP3).")
    if shots is not None:
        if shots < 1:
            raise TeachError(f"--shots must be at least 1, got {shots}.")
        files = sorted(random.Random(seed).sample(files, min(shots, len(files))))
    waves, problems = [], []
    for path in files:
        try:
            waves.append(model_window(load_audio(path, name=path.name).waveform)[0])
        except AudioError as error:
            problems.append(str(error))
    if not waves:
        raise TeachError(f"No readable audio in {folder}: {problems[0]}")
    return torch.stack(waves)


def default_base() -> Path:
    """The shipped single 30-word model (not an ensemble) with the best validation figure."""
    files = single_models(checkpoint_files())
    name = best_checkpoint(files)
    if name is None:
        raise TeachError("No base checkpoint with a model card found; pass --base PATH.")
    return files[name]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--word", action="append", required=True, metavar="NAME=FOLDER",
                        help="a new word and the folder of its takes; repeat for more words")
    parser.add_argument("--base", help="the checkpoint to build on (default: the shipped model with the best "
                                       "validation figure); checkpoints/words.pt learns new words best")
    parser.add_argument("--shots", type=int, help="use K takes per word (chosen with --seed); default: all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only-new", action="store_true", help="the model knows only the new words")
    parser.add_argument("--out", required=True, help="the checkpoint to write (.pt)")
    args = parser.parse_args(argv)
    try:
        takes = {}
        for spec in args.word:
            name, separator, folder = spec.partition("=")
            if not separator or not name or not folder:
                raise TeachError(f"--word {spec!r}: expected NAME=FOLDER.")
            if name in takes:
                raise TeachError(f"'{name}' is given twice.")
            takes[name] = read_takes(folder, args.shots, args.seed)
        base = Predictor.from_checkpoint(args.base or default_base())
        taught = teach(base, takes, args.seed, args.only_new)
        path = save(taught, args.out)
    except (TeachError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {len(taught.predictor.classes)} classes ({', '.join(taught.new_words)} new); "
          f"leave-one-out accuracy of the takes {taught.leave_one_out:.2f}")
    for warning in taught.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
