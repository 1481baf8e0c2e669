import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from speech import REPO_ROOT
from speech.data import CLASSES, folder_clips, load_waveforms, speaker_split
from speech.evaluate import evaluate_clips, predict_batches
from speech.model import load_checkpoint, write_payload
from speech.predict import Predictor
from speech.train import (
    Interrupt,
    TrainConfig,
    TrainError,
    epoch_indices,
    mixed,
    mixed_log_probabilities,
    mixup_pairs,
    native_bf16,
    parse_args,
    train,
)
from tests.conftest import TONES, write_tree


def config(tree: Path, out: Path, **overrides) -> TrainConfig:
    values = dict(variant="mel", data=[str(tree)], validation_percent=30, epochs=3, epoch_size=32, batch_size=8,
                  out=str(out), seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def weights(path: Path) -> dict:
    return load_checkpoint(path)["state_dict"]


def read_log(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_tiny_training_run_learns_and_writes_everything(tiny_tree, tmp_path):
    card = train(config(tiny_tree, tmp_path / "out", epochs=4, max_lr=3e-3))
    rows = read_log(tmp_path / "out" / "mel.log.csv")
    assert [r["set"] for r in rows[:2]] == ["train", "valid"] and len(rows) == 8
    train_losses = [float(r["loss"]) for r in rows if r["set"] == "train"]
    assert train_losses[-1] < train_losses[0] - 0.3
    assert card["validation"]["n"] == 12 and card["validation"]["macro_accuracy"] > 0.4  # chance is 1/3
    assert card["data"]["training_clips"] + card["data"]["validation_clips"] == 48
    assert "CC BY 4.0" in card["credit"]
    saved = load_checkpoint(tmp_path / "out" / "mel.pt", expect_variant="mel")
    assert saved["card"] == card == json.loads((tmp_path / "out" / "mel.card.json").read_text())


@pytest.mark.parametrize("recipe", [{}, {"ema": 0.9, "label_smoothing": 0.1}, {"mixup": 0.4}],
                         ids=["plain", "ema", "mixup"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_tree, tmp_path, monkeypatch, recipe):
    def config_(out, **more):
        return config(tiny_tree, out, specaugment=True, dropout_ramp=0.5, **recipe, **more)

    train(config_(tmp_path / "straight"))
    calls = {"n": 0}

    def interrupt_at_step_6(self, device):
        calls["n"] += 1
        return calls["n"] == 6  # mid-epoch 2 (4 steps per epoch)

    with monkeypatch.context() as patch:
        patch.setattr(Interrupt, "agreed", interrupt_at_step_6)
        assert train(config_(tmp_path / "resumed")) is None
    assert (tmp_path / "resumed" / "mel.last.pt").is_file()
    train(config_(tmp_path / "resumed", resume=True))
    for name in ("mel.pt", "mel.last.pt"):
        straight, resumed = weights(tmp_path / "straight" / name), weights(tmp_path / "resumed" / name)
        assert all(torch.equal(straight[k], resumed[k]) for k in straight), name
    assert read_log(tmp_path / "straight" / "mel.log.csv") == read_log(tmp_path / "resumed" / "mel.log.csv")


def test_mixup_mixes_clips_and_targets_alike_and_is_off_at_zero(tiny_tree, tmp_path):
    generator = torch.Generator().manual_seed(0)
    share, partner = mixup_pairs(64, 0.4, generator)
    assert ((share >= 0.5) & (share <= 1)).all() and share.std() > 0.05
    assert sorted(partner.tolist()) == list(range(64)) and (partner != torch.arange(64)).any()
    features, log_probabilities = torch.randn(64, 1, 5, 7), torch.randn(64, 3).log_softmax(1)
    blend = mixed(features, share, partner)
    assert torch.allclose(blend[3], share[3] * features[3] + (1 - share[3]) * features[partner[3]])
    target = mixed_log_probabilities(log_probabilities, share, partner).exp()
    assert torch.allclose(target, mixed(log_probabilities.exp(), share, partner)) and torch.allclose(target.sum(1),
                                                                                                    torch.ones(64))
    share, partner = mixup_pairs(64, 0.0, generator)
    assert torch.equal(mixed(features, share, partner), features)
    assert torch.equal(mixed_log_probabilities(log_probabilities, share, partner), log_probabilities)
    card = train(config(tiny_tree, tmp_path / "out", epochs=4, max_lr=3e-3, mixup=0.4))
    assert card["training"]["mixup"] == 0.4 and card["validation"]["macro_accuracy"] > 0.4  # chance is 1/3


def test_weight_average_is_what_is_validated_and_saved(tiny_tree, tmp_path):
    card = train(config(tiny_tree, tmp_path / "out", epochs=4, max_lr=3e-3, ema=0.5, label_smoothing=0.1))
    assert card["training"]["weight_ema"] == 0.5 and card["training"]["label_smoothing"] == 0.1
    last = load_checkpoint(tmp_path / "out" / "mel.last.pt")
    averaged = {k.removeprefix("module."): v for k, v in last["averaged"].items() if k.startswith("module.")}
    assert not all(torch.equal(averaged[k], last["state_dict"][k]) for k in last["state_dict"])  # an average
    # validated and saved: the average (evaluating the saved weights gives the card's figures)
    validation = speaker_split(tiny_tree, 30)[1]
    report, _ = evaluate_clips(Predictor.from_checkpoint(tmp_path / "out" / "mel.pt"), validation)
    assert report.accuracy == pytest.approx(card["validation"]["accuracy"]) and report.accuracy > 0.5
    if card["training"]["best_epoch"] == 4:
        assert all(torch.equal(averaged[k], weights(tmp_path / "out" / "mel.pt")[k]) for k in averaged)


def test_temporal_resnet_trains_and_continues_from_its_checkpoint(tiny_tree, tmp_path):
    card = train(config(tiny_tree, tmp_path / "first", arch="tcresnet", n_mels=40, name="tc", epochs=4,
                        max_lr=3e-3, speed=0.1, f_min=300.0, f_max=3400.0, noise_probability=0.8, min_snr_db=0.0,
                        robust=True, robust_probability=0.5))
    assert card["arch"] == "tcresnet" and card["features"]["n_mels"] == 40
    assert (card["features"]["f_min"], card["features"]["f_max"]) == (300.0, 3400.0)
    assert card["augmentation"]["speed"] == [0.9, 1.1]
    assert card["augmentation"]["noise_probability"] == 0.8 and card["augmentation"]["snr_db"] == [0.0, 25.0]
    assert card["augmentation"]["clip_probability"] == card["augmentation"]["quiet_probability"] == 0.5
    train_losses = [float(r["loss"]) for r in read_log(tmp_path / "first" / "tc.log.csv") if r["set"] == "train"]
    assert train_losses[-1] < train_losses[0] - 0.3
    first = tmp_path / "first" / "tc.pt"
    # --init starts from the given weights: with no step taken (lr 0) the saved weights are the initial ones
    card = train(config(tiny_tree, tmp_path / "again", arch="tcresnet", n_mels=40, name="tc", epochs=1,
                        max_lr=1e-12, init=str(first), f_min=300.0, f_max=3400.0))
    assert card["initialized_from"]["checkpoint"] == str(first)
    before, after = weights(first), weights(tmp_path / "again" / "tc.pt")
    assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6)
               for k in before if "running" not in k and "num_batches" not in k)
    with pytest.raises(TrainError, match="not this run's book model"):
        train(config(tiny_tree, tmp_path / "wrong", init=str(first)))


def test_distillation_follows_the_teacher_not_the_labels(tiny_tree, tmp_path):
    """With the whole loss on the teacher, the student learns what the teacher says, even where it is wrong: a
    teacher whose word rows are rotated (it calls every tone by the next word) makes a student that does too."""
    steps = dict(arch="tcresnet", n_mels=40, epochs=6, epoch_size=64, max_lr=3e-3)
    train(config(tiny_tree, tmp_path / "t", name="teacher", **steps))
    liar = load_checkpoint(tmp_path / "t" / "teacher.pt")
    words = [CLASSES.index(w) for w in TONES]
    for key in ("classifier.1.weight", "classifier.1.bias"):
        liar["state_dict"][key][words] = liar["state_dict"][key][words[1:] + words[:1]].clone()
    write_payload(tmp_path / "liar.pt", liar)
    card = train(config(tiny_tree, tmp_path / "s", name="student", teacher=[str(tmp_path / "liar.pt")],
                        distill_weight=1.0, **steps))
    assert card["training"]["teacher"] == [str(tmp_path / "liar.pt")] and card["training"]["distill_weight"] == 1.0
    clips = folder_clips(tiny_tree, CLASSES)
    waves = load_waveforms(clips)
    # Which of the three tone words each model calls each clip (a short run leaves some weight on other words).
    said = {name: predict_batches(p.model, p.featurizer, waves)[:, words].argmax(1) for name, p in
            [("liar", Predictor.from_checkpoint(tmp_path / "liar.pt")),
             ("student", Predictor.from_checkpoint(tmp_path / "s" / "student.pt"))]}
    truth = torch.tensor([words.index(CLASSES.index(clip.label)) for clip in clips])
    follows_teacher = (said["student"] == said["liar"]).float().mean()
    follows_labels = (said["student"] == truth).float().mean()
    assert follows_teacher > follows_labels + 0.15, (follows_teacher, follows_labels)
    assert card["validation"]["accuracy"] < 0.5  # the labels were not what it learned
    spotting = config(tiny_tree, tmp_path / "x", spotting=True, teacher=[str(tmp_path / "liar.pt")])
    with pytest.raises(TrainError, match="--teacher: .* knows 30 classes, not this run's 32"):
        train(spotting)


def test_a_teacher_of_several_models_gives_their_mean_softened_probabilities():
    from speech.train import DISTILL_TEMPERATURE, Teacher, distillation_loss

    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, waves):
            return self.logits

    a, b = torch.randn(4, 30), torch.randn(4, 30)
    teacher = Teacher([Fixed(a), Fixed(b)])(torch.zeros(4, 16000))
    expected = ((a / DISTILL_TEMPERATURE).softmax(1) + (b / DISTILL_TEMPERATURE).softmax(1)) / 2
    assert torch.allclose(teacher.exp(), expected, atol=1e-6)
    assert distillation_loss(a, Teacher([Fixed(a)])(None)).abs() < 1e-5 < distillation_loss(b, teacher)


