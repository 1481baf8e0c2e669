"""Prediction from one recording: what the app's live page calls.

    predictor = Predictor.from_checkpoint("checkpoints/mel.pt")
    result = predictor.predict(load_audio("clip.wav").waveform)   # float32 [time], mono, 16 kHz

From the shell, the most likely words of each clip (default checkpoint: the shipped model with the best
validation figure):

    python -m speech.predict CLIP [CLIP ...] [--checkpoint PATH] [--top K] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from speech.audio import CLIP_SAMPLES, SAMPLE_RATE, AudioError, load_audio, model_window
from speech.catalog import best_checkpoint, checkpoint_files
from speech.features import FeatureConfig, Featurizer
from speech.model import CheckpointError, load_checkpoint, model_from_checkpoint

LOW_CONFIDENCE = 0.5  # below this top probability the app says it is not sure


@dataclass
class Prediction:
    """probabilities: float32 ``[n_classes]`` in ``classes`` order; features: the model's input
    ``[channels, n_bins, frames]``; window: the 1 s float32 ``[16000]`` clip the model heard, taken
    from the input at ``window_start`` (samples at 16 kHz)."""

    classes: list[str]
    variant: str
    probabilities: torch.Tensor
    features: torch.Tensor
    window: torch.Tensor
    window_start: int

    @property
    def word(self) -> str:
        return self.classes[int(self.probabilities.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        values, indices = self.probabilities.topk(min(k, len(self.classes)))
        return [(self.classes[int(i)], float(v)) for v, i in zip(values, indices)]

    def feature_image(self) -> torch.Tensor:
        """``[n_bins, frames]`` to display what the model saw: the log power (baseline, mel) or, for
        complex, the compressed magnitude sqrt(real^2 + imaginary^2)."""
        if self.variant == "complex":
            return self.features.pow(2).sum(0).sqrt()
        return self.features[0]


class Predictor:
    """A loaded checkpoint, ready to classify clips on the CPU."""

    def __init__(self, model: torch.nn.Module, features: FeatureConfig, classes: list[str], card: dict | None):
        self.model = model.eval()
        self.features = features
        self.featurizer = Featurizer(features)
        self.classes = classes
        self.card = card or {}

    @classmethod
    def from_checkpoint(cls, source: str | Path | bytes, expect_variant: str | None = None,
                        name: str | None = None) -> "Predictor":
        """From a checkpoint file or an uploaded one's bytes (``name`` for messages), loaded with
        ``weights_only=True``. Raises CheckpointError for a missing, corrupt, foreign or mismatched file."""
        payload = load_checkpoint(source, expect_variant, name)
        model, features = model_from_checkpoint(payload)
        return cls(model, features, payload["classes"], payload.get("card"))

    @property
    def variant(self) -> str:
        return self.features.variant

    @torch.inference_mode()
    def predict(self, waveform: torch.Tensor) -> Prediction:
        """Classify what the model hears of ``waveform`` (float32 ``[time]``, mono, 16 kHz, as
        :func:`speech.audio.load_audio` returns it): its :func:`speech.audio.model_window`."""
        if waveform.dim() != 1 or waveform.numel() == 0:
            raise AudioError(f"Expected a mono recording with samples, got a tensor of shape {tuple(waveform.shape)}.")
        window, start = model_window(waveform.float())
        features = self.featurizer(window.unsqueeze(0))
        probabilities = self.model(features).softmax(1)[0]
        return Prediction(self.classes, self.variant, probabilities, features[0], window, start)


def default_checkpoint() -> Path:
    """The shipped 30-word model with the best validation macro accuracy. Raises CheckpointError when there is
    none."""
    checkpoints = checkpoint_files()
    best = best_checkpoint(checkpoints)
    if best is None:
        raise CheckpointError("No checkpoint with a model card in the checkpoint folder; pass --checkpoint PATH.")
    return checkpoints[best]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", help="audio files (WAV, FLAC, OGG, MP3; any rate); a longer one is "
                                                 "heard through its loudest second")
    parser.add_argument("--checkpoint", help="default: the shipped model with the best validation figure")
    parser.add_argument("--top", type=int, default=3, help="how many words to print per clip (default 3)")
    parser.add_argument("--json", action="store_true", help='print one JSON list of {"file", "top": [[word, '
                                                            'probability], ...]}')
    args = parser.parse_args(argv)
    try:
        if args.top < 1:
            raise ValueError(f"--top must be at least 1, got {args.top}")
        predictor = Predictor.from_checkpoint(args.checkpoint or default_checkpoint())
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results, failed = [], 0
    for clip in args.clips:
        try:
            waveform = load_audio(clip, name=Path(clip).name).waveform
            top = predictor.predict(waveform).top(args.top)
        except AudioError as error:  # say so and go on with the other clips
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        if waveform.numel() > 2 * CLIP_SAMPLES:
            print(f"note: {clip} lasts {waveform.numel() / SAMPLE_RATE:.1f} s; the model heard its loudest second "
                  "(python -m speech.spot finds every word in a recording)", file=sys.stderr)
        results.append({"file": clip, "top": [[word, round(p, 4)] for word, p in top]})
        if not args.json:
            print(f"{clip}: " + ", ".join(f"{word} {p:.2f}" for word, p in top))
    if args.json:
        print(json.dumps(results))
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
