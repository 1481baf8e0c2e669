"""Train the book's CNN on one feature variant.

    python -m speech.train --variant mel --data ../shared/speech_commands_real --extra-train data/tts \
        --epochs 10 --out checkpoints
    python -m speech.train --variant mel --data speechcommands:data/sc --download   # the full dataset
    python -m speech.train --variant mel --data ... --lr-find                       # learning-rate finder
    python -m speech.train --variant mel --arch tcresnet --spotting ...             # + _silence_, _unknown_
    torchrun --nproc_per_node=2 -m speech.train ...                                 # DistributedDataParallel

A data source is a ``<word>/*`` folder (split by speaker: a stable hash of the speaker id decides the
validation part) or ``speechcommands:ROOT`` (the official v0.01 lists). ``--extra-train`` folders only
ever go into training (synthetic voices must not inflate the validation figure).

``--spotting`` trains the word-spotting model: the 30 words plus ``_silence_`` (background-noise excerpts)
and ``_unknown_`` (``_unknown_/`` folders of extra sources, e.g. TTS of other words, plus each part's own
clips reversed or spliced into non-words, so validation speakers never reach training).

``--more-words FOLDER`` also trains an output for each ``FOLDER/<word>/`` (e.g. 1,000 other English words in
synthetic voices), all together a third of each epoch, and saves the model without them: its embedding has
learned to tell many more words apart, which is what a base for new words needs (``speech.teach``). Validation
scores the vocabulary's outputs only, as the saved model answers.

Writes into ``--out``: ``NAME.pt`` (best weights by validation loss), ``NAME.last.pt`` (full state to
``--resume``), ``NAME.log.csv`` (epoch,set,loss,acc), ``NAME.card.json`` (model card) and, with
``--lr-find``, ``NAME.lr_find.csv`` (lr,loss). Ctrl-C saves ``NAME.last.pt``; ``--resume`` continues
to the same result as an uninterrupted run.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import functools
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchaudio.transforms as T
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from speech.audio import from_int16
from speech.augment import AugmentConfig, augment
from speech.catalog import RESERVED_WORDS, SILENCE, SPOTTING_CLASSES, UNKNOWN
from speech.data import (
    BACKGROUND_FOLDER,
    CLASSES,
    CREDIT,
    VALIDATION_PERCENT,
    class_counts,
    download_speech_commands,
    folder_clips,
    labels_tensor,
    load_background_noise,
    load_waveforms,
    non_words,
    silence_clips,
    speaker_split,
    speech_commands_clips,
    speech_commands_folder,
)
from speech.evaluate import confusion_matrix, predict_batches, report_from_confusion
from speech.features import FeatureConfig, Featurizer
from speech.model import (
    CheckpointError,
    build_model,
    first_outputs,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    write_payload,
)
from speech.results import training_history

SPEECH_COMMANDS_PREFIX = "speechcommands:"
# Spotting: the share of an epoch each extra class gets relative to one word (unknown speech is varied).
SPOTTING_SHARES = {SILENCE: 2.0, UNKNOWN: 4.0}
# Distillation softens both models' logits by this temperature, so the student also learns which wrong words the
# teacher finds close (Hinton et al. 2015); the soft term is scaled by its square to keep its gradient's size.
DISTILL_TEMPERATURE = 2.0
NON_WORDS_PER_CLIP, SILENCE_PER_CLIP = 0.3, 0.1  # derived clips per real word clip of a part
MORE_WORDS_SHARE = 15.0  # --more-words: all of them together are drawn as often as this many vocabulary words


@dataclass
class TrainConfig:
    variant: str = "baseline"
    arch: str = "book"               # "book": the book's CNN; extras: "tcresnet" (temporal convolutions), "bcresnet"
    n_mels: int = 128                # mel bands of the mel variant
    top_db: float = 0.0              # floor each clip's log power at its peak minus this many dB; 0 = off
    f_min: float = 0.0               # lowest and highest frequency (Hz) the mel bands cover; f_max 0 = 8 kHz.
    f_max: float = 0.0               # 300 and 3400 keep only a telephone line's band
    data: list[str] = field(default_factory=lambda: ["../shared/speech_commands_real"])
    extra_train: list[str] = field(default_factory=list)
    download: bool = False           # download Speech Commands for speechcommands:ROOT sources
    validation_percent: float = VALIDATION_PERCENT  # of speakers, for folder sources
    epochs: int = 10
    epoch_size: int = 0              # clips drawn per epoch; 0 = the training set's size
    batch_size: int = 64
    max_lr: float = 1e-2
    patience: int = 3
    balanced: bool = True            # draw every word equally often
    min_real_share: float = 0.0      # with --balanced: real speakers' clips (from --data) get at least this share of
                                     # each word's draws (rare words have few); 0 = every clip equally often
    specaugment: bool = False
    speed: float = 0.0               # random speed change of each clip, 0.1 = 0.9-1.1x; 0 = off
    robust: bool = False             # microphone effects: clipping, band-limiting, quiet 16-bit takes
    robust_probability: float = 0.3  # with --robust: the share of clips each of those effects hits
    noise_probability: float = 0.5   # share of clips mixed with background noise
    min_snr_db: float = 5.0          # the noise's SNR is drawn from [this, 25] dB
    spotting: bool = False           # add the _silence_ and _unknown_ classes (the word-spotting model)
    more_words: str = ""             # a folder of <word>/ folders, trained as extra outputs and not saved
    neighbours: float = 0.0          # share of clips that also hear the edge of a neighbouring word (continuous
                                     # speech, as the spotting windows do); 0 = off
    init: str = ""                   # start from the weights of this checkpoint (same variant and architecture)
    dropout_ramp: float = 0.0        # raise dropout from 0 to the book's rates over this share of all steps
    label_smoothing: float = 0.0     # training targets (1 - s) on the word, s spread over all classes
    mixup: float = 0.0               # mix each clip's features with another clip's, weight ~ Beta(a, a) for a =
                                     # this, and its targets alike (Zhang et al. 2018); 0 = off
    ema: float = 0.0                 # keep an exponential moving average of the weights with this decay per step
                                     # (e.g. 0.999); validation and the saved weights use the average; 0 = off
    teacher: list[str] = field(default_factory=list)  # distillation: also learn these checkpoints' mean
                                     # softened probabilities on the same augmented clips (any architecture and
                                     # input; the same classes)
    distill_weight: float = 0.5      # with --teacher: the share of the loss that follows the teacher
    seed: int = 0
    device: str = "auto"
    out: str = "runs"
    name: str = ""                   # file stem; default: the variant
    resume: bool = False
    lr_find: bool = False
    lr_find_steps: int = 100
    threads: int = 0                 # torch CPU threads; 0 = torch's default
    bf16: bool = True                # bfloat16 autocast where the device has it natively (see native_bf16)

    @property
    def stem(self) -> str:
        return self.name or self.variant

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The classes of the saved model."""
        return SPOTTING_CLASSES if self.spotting else CLASSES

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes trained: the vocabulary, then the ``--more-words`` folder's words."""
        return self.vocabulary + (more_word_names(self.more_words) if self.more_words else ())