def test_ctrl_c_saves_a_checkpoint(tiny_tree, tmp_path):
    command = [sys.executable, "-m", "speech.train", "--variant", "mel", "--data", str(tiny_tree),
               "--validation-percent", "30", "--epochs", "50", "--epoch-size", "64", "--batch-size", "8",
               "--out", str(tmp_path)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    seen = ""
    deadline = time.time() + 120
    while "epoch 1:" not in seen and time.time() < deadline:  # wait until a whole epoch has run
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    assert "interrupted: state saved" in seen + rest
    saved = load_checkpoint(tmp_path / "mel.last.pt")
    assert saved["state"]["epoch"] >= 1 and "optimizer" in saved


def test_lr_finder_writes_loss_against_lr(tiny_tree, tmp_path):
    train(config(tiny_tree, tmp_path, lr_find=True, lr_find_steps=12))
    rows = read_log(tmp_path / "mel.lr_find.csv")
    lrs = [float(r["lr"]) for r in rows]
    assert len(rows) >= 10 and lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-6)
    assert not (tmp_path / "mel.pt").exists()


def test_balanced_epochs_draw_words_equally_and_reproducibly():
    labels = torch.tensor([0] * 90 + [1] * 10)
    drawn = epoch_indices(labels, 10_000, balanced=True, seed=0, epoch=0)
    share = (labels[drawn] == 1).float().mean()
    assert 0.45 < share < 0.55
    assert torch.equal(drawn, epoch_indices(labels, 10_000, True, 0, 0))
    assert not torch.equal(drawn, epoch_indices(labels, 10_000, True, 0, 1))


