"""The models and their checkpoints: the book's CNN and, as extras, a temporal-convolution ResNet, a
broadcasted-residual network, ensembles of trained models of one architecture, and a model with an open-set gate.

Input: features float32 ``[batch, channels, n_bins, frames]`` (see :mod:`speech.features`).
Output: logits float32 ``[batch, n_classes]``.
"""
from __future__ import annotations

import copy
import io
import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from speech.catalog import ENSEMBLE_ARCH, OPEN_SET_ARCH
from speech.features import FeatureConfig

CHECKPOINT_FORMAT = "speech-commands-lab/1"


def conv_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
    if pool:
        layers += [nn.MaxPool2d(2), nn.Dropout2d(0.2)]
    return nn.Sequential(*layers)


class SpeechCNN(nn.Module):
    """The book's CNN. Five 3x3 conv blocks (32-64-128-256-512; batch norm, ReLU; max-pool 2 and dropout2d 0.2 after
    the first four), adaptive average pool to 1x1, classifier 512-512 (batch norm, ReLU, dropout 0.5)
    to ``n_classes``. Works for any input size and for a batch of one."""

    arch = "book"

    def __init__(self, in_channels: int = 1, n_classes: int = 30, n_bins: int | None = None):
        super().__init__()  # n_bins: unused, the 2-D convolutions take any input size
        widths = [in_channels, 32, 64, 128, 256, 512]
        self.features = nn.Sequential(*[conv_block(widths[i], widths[i + 1], pool=i < 4) for i in range(5)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, n_classes))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input ``[batch, 512]``."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(x))


