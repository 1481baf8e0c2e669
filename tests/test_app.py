"""Streamlit AppTest: every page renders without an exception; widgets change what is shown."""
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch
from streamlit.testing.v1 import AppTest

from speech import EXAMPLES_DIR, REPO_ROOT, SHIPPED_CHECKPOINTS
from speech.audio import load_audio
from speech.catalog import CLASSES, ROBUST, checkpoint_files, teaching_base
from speech.compare import SHIPPED_SUMMARIES, budget_label, read_summary
from speech.predict import Predictor
from speech.results import SHARED_REAL
from speech.teach import as_bytes, teach
from speech.ui import available_checkpoints
from tests.conftest import chirp, tone

PAGES = ["app.py", "app_pages/home.py", "app_pages/1_Waveform.py", "app_pages/2_Fourier_transform.py",
         "app_pages/3_Spectrogram.py", "app_pages/4_Mel_filter_bank.py", "app_pages/5_Dataset.py",
         "app_pages/6_Results.py", "app_pages/7_Live_prediction.py", "app_pages/8_Word_spotting.py",
         "app_pages/9_Your_own_words.py"]
TIMEOUT = 120
needs_checkpoints = pytest.mark.skipif(not (SHIPPED_CHECKPOINTS / "mel.pt").is_file(), reason="no shipped checkpoints")


def run(page: str) -> AppTest:
    app = AppTest.from_file(str(REPO_ROOT / page), default_timeout=TIMEOUT)
    app.run()
    return app