def more_word_names(folder: str) -> tuple[str, ...]:
    """The word folders of ``folder``, sorted. Raises TrainError when there is none, or one is a vocabulary or
    reserved word (those must come from real data, or never be trained on)."""
    root = Path(folder)
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir())) if root.is_dir() else ()
    if not names:
        raise TrainError(f"--more-words: {folder} holds no word folders (make one with python -m speech.tts "
                         "--set more-words).")
    clash = sorted(set(names) & {*SPOTTING_CLASSES, *RESERVED_WORDS})
    if clash:
        raise TrainError(f"--more-words: {folder} holds {', '.join(clash)}, a vocabulary or reserved word.")
    return names


class TrainError(ValueError):
    """The run cannot start (no data, a mismatched ``--init`` checkpoint); ``main`` prints it, exit code 2."""


@dataclass
class Data:
    """Decoded clips. Waves are int16 ``[n, 16000]``; labels int64 ``[n]``; noise float32 ``[time]``."""

    train_waves: torch.Tensor
    train_labels: torch.Tensor
    val_waves: torch.Tensor
    val_labels: torch.Tensor
    noise: torch.Tensor
    counts: dict  # source -> {"training": {...}, "validation": {...}}
    real_count: int = 0  # the first this many training clips are real speakers' (from --data), the rest synthetic


