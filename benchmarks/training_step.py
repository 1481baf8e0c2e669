"""Training speed: clips per second of ``speech.train``'s step, as it was (fp32) and as it is (bf16 autocast where
the CPU or GPU has it natively, the default since this benchmark), measured in the same run.

    python benchmarks/training_step.py [--models book:baseline book:mel book:complex tcresnet:mel]
                                       [--batch-size 32] [--steps 4] [--rounds 5] [--threads 0]

Each step is the real one (:func:`speech.train.train_step`: index the int16 clips, augment, features, forward,
backward, Adam) on real clips of the shared folder (the bundled examples when it is missing). The two settings
take turns, round by round, so machine noise hits both alike; the ratio is of the medians. With ``--profile`` it
also prints where one fp32 and one bf16 step of each model spend their time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech import EXAMPLES_DIR  # noqa: E402
from speech.data import BACKGROUND_FOLDER, folder_clips, labels_tensor, load_background_noise, load_waveforms  # noqa: E402
from speech.results import SHARED_REAL  # noqa: E402
from speech.train import Data, TrainConfig, native_bf16, prepare, train_step  # noqa: E402

CLIPS = 512


def real_clips() -> Data:
    """Up to :data:`CLIPS` real clips (every word), decoded once and shared by every run of the benchmark."""
    folder = SHARED_REAL if SHARED_REAL.is_dir() else EXAMPLES_DIR
    clips = folder_clips(folder)
    clips = clips[::max(len(clips) // CLIPS, 1)][:CLIPS]
    waves, labels = load_waveforms(clips), labels_tensor(clips)
    return Data(waves, labels, waves[:8], labels[:8], load_background_noise(folder / BACKGROUND_FOLDER), {})


def clips_per_second(run, steps: int, batch_size: int) -> float:
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(run, torch.randint(0, len(run.data.train_labels), (batch_size,), generator=generator))
    return steps * batch_size / (time.perf_counter() - start)


def where_time_goes(run, batch_size: int) -> str:
    """The profiler's top operators of two steps, by their own CPU time."""
    indices = torch.arange(batch_size) % len(run.data.train_labels)
    train_step(run, indices)
    with profile() as profiler:
        for _ in range(2):
            train_step(run, indices)
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["book:baseline", "book:mel", "book:complex", "tcresnet:mel"],
                        help="ARCH:VARIANT pairs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    data = real_clips()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"{len(data.train_labels)} real clips; device {device}, {torch.get_num_threads()} threads; "
          f"native bf16: {native_bf16(device)}; batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps")
    print(f"{'model':22s} {'fp32 clips/s':>13s} {'bf16 clips/s':>13s} {'ratio':>6s}")
    for spec in args.models:
        arch, variant = spec.split(":")
        runs = {}
        for bf16 in (False, True):
            config = TrainConfig(variant=variant, arch=arch, n_mels=64 if arch == "tcresnet" else 128,
                                 batch_size=args.batch_size, bf16=bf16, threads=args.threads, out="/tmp", seed=0)
            runs[bf16] = prepare(config, data)
            clips_per_second(runs[bf16], 2, args.batch_size)  # warm-up: first-call allocations and kernels
        speeds = {bf16: [] for bf16 in runs}
        for _ in range(args.rounds):
            for bf16, run in runs.items():
                speeds[bf16].append(clips_per_second(run, args.steps, args.batch_size))
        old, new = statistics.median(speeds[False]), statistics.median(speeds[True])
        print(f"{spec:22s} {old:13.1f} {new:13.1f} {new / old:5.2f}x", flush=True)
        if args.profile:
            for bf16, run in runs.items():
                print(f"\n{spec}, {'bf16' if bf16 else 'fp32'} step:\n{where_time_goes(run, args.batch_size)}")


if __name__ == "__main__":
    main()
