"""Latency per clip of each checkpoint: onnxruntime (the exported file) against torch, as a ratio in one run.

    .venv/bin/python benchmarks/onnx_latency.py [--checkpoint PATH ...] [--repeats 200] [--threads 1]

One 1 s clip at a time (the Live page's case), features included on both sides: torch runs
``WaveformClassifier`` (Featurizer + model, inference mode), onnxruntime the file ``speech.export`` writes.
The median of ``--repeats`` calls after a warm-up; both sides alternate so machine noise hits them alike.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech import EXAMPLES_DIR  # noqa: E402
from speech.catalog import checkpoint_files  # noqa: E402
from speech.data import read_clip  # noqa: E402
from speech.export import OnnxClassifier, WaveformClassifier, export_onnx  # noqa: E402
from speech.predict import Predictor  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", nargs="+", help="default: every shipped checkpoint")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="for both torch and onnxruntime")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.checkpoint] if args.checkpoint else list(checkpoint_files().values())
    torch.set_num_threads(args.threads)
    clip = read_clip(EXAMPLES_DIR / "yes" / "flite-slt_nohash_0.flac").unsqueeze(0)
    print(f"one clip [1, 16000], {args.threads} thread(s), median of {args.repeats} calls\n")
    print(f"{'checkpoint':12s} {'torch ms':>9s} {'onnx ms':>8s} {'torch / onnx':>13s}")
    with tempfile.TemporaryDirectory() as folder:
        for path in paths:
            module = WaveformClassifier(Predictor.from_checkpoint(path)).eval()
            exported = OnnxClassifier(export_onnx(path, Path(folder) / f"{path.stem}.onnx"), threads=args.threads)
            times = {"torch": [], "onnx": []}
            with torch.inference_mode():
                for i in range(args.repeats + 10):
                    for side in ("torch", "onnx"):
                        tick = time.perf_counter()
                        module(clip) if side == "torch" else exported.probabilities(clip)
                        if i >= 10:
                            times[side].append(time.perf_counter() - tick)
            torch_ms, onnx_ms = (1000 * statistics.median(times[s]) for s in ("torch", "onnx"))
            print(f"{path.stem:12s} {torch_ms:9.2f} {onnx_ms:8.2f} {torch_ms / onnx_ms:12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
