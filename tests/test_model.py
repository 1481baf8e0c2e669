import json

import pytest
import torch

from speech.catalog import (
    best_checkpoint,
    card_summary,
    checkpoint_files,
    features_summary,
    read_model_card,
    teaching_base,
)
from speech.features import FeatureConfig
from speech.model import (
    BroadcastResNet,
    CheckpointError,
    SpeechCNN,
    TemporalResNet,
    build_model,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from speech.predict import Predictor


@pytest.mark.parametrize("channels,bins", [(1, 257), (1, 128), (2, 257)])
def test_cnn_output_shape_and_batch_of_one(channels, bins):
    model = SpeechCNN(channels).eval()
    assert model(torch.randn(3, channels, bins, 101)).shape == (3, 30)
    assert model(torch.randn(1, channels, bins, 101)).shape == (1, 30)


def test_architecture_is_the_books():
    model = SpeechCNN(1)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)), (32, 64, (3, 3)), (64, 128, (3, 3)), (128, 256, (3, 3)), (256, 512, (3, 3))]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 4
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout2d)] == [0.2] * 4
    assert [m.p for m in model.modules() if type(m) is torch.nn.Dropout] == [0.5]


def test_round_trip_and_errors(tmp_path):
    model = SpeechCNN(2)
    config = FeatureConfig(variant="complex")
    path = tmp_path / "complex.pt"
    save_checkpoint(path, model, config, ["a"] * 30)
    payload = load_checkpoint(path, expect_variant="complex")
    loaded, features = model_from_checkpoint(payload)
    assert features == config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))

    with pytest.raises(CheckpointError, match="'complex' variant, not 'mel'"):
        load_checkpoint(path, expect_variant="mel")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt"):
        Predictor.from_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a Speech Commands Lab checkpoint"):
        load_checkpoint(foreign)
    mismatched = dict(payload, features=FeatureConfig(variant="mel").to_dict(), variant="mel")
    torch.save(mismatched, tmp_path / "mismatched.pt")
    with pytest.raises(CheckpointError, match="do not fit the 'mel' model"):
        Predictor.from_checkpoint(tmp_path / "mismatched.pt")


@pytest.mark.parametrize("arch,cls,parameters", [("tcresnet", TemporalResNet, (0.4e6, 0.7e6)),
                                                   ("bcresnet", BroadcastResNet, (40e3, 70e3))])  # BC-ResNet-3
def test_extra_architectures_shapes_and_batch_of_one(arch, cls, parameters):
    model = build_model(arch, FeatureConfig(variant="mel", n_mels=40), 30).eval()
    assert isinstance(model, cls)
    assert model(torch.randn(3, 1, 40, 101)).shape == (3, 30)
    assert model(torch.randn(1, 1, 40, 101)).shape == (1, 30)
    assert parameters[0] < sum(p.numel() for p in model.parameters()) < parameters[1]
    with pytest.raises(ValueError, match="Unknown architecture"):
        build_model("transformer", FeatureConfig(variant="mel", n_mels=40), 30)


def test_broadcast_resnet_broadcasts_and_takes_multiples_of_40_bins():
    model = build_model("bcresnet", FeatureConfig(variant="mel", n_mels=40), 30).eval()
    # The 1-D branch sees the map averaged over frequency: its output is the same for every frequency row.
    block = model.blocks[1]
    x = torch.randn(2, 24, 20, 101)
    frequency = block.frequency(x)
    assert torch.allclose(block(x), torch.relu(frequency + block.time(frequency.mean(2, keepdim=True)) + x))
    assert build_model("bcresnet", FeatureConfig(variant="mel", n_mels=80), 30).eval()(
        torch.randn(2, 1, 80, 101)).shape == (2, 30)
    with pytest.raises(ValueError, match="multiple of 40"):
        build_model("bcresnet", FeatureConfig(variant="mel", n_mels=64), 30)


def test_checkpoint_records_the_architecture(tmp_path):
    features = FeatureConfig(variant="mel", n_mels=40)
    model = build_model("tcresnet", features, 30)
    save_checkpoint(tmp_path / "tc.pt", model, features, ["w"] * 30)
    payload = load_checkpoint(tmp_path / "tc.pt")
    loaded, loaded_features = model_from_checkpoint(payload)
    assert payload["arch"] == "tcresnet" and isinstance(loaded, TemporalResNet) and loaded_features == features

    legacy = {k: v for k, v in load_checkpoint_of_book(tmp_path).items() if k != "arch"}  # written before "arch"
    assert isinstance(model_from_checkpoint(legacy)[0], SpeechCNN)
    with pytest.raises(CheckpointError, match="Unknown architecture 'rnn'"):
        model_from_checkpoint(dict(payload, arch="rnn"))
    with pytest.raises(CheckpointError, match=r"do not fit the 'mel' model \(book architecture\)"):
        model_from_checkpoint(dict(payload, arch="book"))


def load_checkpoint_of_book(tmp_path) -> dict:
    save_checkpoint(tmp_path / "book.pt", SpeechCNN(1), FeatureConfig(variant="mel"), ["w"] * 30)
    return load_checkpoint(tmp_path / "book.pt")


def test_checkpoint_files_put_the_book_variants_first(tmp_path):
    for name in ("tcresnet.pt", "complex.pt", "mel.pt", "mel.last.pt", "baseline.pt", "a_run.pt"):
        (tmp_path / name).write_bytes(b"")
    assert list(checkpoint_files(tmp_path)) == ["baseline", "mel", "complex", "a_run", "tcresnet"]


def test_features_summary_names_the_band_and_floor_when_a_card_has_them():
    robust = {"variant": "mel", "features": {"n_mels": 64, "f_min": 300.0, "f_max": 3400.0, "top_db": 45.0}}
    assert features_summary(robust) == "**mel** features: 64 bands, 300–3400 Hz, floored 45 dB under the peak"
    assert features_summary({"variant": "mel", "features": {"n_mels": 128, "f_min": 0.0, "f_max": None}}) == \
        "**mel** features: 128 bands"
    assert features_summary({"variant": "baseline", "features": {"n_mels": 128}}) == "**baseline** features"


def test_best_checkpoint_reads_the_model_cards(tmp_path):
    for name, macro in (("mel", 0.8), ("complex", 0.9)):
        (tmp_path / f"{name}.pt").write_bytes(b"")
        (tmp_path / f"{name}.card.json").write_text(json.dumps({"validation": {"macro_accuracy": macro}}))
    (tmp_path / "baseline.pt").write_bytes(b"")
    (tmp_path / "baseline.card.json").write_text("{not json")  # unreadable: no figure, not an error
    files = checkpoint_files(tmp_path)
    assert read_model_card(files["baseline"]) == {}
    assert read_model_card(files["mel"])["validation"]["macro_accuracy"] == 0.8
    assert best_checkpoint(files) == "complex"
    assert best_checkpoint({"baseline": files["baseline"]}) is None
    assert teaching_base(files) == "complex"  # no model trained on more words: the best one
    (tmp_path / "words.pt").write_bytes(b"")
    wider = {"arch": "tcresnet", "validation": {"accuracy": 0.9, "macro_accuracy": 0.7, "n": 10},
             "training": {"best_epoch": 3, "epochs_run": 4, "more_words": 1000}}
    (tmp_path / "words.card.json").write_text(json.dumps(wider))
    assert teaching_base(checkpoint_files(tmp_path)) == "words" and best_checkpoint(checkpoint_files(tmp_path)) == \
        "complex"
    assert "1,000 more English words" in card_summary(wider)
