"""Inference latency of the shipped checkpoints: load time and ms per 1 s clip (median, p95).

    python benchmarks/inference.py [--repeats 100]

Measures Predictor.predict on one clip at a time, as the live page does (features included).
The ratio line compares each variant with the baseline measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech import SHIPPED_CHECKPOINTS  # noqa: E402
from speech.catalog import checkpoint_files  # noqa: E402
from speech.predict import Predictor  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    clip = torch.randn(16_000) * 0.1
    medians = {}
    print(f"torch threads {torch.get_num_threads()}, {args.repeats} predictions per variant")
    for variant, path in checkpoint_files(SHIPPED_CHECKPOINTS).items():
        start = time.perf_counter()
        predictor = Predictor.from_checkpoint(path)
        load_ms = 1000 * (time.perf_counter() - start)
        for _ in range(5):  # warm-up
            predictor.predict(clip)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            predictor.predict(clip)
            times.append(1000 * (time.perf_counter() - start))
        times.sort()
        medians[variant] = statistics.median(times)
        print(f"  {variant:9s} load {load_ms:6.0f} ms | predict median {medians[variant]:6.1f} ms, "
              f"p95 {times[int(0.95 * (len(times) - 1))]:6.1f} ms")
    print("ratio to baseline (median): " + ", ".join(f"{v} {m / medians['baseline']:.2f}x" for v, m in medians.items()))


if __name__ == "__main__":
    main()
