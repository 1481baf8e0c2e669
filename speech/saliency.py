"""Where the model looks: saliency maps over its input, and the sound of the salient part.

Both maps are ``[n_bins, frames]`` float32 over the model input of one 1 s clip (the rows and frames of
``Prediction.features``), for one class (by default the predicted word):

- :func:`occlusion`: cover one patch of a 10 x 10 grid over the input with the clip's mean (0 after
  standardization) and record how much the word's log-probability drops (1 = the word became e = 2.7 times less
  likely). One forward pass per patch, batched: model-agnostic and easy to explain. The drop is taken in log
  probability because a confident model's probability barely moves (0.99999 -> 0.9999) while its log does.
- :func:`gradient_x_input`: the gradient of the word's logit times the input, summed over channels; one
  backward pass. Positive: this cell's value pushed towards the word.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from speech.explore import filter_bank
from speech.hear import masked
from speech.predict import Prediction, Predictor

GRID = 10            # occlusion covers one cell of a GRID x GRID grid over rows x frames at a time (100 passes:
#                      under 2 s for the book's CNN on two CPU cores, benchmarks/saliency.py)
SALIENT_SHARE = 0.2  # "the salient part": this share of the cells, the most salient


def patches(n_bins: int, frames: int, grid: int = GRID) -> list[tuple[slice, slice]]:
    """The occluding patches (row slice, frame slice): a grid of about ``grid`` x ``grid`` that tiles every
    cell exactly once."""
    height, width = math.ceil(n_bins / grid), math.ceil(frames / grid)
    return [(slice(r, r + height), slice(f, f + width))
            for r in range(0, n_bins, height) for f in range(0, frames, width)]


@torch.inference_mode()
def occlusion(predictor: Predictor, prediction: Prediction, target: Optional[int] = None,
              batch_size: int = 50) -> torch.Tensor:
    """Drop of the target class's log-probability (``target``: a class index, default the predicted word) when
    the patch holding each cell is covered: float32 ``[n_bins, frames]``."""
    features = prediction.features  # [channels, n_bins, frames]
    target = int(prediction.probabilities.argmax()) if target is None else target
    base = predictor.model(features.unsqueeze(0)).log_softmax(1)[0, target]  # log p exactly, even at p = 0.99999
    cover = patches(features.shape[1], features.shape[2])
    saliency = torch.zeros(features.shape[1:])
    for start in range(0, len(cover), batch_size):
        chunk = cover[start:start + batch_size]
        batch = features.unsqueeze(0).repeat(len(chunk), 1, 1, 1)
        for i, (rows, frames) in enumerate(chunk):
            batch[i, :, rows, frames] = 0.0
        drops = base - predictor.model(batch).log_softmax(1)[:, target]
        for drop, (rows, frames) in zip(drops, chunk):
            saliency[rows, frames] = drop
    return saliency


def gradient_x_input(predictor: Predictor, prediction: Prediction, target: Optional[int] = None) -> torch.Tensor:
    """Gradient of the target logit with respect to the input, times the input, summed over channels:
    float32 ``[n_bins, frames]``."""
    target = int(prediction.probabilities.argmax()) if target is None else target
    features = prediction.features.clone().unsqueeze(0).requires_grad_()
    with torch.enable_grad():
        predictor.model.eval()(features)[0, target].backward()
    return (features.grad * features).detach()[0].sum(0)


def salient_cells(saliency: torch.Tensor, share: float = SALIENT_SHARE) -> torch.Tensor:
    """0/1 float32 mask ``[n_bins, frames]`` of the ``share`` most salient cells (positive saliency only)."""
    count = max(1, int(share * saliency.numel()))
    threshold = saliency.flatten().topk(count).values[-1]
    return ((saliency >= threshold) & (saliency > 0)).float()


def salient_audio(predictor: Predictor, prediction: Prediction, saliency: torch.Tensor,
                  share: float = SALIENT_SHARE) -> torch.Tensor:
    """The sound of the salient cells only: float32 ``[16000]``. The cell mask on the model's rows becomes a mask
    on the STFT's rows (a mel band's cells spread over its filter's triangle), and the masked STFT is inverted."""
    config = predictor.features
    cells = salient_cells(saliency, share)
    if config.variant == "mel":
        cells = (filter_bank(config) @ cells).clamp(max=1.0)  # [n_fft//2+1, frames]
    return masked(prediction.window, config, cells)
