"""Real-browser tests: the app served on a local port, driven in Debian's headless Chromium.

Screenshots land in test-artifacts/screenshots/ (look at them). Chromium's fake media devices feed a
bundled example into the microphone, so the recording path runs exactly as for a user.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

from speech import SHIPPED_CHECKPOINTS, EXAMPLES_DIR, REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PAGES = {"home": "", "waveform": "Waveform", "fourier": "Fourier_transform", "spectrogram": "Spectrogram",
         "mel": "Mel_filter_bank", "dataset": "Dataset", "results": "Results", "live": "Live_prediction"}
SHIPPED = (SHIPPED_CHECKPOINTS / "mel.pt").is_file()
SPOKEN = EXAMPLES_DIR / "yes" / "flite-slt_nohash_0.flac"  # the word the fake microphone says

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
playwright_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    fake_audio = tmp_path_factory.mktemp("audio") / "spoken.wav"
    data, rate = sf.read(SPOKEN, dtype="int16")
    sf.write(fake_audio, data, rate, subtype="PCM_16")
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={fake_audio}"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 2600}, permissions=["microphone"])
    tab = context.new_page()
    yield tab
    context.close()


def settle(tab, timeout: float = 120) -> None:
    """Wait until Streamlit has finished running the script (the status widget is gone for a moment)."""
    tab.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    deadline, quiet_since = time.time() + timeout, None
    while time.time() < deadline:
        running = tab.locator('[data-testid="stStatusWidget"]').count() > 0
        quiet_since = None if running else (quiet_since or time.time())
        if quiet_since and time.time() - quiet_since > 1.5:
            return
        tab.wait_for_timeout(250)
    raise AssertionError("the app kept running")


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
    assert_prediction(page, "yes", "live_microphone")


@needs_checkpoints
def test_uploaded_file_is_recognised(page, server):
    page.goto(f"{server}/Live_prediction")
    settle(page)
    page.get_by_role("tab", name="Upload a file").click()
    started = time.perf_counter()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(EXAMPLES_DIR / "seven" / "flite-awb_nohash_0.flac"))
    page.locator('[data-testid="stMetric"]').filter(has_text="Prediction").first.wait_for(timeout=60_000)
    seconds = time.perf_counter() - started  # upload to prediction on screen, as a user waits for it
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS.parent / "upload_latency.txt").write_text(f"upload to prediction: {seconds:.2f} s\n")
    assert_prediction(page, "seven", "live_upload")


@needs_checkpoints
def test_results_page_with_all_variants(page, server):
    page.goto(f"{server}/Results")
    settle(page, timeout=300)
    no_exception(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 9  # curves, lr, confusion, alluvial x 3
    shoot(page, "results_all_variants")
