import json

import pytest
import torch

from speech.catalog import best_checkpoint, card_summary, single_models
from speech.embedding import embed
from speech.ensemble import EnsembleError, ensemble_of, main
from speech.model import Ensemble, build_model, load_checkpoint, write_payload
from speech.predict import Predictor
from speech.teach import TeachError, teach
from tests.conftest import TONES, tone


@pytest.fixture(scope="module")
def members(trained_checkpoint, tmp_path_factory):
    """The trained tiny checkpoint and a sibling whose weights are nudged, so the two disagree a little."""
    payload = load_checkpoint(trained_checkpoint)
    generator = torch.Generator().manual_seed(0)
    payload["state_dict"] = {k: v + 0.05 * torch.randn(v.shape, generator=generator) * v.std()
                             if v.is_floating_point() and v.numel() > 1 else v
                             for k, v in payload["state_dict"].items()}
    sibling = tmp_path_factory.mktemp("sibling") / "mel-sibling.pt"
    write_payload(sibling, payload)
    return [trained_checkpoint, sibling]


def clips() -> torch.Tensor:
    return torch.stack([torch.from_numpy(tone(freq)) for freq in TONES.values()]).float()


def test_an_ensemble_predicts_its_members_mean_probabilities(members):
    ensemble, singles = ensemble_of(members), [Predictor.from_checkpoint(path) for path in members]
    assert isinstance(ensemble.model, Ensemble) and ensemble.model.arch == "2xbook"
    with torch.inference_mode():
        mean = torch.stack([p.model(p.featurizer(clips())).softmax(1) for p in singles]).mean(0)
        own = ensemble.model(ensemble.featurizer(clips())).softmax(1)
        assert not torch.allclose(*[p.model(p.featurizer(clips())).softmax(1) for p in singles], atol=1e-4)
    assert torch.allclose(own, mean, atol=1e-6)
    assert ensemble.predict(clips()[0]).probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert embed(ensemble, clips()).shape == (3, 2 * singles[0].model.classifier[-1].in_features)


def test_cli_writes_a_safe_checkpoint_with_a_card_and_its_own_validation(members, tiny_tree, tmp_path, capsys):
    out = tmp_path / "ensemble.pt"
    assert main([*map(str, members), "--out", str(out), "--data", str(tiny_tree), "--validation-percent", "30"]) == 0
    assert "2xbook" in capsys.readouterr().out
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card == load_checkpoint(out)["card"] and card["arch"] == "2xbook" and len(card["members"]) == 2
    assert card["validation"]["n"] == 12 and card["validation"]["macro_accuracy"] > 0.4  # chance is 1/3
    assert "The mean of 2 models' probabilities" in card_summary(card)
    loaded = Predictor.from_checkpoint(out)  # weights_only=True inside
    with torch.inference_mode():
        assert torch.allclose(loaded.model(loaded.featurizer(clips())),
                              ensemble_of(members).model(loaded.featurizer(clips())), atol=1e-6)
    # the teach page and CLI build on single models only, and say why an ensemble cannot be the base
    single = tmp_path / "mel.pt"
    single.write_bytes(members[0].read_bytes())
    single.with_suffix(".card.json").write_text(json.dumps(load_checkpoint(members[0])["card"]))
    both = {"ensemble": out, "mel": single}
    assert best_checkpoint(both) == "ensemble" and list(single_models(both)) == ["mel"]
    with pytest.raises(TeachError, match="ensemble"):
        teach(loaded, {"lamp": clips()})


def test_members_that_cannot_be_averaged_get_a_clear_message(members, tmp_path, capsys):
    with pytest.raises(EnsembleError, match="at least two"):
        ensemble_of(members[:1])
    other = load_checkpoint(members[0])
    other["classes"] = list(reversed(other["classes"]))
    write_payload(tmp_path / "reordered.pt", other)
    with pytest.raises(EnsembleError, match="classes"):
        ensemble_of([members[0], tmp_path / "reordered.pt"])
    tcresnet = load_checkpoint(members[0])
    tcresnet["arch"] = "tcresnet"
    tcresnet["state_dict"] = build_model("tcresnet", Predictor.from_checkpoint(members[0]).features,
                                         len(tcresnet["classes"])).state_dict()
    write_payload(tmp_path / "tc.pt", tcresnet)
    with pytest.raises(EnsembleError, match="architecture"):
        ensemble_of([members[0], tmp_path / "tc.pt"])
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    assert main([str(members[0]), str(tmp_path / "notes.pt"), "--out", str(tmp_path / "e.pt")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err and not (tmp_path / "e.pt").exists()


def test_a_foreign_architecture_name_cannot_build_a_huge_or_nested_ensemble():
    from speech.features import FeatureConfig
    features = FeatureConfig(variant="mel", n_mels=64)
    assert build_model("3xtcresnet", features, 30).arch == "3xtcresnet"
    for arch in ("1xtcresnet", "100000xbook", "2x2xtcresnet", "2xnothing"):
        with pytest.raises(ValueError, match="Unknown architecture"):
            build_model(arch, features, 30)