def gather_data(config: TrainConfig, rank: int = 0) -> Data:
    """Decode every source: folder sources split by speaker, the official lists for ``speechcommands:ROOT``,
    ``extra_train`` folders into training only; for spotting, add each part's silence and non-words.
    Raises TrainError when either part is empty."""
    train, val, counts, noise = [], [], {}, []
    for source in config.data:
        if source.startswith(SPEECH_COMMANDS_PREFIX):
            root = source[len(SPEECH_COMMANDS_PREFIX):]
            if config.download and rank == 0:
                try:
                    download_speech_commands(root)
                except RuntimeError as error:  # the server cannot be reached, or the archive is damaged
                    raise TrainError(str(error)) from None
            if dist.is_initialized():
                dist.barrier()
            folder = speech_commands_folder(root)
            source_train, source_val = (speech_commands_clips(root, "training"),
                                        speech_commands_clips(root, "validation"))
        else:
            folder = Path(source)
            source_train, source_val = speaker_split(folder, config.validation_percent)
        train += source_train
        val += source_val
        counts[source] = {"training": class_counts(source_train), "validation": class_counts(source_val)}
        noise.append(load_background_noise(Path(folder) / BACKGROUND_FOLDER))
    real_count = len(train)  # the --data sources' clips come first
    for source in config.extra_train:
        extra = folder_clips(source, config.classes)
        train += extra
        counts[source] = {"training": class_counts(extra, config.vocabulary), "validation": class_counts([])}
    if config.more_words:
        more = folder_clips(config.more_words, config.classes)
        train += more
        counts[config.more_words] = {"training": class_counts(more, ()), "validation": {}}
    if not train or not val:
        raise TrainError(f"need clips for both training and validation; found {len(train)} and {len(val)} "
                         f"under {', '.join(config.data)}. Check --data and --validation-percent.")
    data = Data(load_waveforms(train, desc="training clips"), labels_tensor(train, config.classes),
                load_waveforms(val, desc="validation clips"), labels_tensor(val, config.classes),
                torch.cat(noise), counts, real_count)
    if config.spotting:  # each part's own non-words and noise, so validation speakers never reach training
        data.train_waves, data.train_labels, trained = with_spotting_clips(data.train_waves, data.train_labels,
                                                                           data.noise, config.seed * 2)
        data.val_waves, data.val_labels, validated = with_spotting_clips(data.val_waves, data.val_labels,
                                                                         data.noise, config.seed * 2 + 1)
        data.counts["derived"] = {"training": trained, "validation": validated}
    return data


def with_spotting_clips(waves: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor,
                        seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One part's int16 ``waves [n, length]`` and ``labels [n]`` followed by ``_unknown_`` non-words made from its
    word clips and ``_silence_`` excerpts of ``noise``; also the counts added, by class."""
    words = labels < len(CLASSES)
    unknown = non_words(waves[words], labels[words], int(NON_WORDS_PER_CLIP * int(words.sum())), seed)
    silence = silence_clips(noise, int(SILENCE_PER_CLIP * int(words.sum())), waves.shape[1], seed)
    new_labels = [torch.full((len(unknown),), SPOTTING_CLASSES.index(UNKNOWN)),
                  torch.full((len(silence),), SPOTTING_CLASSES.index(SILENCE))]
    return (torch.cat([waves, unknown, silence]), torch.cat([labels, *new_labels]),
            {UNKNOWN: len(unknown), SILENCE: len(silence)})


def epoch_indices(labels: torch.Tensor, size: int, balanced: bool, seed: int, epoch: int,
                  shares: Optional[torch.Tensor] = None, real_count: int = 0,
                  min_real_share: float = 0.0) -> torch.Tensor:
    """The clip indices of one epoch, the same on every rank and on resume (depends only on seed, epoch).
    Balanced: every class equally often, or in proportion to ``shares [classes]`` when given. Within a class
    every clip is drawn equally often, except that its real clips (the first ``real_count``) get at least
    ``min_real_share`` of the class's draws."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if not balanced:
        return torch.randperm(len(labels), generator=generator)[:size]
    counts = torch.bincount(labels).float()
    clip_share = 1 / counts[labels]
    if min_real_share > 0:
        real = torch.arange(len(labels)) < real_count
        real_counts = torch.bincount(labels[real], minlength=len(counts)).float()
        # a class's natural real share, raised to the minimum; 0 for a class without real clips, 1 for one without
        # synthetic clips (already its natural share)
        real_share = (real_counts / counts).clamp_min(min_real_share) * (real_counts > 0)
        clip_share = torch.where(real, real_share[labels] / real_counts[labels].clamp_min(1),
                                 (1 - real_share[labels]) / (counts - real_counts)[labels].clamp_min(1))
    weights = (1.0 if shares is None else shares[labels]) * clip_share
    return torch.multinomial(weights, size, replacement=True, generator=generator)


def class_shares(classes: tuple[str, ...], vocabulary_size: int) -> torch.Tensor:
    """float ``[classes]``: 1 for each word, :data:`SPOTTING_SHARES` for the spotting classes, and
    :data:`MORE_WORDS_SHARE` split among the classes after the first ``vocabulary_size`` (``--more-words``)."""
    more = len(classes) - vocabulary_size
    return torch.tensor([SPOTTING_SHARES.get(c, 1.0) if i < vocabulary_size else MORE_WORDS_SHARE / more
                         for i, c in enumerate(classes)])


def dropout_rates(model: torch.nn.Module) -> dict:
    """Each dropout layer with its rate as built (the book's rates)."""
    return {m: m.p for m in model.modules() if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d))}


