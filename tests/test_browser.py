"""Real-browser tests: the app served on a local port, driven in Debian's headless Chromium.

Screenshots land in test-artifacts/screenshots/ (look at them). Chromium's fake media devices feed a
bundled example into the microphone, so the recording path runs exactly as for a user.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech import EXAMPLES_DIR, REPO_ROOT, SHIPPED_CHECKPOINTS
from speech.audio import load_audio
from speech.catalog import best_checkpoint, checkpoint_files
from speech.predict import Predictor
from speech.results import SHARED_REAL

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PAGES = {"home": "", "waveform": "Waveform", "fourier": "Fourier_transform", "spectrogram": "Spectrogram",
         "mel": "Mel_filter_bank", "dataset": "Dataset", "results": "Results", "live": "Live_prediction",
         "spotting": "Word_spotting", "own_words": "Your_own_words"}
SHIPPED = (SHIPPED_CHECKPOINTS / "mel.pt").is_file()
SPOKEN = EXAMPLES_DIR / "yes" / "flite-slt_nohash_0.flac"  # the word the fake microphone says
UPLOADED = EXAMPLES_DIR / "seven" / "flite-awb_nohash_0.flac"

IN_CI = os.environ.get("CI") == "true"
if not IN_CI:  # on a developer's machine without a browser the tests are skipped; in CI a missing one is a failure
    pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
else:
    import playwright.sync_api as playwright_api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(repo: Path = REPO_ROOT):
    """``streamlit run app.py`` of ``repo`` on a free local port; yields its URL once it answers, then stops it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as url:
        yield url


