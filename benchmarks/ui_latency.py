"""What a user waits for, measured in headless Chromium: cold start to Home, upload to prediction, and the
Spectrogram window slider to the updated figure. The last two are timed by the page itself, from the user's event to
the first frame painted with the answer (``tests.test_browser.seconds_to_paint``); each upload is a new clip.

    .venv/bin/python benchmarks/ui_latency.py [--repo PATH] [--repeats 5]

``--repo`` serves another checkout (e.g. an older commit in a ``git worktree``) with this checkout's Python and
browser, so two versions are compared on the same machine in one session. Prints the median of each figure.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech import REPO_ROOT  # noqa: E402
from speech.catalog import example_files  # noqa: E402
from tests.test_browser import (  # noqa: E402
    UPLOADED,
    chromium,
    slider_to_figure,
    streamlit_server,
    upload_to_prediction,
)


def cold_start(browser, repo: Path) -> float:
    """Seconds from launching the server to the Home page's heading on screen."""
    started = time.perf_counter()
    with streamlit_server(repo) as url:
        tab = browser.new_page()
        tab.goto(url)
        tab.get_by_role("heading", name="Speech Commands Lab").wait_for(timeout=120_000)
        seconds = time.perf_counter() - started
        tab.close()
    return seconds


def fresh_clips(count: int) -> list[Path]:
    """``count`` bundled examples of different words, none of them the warm-up's clip, so no upload is answered
    from the page's caches (a user's recording is new every time)."""
    words = [voices for word, voices in sorted(example_files().items()) if UPLOADED not in voices.values()]
    return [next(iter(voices.values())) for voices in words[:count]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=REPO_ROOT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    figures = {"cold start -> Home": [], "upload -> prediction": [], "window slider -> figure": []}
    with tempfile.TemporaryDirectory() as tmp, chromium(Path(tmp) / "none.wav") as browser:
        for _ in range(args.repeats):
            figures["cold start -> Home"].append(cold_start(browser, args.repo))
        with streamlit_server(args.repo) as url:
            tab = browser.new_page(viewport={"width": 1400, "height": 1200})
            upload_to_prediction(tab, url)  # warm-up: the model is loaded and cached once per server
            for clip in fresh_clips(args.repeats):
                figures["upload -> prediction"].append(upload_to_prediction(tab, url, clip))
                figures["window slider -> figure"].append(slider_to_figure(tab, url))
    print(f"{args.repo} ({args.repeats} repeats, median [min-max] seconds)")
    for name, values in figures.items():
        print(f"  {name:26s} {statistics.median(values):6.2f}  [{min(values):.2f}-{max(values):.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
