"""Train the book's CNN on one feature variant.

    python -m speech.train --variant mel --data ../shared/speech_commands_real --extra-train data/tts \
        --epochs 10 --out checkpoints
    python -m speech.train --variant mel --data speechcommands:data/sc --download   # the full dataset
    python -m speech.train --variant mel --data ... --lr-find                       # learning-rate finder
    torchrun --nproc_per_node=2 -m speech.train ...                                 # DistributedDataParallel

A data source is a ``<word>/*`` folder (split by speaker: a stable hash of the speaker id decides the
validation part) or ``speechcommands:ROOT`` (the official v0.01 lists). ``--extra-train`` folders only
ever go into training (synthetic voices must not inflate the validation figure).

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
from tqdm import tqdm

from speech.augment import AugmentConfig, augment
from speech.data import (BACKGROUND_FOLDER, CLASSES, CREDIT, class_counts, download_speech_commands,
                         folder_clips, labels_tensor, load_background_noise, load_waveforms,
                         speech_commands_clips, speech_commands_folder, split_clips)
from speech.evaluate import as_float, confusion_matrix, report_from_confusion
from speech.features import FeatureConfig, Featurizer
from speech.model import CheckpointError, build_model, load_checkpoint, model_from_checkpoint, save_checkpoint

SPEECH_COMMANDS_PREFIX = "speechcommands:"


@dataclass
class TrainConfig:
    variant: str = "baseline"
    arch: str = "book"               # "book": the book's CNN; "tcresnet": the extra temporal-convolution ResNet
    n_mels: int = 128                # mel bands of the mel variant
    data: list[str] = field(default_factory=lambda: ["../shared/speech_commands_real"])
    extra_train: list[str] = field(default_factory=list)
    download: bool = False           # download Speech Commands for speechcommands:ROOT sources
    validation_percent: float = 15.0  # of speakers, for folder sources
    epochs: int = 10
    epoch_size: int = 0              # clips drawn per epoch; 0 = the training set's size
    batch_size: int = 64
    max_lr: float = 1e-2
    patience: int = 3
    balanced: bool = True            # draw every word equally often
    specaugment: bool = False
    speed: float = 0.0               # random speed change of each clip, 0.1 = 0.9-1.1x; 0 = off
    init: str = ""                   # start from the weights of this checkpoint (same variant and architecture)
    dropout_ramp: float = 0.0        # raise dropout from 0 to the book's rates over this share of all steps
    seed: int = 0
    device: str = "auto"
    out: str = "runs"
    name: str = ""                   # file stem; default: the variant
    resume: bool = False
    lr_find: bool = False
    lr_find_steps: int = 100
    threads: int = 0                 # torch CPU threads; 0 = torch's default
    bf16: bool = False               # bfloat16 autocast (2-3x faster on CPUs with AVX512-BF16/AMX and on GPUs)

    @property
    def stem(self) -> str:
        return self.name or self.variant


@dataclass
class Data:
    """Decoded clips. Waves are int16 ``[n, 16000]``; labels int64 ``[n]``; noise float32 ``[time]``."""

    train_waves: torch.Tensor
    train_labels: torch.Tensor
    val_waves: torch.Tensor
    val_labels: torch.Tensor
    noise: torch.Tensor
    counts: dict  # source -> {"training": {...}, "validation": {...}}


def gather_data(config: TrainConfig, rank: int = 0) -> Data:
    train, val, counts, noise = [], [], {}, []
    for source in config.data:
        if source.startswith(SPEECH_COMMANDS_PREFIX):
            root = source[len(SPEECH_COMMANDS_PREFIX):]
            if config.download and rank == 0:
                download_speech_commands(root)
            if dist.is_initialized():
                dist.barrier()
            folder = speech_commands_folder(root)
            source_train, source_val = (speech_commands_clips(root, "training"),
                                        speech_commands_clips(root, "validation"))
        else:
            folder = Path(source)
            every = folder_clips(folder)
            source_train = split_clips(every, "training", config.validation_percent, 0)
            source_val = split_clips(every, "validation", config.validation_percent, 0)
        train += source_train
        val += source_val
        counts[source] = {"training": class_counts(source_train), "validation": class_counts(source_val)}
        noise.append(load_background_noise(Path(folder) / BACKGROUND_FOLDER))
    for source in config.extra_train:
        extra = folder_clips(source)
        train += extra
        counts[source] = {"training": class_counts(extra), "validation": class_counts([])}
    if not train or not val:
        raise SystemExit("error: need clips for both training and validation; check --data.")
    return Data(load_waveforms(train, desc="training clips"), labels_tensor(train),
                load_waveforms(val, desc="validation clips"), labels_tensor(val), torch.cat(noise), counts)


def epoch_indices(labels: torch.Tensor, size: int, balanced: bool, seed: int, epoch: int) -> torch.Tensor:
    """The clip indices of one epoch, the same on every rank and on resume (depends only on seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if not balanced:
        return torch.randperm(len(labels), generator=generator)[:size]
    counts = torch.bincount(labels, minlength=len(CLASSES)).float()
    weights = 1.0 / counts[labels]
    return torch.multinomial(weights, size, replacement=True, generator=generator)


def dropout_rates(model: torch.nn.Module) -> dict:
    """Each dropout layer with its rate as built (the book's rates)."""
    return {m: m.p for m in model.modules() if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d))}


