import json
import shutil
from pathlib import Path

import pytest

from speech.compare import (
    accuracy_by_word_count,
    answer,
    budget_label,
    gap,
    main,
    most_different_words,
    read_summary,
    shipped_summaries,
    summarize,
    table_rows,
)
from speech.plots import comparison_curves_figure, per_word_comparison_figure
from speech.train import TrainConfig, train


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """Real (tiny) equal-budget runs of two inputs, two seeds each, named as scripts/compare_inputs.sh names them."""
    from tests.conftest import write_tree
    root = tmp_path_factory.mktemp("compare")
    tree = write_tree(root / "clips")
    for variant in ("baseline", "mel"):
        for seed in (0, 1):
            train(TrainConfig(variant=variant, data=[str(tree)], validation_percent=30, epochs=2, epoch_size=16,
                              batch_size=8, patience=2, seed=seed, name=f"{variant}-seed{seed}",
                              out=str(root / "runs")))
    return root / "runs"


def test_summary_holds_every_run_and_the_mean_and_spread_over_seeds(compared):
    summary = summarize(compared)
    assert [r["name"] for r in summary["runs"]] == ["baseline-seed0", "baseline-seed1", "mel-seed0",
                                                          "mel-seed1"]
    assert summary["budget"]["epochs_run"] == 2 and summary["budget"]["epoch_size"] == 16
    for variant, figures in summary["variants"].items():
        macro = [r["macro_accuracy"] for r in summary["runs"] if r["variant"] == variant]
        assert figures["seeds"] == [0, 1]
        assert figures["macro_accuracy"]["mean"] == pytest.approx(sum(macro) / 2)
        assert figures["macro_accuracy"]["sd"] == pytest.approx(abs(macro[0] - macro[1]) / 2 ** 0.5)
        assert set(figures["per_class"]) == {"yes", "no", "up"}  # the tiny tree's words; the others have no clip
        assert all(len(r["history"]) == 4 for r in summary["runs"])  # 2 epochs x (train, valid)
    assert sum(summary["validation_counts"].values()) == summary["budget"]["validation_clips"]


def test_runs_with_different_budgets_are_refused(compared, tmp_path):
    shutil.copytree(compared, tmp_path / "runs")
    card_path = tmp_path / "runs" / "mel-seed1.card.json"
    card = json.loads(card_path.read_text())
    card["training"]["epochs_run"] = 1  # an early stop: less budget than the others
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="mel-seed1 differ"):
        summarize(tmp_path / "runs")
    with pytest.raises(ValueError, match="No runs"):
        summarize(tmp_path)


def made_up(means: dict[str, list[float]]) -> dict:
    """A summary with the given macro (and plain) accuracies per seed, for the wording of :func:`answer`."""
    from speech.compare import spread
    variants = {v: {"seeds": list(range(len(x))), "accuracy": spread(x), "macro_accuracy": spread(x),
                    "per_class": {"bed": spread(x), "tree": spread([a / 2 for a in x])}, "train_seconds": 60.0}
                for v, x in means.items()}
    return {"budget": {"epochs_run": 8, "epoch_size": 6400, "training_clips": 9704},
            "validation_counts": {"bed": 167, "tree": 3}, "runs": [], "variants": variants}


def test_answer_says_whether_a_gap_exceeds_the_seed_spread_and_compares_with_the_book():
    clear = made_up({"baseline": [0.80, 0.81, 0.79], "mel": [0.90, 0.91, 0.89], "complex": [0.70, 0.71, 0.69]})
    text = answer(clear)
    assert "**mel spectrogram** (0.900) > **power spectrogram** (0.800) > **complex STFT** (0.700)" in text
    assert text.count("larger than the seeds' spread") == 2 and "the book found" in text
    assert gap(clear, "mel", "baseline") == pytest.approx((0.1, (2 * 0.01 ** 2 / 3) ** 0.5))
    close = made_up({"baseline": [0.80, 0.90, 0.70], "mel": [0.79, 0.69, 0.89], "complex": [0.95, 0.93, 0.94]})
    text = answer(close)
    assert "within what another seed could change" in text and "the book's order" in text
    assert most_different_words(close, 1)[0][0] == "bed"
    assert [row["seeds"] for row in table_rows(close)] == [3, 3, 3]
    assert "about 5 passes over 9,704 clips" in answer(clear)  # 8 x 6400 / 9704


def test_common_and_rare_words_are_told_apart_by_their_validation_clips():
    summary = made_up({"baseline": [0.8, 0.6], "mel": [0.9, 0.9]})  # bed: 167 clips, tree: 3
    groups = accuracy_by_word_count(summary)
    assert groups == {"common": {"words": 1, "baseline": pytest.approx(0.7), "mel": pytest.approx(0.9)},
                      "rare": {"words": 1, "baseline": pytest.approx(0.35), "mel": pytest.approx(0.45)}}
    assert ("the 1 words with at least 20 validation clips 0.70 / 0.90; the 1 words with fewer, which also have "
            "far fewer real training clips, 0.35 / 0.45") in answer(summary)
    summary["validation_counts"] = {"bed": 167, "tree": 30}  # no rare word: no sentence about them
    assert set(accuracy_by_word_count(summary)) == {"common"} and "Common and rare" not in answer(summary)
    assert budget_label(summary) == "8 epochs, 2 seeds each"
    assert "With 2 seeds each the spread is itself a rough estimate." in answer(summary)


def test_cli_writes_the_summary_the_page_reads_and_refuses_a_foreign_file(compared, tmp_path, capsys):
    out = tmp_path / "compare_inputs.json"
    assert main([str(compared), "--out", str(out)]) == 0
    summary = read_summary(out)
    assert summary == json.loads(json.dumps(summarize(compared)))
    assert len(comparison_curves_figure(summary).data) == 8  # 4 runs x (loss, accuracy)
    assert len(per_word_comparison_figure(summary).data) == 2
    assert read_summary(tmp_path / "missing.json") is None
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a comparison summary"):
        read_summary(tmp_path / "other.json")
    assert "| input | accuracy | macro accuracy | seeds |" in capsys.readouterr().err  # README's table
    assert main([str(tmp_path / "empty")]) == 2
    assert "error: No runs" in capsys.readouterr().err
    found, problems = shipped_summaries([out, tmp_path / "missing.json", tmp_path / "other.json"])
    assert list(found) == ["2 epochs, 2 seeds each"] and found["2 epochs, 2 seeds each"] == summary
    assert len(problems) == 1 and problems[0].startswith("other.json is not a comparison summary")
