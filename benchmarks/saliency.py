"""Time of each 'hear and see' view for one clip, per shipped checkpoint, on this CPU.

    .venv/bin/python benchmarks/saliency.py [--threads 2] [--repeats 5]

Prints the median milliseconds of: the prediction itself (the reference, measured in the same run), occlusion
saliency, gradient x input, the sound of the salient cells, and the model input turned back into sound
(speech.hear.reconstruct, 32 Griffin-Lim iterations where the phase is lost); and occlusion as a multiple of the
prediction. The issue's target: a saliency view in under 2 s for one clip.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech import EXAMPLES_DIR  # noqa: E402
from speech.catalog import checkpoint_files  # noqa: E402
from speech.data import read_clip  # noqa: E402
from speech.hear import reconstruct  # noqa: E402
from speech.predict import Predictor  # noqa: E402
from speech.saliency import gradient_x_input, occlusion, salient_audio  # noqa: E402


def median_ms(work, repeats: int) -> float:
    work()  # warm up
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        work()
        times.append(1000 * (time.perf_counter() - tick))
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wave = read_clip(EXAMPLES_DIR / "yes" / "flite-slt_nohash_0.flac")
    print(f"one 1 s clip, {args.threads} thread(s), median of {args.repeats}; milliseconds")
    print(f"{'model':10s} {'predict':>8s} {'occlusion':>10s} {'grad x in':>10s} {'salient':>8s} {'hear':>6s} "
          f"{'occlusion / predict':>20s}")
    for name, path in checkpoint_files().items():
        predictor = Predictor.from_checkpoint(path)
        prediction = predictor.predict(wave)
        saliency = occlusion(predictor, prediction)
        figures = [median_ms(work, args.repeats) for work in (
            lambda: predictor.predict(wave), lambda: occlusion(predictor, prediction),
            lambda: gradient_x_input(predictor, prediction), lambda: salient_audio(predictor, prediction, saliency),
            lambda: reconstruct(prediction.window, predictor.features))]
        print(f"{name:10s} {figures[0]:8.1f} {figures[1]:10.1f} {figures[2]:10.1f} {figures[3]:8.1f} {figures[4]:6.1f} "
              f"{figures[1] / figures[0]:19.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
