"""The open-set gate: its arithmetic, its fit on made-up words, the checkpoint round trip and the bad inputs."""
import json

import pytest
import torch

from speech.catalog import card_summary, single_models
from speech.ensemble import EnsembleError, ensemble_of
from speech.features import FeatureConfig
from speech.model import OpenSetGate, build_model, save_checkpoint
from speech.openset import OpenSetError, fit_gate, main
from speech.predict import Predictor
from speech.teach import TeachError, teach
from tests.conftest import chirp

CLASSES = ["rise", "fall", "_silence_", "_unknown_"]
FEATURES = FeatureConfig(variant="mel", n_mels=64)


def takes(start_hz: float, end_hz: float, count: int, seed: int) -> torch.Tensor:
    return torch.stack([chirp(start_hz, end_hz, seed + i) for i in range(count)])


@pytest.fixture(scope="module")
def base() -> Predictor:
    torch.manual_seed(0)
    return Predictor(build_model("tcresnet", FEATURES, len(CLASSES)).eval(), FEATURES, CLASSES, {})


@pytest.fixture(scope="module")
def fitted(base):
    waves = torch.cat([takes(300, 2000, 12, 0), takes(3000, 500, 12, 100)])
    labels = torch.tensor([0] * 12 + [1] * 12)
    return fit_gate(base, waves, labels, 0.02 * torch.randn(48_000), quantile=0.99), waves


def probabilities(predictor: Predictor, waves: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return predictor.model(predictor.featurizer(waves)).softmax(1)


def test_without_a_limit_the_gate_changes_nothing_and_with_a_tiny_one_every_word_becomes_unknown(fitted, base):
    gated, waves = fitted
    model: OpenSetGate = gated.model
    plain = probabilities(base, waves)
    limit = model.limit.clone()
    try:
        model.limit.fill_(float("inf"))
        assert torch.allclose(probabilities(gated, waves), plain, atol=1e-6)
        model.limit.fill_(1e-6)
        shut = probabilities(gated, waves)
        assert shut[:, :2].max() < 1e-6 and torch.allclose(shut[:, 2], plain[:, 2], atol=1e-6)
        assert torch.allclose(shut[:, 3], plain[:, 3] + plain[:, :2].sum(1), atol=1e-5)
    finally:
        model.limit.copy_(limit)


def test_the_fitted_gate_keeps_its_words_clips_and_moves_a_far_sound_to_unknown(fitted, base):
    gated, waves = fitted
    kept = probabilities(gated, waves)[:, :2].sum(1) / probabilities(base, waves)[:, :2].sum(1)
    assert (kept > 0.5).float().mean() >= 0.9  # the limit is the 0.99 quantile of these clips (and noisy copies)
    far = 0.5 * torch.sign(torch.randn(2, 16000, generator=torch.Generator().manual_seed(1)))  # loud square noise
    assert float(gated.model.distance(embed_of(gated, far)).min()) > float(gated.model.limit)
    moved = probabilities(gated, far)
    assert moved[:, :2].max() < 0.01 and torch.allclose(moved.sum(1), torch.ones(2), atol=1e-5)


def embed_of(predictor: Predictor, waves: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        model = predictor.model
        return model.classifier[:-1](model.pooled(predictor.featurizer(waves)))


def test_a_gated_checkpoint_loads_safely_and_answers_the_same(fitted, tmp_path):
    gated, waves = fitted
    path = tmp_path / "spotting.pt"
    save_checkpoint(path, gated.model, gated.features, gated.classes, card={"arch": gated.model.arch})
    loaded = Predictor.from_checkpoint(path)  # weights_only=True inside
    assert isinstance(loaded.model, OpenSetGate) and loaded.model.arch == "openset-tcresnet"
    assert torch.allclose(probabilities(loaded, waves), probabilities(gated, waves), atol=1e-6)
    assert float(loaded.model.limit) == float(gated.model.limit)
    # a new word cannot be taught on a gate fitted to other words, and the teach page does not offer it
    with pytest.raises(TeachError, match="open-set gate"):
        teach(loaded, {"hum": takes(800, 800, 3, 7)})
    path.with_suffix(".card.json").write_text(json.dumps({"arch": "openset-tcresnet"}))
    assert single_models({"spotting": path}) == {}
    # nor can gated models be averaged: the ensemble's checkpoint could not be rebuilt
    with pytest.raises(EnsembleError, match="plain models"):
        ensemble_of([path, path])


def test_the_card_summary_names_the_gate_and_the_figures_without_it():
    figures = {"accuracy": 0.89, "macro_accuracy": 0.871, "n": 1603}
    ungated = {**figures, "accuracy": 0.893, "macro_accuracy": 0.898}
    card = {"arch": "openset-tcresnet", "validation": figures,
            "open_set": {"quantile": 0.995, "ungated_validation": ungated}}
    summary = card_summary(card)
    assert "open-set gate (quantile 0.995)" in summary and "accuracy 0.893, macro accuracy 0.898" in summary


def test_bad_bases_and_clips_are_refused(base, fitted):
    noise, waves, labels = torch.zeros(16000), takes(300, 2000, 2, 0), torch.tensor([0, 1])
    words_only = Predictor(base.model, FEATURES, ["rise", "fall", "hum", "buzz"], {})
    with pytest.raises(OpenSetError, match="_unknown_"):
        fit_gate(words_only, waves, labels, noise)
    with pytest.raises(OpenSetError, match="plain model"):
        fit_gate(fitted[0], waves, labels, noise)
    with pytest.raises(OpenSetError, match="fall"):
        fit_gate(base, waves, torch.tensor([0, 0]), noise)
    with pytest.raises(OpenSetError, match="quantile"):
        fit_gate(base, waves, labels, noise, quantile=1.5)


def test_cli_refuses_a_model_without_the_spotting_classes_in_one_line(trained_checkpoint, tmp_path, capsys):
    assert main([str(trained_checkpoint), "--out", str(tmp_path / "gated.pt")]) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and "_unknown_" in message and message.count("\n") == 1
    assert main([str(tmp_path / "missing.pt"), "--out", str(tmp_path / "gated.pt")]) == 2
    assert not (tmp_path / "gated.pt").exists()