def wav_bytes(data: np.ndarray, rate: int = 16_000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(page):
    app = run(page)
    assert not app.exception, app.exception
    assert app.title


def metric(app: AppTest, label: str) -> str:
    return next(m for m in app.metric if m.label.startswith(label)).value


def test_n_fft_follows_the_window_and_the_resolution_is_the_windows():
    app = run("app_pages/3_Spectrogram.py")
    assert metric(app, "Shape") == "257 × 101" and metric(app, "Frequency resolution") == "33.3 Hz"
    app.select_slider(key="window").set_value(2048).run()
    assert not app.exception
    assert metric(app, "Shape").startswith("1025 ×") and metric(app, "Bin spacing") == "7.8 Hz"
    app.select_slider(key="window").set_value(64).run()  # back down: n_fft follows, no stale 2048
    assert metric(app, "Shape").startswith("33 ×")
    assert metric(app, "Frequency resolution") == "250.0 Hz" and metric(app, "Bin spacing") == "250.0 Hz"
    app.select_slider(key="padding").set_value(4).run()  # deliberate zero-padding: finer bins, same resolution
    assert metric(app, "Bin spacing") == "62.5 Hz" and metric(app, "Frequency resolution") == "250.0 Hz"


@pytest.mark.parametrize("page,key", [("app_pages/1_Waveform.py", "waveform"), ("app_pages/3_Spectrogram.py",
                                                                                  "spectrogram")])
def test_picking_another_word_changes_the_clip(page, key):
    app = run(page)
    before = app.get("audio")[0].proto.url if page.endswith("Spectrogram.py") else metric(app, "Peak")
    voice = app.selectbox(key=f"{key}-voice").value
    app.selectbox(key=f"{key}-word").set_value("six").run()
    assert not app.exception
    assert app.selectbox(key=f"{key}-voice").value == voice  # the same voice, now saying "six"
    after = app.get("audio")[0].proto.url if page.endswith("Spectrogram.py") else metric(app, "Peak")
    assert after != before
    if page.endswith("Waveform.py"):
        six = load_audio(EXAMPLES_DIR / "six" / f"{voice}_nohash_0.flac").waveform
        assert metric(app, "Peak") == f"{six.abs().max():.3f}"


def test_a_ten_minute_upload_gives_small_figures():
    minutes = 10 * 60 * 16_000 - 16_000  # just under the limit
    wave = (0.3 * np.sin(np.arange(minutes) / 7)).astype(np.float32)
    for page, key in (("app_pages/1_Waveform.py", "waveform"), ("app_pages/3_Spectrogram.py", "spectrogram")):
        app = run(page)
        app.radio(key=f"{key}-source").set_value("Upload a file").run()
        app.file_uploader(key=f"{key}-upload").upload("long.wav", wav_bytes(wave), "audio/wav")
        app.run()
        assert not app.exception and not app.error
        sizes = [len(chart.proto.spec) for chart in app.get("plotly_chart")]
        sizes += [len(frame.proto.json_args) for frame in app.get("component_instance")]  # speech.ui.plotly_in_frame
        assert sizes and max(sizes) < 1_000_000, sizes  # the 9.6 M samples themselves would be > 100 MB


def test_mel_page_refuses_an_empty_frequency_range():
    app = run("app_pages/4_Mel_filter_bank.py")
    app.slider(key="f_range").set_value((3000, 3000)).run()
    assert not app.exception
    assert "too narrow" in app.error[0].value and not app.metric


def test_explorer_pages_accept_an_upload_and_report_bad_files():
    app = run("app_pages/1_Waveform.py")
    app.radio(key="waveform-source").set_value("Upload a file").run()
    app.file_uploader(key="waveform-upload").upload("stereo.wav", wav_bytes(np.stack([tone(440.0, rate=44_100)] * 2, 1),
                                                                            44_100), "audio/wav")
    app.run()
    assert not app.exception and not app.error
    assert next(m for m in app.metric if m.label == "Duration").value == "1.000 s"
    app.file_uploader(key="waveform-upload").set_value(("junk.wav", b"not audio" * 100, "audio/wav")).run()
    assert not app.exception and "Cannot read junk.wav as audio" in app.error[0].value
    assert "..)" not in app.error[0].value and ".)." not in app.error[0].value  # no double punctuation


def test_mel_page_shows_the_filter_bank_check():
    app = run("app_pages/4_Mel_filter_bank.py")
    check = next(m for m in app.metric if "filter bank" in m.label)
    assert float(check.value) < 1e-4


def test_recording_on_an_explorer_page():
    app = run("app_pages/2_Fourier_transform.py")
    app.radio(key="fourier-source").set_value("Record with the microphone").run()
    app.audio_input(key="fourier-record").upload("recording.wav", wav_bytes(tone(300.0)))
    app.run()
    assert not app.exception and not app.error
    assert any("round trip" in m.label for m in app.metric)


BAD_INPUTS = {
    "empty": (b"", "Empty file"),
    "not audio": (b"GIF89a" + bytes(2000), "Cannot read"),
    "corrupt": (wav_bytes(tone(300.0), fmt="FLAC")[:300], "Corrupt file|Cannot read|No samples"),
    "silence": (wav_bytes(np.zeros(16_000, dtype=np.float32)), "Silent"),
    "too short": (wav_bytes(tone(300.0, seconds=0.05)), "ms long"),
    "too long": (wav_bytes(np.zeros(16_000 * 601, dtype=np.int16).astype(np.float32) + 0.1, 16_000), "limit"),
}


@needs_checkpoints
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_live_page_reports_bad_uploads(case):
    data, message = BAD_INPUTS[case]
    app = run("app_pages/7_Live_prediction.py")
    app.file_uploader(key="live-upload").upload(f"{case}.wav", data, "audio/wav")
    app.run()
    assert not app.exception, app.exception
    assert app.error, f"no error shown for {case}"
    assert re.search(message, app.error[0].value), app.error[0].value


@needs_checkpoints
def test_live_page_predicts_an_upload_with_every_variant():
    clip = (EXAMPLES_DIR / "yes").iterdir().__next__().read_bytes()
    app = run("app_pages/7_Live_prediction.py")
    app.radio[0].set_value("All side by side").run()
    app.file_uploader(key="live-upload").upload("yes.flac", clip, "audio/flac")
    app.run()
    assert not app.exception
    labels = [m.label for m in app.metric]
    assert sum("Prediction" in label for label in labels) == len(available_checkpoints())
    # each model: its input as sound and the salient part as sound (+ the uploaded clip's), both saliency maps
    assert len(app.get("audio")) == 2 * len(available_checkpoints())
    titles = figure_titles(app)
    assert sum(t.startswith("Occlusion") for t in titles) == len(available_checkpoints())
    assert sum(t.startswith("Gradient × input") for t in titles) == len(available_checkpoints())
    assert any("exact inverse" in m.value for m in app.markdown)


def table_with(app: AppTest, column: str):
    """The first table of the page that has ``column`` (the Results page shows several)."""
    return next(t.value for t in app.table if column in t.value.columns)


def figure_titles(app: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]


@needs_checkpoints
def test_results_page_switches_models_and_bounds_the_flow_threshold():
    app = run("app_pages/6_Results.py")
    assert not app.exception
    # one accuracy row per model; the book's three are chosen at first, extra architectures on request
    assert len(table_with(app, "model")) == min(len(available_checkpoints()), 3)
    app.multiselect[0].set_value(["baseline"]).run()
    assert not app.exception
    assert len(table_with(app, "model")) == 1
    flows = app.slider(key="flows-baseline")
    assert flows.max >= 2  # baseline's largest error flow on the bundled examples (the slider is off below 2)
    flows.set_value(flows.max).run()
    assert not app.exception
    title = next(t for t in figure_titles(app) if t.startswith("baseline: predictions → targets"))
    assert f"flows under {int(flows.max)} clips hidden" in title and not title.split("<sup>")[1].startswith("0 of")
    assert not app.get("audio")
    pair = app.selectbox(key="pair-baseline")
    pair.set_value(pair.options[1]).run()  # the most confused pair: as a click on its confusion cell does
    assert not app.exception
    target, predicted = pair.options[1].split(" (")[0].split(" → ")
    assert any(f"of '{target}' that baseline took for '{predicted}'" in m.value for m in app.markdown)
    assert app.get("audio") and any(t.startswith("Where baseline looked") for t in figure_titles(app))
    assert table_with(app, "baseline") is not None  # every chosen model's top 3 for the clip
    assert any(t.startswith("baseline: embedding of the") for t in figure_titles(app))


@pytest.mark.skipif(not any(p.is_file() for p in SHIPPED_SUMMARIES), reason="no input comparison shipped")
@needs_checkpoints
def test_results_page_answers_whether_the_input_matters_at_each_budget():
    app = run("app_pages/6_Results.py")
    summaries = [read_summary(path) for path in SHIPPED_SUMMARIES if path.is_file()]
    budgets = app.radio(key="compare-budget")
    assert list(budgets.options) == [budget_label(s) for s in summaries]
    for summary in summaries:
        budgets.set_value(budget_label(summary)).run()
        rows = table_with(app, "seeds")
        assert [int(n) for n in rows["seeds"]] == [len(v["seeds"]) for v in summary["variants"].values()]
        assert rows["accuracy"][0] == f"{summary['variants']['baseline']['accuracy']['mean']:.3f} ± " \
                                      f"{summary['variants']['baseline']['accuracy']['sd']:.3f}"
        assert any(m.value.startswith(f"**With equal budgets** ({summary['budget']['epochs_run']} epochs")
                   for m in app.markdown)
        titles = figure_titles(app)
        assert "Every seed's validation curves" in titles and any(t.startswith("Accuracy per word") for t in titles)
        budgets = app.radio(key="compare-budget")


@needs_checkpoints
def test_results_page_training_curves_show_every_stage():
    # the spotting model continued tcresnet's weights: its curves hold both runs, the second one marked
    card = json.loads((SHIPPED_CHECKPOINTS / "spotting.card.json").read_text())
    earlier = card["initialized_from"]["history"]
    app = run("app_pages/6_Results.py")
    app.multiselect[0].set_value(["spotting"]).run()
    spec = next(json.loads(c.proto.spec) for c in app.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("spotting: training curves"))
    epochs = [x for trace in spec["data"] for x in trace["x"]]
    assert max(epochs) == max(r["epoch"] for r in earlier) + card["training"]["epochs_run"]
    assert any("stage 2 starts" in a["text"] for a in spec["layout"]["annotations"])


@needs_checkpoints
def test_results_page_describes_the_ensemble_by_its_members():
    card = json.loads((SHIPPED_CHECKPOINTS / "ensemble.card.json").read_text())
    app = run("app_pages/6_Results.py")
    app.multiselect[0].set_value(["ensemble"]).run()
    assert not app.exception
    summary = next(m.value for m in app.markdown if m.value.startswith("Architecture **4xtcresnet**"))
    assert f"macro accuracy **{card['validation']['macro_accuracy']:.3f}**" in summary
    assert f"The mean of {len(card['members'])} models' probabilities" in summary
    assert not any(t.startswith("ensemble: training curves") for t in figure_titles(app))  # it has no log


@pytest.mark.skipif(not SHARED_REAL.is_dir(), reason="no shared folder beside the repo")
def test_results_page_flags_a_folder_of_training_speakers():
    app = run("app_pages/6_Results.py")
    app.radio(key="results-source").set_value("A folder").run()
    app.text_input(key="results-folder").set_value("../shared/speech_commands_real").run()
    assert not app.exception
    assert any("trained on" in w.value for w in app.warning)
    assert any(b.label.startswith("Evaluate") for b in app.button)  # nothing runs before the user asks


@needs_checkpoints
def test_live_page_warns_about_clipped_and_truncated_recordings():
    clipped = np.clip(tone(300.0, amplitude=0.5) * 8, -1, 1)
    app = run("app_pages/7_Live_prediction.py")
    app.file_uploader(key="live-upload").upload("loud.wav", wav_bytes(clipped), "audio/wav")
    app.run()
    assert not app.exception and any("clipped" in w.value for w in app.warning)
    assert any(f"**{ROBUST}** model" in w.value for w in app.warning)  # the shipped model for such recordings
    cut = wav_bytes(tone(300.0, seconds=2.0))[:30_000]  # the header still promises 2 s
    app.file_uploader(key="live-upload").upload("cut.wav", cut, "audio/wav")
    app.run()
    assert not app.exception and any("truncated" in w.value for w in app.warning)
    app.file_uploader(key="live-upload").upload("notes.txt", b"hello", "text/plain")
    app.run()
    assert "Cannot read notes.txt as audio" in app.error[0].value


def test_broken_and_mismatched_checkpoints_get_a_message(tmp_path, monkeypatch):
    from speech.features import FeatureConfig
    from speech.model import SpeechCNN, save_checkpoint
    save_checkpoint(tmp_path / "mel.pt", SpeechCNN(2), FeatureConfig(variant="complex"), ["w"] * 30)
    (tmp_path / "baseline.pt").write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setenv("SPEECH_LAB_CHECKPOINTS", str(tmp_path))
    app = run("app_pages/7_Live_prediction.py")
    app.radio[0].set_value("All side by side").run()
    app.file_uploader(key="live-upload").upload("yes.wav", wav_bytes(tone(300.0)), "audio/wav")
    app.run()
    assert not app.exception, app.exception
    errors = " ".join(e.value for e in app.error)
    assert "'complex' variant, not 'mel'" in errors and "corrupt" in errors


def test_dataset_page_browses_a_folder(tmp_path):
    (tmp_path / "wow").mkdir()
    sf.write(tmp_path / "wow" / "abc_nohash_0.wav", tone(500.0), 16_000)
    app = run("app_pages/5_Dataset.py")
    app.radio[0].set_value("A folder on this computer").run()
    app.text_input[0].set_value(str(tmp_path)).run()
    assert not app.exception, app.exception
    assert any("1 clips" in m.value for m in app.markdown)
    app.text_input[0].set_value(str(tmp_path / "missing")).run()
    assert not app.exception and "No such folder" in app.error[0].value


needs_spotting = pytest.mark.skipif(not (SHIPPED_CHECKPOINTS / "spotting.pt").is_file(), reason="no spotting model")


def detected_words(app: AppTest) -> list[str]:
    """The words of the detection table (rows read "**word** · 97%")."""
    return [m.value.split("**")[1] for m in app.markdown if re.fullmatch(r"\*\*\w+\*\* · \d+%", m.value)]


@needs_spotting
def test_word_spotting_page_finds_the_words_of_an_upload_and_its_controls_act():
    recording = EXAMPLES_DIR / "_recordings" / "numbers_and_names.flac"
    app = run("app_pages/8_Word_spotting.py")
    app.radio(key="spot-source").set_value("Upload a file").run()
    app.file_uploader(key="spot-upload").upload(recording.name, recording.read_bytes(), "audio/flac")
    app.run()
    assert not app.exception and not app.error
    found = detected_words(app)
    assert {"one", "four", "five", "marvin", "sheila"} <= set(found), found
    app.slider(key="spot-threshold").set_value(0.99).run()  # nearly nothing is that sure
    assert len(detected_words(app)) < len(found)
    app.slider(key="spot-threshold").set_value(0.05).run()
    app.slider(key="spot-refractory").set_value(2.0).run()  # long pauses swallow neighbours
    assert not app.exception and len(detected_words(app)) < len(found) + 3
    app.file_uploader(key="spot-upload").set_value(("junk.wav", b"not audio" * 100, "audio/wav")).run()
    assert not app.exception and "Cannot read junk.wav as audio" in app.error[0].value


@needs_spotting
def test_word_spotting_page_says_when_nothing_was_heard():
    app = run("app_pages/8_Word_spotting.py")
    app.radio(key="spot-source").set_value("Upload a file").run()
    noise = (0.05 * np.random.default_rng(0).standard_normal(5 * 16_000)).astype(np.float32)
    app.file_uploader(key="spot-upload").upload("noise.wav", wav_bytes(noise), "audio/wav")
    app.run()
    assert not app.exception
    assert any(i.value == "No command word heard." for i in app.info)


@needs_spotting
def test_live_page_rejects_noise_and_keeps_a_word():
    app = run("app_pages/7_Live_prediction.py")
    noise = (0.05 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32)
    app.file_uploader(key="live-upload").upload("noise.wav", wav_bytes(noise), "audio/wav")
    app.run()
    assert not app.exception and any("No command word heard" in i.value for i in app.info)
    assert metric(app, "Prediction") == "no command word"
    app.file_uploader(key="live-upload").upload("yes.flac", (EXAMPLES_DIR / "yes" / "flite-slt_nohash_0.flac")
                                                .read_bytes(), "audio/flac")
    app.run()
    assert not app.info and metric(app, "Prediction") == "yes"


def take_wav(start_hz: float, end_hz: float, seed: int) -> bytes:
    return wav_bytes(chirp(start_hz, end_hz, seed).numpy())


@needs_checkpoints
def test_own_words_page_builds_from_uploads_predicts_and_offers_downloads():
    app = run("app_pages/9_Your_own_words.py")
    assert not app.exception and app.info
    bases = app.selectbox(key="teach-base")
    assert "ensemble" not in bases.options and bases.value == teaching_base(checkpoint_files())
    app.text_input(key="teach-new-word").input("yes")
    app.button(key="teach-add-word").click().run()
    assert "already one of the model's words" in app.error[0].value
    app.text_input(key="teach-new-word").input("whoop")
    app.button(key="teach-add-word").click().run()
    uploads = [(f"take{i}.wav", take_wav(300.0, 2500.0, i), "audio/wav") for i in range(3)]
    app.file_uploader(key="teach-upload-whoop").set_value(uploads[:2]).run()
    assert not app.exception and app.button(key="teach-build").disabled
    assert any("needs at least 3 takes (2 so far)" in c.value for c in app.caption)
    app.file_uploader(key="teach-upload-whoop").set_value([*uploads, ("junk.wav", b"x" * 500, "audio/wav")]).run()
    assert any("junk.wav" in e.value for e in app.error)  # a bad take is named; the good ones are kept
    assert app.radio(key="teach-word").options == ["whoop (3)"] and not app.button(key="teach-build").disabled
    app.button(key="teach-build").click().run()
    assert not app.exception
    assert metric(app, "Words the model knows") == str(len(CLASSES) + 1)  # the base is a 30-word model
    assert app.get("plotly_chart")  # the takes and the embedding map
    app.file_uploader(key="teach-test-upload").upload("test.wav", take_wav(300.0, 2500.0, 50), "audio/wav")
    app.run()
    assert not app.exception and metric(app, "Prediction") == "whoop"
    labels = [b.proto.label for b in app.get("download_button")]
    assert labels == ["Download the checkpoint (.pt)", "Download for onnxruntime (.onnx)"]


@needs_checkpoints
def test_an_uploaded_checkpoint_is_used_on_the_live_page_and_a_wrong_one_explained():
    base = Predictor.from_checkpoint(SHIPPED_CHECKPOINTS / "tcresnet.pt")
    custom = teach(base, {"whoop": torch.stack([chirp(300.0, 2500.0, i) for i in range(3)])}).predictor
    app = run("app_pages/7_Live_prediction.py")
    app.file_uploader(key="live-checkpoint").upload("mine.pt", as_bytes(custom), "application/octet-stream")
    app.file_uploader(key="live-upload").upload("whoop.wav", take_wav(300.0, 2500.0, 9), "audio/wav")
    app.run()
    assert not app.exception
    assert metric(app, "Prediction (mine.pt)") == "whoop"
    app.file_uploader(key="live-checkpoint").upload("notes.pt", b"not a checkpoint" * 20, "application/octet-stream")
    app.run()
    assert not app.exception and any("notes.pt" in e.value and "not a readable checkpoint" in e.value
                                     for e in app.error)