def scale_dropout(rates: dict, scale: float) -> None:
    """Curriculum dropout: set every layer to ``scale`` x its book rate. The book's heavy Dropout2d slows
    early learning on small data; ramping it in over the first steps keeps the final architecture."""
    for module, rate in rates.items():
        module.p = rate * scale


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


@torch.inference_mode()
def validate(model, featurizer, waves, labels, device, autocast, batch_size=256) -> tuple[float, torch.Tensor]:
    """Summed loss and confusion over this rank's share of the validation set (all-reduced under DDP)."""
    model.eval()
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    waves, labels = waves[rank::world], labels[rank::world]
    loss = torch.zeros(1, device=device)
    confusion = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.int64, device=device)
    for start in range(0, len(waves), batch_size):
        x = featurizer(as_float(waves[start:start + batch_size]).to(device))
        y = labels[start:start + batch_size].to(device)
        with autocast():
            logits = model(x.contiguous(memory_format=torch.channels_last)).float()
        loss += F.cross_entropy(logits, y, reduction="sum")
        confusion += confusion_matrix(y, logits.argmax(1), len(CLASSES))
    if dist.is_initialized():
        dist.all_reduce(loss)
        dist.all_reduce(confusion)
    return loss.item() / max(int(confusion.sum()), 1), confusion.cpu()