def launch(playwright, fake_microphone: Path):
    """Debian's headless Chromium, its fake microphone saying the WAV ``fake_microphone`` (looped)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={fake_microphone}"])


@contextlib.contextmanager
def chromium(fake_microphone: Path):
    """:func:`launch` under its own Playwright (for scripts; the tests share one Playwright per module)."""
    with playwright_api.sync_playwright() as p:
        instance = launch(p, fake_microphone)
        try:
            yield instance
        finally:
            instance.close()


@contextlib.contextmanager
def speaking_tab(playwright, spoken: Path, url: str, height: int = 2600):
    """A tab of a fresh Chromium whose fake microphone says ``spoken`` (a 16-bit WAV), opened at ``url``."""
    instance = launch(playwright, spoken)
    try:
        context = instance.new_context(viewport={"width": 1400, "height": height}, permissions=["microphone"])
        tab = context.new_page()
        tab.goto(url)
        settle(tab)
        yield tab
        context.close()
    finally:
        instance.close()


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    fake_audio = tmp_path_factory.mktemp("audio") / "spoken.wav"
    data, rate = sf.read(SPOKEN, dtype="int16")
    sf.write(fake_audio, data, rate, subtype="PCM_16")
    instance = launch(playwright, fake_audio)
    yield instance
    instance.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 2600}, permissions=["microphone"])
    tab = context.new_page()
    yield tab
    context.close()


def settle(tab, timeout: float = 120) -> None:
    """Wait until Streamlit has run the script to its end (the app's script state, which the page exposes on
    ``stApp``, has been something other than running for a second)."""
    tab.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    deadline, quiet_since = time.time() + timeout, None
    while time.time() < deadline:
        state = tab.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        quiet_since = None if state in ("running", "initial", None) else (quiet_since or time.time())
        if quiet_since and time.time() - quiet_since > 1.0:
            return
        tab.wait_for_timeout(100)
    raise AssertionError("the app kept running")


def wait_for_count(tab, selector: str, at_least: int, timeout: float) -> None:
    """Wait until the page shows ``at_least`` elements matching ``selector``; fail with the count it reached."""
    deadline = time.time() + timeout
    while (count := tab.locator(selector).count()) < at_least and time.time() < deadline:
        no_exception(tab)
        tab.wait_for_timeout(250)
    assert count >= at_least, f"{count} of {at_least} {selector} after {timeout} s"


def no_exception(tab) -> None:
    assert tab.locator('[data-testid="stException"]').count() == 0, tab.locator(
        '[data-testid="stException"]').first.inner_text()


def shoot(tab, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_in_chromium(page, server, name):
    page.goto(f"{server}/{PAGES[name]}")
    page.wait_for_selector("h1", timeout=60_000)  # a fresh server may answer before the script has run
    settle(page)
    no_exception(page)
    if name in ("waveform", "fourier", "spectrogram", "mel") or (name == "results" and SHIPPED):
        page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=60_000)
    assert shoot(page, name).stat().st_size > 10_000


needs_checkpoints = pytest.mark.skipif(not SHIPPED, reason="no shipped checkpoints")


def expected_word(clip: Path) -> str:
    """What the page's default model (the best on validation) says for ``clip``: the page must show the same, so
    a retrained checkpoint cannot break this test for no reason."""
    files = checkpoint_files(SHIPPED_CHECKPOINTS)
    return Predictor.from_checkpoint(files[best_checkpoint(files)]).predict(load_audio(clip).waveform).word


def assert_prediction(tab, word: str, screenshot: str) -> None:
    """After an input: the page settles without an exception and the Prediction metric shows ``word``."""
    settle(tab)
    no_exception(tab)
    metric = tab.locator('[data-testid="stMetric"]').filter(has_text="Prediction").first
    metric.wait_for(timeout=60_000)
    lines = [line.strip() for line in metric.inner_text().splitlines() if line.strip()]
    shoot(tab, screenshot)
    assert lines[1] == word, lines  # label, value (the word), delta (confidence)


@needs_checkpoints
def test_microphone_recording_is_recognised(page, server):
    page.goto(f"{server}/Live_prediction")
    settle(page)
    page.get_by_role("button", name="Record").first.click()
    page.wait_for_timeout(2500)
    page.get_by_role("button", name="Stop recording").first.click()
    # the browser resamples what it records, so the file's own answer is only a guide: it must be right with a margin
    files = checkpoint_files(SHIPPED_CHECKPOINTS)
    on_file = Predictor.from_checkpoint(files[best_checkpoint(files)]).predict(load_audio(SPOKEN).waveform)
    assert on_file.word == "yes" and on_file.confidence > 0.8, "choose another SPOKEN clip: " + str(on_file.top(3))
    assert_prediction(page, "yes", "live_microphone")
    # switching to every model keeps the recording (the widget must not move and lose it)
    page.get_by_text("All side by side").click()
    settle(page)
    no_exception(page)
    assert page.get_by_text("An error has occurred").count() == 0
    assert page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").count() == len(files)
    shoot(page, "live_all_models")


def audio_uploader(tab):
    """The file input of the page's "Audio file" uploader (the Live page also has one for checkpoints)."""
    return tab.locator('[data-testid="stFileUploader"]').filter(has_text="Audio file").locator(
        '[data-testid="stFileUploaderDropzoneInput"]')


# The page's own clock, for what a user waits for: from the user's action (the first change or keydown event after
# `want` is set) to the first frame painted with an element matching `want` (a selector and a text it contains).
# Timing from the test's side would add the time Playwright's polls wait behind the renderer's plotly work.
# The page's document and those of its same-origin iframes (components such as speech.ui.plotly_in_frame); a
# cross-origin frame's contentDocument is null.
DOCUMENTS = "[document, ...[...document.querySelectorAll('iframe')].map(f => f.contentDocument)].filter(Boolean)"
SHOWS = f"""([selector, text]) => {DOCUMENTS}.some(
  d => [...d.querySelectorAll(selector)].some(element => element.textContent.includes(text)))"""
PAINT_CLOCK = f"""() => {{
  const clock = window.__paintClock = {{want: null, action: null, found: false, painted: null}};
  for (const type of ['change', 'keydown']) {{
    document.addEventListener(type, () => {{
      if (clock.want && clock.action === null) clock.action = performance.now();
    }}, true);
  }}
  const check = () => {{
    if (!clock.want || clock.action === null || clock.found || !({SHOWS})(clock.want)) return;
    clock.found = true;  // a timeout queued from a frame callback runs once that frame is painted
    requestAnimationFrame(() => setTimeout(() => {{ clock.painted = performance.now(); }}, 0));
  }};
  const everything = {{subtree: true, childList: true, characterData: true}};
  for (const d of {DOCUMENTS}) new MutationObserver(check).observe(d, everything);
}}"""