def scale_dropout(rates: dict, scale: float) -> None:
    """Curriculum dropout: set every layer to ``scale`` x its book rate. The book's heavy Dropout2d slows
    early learning on small data; ramping it in over the first steps keeps the final architecture."""
    for module, rate in rates.items():
        module.p = rate * scale


@functools.cache  # asked on every training step (Run.autocast); the hardware does not change during a run
def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or
    AMX (Linux reports them in /proc/cpuinfo). Elsewhere bf16 autocast is emulated and slower than fp32.
    On this lab's CPU it makes a step of the book's CNN about 2x faster (benchmarks/training_step.py)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Interrupt:
    """Turns Ctrl-C into a flag so the loop can save before it stops (a context manager that restores
    the previous handler)."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, *_):
        self.requested = True

    def agreed(self, device) -> bool:
        """True on every rank when any rank was interrupted (so no rank blocks in a collective)."""
        if not dist.is_initialized():
            return self.requested
        flag = torch.tensor([float(self.requested)], device=device)
        dist.all_reduce(flag)
        return bool(flag.item())


def rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "augment": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclass
class TrainState:
    """Where the run is; saved in ``NAME.last.pt`` as plain values so ``--resume`` continues exactly."""

    epoch: int = 0            # epochs completed
    step: int = 0             # batches done in the current epoch
    best_loss: float = math.inf
    best_epoch: int = -1
    best_report: dict = field(default_factory=dict)
    bad_epochs: int = 0       # epochs since the validation loss last improved
    loss_sum: float = 0.0     # this epoch's training sums, for the running means
    accuracy_sum: float = 0.0
    batches: int = 0
    elapsed: float = 0.0      # seconds of training, over all sessions of a resumed run


@dataclass
class Run:
    """Everything one training process works with (built once by :func:`prepare`)."""

    config: TrainConfig
    device: torch.device
    rank: int
    world: int
    features: FeatureConfig
    model: torch.nn.Module            # the plain model (the weights the optimizer moves)
    step_model: torch.nn.Module       # what the training step calls: the model, or its DDP wrapper
    featurizer: Featurizer
    data: Data
    optimizer: torch.optim.Optimizer
    augmentation: AugmentConfig
    masks: Optional[torch.nn.Module]  # SpecAugment, or None
    generator: torch.Generator        # augmentation randomness (on the device)
    noise: torch.Tensor
    book_dropout: dict
    paths: dict
    initial_card: Optional[dict]
    averaged: Optional[AveragedModel] = None  # --ema: the moving average of the weights
    teacher: Optional[Teacher] = None  # --teacher, fixed

    @property
    def kept_model(self) -> torch.nn.Module:
        """The weights that are validated and saved: the moving average with ``--ema``, else the model."""
        return self.averaged.module if self.averaged is not None else self.model

    @property
    def per_rank_batch(self) -> int:
        return max(self.config.batch_size // self.world, 1)

    @property
    def global_batch(self) -> int:
        """Clips per optimiser step over all ranks."""
        return self.per_rank_batch * self.world

    @property
    def steps_per_epoch(self) -> int:
        return max((self.config.epoch_size or len(self.data.train_labels)) // self.global_batch, 1)

    def epoch_indices(self, epoch: int, size: int) -> torch.Tensor:
        config = self.config
        return epoch_indices(self.data.train_labels, size, config.balanced, config.seed, epoch,
                             class_shares(config.classes, len(config.vocabulary)), self.data.real_count,
                             config.min_real_share)

    def batch_indices(self, indices: torch.Tensor, step: int) -> torch.Tensor:
        """This rank's share of global batch ``step`` of an epoch's ``indices``."""
        return indices[step * self.global_batch:(step + 1) * self.global_batch][self.rank::self.world]

    @property
    def bf16(self) -> bool:
        """Whether training steps run under bfloat16 autocast (validation is always fp32)."""
        return self.config.bf16 and native_bf16(self.device)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @property
    def main_process(self) -> bool:
        return self.rank == 0


def microphone_effects(probability: float) -> dict:
    """AugmentConfig fields of --robust: clipping, a band and a quiet take, each hitting this share of clips."""
    return dict(clip_probability=probability, band_probability=probability, quiet_probability=probability)


def prepare(config: TrainConfig, data: Optional[Data] = None) -> Run:
    """Start the process group (under torchrun), build the model, decode the data (unless ``data`` is given
    already decoded, as benchmarks do)."""
    device = pick_device(config.device)
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{config.stem}{suffix}" for k, suffix in
             [("best", ".pt"), ("last", ".last.pt"), ("log", ".log.csv"), ("card", ".card.json"),
              ("lr_find", ".lr_find.csv")]}
    # The model first: a wrong variant, architecture or --init checkpoint fails before minutes of decoding.
    try:
        features = FeatureConfig(variant=config.variant, n_mels=config.n_mels, f_min=config.f_min,
                                 f_max=config.f_max or None, top_db=config.top_db or None)
        model = build_model(config.arch, features, len(config.classes))
    except ValueError as error:  # an unknown variant or architecture, or features the architecture cannot take
        raise TrainError(str(error)) from None
    initial_card = initialize(model, features, config.classes, config.init) if config.init else None
    teacher = load_teacher(config.teacher, config.classes, device) if config.teacher else None
    data = data or gather_data(config, rank)
    model = model.to(device, memory_format=torch.channels_last)
    masks = torch.nn.Sequential(T.FrequencyMasking(features.n_bins // 8, iid_masks=True),
                                T.TimeMasking(10, iid_masks=True)).to(device) if config.specaugment else None
    return Run(config=config, device=device, rank=rank, world=world, features=features, model=model,
               step_model=DistributedDataParallel(model) if world > 1 else model,
               featurizer=Featurizer(features).to(device), data=data,
               optimizer=torch.optim.Adam(model.parameters(), lr=config.max_lr),
               augmentation=AugmentConfig(speed=(1 - config.speed, 1 + config.speed),
                                          noise_probability=config.noise_probability,
                                          snr_db=(config.min_snr_db, AugmentConfig.snr_db[1]),
                                          neighbour_probability=config.neighbours,
                                          **(microphone_effects(config.robust_probability) if config.robust
                                             else {})),
               masks=masks, generator=torch.Generator(device=device).manual_seed(config.seed * 1000 + rank),
               noise=data.noise.to(device), book_dropout=dropout_rates(model), paths=paths,
               initial_card=initial_card,
               averaged=AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
               if config.ema else None,
               teacher=teacher)


class Teacher(torch.nn.Module):
    """One or more fixed models as one distillation teacher: float32 waveform ``[batch, 16000]`` -> log-probabilities
    ``[batch, classes]`` softened by :data:`DISTILL_TEMPERATURE`, the mean of the members' probabilities. Each
    member is a ``Sequential(Featurizer, model)``, so members may differ in architecture and input."""

    def __init__(self, members: list[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        log_probabilities = torch.stack([F.log_softmax(member(waves).float() / DISTILL_TEMPERATURE, 1)
                                         for member in self.members])
        return torch.logsumexp(log_probabilities, 0) - math.log(len(self.members))


def read_model(path: str, flag: str) -> tuple[dict, torch.nn.Module, FeatureConfig]:
    """The checkpoint ``path`` that option ``flag`` names: (payload, model in eval mode, its features). Raises
    TrainError, naming the option, when it is no checkpoint this version can build."""
    try:
        payload = load_checkpoint(path)
        return (payload, *model_from_checkpoint(payload))
    except CheckpointError as error:
        raise TrainError(f"{flag}: {error}") from None


def load_teacher(paths: list[str], classes: tuple[str, ...], device: torch.device) -> Teacher:
    """The ``--teacher`` checkpoints as one fixed :class:`Teacher`. Raises TrainError when one is no checkpoint or
    knows other classes than this run."""
    members = []
    for path in paths:
        payload, model, features = read_model(path, "--teacher")
        if payload["classes"] != list(classes):
            raise TrainError(f"--teacher: {path} knows {len(payload['classes'])} classes, not this run's "
                             f"{len(classes)}; a teacher must have the same classes in the same order.")
        members.append(torch.nn.Sequential(Featurizer(features), model))
    return Teacher(members).to(device).eval().requires_grad_(False)


def distillation_loss(logits: torch.Tensor, teacher_log_probabilities: torch.Tensor) -> torch.Tensor:
    """KL divergence from the teacher's softened probabilities (:class:`Teacher`) to the student's ``logits``
    softened alike, both ``[batch, classes]`` float32, scaled by the temperature squared; a scalar."""
    t = DISTILL_TEMPERATURE
    return F.kl_div(F.log_softmax(logits / t, 1), teacher_log_probabilities, log_target=True,
                    reduction="batchmean") * t * t


def mixup_pairs(batch: int, alpha: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup's partners: each clip's own share ``[batch]`` (drawn from Beta(alpha, alpha), folded to at least 0.5 so
    the clip's own word leads) and the index ``[batch]`` of the clip it is mixed with. ``alpha`` 0: shares of 1."""
    if alpha <= 0:
        return torch.ones(batch, device=generator.device), torch.arange(batch, device=generator.device)
    # Beta(a, a) as a two-way Dirichlet: the only sampler that takes the run's generator, so --resume repeats it
    share = torch._sample_dirichlet(torch.full((batch, 2), alpha, device=generator.device), generator=generator)
    return share.max(1).values, torch.randperm(batch, generator=generator, device=generator.device)