def train(config: TrainConfig) -> Optional[dict]:
    """Run training (or the lr finder); returns the model card on rank 0."""
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = pick_device(config.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    main_process = rank == 0
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{config.stem}{suffix}" for k, suffix in
             [("best", ".pt"), ("last", ".last.pt"), ("log", ".log.csv"), ("card", ".card.json"),
              ("lr_find", ".lr_find.csv")]}

    # The model first: a wrong variant, architecture or --init checkpoint fails before minutes of decoding.
    features = FeatureConfig(variant=config.variant, n_mels=config.n_mels)
    model = build_model(config.arch, features, len(CLASSES))
    initial_card = initialize(model, features, config.init) if config.init else None
    data = gather_data(config, rank)
    featurizer = Featurizer(features).to(device)
    model = model.to(device, memory_format=torch.channels_last)
    ddp_model = DistributedDataParallel(model) if distributed else model
    book_dropout = dropout_rates(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.max_lr)
    epoch_size = config.epoch_size or len(data.train_labels)
    per_rank_batch = max(config.batch_size // world, 1)
    steps_per_epoch = max(epoch_size // (per_rank_batch * world), 1)
    noise = data.noise.to(device)
    augmentation = AugmentConfig(speed=(1 - config.speed, 1 + config.speed))
    masks = torch.nn.Sequential(T.FrequencyMasking(features.n_bins // 8, iid_masks=True),
                                T.TimeMasking(10, iid_masks=True)).to(device) if config.specaugment else None
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + rank)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16)

    def training_step(indices):
        ddp_model.train()
        waves = augment(as_float(data.train_waves[indices]).to(device), noise, augmentation, generator)
        x = featurizer(waves)
        if masks is not None:
            x = masks(x)
        y = data.train_labels[indices].to(device)
        with autocast():
            logits = ddp_model(x.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item(), (logits.argmax(1) == y).float().mean().item()

    if config.lr_find:
        return lr_find(config, data, optimizer, training_step, per_rank_batch, world, rank, paths["lr_find"])

    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.max_lr,
                                                    total_steps=config.epochs * steps_per_epoch)
    state = {"epoch": 0, "step": 0, "best_loss": math.inf, "best_epoch": -1, "bad_epochs": 0,
             "train_sums": [0.0, 0.0, 0], "elapsed": 0.0}
    if config.resume and paths["last"].is_file():
        saved = load_checkpoint(paths["last"])
        model.load_state_dict(saved["state_dict"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"][rank], generator)
        state = saved["state"]
        if main_process:
            print(f"resuming at epoch {state['epoch'] + 1}, step {state['step']}", file=sys.stderr)
    elif main_process:
        paths["log"].write_text("epoch,set,loss,acc\n")

    stopped = False

    def save_last():
        rngs = [None] * world
        if distributed:
            dist.all_gather_object(rngs, rng_state(generator))
        else:
            rngs = [rng_state(generator)]
        if main_process:
            save_checkpoint(paths["last"], model, features, CLASSES, optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(), rng=rngs, state=state)

    with Interrupt() as interrupt:
        while state["epoch"] < config.epochs and not stopped:
            epoch = state["epoch"]
            indices = epoch_indices(data.train_labels, steps_per_epoch * per_rank_batch * world, config.balanced,
                                    config.seed, epoch)
            bar = tqdm(range(state["step"], steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not main_process, unit="batch", initial=state["step"], total=steps_per_epoch)
            tick = time.time()
            for step in bar:
                batch = indices[step * per_rank_batch * world:(step + 1) * per_rank_batch * world][rank::world]
                if config.dropout_ramp > 0:
                    done = (epoch * steps_per_epoch + step) / (config.epochs * steps_per_epoch)
                    scale_dropout(book_dropout, min(1.0, done / config.dropout_ramp))
                loss, acc = training_step(batch)
                scheduler.step()
                sums = state["train_sums"]
                sums[0] += loss
                sums[1] += acc
                sums[2] += 1
                state["step"] = step + 1
                bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}")
                if interrupt.agreed(device):
                    state["elapsed"] += time.time() - tick
                    save_last()
                    if main_process:
                        print(f"\ninterrupted: state saved to {paths['last']}; continue with --resume", file=sys.stderr)
                    stopped = True
                    break
            if stopped:
                break
            state["elapsed"] += time.time() - tick
            val_loss, confusion = validate(model, featurizer, data.val_waves, data.val_labels, device, autocast)
            report = report_from_confusion(confusion, CLASSES)
            sums = state["train_sums"]
            rows = [(epoch + 1, "train", sums[0] / sums[2], sums[1] / sums[2]),
                    (epoch + 1, "valid", val_loss, report.accuracy)]
            if main_process:
                with open(paths["log"], "a", newline="") as handle:
                    csv.writer(handle).writerows([(e, s, f"{l:.5f}", f"{a:.5f}") for e, s, l, a in rows])
                print(f"epoch {epoch + 1}: train loss {rows[0][2]:.3f} acc {rows[0][3]:.3f} | valid loss "
                      f"{val_loss:.3f} acc {report.accuracy:.3f} macro {report.macro_accuracy:.3f}", file=sys.stderr)
            if val_loss < state["best_loss"]:
                state.update(best_loss=val_loss, best_epoch=epoch + 1, bad_epochs=0,
                             best_report=report.to_dict())
                if main_process:
                    save_checkpoint(paths["best"], model, features, CLASSES)
            else:
                state["bad_epochs"] += 1
            state.update(epoch=epoch + 1, step=0, train_sums=[0.0, 0.0, 0])
            save_last()
            if state["bad_epochs"] >= config.patience:
                if main_process:
                    print(f"early stop: no better validation loss for {config.patience} epochs", file=sys.stderr)
                break

    card = None
    if main_process and not stopped:
        card = model_card(config, data, state, features, augmentation, world, initial_card)
        best = load_checkpoint(paths["best"])
        best["card"] = card
        torch.save(best, paths["best"])
        paths["card"].write_text(json.dumps(card, indent=2) + "\n")
        print(f"best epoch {state['best_epoch']}: valid macro accuracy "
              f"{card['validation']['macro_accuracy']:.3f}; wrote {paths['best']}", file=sys.stderr)
    if distributed:
        dist.destroy_process_group()
    return card


def initialize(model: torch.nn.Module, features: FeatureConfig, path: str) -> dict:
    """Load the weights of checkpoint ``path`` into ``model`` (fine-tuning, or continuing a shipped model on
    more data); returns that checkpoint's card (empty when it has none). Exits with a message on a mismatch."""
    try:
        payload = load_checkpoint(path)
        source, source_features = model_from_checkpoint(payload)
    except CheckpointError as error:
        raise SystemExit(f"error: --init: {error}")
    if source.arch != model.arch or source_features != features or payload["classes"] != list(CLASSES):
        raise SystemExit(f"error: --init: {path} holds a {source.arch} model on {source_features.variant} features "
                         f"{source_features.to_dict()}, not this run's {model.arch} model on {features.to_dict()}.")
    model.load_state_dict(source.state_dict())
    return payload.get("card") or {}


def lr_find(config, data, optimizer, training_step, per_rank_batch, world, rank, path,
            start_lr=1e-6, end_lr=1.0):
    """Exponentially raise the lr over ``lr_find_steps`` batches; write ``lr,loss`` (smoothed loss)."""
    steps = config.lr_find_steps
    indices = epoch_indices(data.train_labels, steps * per_rank_batch * world, config.balanced, config.seed, 0)
    rows, smooth, best = [], 0.0, math.inf
    for step in tqdm(range(steps), desc="lr finder", disable=rank != 0):
        lr = start_lr * (end_lr / start_lr) ** (step / max(steps - 1, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = indices[step * per_rank_batch * world:(step + 1) * per_rank_batch * world][rank::world]
        loss, _ = training_step(batch)
        smooth = 0.95 * smooth + 0.05 * loss
        rows.append((lr, smooth / (1 - 0.95 ** (step + 1))))  # debiased exponential moving average
        best = min(best, rows[-1][1])
        if rows[-1][1] > 4 * best and step > 10:
            break
    if rank == 0:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["lr", "loss"])
            writer.writerows([(f"{lr:.6g}", f"{loss:.5f}") for lr, loss in rows])
        print(f"wrote {path}", file=sys.stderr)
    if dist.is_initialized():
        dist.destroy_process_group()
    return None


def model_card(config, data, state, features, augmentation, world, initial_card=None) -> dict:
    report = state["best_report"]
    card = {
        "variant": config.variant,
        "arch": config.arch,
        "date": datetime.date.today().isoformat(),
        "classes": list(CLASSES),
        "features": features.to_dict(),
        "data": {"sources": data.counts, "training_clips": len(data.train_labels),
                 "validation_clips": len(data.val_labels),
                 "split": f"speaker-disjoint: {config.validation_percent:g}% of speakers (stable hash) "
                          "of each folder source for validation; --extra-train sources train only"},
        "augmentation": {**dataclasses.asdict(augmentation), "specaugment": config.specaugment,
                         "balanced_sampling": config.balanced, "dropout_ramp": config.dropout_ramp},
        "training": {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"], "max_epochs": config.epochs,
                     "epoch_size": config.epoch_size, "batch_size": config.batch_size, "max_lr": config.max_lr,
                     "seed": config.seed, "processes": world, "train_seconds": round(state["elapsed"], 1),
                     "command": "python -m speech.train " + " ".join(sys.argv[1:])},
        **({"initialized_from": {"checkpoint": config.init, "training": initial_card.get("training", {}),
                                 "validation_macro_accuracy": initial_card.get("validation", {}).get("macro_accuracy")}}
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


def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    main()