def test_min_real_share_raises_a_rare_words_real_clips_to_that_share_of_its_draws():
    # clips 0-51 are real (word 0: 50 clips, word 1: 2), 52-151 synthetic (word 0: 20, word 1: 80)
    labels = torch.tensor([0] * 50 + [1] * 2 + [0] * 20 + [1] * 80)

    def real_share(drawn, word):
        return (drawn[labels[drawn] == word] < 52).float().mean()

    plain = epoch_indices(labels, 40_000, True, 0, 0, real_count=52)
    assert real_share(plain, 0) == pytest.approx(50 / 70, abs=0.02)  # every clip equally often
    assert real_share(plain, 1) == pytest.approx(2 / 82, abs=0.01)
    drawn = epoch_indices(labels, 40_000, True, 0, 0, real_count=52, min_real_share=0.5)
    assert real_share(drawn, 0) == pytest.approx(50 / 70, abs=0.02)  # already above the share: unchanged
    assert real_share(drawn, 1) == pytest.approx(0.5, abs=0.02)
    assert (labels[drawn] == 1).float().mean() == pytest.approx(0.5, abs=0.02)  # still balanced over words
    synthetic_only = epoch_indices(labels[52:], 10_000, True, 0, 0, real_count=0, min_real_share=0.5)
    assert (labels[52:][synthetic_only] == 1).float().mean() == pytest.approx(0.5, abs=0.02)
    real_only = epoch_indices(labels[:52], 10_000, True, 0, 0, real_count=52, min_real_share=0.5)
    assert (labels[:52][real_only] == 1).float().mean() == pytest.approx(0.5, abs=0.02)