def mixed(values: torch.Tensor, share: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """``share`` of each row of ``values [batch, ...]`` plus ``1 - share`` of its partner's row."""
    share = share.view(-1, *([1] * (values.dim() - 1)))
    return share * values + (1 - share) * values[partner]


def mixed_log_probabilities(log_probabilities: torch.Tensor, share: torch.Tensor,
                            partner: torch.Tensor) -> torch.Tensor:
    """The log of the :func:`mixed` probabilities of ``log_probabilities [batch, classes]``: the target of a mixed
    clip mixes its two clips' targets."""
    share = share.unsqueeze(1)
    return torch.logaddexp(share.log() + log_probabilities, (1 - share).log() + log_probabilities[partner])


def train_step(run: Run, indices: torch.Tensor) -> tuple[float, float]:
    """One optimiser step on the clips ``indices``: (loss, accuracy) of the batch."""
    run.step_model.train()
    waves = augment(from_int16(run.data.train_waves[indices]).to(run.device), run.noise, run.augmentation,
                    run.generator)
    x = run.featurizer(waves)
    if run.masks is not None:
        x = run.masks(x)
    y = run.data.train_labels[indices].to(run.device)
    share, partner = mixup_pairs(len(y), run.config.mixup, run.generator)
    x = mixed(x, share, partner)
    with run.autocast():
        logits = run.step_model(x.contiguous(memory_format=torch.channels_last)).float()
        loss = mixed(F.cross_entropy(logits, y, label_smoothing=run.config.label_smoothing, reduction="none"),
                     share, partner).mean()
        if run.teacher is not None:
            with torch.no_grad():
                teacher_log_probabilities = mixed_log_probabilities(run.teacher(waves), share, partner)
            weight = run.config.distill_weight
            loss = (1 - weight) * loss + weight * distillation_loss(logits, teacher_log_probabilities)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    if run.averaged is not None:
        run.averaged.update_parameters(run.model)
    return loss.item(), (logits.argmax(1) == y).float().mean().item()


def validate(run: Run) -> tuple[float, torch.Tensor]:
    """Mean loss and confusion ``[classes, classes]`` on the validation clips, computed exactly as
    ``speech.evaluate`` does (:func:`speech.evaluate.predict_batches`: eval mode, fp32), each rank scoring
    its share and the sums all-reduced."""
    waves, labels = run.data.val_waves[run.rank::run.world], run.data.val_labels[run.rank::run.world].to(run.device)
    vocabulary = len(run.config.vocabulary)  # what the saved model answers with (no --more-words outputs)
    logits = predict_batches(run.kept_model, run.featurizer, waves, device=run.device)[:, :vocabulary]
    loss = F.cross_entropy(logits, labels, reduction="sum").reshape(1)
    confusion = confusion_matrix(labels, logits.argmax(1), vocabulary)
    if dist.is_initialized():
        dist.all_reduce(loss)
        dist.all_reduce(confusion)
    return loss.item() / max(int(confusion.sum()), 1), confusion.cpu()


def run_epoch(run: Run, state: TrainState, scheduler, interrupt: Interrupt) -> bool:
    """Train from ``state.step`` to the end of epoch ``state.epoch``; False when Ctrl-C stopped it."""
    config = run.config
    indices = run.epoch_indices(state.epoch, run.steps_per_epoch * run.global_batch)
    bar = tqdm(range(state.step, run.steps_per_epoch), desc=f"epoch {state.epoch + 1}/{config.epochs}",
               disable=not run.main_process, unit="batch", initial=state.step, total=run.steps_per_epoch)
    tick = time.time()
    for step in bar:
        if config.dropout_ramp > 0:
            done = (state.epoch * run.steps_per_epoch + step) / (config.epochs * run.steps_per_epoch)
            scale_dropout(run.book_dropout, min(1.0, done / config.dropout_ramp))
        loss, accuracy = train_step(run, run.batch_indices(indices, step))
        scheduler.step()
        state.loss_sum += loss
        state.accuracy_sum += accuracy
        state.batches += 1
        state.step = step + 1
        bar.set_postfix(loss=f"{state.loss_sum / state.batches:.3f}", acc=f"{state.accuracy_sum / state.batches:.3f}")
        if interrupt.agreed(run.device):
            state.elapsed += time.time() - tick
            return False
    state.elapsed += time.time() - tick
    return True


def end_epoch(run: Run, state: TrainState) -> None:
    """Validate, log, keep the best weights, and move ``state`` to the next epoch."""
    val_loss, confusion = validate(run)
    report = report_from_confusion(confusion, run.config.vocabulary)
    train_loss, train_accuracy = state.loss_sum / state.batches, state.accuracy_sum / state.batches
    if run.main_process:
        with open(run.paths["log"], "a", newline="") as handle:
            csv.writer(handle).writerows([(state.epoch + 1, "train", f"{train_loss:.5f}", f"{train_accuracy:.5f}"),
                                          (state.epoch + 1, "valid", f"{val_loss:.5f}", f"{report.accuracy:.5f}")])
        print(f"epoch {state.epoch + 1}: train loss {train_loss:.3f} acc {train_accuracy:.3f} | valid loss "
              f"{val_loss:.3f} acc {report.accuracy:.3f} macro {report.macro_accuracy:.3f}", file=sys.stderr)
    if val_loss < state.best_loss:
        state.best_loss, state.best_epoch, state.bad_epochs = val_loss, state.epoch + 1, 0
        state.best_report = report.to_dict()
        if run.main_process:
            vocabulary = run.config.vocabulary
            save_checkpoint(run.paths["best"], first_outputs(run.kept_model, len(vocabulary)), run.features,
                            vocabulary)
    else:
        state.bad_epochs += 1
    state.epoch, state.step, state.loss_sum, state.accuracy_sum, state.batches = state.epoch + 1, 0, 0.0, 0.0, 0


def save_last(run: Run, state: TrainState, scheduler) -> None:
    """The full state of the run (every rank's random state too) to ``NAME.last.pt``, for ``--resume``."""
    rngs = [None] * run.world
    if dist.is_initialized():
        dist.all_gather_object(rngs, rng_state(run.generator))
    else:
        rngs = [rng_state(run.generator)]
    if run.main_process:
        save_checkpoint(run.paths["last"], run.model, run.features, run.config.classes,
                        optimizer=run.optimizer.state_dict(), scheduler=scheduler.state_dict(), rng=rngs,
                        state=dataclasses.asdict(state),
                        **({"averaged": run.averaged.state_dict()} if run.averaged is not None else {}))


def train(config: TrainConfig) -> Optional[dict]:
    """Run training (or the lr finder); returns the model card on rank 0 of a run that finished.
    Raises TrainError or CheckpointError when the run cannot start."""
    try:
        run = prepare(config)
        if config.lr_find:
            lr_find(run)
            return None
        return fit(run)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def fit(run: Run) -> Optional[dict]:
    """The training loop: epochs of steps, validation after each, early stopping, Ctrl-C saves and stops."""
    config, paths = run.config, run.paths
    scheduler = torch.optim.lr_scheduler.OneCycleLR(run.optimizer, config.max_lr,
                                                    total_steps=config.epochs * run.steps_per_epoch)
    state = TrainState()
    if config.resume and paths["last"].is_file():
        saved = load_checkpoint(paths["last"])
        run.model.load_state_dict(saved["state_dict"])
        run.optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"][run.rank], run.generator)
        if run.averaged is not None:
            run.averaged.load_state_dict(saved["averaged"])
        state = TrainState(**saved["state"])
        if run.main_process:
            print(f"resuming at epoch {state.epoch + 1}, step {state.step}", file=sys.stderr)
    elif run.main_process:
        paths["log"].write_text("epoch,set,loss,acc\n")

    with Interrupt() as interrupt:
        while state.epoch < config.epochs and state.bad_epochs < config.patience:
            if not run_epoch(run, state, scheduler, interrupt):
                save_last(run, state, scheduler)
                if run.main_process:
                    print(f"\ninterrupted: state saved to {paths['last']}; continue with --resume", file=sys.stderr)
                return None
            end_epoch(run, state)
            save_last(run, state, scheduler)
    if state.bad_epochs >= config.patience and run.main_process:
        print(f"early stop: no better validation loss for {config.patience} epochs", file=sys.stderr)
    if not run.main_process:
        return None
    card = build_model_card(run, state)
    best = load_checkpoint(paths["best"])
    write_payload(paths["best"], {**best, "card": card})
    paths["card"].write_text(json.dumps(card, indent=2) + "\n")
    print(f"best epoch {state.best_epoch}: valid macro accuracy {card['validation']['macro_accuracy']:.3f}; "
          f"wrote {paths['best']}", file=sys.stderr)
    return card


def initialize(model: torch.nn.Module, features: FeatureConfig, classes: tuple[str, ...], path: str) -> dict:
    """Load the weights of checkpoint ``path`` into ``model`` (fine-tuning, or continuing a shipped model on
    more data); returns that checkpoint's card (empty when it has none). When the classes differ (a 30-word
    model starting the spotting model) every layer but the last is loaded and the last starts fresh.
    Raises TrainError on another mismatch."""
    payload, source, source_features = read_model(path, "--init")
    if source.arch != model.arch or source_features != features:
        raise TrainError(f"--init: {path} holds a {source.arch} model on {source_features.variant} features "
                         f"{source_features.to_dict()}, not this run's {model.arch} model on {features.to_dict()}.")
    if payload["classes"] == list(classes):
        model.load_state_dict(source.state_dict())
    else:
        shapes = {name: value.shape for name, value in model.state_dict().items()}
        model.load_state_dict({name: value for name, value in source.state_dict().items()
                               if shapes[name] == value.shape}, strict=False)
    return payload.get("card") or {}


def lr_find(run: Run, start_lr: float = 1e-6, end_lr: float = 1.0) -> None:
    """Exponentially raise the lr over ``lr_find_steps`` batches; write ``lr,loss`` (smoothed loss) until the
    loss runs away (4x its best)."""
    steps = run.config.lr_find_steps
    indices = run.epoch_indices(0, steps * run.global_batch)
    rows, smooth, best = [], 0.0, math.inf
    for step in tqdm(range(steps), desc="lr finder", disable=not run.main_process):
        lr = start_lr * (end_lr / start_lr) ** (step / max(steps - 1, 1))
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        loss, _ = train_step(run, run.batch_indices(indices, step))
        smooth = 0.95 * smooth + 0.05 * loss
        rows.append((lr, smooth / (1 - 0.95 ** (step + 1))))  # debiased exponential moving average
        best = min(best, rows[-1][1])
        if rows[-1][1] > 4 * best and step > 10:
            break
    if run.main_process:
        with open(run.paths["lr_find"], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["lr", "loss"])
            writer.writerows([(f"{lr:.6g}", f"{loss:.5f}") for lr, loss in rows])
        print(f"wrote {run.paths['lr_find']}", file=sys.stderr)


def build_model_card(run: Run, state: TrainState) -> dict:
    """What the checkpoint is, what it was trained on and how, and how it did on the validation speakers."""
    config, data, report = run.config, run.data, state.best_report
    card = {
        "variant": config.variant,
        "arch": config.arch,
        "date": datetime.date.today().isoformat(),
        "classes": list(config.vocabulary),
        "features": run.features.to_dict(),
        "data": {"sources": data.counts, "training_clips": len(data.train_labels),
                 "validation_clips": len(data.val_labels),
                 "split": f"speaker-disjoint: {config.validation_percent:g}% of speakers (stable hash) "
                          "of each folder source for validation; --extra-train sources train only"},
        "augmentation": {**dataclasses.asdict(run.augmentation), "specaugment": config.specaugment,
                         "balanced_sampling": config.balanced, "dropout_ramp": config.dropout_ramp,
                         **({"min_real_share": config.min_real_share} if config.min_real_share else {})},
        "training": {"epochs_run": state.epoch, "best_epoch": state.best_epoch, "max_epochs": config.epochs,
                     "epoch_size": config.epoch_size, "batch_size": config.batch_size, "max_lr": config.max_lr,
                     "label_smoothing": config.label_smoothing, "mixup": config.mixup, "weight_ema": config.ema,
                     **({"teacher": config.teacher, "distill_weight": config.distill_weight,
                         "distill_temperature": DISTILL_TEMPERATURE} if config.teacher else {}),
                     **({"more_words": len(config.classes) - len(config.vocabulary)} if config.more_words else {}),
                     "bf16_autocast": run.bf16, "seed": config.seed, "processes": run.world,
                     "train_seconds": round(state.elapsed, 1),
                     "command": "python -m speech.train " + " ".join(sys.argv[1:])},
        **({"initialized_from": {"checkpoint": config.init, "training": run.initial_card.get("training", {}),
                                 "validation_macro_accuracy":
                                     run.initial_card.get("validation", {}).get("macro_accuracy"),
                                 "history": training_history(Path(config.init))}}
           if config.init else {}),
        "validation": {"accuracy": report["accuracy"], "macro_accuracy": report["macro_accuracy"],
                       "per_class": report["per_class"], "n": report["n"]},
        "credit": CREDIT,
    }
    return json.loads(json.dumps(card))  # plain JSON types, so the card in the checkpoint equals the file


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="+", default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args(argv)
    return TrainConfig(**vars(args))


def main(argv=None) -> int:
    try:
        train(parse_args(argv))
    except (TrainError, CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