class TemporalBlock(nn.Module):
    """Residual block of two 1-D convolutions over time (kernel 9); ``[batch, c_in, t] -> [batch, c_out, t/stride]``."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, 9, stride, padding=4, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(),
            nn.Conv1d(c_out, c_out, 9, padding=4, bias=False), nn.BatchNorm1d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv1d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm1d(c_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class TemporalResNet(nn.Module):
    """A temporal-convolution ResNet after TC-ResNet14-2 (Choi et al., Interspeech 2019): the
    ``channels x n_bins`` frequency rows become input channels and every convolution runs along time
    only, so the whole spectrum is seen from the first layer on. A 1-D conv (kernel 3) to 32 channels,
    six residual blocks (48, 48, 64, 64, 96, 96 channels; stride 2 in the first of each pair), average
    over time, dropout 0.5, linear to ``n_classes``. ~0.5 M parameters; on 64 mel bands it trains
    about ten times faster than the book's CNN on the CPU. Input ``[batch, channels, n_bins, frames]``."""

    arch = "tcresnet"

    def __init__(self, in_channels: int = 1, n_classes: int = 30, n_bins: int = 64):
        super().__init__()
        widths = [32, 48, 48, 64, 64, 96, 96]
        self.stem = nn.Sequential(nn.Conv1d(in_channels * n_bins, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm1d(widths[0]), nn.ReLU())
        self.blocks = nn.Sequential(*[TemporalBlock(widths[i], widths[i + 1], stride=2 if i % 2 == 0 else 1)
                                      for i in range(6)])
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(widths[-1], n_classes))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input ``[batch, 96]``."""
        x = self.blocks(self.stem(x.flatten(1, 2)))  # [batch, channels * n_bins, frames] -> [batch, 96, frames/8]
        return x.mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(x))


class SubSpectralNorm(nn.Module):
    """Batch norm with separate statistics for each of ``sub_bands`` equal frequency bands (Chang et al. 2021):
    low and high bands of speech differ, so one mean and variance per channel blurs them.
    ``[batch, channels, n_bins, frames]`` in and out; ``n_bins`` must divide by ``sub_bands``."""

    def __init__(self, channels: int, sub_bands: int = 5):
        super().__init__()
        self.sub_bands = sub_bands
        self.norm = nn.BatchNorm2d(channels * sub_bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, bins, frames = x.shape
        x = self.norm(x.reshape(batch, channels * self.sub_bands, bins // self.sub_bands, frames))
        return x.reshape(batch, channels, bins, frames)


class BroadcastBlock(nn.Module):
    """A BC-ResNet block: a depthwise convolution along frequency (kernel 3) on the 2-D map, then the map is
    averaged over frequency and a depthwise dilated convolution along time (kernel 3), a pointwise
    convolution and dropout run on that 1-D summary, which is broadcast back over every frequency row and
    added. ``[batch, c_in, bins, t] -> [batch, c_out, bins/freq_stride, t]``; a block that changes the width
    first maps it with a 1x1 convolution and has no identity shortcut."""

    def __init__(self, c_in: int, c_out: int, freq_stride: int, dilation: int):
        super().__init__()
        self.transition = None if c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        self.frequency = nn.Sequential(
            nn.Conv2d(c_out, c_out, (3, 1), (freq_stride, 1), padding=(1, 0), groups=c_out, bias=False),
            SubSpectralNorm(c_out))
        self.time = nn.Sequential(
            nn.Conv2d(c_out, c_out, (1, 3), padding=(0, dilation), dilation=(1, dilation), groups=c_out,
                      bias=False),
            nn.BatchNorm2d(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 1, bias=False), nn.Dropout2d(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transition is not None:
            x = self.transition(x)
            shortcut = 0
        else:
            shortcut = x
        x = self.frequency(x)
        x = x + self.time(x.mean(2, keepdim=True))  # [batch, c, 1, t] broadcast over the frequency rows
        return torch.relu(x + shortcut)


class BroadcastResNet(nn.Module):
    """BC-ResNet-3 (Kim et al., "Broadcasted Residual Learning for Efficient Keyword Spotting", Interspeech
    2021) on a log-mel input: a 5x5 convolution (frequency stride 2) to 48 channels, four stages of
    broadcasted residual blocks (24, 36, 48, 60 channels; 2, 2, 4, 4 blocks; frequency stride 2 in stages 2
    and 3; time dilation 1, 2, 4, 8), a depthwise 5x5 convolution that takes the remaining frequency rows
    down, a 1x1 convolution to 96 channels, average over time and a linear layer to ``n_classes``. ~56 K
    parameters. It keeps all frames at every layer, so a training step costs about five times tcresnet's on
    the CPU. Input ``[batch, 1, n_bins, frames]`` with ``n_bins`` a multiple of 40 (40 log-mel bands in the
    paper: 5 sub-bands after each frequency stride)."""

    arch = "bcresnet"
    width = 3  # the paper's width multiplier c: BC-ResNet-c

    def __init__(self, in_channels: int = 1, n_classes: int = 30, n_bins: int = 40):
        super().__init__()
        if n_bins % 40:
            raise ValueError(f"bcresnet needs a multiple of 40 frequency rows (e.g. --n-mels 40), not {n_bins}.")
        c = self.width
        widths, blocks, strides = [8 * c, 12 * c, 16 * c, 20 * c], [2, 2, 4, 4], [1, 2, 2, 1]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16 * c, 5, (2, 1), padding=2, bias=False),
                                  nn.BatchNorm2d(16 * c), nn.ReLU())
        layers, c_in = [], 16 * c
        for stage, (c_out, n, stride) in enumerate(zip(widths, blocks, strides)):
            for i in range(n):
                layers.append(BroadcastBlock(c_in, c_out, stride if i == 0 else 1, dilation=2 ** stage))
                c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(c_in, c_in, 5, padding=(0, 2), groups=c_in, bias=False),
            nn.Conv2d(c_in, 32 * c, 1, bias=False), nn.BatchNorm2d(32 * c), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(32 * c, n_classes))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's input ``[batch, 96]``."""
        x = self.head(self.blocks(self.stem(x)))  # [batch, 96, n_bins/8 - 4, frames]
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(x))


ARCHITECTURES = {cls.arch: cls for cls in (SpeechCNN, TemporalResNet, BroadcastResNet)}
MAX_MEMBERS = 16  # a foreign checkpoint cannot make the app build thousands of models