def test_cli_arguments_map_to_the_config():
    parsed = parse_args(["--variant", "complex", "--data", "a", "speechcommands:b", "--no-balanced", "--bf16",
                         "--epochs", "3"])
    assert parsed.variant == "complex" and parsed.data == ["a", "speechcommands:b"]
    assert not parsed.balanced and parsed.bf16 and parsed.epochs == 3
    assert parse_args([]).bf16 and not parse_args(["--no-bf16"]).bf16  # on by default where the device has it


def test_a_card_says_whether_bf16_autocast_ran(tiny_tree, tmp_path):
    native = native_bf16(torch.device("cpu"))
    assert train(config(tiny_tree, tmp_path / "a", epochs=1))["training"]["bf16_autocast"] is native
    assert train(config(tiny_tree, tmp_path / "b", epochs=1, bf16=False))["training"]["bf16_autocast"] is False


def test_distributed_two_cpu_processes(tmp_path):
    tree = write_tree(tmp_path / "clips")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
         "speech.train", "--variant", "mel", "--data", str(tree), "--validation-percent", "30", "--epochs", "2",
         "--epoch-size", "32", "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path / "out")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "out" / "mel.card.json").read_text())
    assert card["training"]["processes"] == 2 and card["training"]["epochs_run"] == 2
    assert len(read_log(tmp_path / "out" / "mel.log.csv")) == 4  # rank 0 alone writes the log


