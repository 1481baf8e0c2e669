"""Saliency: a toy model that only looks at one band gets its saliency in that band."""
import torch
from torch import nn

from speech.explore import sum_of_sines
from speech.features import FeatureConfig
from speech.predict import Predictor
from speech.saliency import gradient_x_input, occlusion, patches, salient_audio, salient_cells

BAND = slice(100, 140)  # rows of the 257-row power spectrogram: 3.1-4.4 kHz


class BandModel(nn.Module):
    """Says 'loud' in proportion to the mean input of rows 100-139, and nothing else."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        evidence = features[:, :, BAND, :].mean((1, 2, 3))
        return torch.stack([5 * evidence, torch.zeros_like(evidence)], 1)


def toy() -> tuple[Predictor, torch.Tensor]:
    return Predictor(BandModel(), FeatureConfig(), ["loud", "quiet"], None), sum_of_sines([3800.0], [1.0], 16_000)


def test_patches_tile_every_cell_once():
    cover = torch.zeros(257, 101)
    for rows, frames in patches(257, 101):
        cover[rows, frames] += 1
    assert (cover == 1).all() and len(patches(257, 101)) <= 100


def test_occlusion_on_a_model_that_looks_at_one_band_lights_that_band_only():
    predictor, wave = toy()
    prediction = predictor.predict(wave)
    assert prediction.word == "loud"
    saliency = occlusion(predictor, prediction)
    assert saliency.shape == (257, 101)
    rows = saliency.abs().max(1).values
    # the patches are 26 rows high: rows 78-155 share a patch with the band; the rest must not matter at all
    assert rows[BAND].min() > 1e-5 and rows[:78].max() < 1e-6 and rows[156:].max() < 1e-6
    assert rows[104:130].min() > 10 * rows[BAND].min()  # the patch inside the band matters most


def test_gradient_x_input_is_zero_outside_the_band():
    predictor, wave = toy()
    saliency = gradient_x_input(predictor, predictor.predict(wave))
    assert saliency[:100].abs().max() == 0 and saliency[140:].abs().max() == 0 and saliency[BAND].abs().sum() > 0


def test_salient_audio_keeps_the_band_the_model_uses():
    predictor, wave = toy()
    noisy = wave + 0.5 * sum_of_sines([500.0], [1.0], 16_000)
    prediction = predictor.predict(noisy)
    saliency = occlusion(predictor, prediction)
    assert salient_cells(saliency).sum() > 0
    audio = salient_audio(predictor, prediction, saliency)
    spectrum = torch.fft.rfft(audio).abs()
    assert audio.shape == (16_000,) and spectrum[3800] > 10 * spectrum[500]