class Ensemble(nn.Module):
    """Several trained models of one architecture on the same features, averaged. Input: features as each member
    takes them; output float32 ``[batch, n_classes]``: the log of the members' mean probabilities, so its softmax
    is that mean and whatever reads logits reads it unchanged. Architecture name: ``f"{count}x{member arch}"``."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not 2 <= len(members) <= MAX_MEMBERS or len({m.arch for m in members}) != 1:
            raise ValueError(f"An ensemble needs 2 to {MAX_MEMBERS} models of one architecture.")
        if members[0].arch not in ARCHITECTURES:  # an ensemble or a gated model: its checkpoint could not be rebuilt
            raise ValueError(f"An ensemble averages plain models ({', '.join(ARCHITECTURES)}), not "
                             f"{members[0].arch} models.")
        self.members = nn.ModuleList(members)
        self.arch = f"{len(members)}x{members[0].arch}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probabilities = torch.stack([member(x).log_softmax(1) for member in self.members])
        return log_probabilities.logsumexp(0) - math.log(len(self.members))


class OpenSetGate(nn.Module):
    """A model with rejection classes that also asks whether a clip is like any word it knows: an open-set score
    (Lee et al. 2018). Each word's clips gather around a centre in the model's embedding (the input of its last
    layer, ``[d]``); the squared Mahalanobis distance of a clip's embedding to the nearest word centre, under the
    covariance shared by all words, says how unlike every word's training clips it is. The word probabilities
    are kept in full near a centre and move to ``_unknown_`` beyond ``limit`` (a sigmoid step ``width`` wide, in
    the same units). Fitted by ``speech.openset``; unfitted (``limit`` infinite) it changes nothing.

    Input: features as the inner model takes them. Output float32 ``[batch, n_classes]``: the log of the gated
    probabilities, which still sum to 1, so whatever reads logits reads it unchanged.
    Architecture name: ``f"openset-{inner arch}"``.
    """

    def __init__(self, model: nn.Module, n_classes: int):
        super().__init__()
        self.model = model
        self.arch = f"openset-{model.arch}"
        width = model.classifier[-1].in_features
        self.register_buffer("centres", torch.zeros(n_classes, width))     # a word's mean embedding (the rows of
        self.register_buffer("precision", torch.eye(width))                # rejection classes are unused)
        self.register_buffer("words", torch.zeros(n_classes, dtype=torch.bool))  # the classes that are words
        self.register_buffer("unknown", torch.zeros(n_classes))            # one-hot: where rejected mass goes
        self.register_buffer("limit", torch.tensor(math.inf))
        self.register_buffer("width", torch.tensor(1.0))

    @property
    def classifier(self) -> nn.Sequential:
        return self.model.classifier

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.pooled(x)

    def distance(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance ``[batch]`` of ``embeddings [batch, d]`` to the nearest word centre."""
        difference = embeddings[:, None, :] - self.centres[None]
        squared = ((difference @ self.precision) * difference).sum(2)  # [batch, n_classes]
        return squared.masked_fill(~self.words, math.inf).min(1).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.classifier[:-1](self.pooled(x))
        probabilities = self.classifier[-1](embeddings).softmax(1)
        near = torch.sigmoid((self.limit - self.distance(embeddings)) / self.width)[:, None]
        keep = torch.where(self.words, near, torch.ones_like(near))
        gated = probabilities * keep
        gated = gated + (probabilities - gated).sum(1, keepdim=True) * self.unknown
        return gated.clamp_min(1e-30).log()


def build_model(arch: str, features: FeatureConfig, n_classes: int) -> nn.Module:
    """A fresh model of architecture ``arch`` ('book', 'tcresnet', 'bcresnet', an ensemble of one of them such
    as '4xtcresnet', or one of them with an open-set gate such as 'openset-tcresnet') for inputs of ``features``."""
    open_set = OPEN_SET_ARCH.fullmatch(arch)
    if open_set and open_set[1] in ARCHITECTURES:
        return OpenSetGate(build_model(open_set[1], features, n_classes), n_classes)
    ensemble = ENSEMBLE_ARCH.fullmatch(arch)
    if ensemble and 2 <= int(ensemble[1]) <= MAX_MEMBERS and ensemble[2] in ARCHITECTURES:
        return Ensemble([build_model(ensemble[2], features, n_classes) for _ in range(int(ensemble[1]))])
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {arch!r}; this version knows {', '.join(ARCHITECTURES)}, "
                         f"ensembles of 2 to {MAX_MEMBERS} of one of them (e.g. '4xtcresnet') and each with an "
                         "open-set gate (e.g. 'openset-tcresnet').")
    return ARCHITECTURES[arch](features.channels, n_classes, n_bins=features.n_bins)