def test_cli_reports_a_run_that_cannot_start(tmp_path, tiny_tree, capsys):
    from speech.train import main
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "need clips for both training and validation" in capsys.readouterr().err
    assert main(["--data", str(tiny_tree), "--init", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    assert "--init: No checkpoint" in capsys.readouterr().err
    assert main(["--data", str(tiny_tree), "--arch", "rnn", "--out", str(tmp_path)]) == 2
    assert "Unknown architecture 'rnn'" in capsys.readouterr().err
    assert main(["--data", str(tiny_tree), "--arch", "bcresnet", "--variant", "baseline", "--out", str(tmp_path)]) == 2
    assert "bcresnet needs a multiple of 40 frequency rows" in capsys.readouterr().err
    assert main(["--data", str(tiny_tree), "--f-min", "300", "--out", str(tmp_path)]) == 2
    assert "the baseline variant has none" in capsys.readouterr().err


def test_spotting_run_adds_silence_and_unknown_and_starts_from_a_word_model(tiny_tree, tmp_path):
    """--spotting: two more classes, fed by non-words and noise of each part's own clips; --init from a model of
    the 30 words loads every layer but the last."""
    (tiny_tree / "_unknown_").mkdir()
    (tiny_tree / "_unknown_" / "tts_nohash_0.wav").write_bytes((tiny_tree / "yes" / "spk00_nohash_0.wav").read_bytes())
    words = train(config(tiny_tree, tmp_path / "words", arch="tcresnet", n_mels=40, name="tc", epochs=1))
    card = train(config(tiny_tree, tmp_path / "spot", arch="tcresnet", n_mels=40, name="spot", epochs=2,
                        spotting=True, init=str(tmp_path / "words" / "tc.pt"), extra_train=[str(tiny_tree)]))
    assert card["classes"][-2:] == ["_silence_", "_unknown_"] and len(card["classes"]) == len(words["classes"]) + 2
    derived = card["data"]["sources"]["derived"]
    assert derived["training"]["_unknown_"] > 0 and derived["validation"]["_silence_"] > 0
    assert card["data"]["sources"][str(tiny_tree)]["training"]["_unknown_"] == 1  # the extra source's folder
    assert "backward" not in card["data"]["sources"][str(tiny_tree)]["training"]
    before, after = weights(tmp_path / "words" / "tc.pt"), weights(tmp_path / "spot" / "spot.pt")
    assert after["classifier.1.weight"].shape[0] == before["classifier.1.weight"].shape[0] + 2
    assert before["stem.0.weight"].shape == after["stem.0.weight"].shape


def test_spotting_shares_give_the_extra_classes_their_weight():
    from speech.catalog import SPOTTING_CLASSES
    from speech.train import SPOTTING_SHARES, class_shares
    labels = torch.tensor([0] * 50 + [30] * 50 + [31] * 500)
    drawn = labels[epoch_indices(labels, 20_000, True, 0, 0, class_shares(SPOTTING_CLASSES, len(SPOTTING_CLASSES)))]
    unknown_per_word = (drawn == 31).float().mean() / (drawn == 0).float().mean()
    assert unknown_per_word == pytest.approx(SPOTTING_SHARES["_unknown_"], rel=0.1)


def test_more_words_are_trained_and_left_out_of_the_saved_model(tiny_tree, tmp_path):
    """--more-words: each word folder is an output while training, all of them drawn as often as
    MORE_WORDS_SHARE vocabulary words; the saved model and its card hold the vocabulary only."""
    from speech.train import MORE_WORDS_SHARE, TrainError, class_shares
    more = tmp_path / "more"
    for word in ("apple", "lamp", "river"):
        (more / word).mkdir(parents=True)
        (more / word / "tts_nohash_0.wav").write_bytes((tiny_tree / "yes" / "spk00_nohash_0.wav").read_bytes())
    run = config(tiny_tree, tmp_path / "out", arch="tcresnet", n_mels=40, name="tc", epochs=1, more_words=str(more))
    assert run.classes == CLASSES + ("apple", "lamp", "river") and run.vocabulary == CLASSES
    card = train(run)
    assert card["classes"] == list(CLASSES) and set(card["validation"]["per_class"]) == set(CLASSES)
    assert card["data"]["sources"][str(more)]["training"] == {"apple": 1, "lamp": 1, "river": 1}
    saved = load_checkpoint(tmp_path / "out" / "tc.pt")
    assert saved["classes"] == list(CLASSES) and saved["state_dict"]["classifier.1.weight"].shape[0] == len(CLASSES)
    assert load_checkpoint(tmp_path / "out" / "tc.last.pt")["state_dict"]["classifier.1.weight"].shape[0] == 33
    shares = class_shares(run.classes, len(CLASSES))
    assert shares[:30].sum() == 30 and shares[30:].sum() == pytest.approx(MORE_WORDS_SHARE)
    (more / "backward").mkdir()  # a reserved word must never be trained on
    with pytest.raises(TrainError, match="backward"):
        config(tiny_tree, tmp_path / "b", more_words=str(more), epochs=1).classes
    with pytest.raises(TrainError, match="holds no word folders"):
        config(tiny_tree, tmp_path / "c", more_words=str(tmp_path / "missing"), epochs=1).classes