def seconds_to_paint(tab, act, selector: str, text: str) -> float:
    """Seconds on the page's clock from the change or keydown event that ``act()`` causes to the first painted frame
    with an element matching ``selector`` that contains ``text`` (absent before), in the page or one of its
    same-origin iframes. Call after each navigation, once the page is settled."""
    tab.evaluate(PAINT_CLOCK)
    tab.evaluate("want => { window.__paintClock.want = want; }", [selector, text])
    act()
    tab.wait_for_function("window.__paintClock.painted !== null", timeout=60_000)
    return tab.evaluate("(window.__paintClock.painted - window.__paintClock.action) / 1000")


def upload_to_prediction(tab, url: str, clip: Path = UPLOADED) -> float:
    """Upload ``clip`` on the Live page; seconds until a prediction is painted, as a user waits for it."""
    tab.goto(f"{url}/Live_prediction")
    settle(tab)
    tab.get_by_role("tab", name="Upload a file").click()
    return seconds_to_paint(tab, lambda: audio_uploader(tab).set_input_files(str(clip)), '[data-testid="stMetric"]',
                            "Prediction")


def slider_to_figure(tab, url: str) -> float:
    """Seconds from one step of the window-size slider (480 -> 512) to the Spectrogram page's figure (in the page or,
    since ``speech.ui.plotly_in_frame``, in its own frame) titled with the new window."""
    tab.goto(f"{url}/Spectrogram")
    settle(tab)
    tab.wait_for_function(SHOWS, arg=[".js-plotly-plot", "Window 480 samples"], timeout=60_000)
    thumb = tab.get_by_role("slider").first
    thumb.focus()
    return seconds_to_paint(tab, lambda: thumb.press("ArrowRight"), ".js-plotly-plot", "Window 512 samples")


def test_the_window_slider_redraws_the_framed_spectrogram(page, server):
    print(f"window slider to figure: {slider_to_figure(page, server):.2f} s")
    figure = page.frame_locator("iframe").first.locator(".js-plotly-plot")
    assert "n_fft 512" in figure.inner_text() and figure.locator(".heatmaplayer image").count() == 1
    no_exception(page)
    shoot(page, "spectrogram_window_512")


@needs_checkpoints
def test_uploaded_file_is_recognised(page, server):
    print(f"upload to prediction: {upload_to_prediction(page, server):.2f} s")
    assert_prediction(page, expected_word(UPLOADED), "live_upload")


