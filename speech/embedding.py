"""The embedding a model's last layer classifies, and its 2-D map.

A classifier's last layer is linear: it separates words by drawing planes through the space of its inputs, the
*embedding* ``[n, d]`` (96 numbers per clip for tcresnet, 512 for the book's CNN). Clips of one word lie together
there; a 2-D projection (PCA: the two directions along which the words differ most) shows which words the
model finds close.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from speech.predict import Predictor


@torch.inference_mode()
def embed(predictor: Predictor, waves: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """The embedding float32 ``[n, d]`` of float32 ``waves [n, 16000]`` (16 kHz): the input of the model's last
    linear layer, in eval mode; for an ensemble, its members' embeddings side by side."""
    model = predictor.model.eval()
    layers = [member.classifier[-1] for member in getattr(model, "members", [model])]
    captured = [[] for _ in layers]
    hooks = [layer.register_forward_hook(lambda module, inputs, output, into=into: into.append(inputs[0]))
             for layer, into in zip(layers, captured)]
    try:
        for start in range(0, len(waves), batch_size):
            model(predictor.featurizer(waves[start:start + batch_size]))
    finally:
        for hook in hooks:
            hook.remove()
    if not len(waves):
        return torch.zeros(0, sum(layer.in_features for layer in layers))
    return torch.cat([torch.cat(into) for into in captured], dim=1)


def pca_2d(embeddings: torch.Tensor, words: list[str] | None = None) -> tuple[torch.Tensor, float]:
    """float32 ``[n, 2]`` coordinates of ``embeddings [n, d]`` along two principal directions, and the share of the
    variance those two keep. With ``words`` (one per row) the directions are those along which the words' centres
    differ most, each word counting once: the map then separates words rather than voices, and a word with many
    clips does not take it over. Deterministic: each direction's sign makes its largest loading positive."""
    data = embeddings.double()
    if words is not None:
        names = list(dict.fromkeys(words))
        index = torch.tensor([names.index(w) for w in words])
        data = torch.stack([data[index == k].mean(0) for k in range(len(names))])
    centre = data.mean(0)
    _, singular, directions = torch.linalg.svd(data - centre, full_matrices=False)
    directions = directions[:2]
    signs = directions.gather(1, directions.abs().argmax(1, keepdim=True)).sign()
    coordinates = (embeddings.double() - centre) @ (directions * signs).T
    variance = singular.pow(2)
    kept = float(variance[:2].sum() / variance.sum()) if variance.sum() > 0 else 0.0
    return coordinates.float(), kept


@dataclass
class EmbeddingMap:
    """Points of an embedding map: ``coordinates [n, 2]``, each point's word and name (a file or a take), and the
    words to draw in colour (the rest are drawn as the grey background they are compared with)."""

    coordinates: torch.Tensor
    words: list[str]
    names: list[str]
    highlighted: list[str]
    variance_kept: float


def embedding_map(embeddings: torch.Tensor, words: list[str], names: list[str],
                  highlighted: list[str] | None = None) -> EmbeddingMap:
    """The :func:`pca_2d` map of ``embeddings [n, d]`` (directions of the words' centres) with each point's word
    and name."""
    coordinates, kept = pca_2d(embeddings, words)
    return EmbeddingMap(coordinates, list(words), list(names), list(highlighted or []), kept)
