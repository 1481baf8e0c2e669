"""Training data pipeline: features per item in ``__getitem__`` (the book's way) vs batched after collation.

    python benchmarks/data_pipeline.py [--variant mel] [--clips 2048] [--batch-size 64]

Both paths start from the same in-memory int16 clips and end with a feature batch ready for the model;
the ratio (batched / per item) is measured in one run, so machine noise affects both alike.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech.audio import from_int16  # noqa: E402
from speech.features import FeatureConfig, Featurizer  # noqa: E402


class PerItemFeatures(Dataset):
    """The book's dataset: each item computes its own spectrogram, ``[channels, bins, frames]``."""

    def __init__(self, waves: torch.Tensor, featurizer: Featurizer):
        self.waves, self.featurizer = waves, featurizer

    def __len__(self):
        return len(self.waves)

    def __getitem__(self, index):
        return self.featurizer(from_int16(self.waves[index]))[0]


def per_item(waves, featurizer, batch_size) -> float:
    start = time.perf_counter()
    for batch in DataLoader(PerItemFeatures(waves, featurizer), batch_size=batch_size, shuffle=True):
        assert batch.dim() == 4
    return len(waves) / (time.perf_counter() - start)


def batched(waves, featurizer, batch_size) -> float:
    start = time.perf_counter()
    order = torch.randperm(len(waves))
    for i in range(0, len(waves), batch_size):
        batch = featurizer(from_int16(waves[order[i:i + batch_size]]))
        assert batch.dim() == 4
    return len(waves) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="mel")
    parser.add_argument("--clips", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    waves = (torch.randn(args.clips, 16_000) * 3000).to(torch.int16)
    featurizer = Featurizer(FeatureConfig(variant=args.variant))
    with torch.inference_mode():
        batched(waves[:256], featurizer, args.batch_size)  # warm-up
        rates = {"per item (__getitem__)": [], "batched after collation": []}
        for _ in range(args.repeats):  # interleaved, so both see the same machine state
            rates["per item (__getitem__)"].append(per_item(waves, featurizer, args.batch_size))
            rates["batched after collation"].append(batched(waves, featurizer, args.batch_size))
    best = {name: max(values) for name, values in rates.items()}
    print(f"variant {args.variant}, {args.clips} clips, batch {args.batch_size}, torch threads "
          f"{torch.get_num_threads()}, best of {args.repeats}")
    for name, rate in best.items():
        print(f"  {name:26s} {rate:9.0f} clips/s")
    print(f"ratio batched / per item: {best['batched after collation'] / best['per item (__getitem__)']:.2f}x")


if __name__ == "__main__":
    main()
