"""Streamlit AppTest: every page renders without an exception; widgets change what is shown."""
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from speech import SHIPPED_CHECKPOINTS, EXAMPLES_DIR, REPO_ROOT
from speech.ui import shipped_checkpoints
from tests.conftest import tone

PAGES = ["app.py", "app_pages/home.py", "app_pages/1_Waveform.py", "app_pages/2_Fourier_transform.py", "app_pages/3_Spectrogram.py",
         "app_pages/4_Mel_filter_bank.py", "app_pages/5_Dataset.py", "app_pages/6_Results.py", "app_pages/7_Live_prediction.py"]
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


def test_window_slider_changes_the_spectrogram_shape():
    app = run("app_pages/3_Spectrogram.py")
    shape = next(m for m in app.metric if m.label.startswith("Shape"))
    assert shape.value == "257 × 101"
    app.select_slider(key="window").set_value(2048).run()
    assert not app.exception
    shape = next(m for m in app.metric if m.label.startswith("Shape"))
    assert shape.value.startswith("1025 ×")


def test_explorer_pages_accept_an_upload_and_report_bad_files():
    app = run("app_pages/1_Waveform.py")
    app.radio(key="waveform-source").set_value("Upload a file").run()
    app.file_uploader(key="waveform-upload").upload("stereo.wav", wav_bytes(np.stack([tone(440.0, rate=44_100)] * 2, 1),
                                                                            44_100), "audio/wav")
    app.run()
    assert not app.exception and not app.error
    assert next(m for m in app.metric if m.label == "Duration").value == "1.000 s"
    app.file_uploader(key="waveform-upload").set_value(("junk.wav", b"not audio" * 100, "audio/wav")).run()
    assert not app.exception and "Cannot read" in app.error[0].value


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
    assert sum("Prediction" in label for label in labels) == len(shipped_checkpoints())


def figure_titles(app: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in app.get("plotly_chart")]


@needs_checkpoints
def test_results_page_switches_variants_and_threshold():
    app = run("app_pages/6_Results.py")
    assert not app.exception
    # one accuracy row per variant; the book's three are chosen at first, extra architectures on request
    assert len(app.table[0].value) == min(len(shipped_checkpoints()), 3)
    app.multiselect[0].set_value(["mel"]).run()
    assert not app.exception
    assert len(app.table[0].value) == 1
    assert any(t.startswith("mel: predictions → targets") and "under 0.10% hidden" in t for t in figure_titles(app))
    app.number_input[0].set_value(0.05).run()
    assert not app.exception
    assert any("under 5.00% hidden" in t for t in figure_titles(app))
    app.button(key="listen-mel-0").click().run()  # play an example of the most confused pair
    assert not app.exception
    assert app.get("audio")


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
