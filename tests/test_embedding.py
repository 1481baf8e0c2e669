"""The embedding map: a deterministic 2-D projection that keeps what separates words."""
import torch

from speech.embedding import embedding_map, pca_2d
from speech.plots import embedding_figure


def clusters(seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Three words 10 apart along two of 20 dimensions, 1 of noise around each."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.zeros(3, 20)
    centres[1, 3], centres[2, 7] = 10.0, 10.0
    points = torch.cat([c + torch.randn(8, 20, generator=generator) for c in centres])
    return points, [w for w in ("a", "b", "c") for _ in range(8)]


def test_projection_shape_determinism_and_separation():
    points, words = clusters()
    coordinates, kept = pca_2d(points, words)
    assert coordinates.shape == (24, 2) and coordinates.dtype == torch.float32
    again, _ = pca_2d(points.clone(), words)
    assert torch.equal(coordinates, again)
    assert kept > 0.95  # three centres span exactly two directions
    centres = torch.stack([coordinates[i * 8:(i + 1) * 8].mean(0) for i in range(3)])
    assert torch.cdist(centres, centres).fill_diagonal_(99).min() > 8  # the words stay 10 apart
    flipped, _ = pca_2d(-points, words)  # a mirrored cloud gets the same picture: signs are fixed by the data
    assert torch.allclose(flipped.abs(), coordinates.abs(), atol=1e-4)


def test_map_figure_colours_the_highlighted_words_and_names_every_word():
    points, words = clusters()
    figure = embedding_figure(embedding_map(points, words, [f"clip {i}" for i in range(24)], ["c"]), "map")
    coloured = [t for t in figure.data if t.showlegend is not False]
    assert [t.name for t in coloured] == ["c"]
    assert sorted(a.text for a in figure.layout.annotations) == ["a", "b", "c"]
    assert figure.data[0].customdata[0] == "clip 0"