def test_a_subpage_opened_first_shows_the_apps_own_sidebar(browser):
    """A fresh server whose first visitor opens /Waveform: the sidebar lists the app's ten pages, nothing else."""
    with streamlit_server() as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        tab = context.new_page()
        tab.goto(f"{url}/Waveform")
        tab.wait_for_selector("h1", timeout=60_000)
        settle(tab)
        links = [t.strip() for t in tab.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
        shoot(tab, "subpage_first")
        context.close()
    assert links == ["Home", "Waveform", "Fourier transform", "Spectrogram", "Mel filter bank", "Dataset", "Results",
                     "Live prediction", "Word spotting", "Your own words"], links


@needs_checkpoints
def test_results_page_with_all_variants(page, server):
    page.goto(f"{server}/Results")
    settle(page, timeout=300)
    # curves, lr finder, confusion, alluvial: on a slow machine the evaluation's figures may arrive after a quiet spell
    wait_for_count(page, '[data-testid="stPlotlyChart"]', 4, timeout=300)
    no_exception(page)
    shoot(page, "results_all_variants")


RECORDINGS = EXAMPLES_DIR / "_recordings"
needs_spotting = pytest.mark.skipif(not (SHIPPED_CHECKPOINTS / "spotting.pt").is_file(), reason="no spotting model")


def spotted_words(tab) -> list[str]:
    """The words of the page's detection table, in order (each row starts with a bold "word · 97%")."""
    settle(tab)
    no_exception(tab)
    tab.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    rows = tab.locator('[data-testid="stMarkdownContainer"] strong').all_inner_texts()
    return [r.strip() for r in rows if r.strip().isalpha()]


def vocabulary_words(recording: Path) -> list[str]:
    from speech.catalog import CLASSES
    from speech.recordings import read_truth
    return [w.word for w in read_truth(recording) if w.word in CLASSES]


@needs_spotting
def test_word_spotting_finds_the_words_of_an_uploaded_recording(page, server):
    recording = RECORDINGS / "numbers_and_names.flac"
    page.goto(f"{server}/Word_spotting")
    settle(page)
    page.get_by_text("Upload a file").click()
    settle(page)
    audio_uploader(page).set_input_files(str(recording))
    page.get_by_text("words heard").first.wait_for(timeout=60_000)
    found = spotted_words(page)
    shoot(page, "spotting_upload")
    expected = vocabulary_words(recording)
    assert sum(w in found for w in expected) >= 0.8 * len(expected) and len(found) <= len(expected) + 1, found


@needs_spotting
def test_word_spotting_from_the_microphone(playwright, server, tmp_path):
    """Chromium's fake microphone says the bundled 'commands' recording (it loops the file); the page must put the
    words it heard on the timeline."""
    recording = RECORDINGS / "commands.flac"
    spoken = tmp_path / "commands.wav"
    data, rate = sf.read(recording, dtype="int16")
    sf.write(spoken, data, rate, subtype="PCM_16")
    with speaking_tab(playwright, spoken, f"{server}/Word_spotting") as tab:
        tab.get_by_text("Record with the microphone").click()
        settle(tab)
        record = tab.get_by_role("button", name="Record").first
        record.wait_for(timeout=60_000)
        record.click()
        stop = tab.get_by_role("button", name="Stop recording").first
        stop.wait_for(timeout=30_000)
        tab.wait_for_timeout(1000 * (len(data) / rate + 1))
        stop.click()
        tab.get_by_text(re.compile(r"\d+ words? heard|No command word heard")).first.wait_for(timeout=90_000)
        found = spotted_words(tab)
        shoot(tab, "spotting_microphone")
    expected = vocabulary_words(recording)
    assert sum(w in found for w in expected) >= 0.5 * len(expected), found  # the file itself: 5 of 8


NEW_WORD = SHARED_REAL / "follow"  # a reserved word: no shipped model was trained on it
needs_new_word = pytest.mark.skipif(not NEW_WORD.is_dir(), reason="no shared folder with the reserved words")


def record(tab, seconds: float, nth: int = 0) -> None:
    """Press the ``nth`` microphone widget's Record button, let the fake microphone speak, stop."""
    button = tab.get_by_role("button", name="Record", exact=True).nth(nth)
    button.wait_for(timeout=60_000)
    button.click()
    tab.wait_for_timeout(seconds * 1000)
    tab.get_by_role("button", name="Stop recording").first.click()
    settle(tab)


@needs_checkpoints
@needs_new_word
def test_own_word_taught_through_the_microphone(playwright, server, tmp_path):
    """Chromium's fake microphone says a real 'follow' (a reserved word) with a pause after it; three recordings
    become the takes, the model is built, and a fourth recording is recognised as the new word."""
    clip = sorted(NEW_WORD.glob("*.flac"))[0]
    data, rate = sf.read(clip, dtype="int16")
    spoken = tmp_path / "follow.wav"
    sf.write(spoken, np.concatenate([data, np.zeros(rate // 2, dtype=np.int16)]), rate, subtype="PCM_16")
    with speaking_tab(playwright, spoken, f"{server}/Your_own_words", height=3800) as tab:
        tab.get_by_label("New word").fill("follow")
        tab.get_by_role("button", name="Add word").click()
        settle(tab)
        for take in range(3):
            record(tab, 1.6 + 0.3 * take)  # the fake microphone starts its file anew each time: equal lengths would
            #                                give equal recordings, which the page keeps once
            tab.get_by_text(f"{take + 1} of 3–10 takes").first.wait_for(timeout=30_000)
        no_exception(tab)
        shoot(tab, "own_words_takes")
        tab.get_by_role("button", name="Build my model").click()
        tab.get_by_text("Takes recognised from the others").first.wait_for(timeout=60_000)
        settle(tab)
        tab.get_by_role("tab", name="Microphone").nth(1).click()
        record(tab, 1.8, nth=1)
        assert_prediction(tab, "follow", "own_words_built")
        assert tab.get_by_role("button", name="Download for onnxruntime (.onnx)").is_visible()
