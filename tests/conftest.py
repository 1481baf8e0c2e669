"""Shared fixtures: tiny clip trees the tests make themselves (no dataset download)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

SR = 16_000
# Words of the tiny trees and the tone that stands in for each (distinct, so a CNN can learn them quickly).
TONES = {"yes": 300.0, "no": 900.0, "up": 2500.0}


def tone(freq: float, seconds: float = 1.0, rate: int = SR, amplitude: float = 0.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * math.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def chirp(start_hz: float, end_hz: float, seed: int) -> torch.Tensor:
    """A 0.5 s sweep in a 1 s clip with a little noise and a random offset: one 'take' of a made-up word."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    sweep = 0.4 * np.sin(2 * np.pi * (start_hz * t + (end_hz - start_hz) * t ** 2))
    clip = np.zeros(16000)
    offset = rng.integers(1000, 7000)
    clip[offset:offset + 8000] = sweep * np.hanning(8000)
    return torch.tensor(clip + 0.005 * rng.standard_normal(16000), dtype=torch.float32)


def write_tree(root: Path, speakers: int = 8, per_speaker: int = 2, suffix: str = ".wav",
               noise_folder: bool = True) -> Path:
    """``root/<word>/<speaker>_nohash_<n><suffix>`` for the TONES words, plus a background-noise folder."""
    for word, freq in TONES.items():
        (root / word).mkdir(parents=True, exist_ok=True)
        for s in range(speakers):
            for n in range(per_speaker):
                wave = tone(freq * (1 + 0.02 * s), seed=s * 10 + n)
                sf.write(root / word / f"spk{s:02d}_nohash_{n}{suffix}", wave, SR)
    if noise_folder:
        (root / "_background_noise_").mkdir(exist_ok=True)
        sf.write(root / "_background_noise_" / "white.wav",
                 (0.1 * np.random.default_rng(1).standard_normal(3 * SR)).astype(np.float32), SR)
    (root / "backward").mkdir(exist_ok=True)  # a word that is not one of the 30 classes
    sf.write(root / "backward" / "spk00_nohash_0.wav", tone(5000.0), SR)
    return root


@pytest.fixture
def tiny_tree(tmp_path) -> Path:
    return write_tree(tmp_path / "clips")


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A mel checkpoint of the book's CNN trained on the tiny tree until it tells the three tones apart (shared
    by evaluate/predict tests)."""
    from speech.train import TrainConfig, train
    root = tmp_path_factory.mktemp("trained")
    tree = write_tree(root / "clips")
    train(TrainConfig(variant="mel", data=[str(tree)], validation_percent=30, epochs=4, epoch_size=64,
                      batch_size=8, max_lr=3e-3, out=str(root / "out"), seed=0))
    return root / "out" / "mel.pt"