# --- checkpoints: a torch.save'd dict of plain values (format, variant, arch, features, classes, sample_rate,
# state_dict, optional card), read back with weights_only=True so a foreign file cannot run code ---------------

class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why."""


def checkpoint_payload(model: nn.Module, features: FeatureConfig, classes: Sequence[str], **extra) -> dict:
    """Weights plus everything needed to use them; ``extra`` holds plain values (e.g. training state, a card)."""
    return {"format": CHECKPOINT_FORMAT, "variant": features.variant, "arch": model.arch,
            "features": features.to_dict(), "classes": list(classes), "sample_rate": features.sample_rate,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}


def first_outputs(model: nn.Module, count: int) -> nn.Module:
    """``model`` answering with only its first ``count`` classes: a copy whose last layer (``classifier[-1]``, a
    linear layer in every architecture here) keeps those rows; ``model`` itself when it has no more."""
    last = model.classifier[-1]
    if last.out_features == count:
        return model
    kept = copy.deepcopy(model)
    rows = nn.Linear(last.in_features, count).to(last.weight.device)
    rows.load_state_dict({"weight": last.weight[:count], "bias": last.bias[:count]})
    kept.classifier[-1] = rows
    return kept


def save_checkpoint(path: str | Path, model: nn.Module, features: FeatureConfig, classes: Sequence[str],
                    **extra) -> None:
    """Write :func:`checkpoint_payload` to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_payload(path, checkpoint_payload(model, features, classes, **extra))


def checkpoint_bytes(model: nn.Module, features: FeatureConfig, classes: Sequence[str], **extra) -> bytes:
    """The bytes of the checkpoint :func:`save_checkpoint` would write (for a download)."""
    buffer = io.BytesIO()
    torch.save(checkpoint_payload(model, features, classes, **extra), buffer)
    return buffer.getvalue()


def write_payload(path: str | Path, payload: dict) -> None:
    """``torch.save`` atomically: an interrupted save never leaves a broken checkpoint."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(source: str | Path | bytes, expect_variant: str | None = None, name: str | None = None) -> dict:
    """Read a checkpoint file, or the bytes of an uploaded one (``name`` names it in messages), safely
    (``weights_only=True``) and check it; raises CheckpointError."""
    if isinstance(source, bytes):
        name, readable = name or "the uploaded file", io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"No checkpoint at {path}.")
        name, readable = name or path.name, path
    try:
        payload = torch.load(readable, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{name} is not a readable checkpoint ({type(error).__name__}); "
                              "it may be corrupt, truncated or another kind of file.") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{name} is not a Speech Commands Lab checkpoint.")
    if expect_variant is not None and payload["variant"] != expect_variant:
        raise CheckpointError(f"{name} holds the {payload['variant']!r} variant, "
                              f"not {expect_variant!r}.")
    return payload


def model_from_checkpoint(payload: dict) -> tuple[nn.Module, FeatureConfig]:
    """Build the model and feature config a checkpoint describes; raises CheckpointError on a mismatch."""
    features = FeatureConfig(**payload["features"])
    arch = payload.get("arch", SpeechCNN.arch)  # checkpoints written before the extra architecture are the book's
    try:
        model = build_model(arch, features, len(payload["classes"]))
    except ValueError as error:
        raise CheckpointError(f"The checkpoint asks for an architecture this version cannot build. {error}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"The weights do not fit the {features.variant!r} model ({arch} architecture): "
                              f"{str(error).splitlines()[0]}") from None
    return model.eval(), features
