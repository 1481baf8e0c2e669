"""Word spotting: find the vocabulary's words in a recording of any length, and say nothing otherwise.

    python -m speech.spot RECORDING [--checkpoint PATH] [--threshold X] [--json]

How it works, in four small steps (the Word spotting page draws each):

1. **Sliding windows.** A 1 s window moves over the audio every ``hop`` seconds (0.1 s); the model gives each
   window class probabilities: :func:`window_posteriors` -> float32 ``[windows, classes]``.
2. **Smoothing.** Each class's probability is averaged over the last ``smooth`` windows, so one odd window
   cannot fire alone.
3. **Thresholds and peaks.** A word fires when its smoothed probability reaches its threshold; the detection is
   the highest point of that run.
4. **Refractory time.** After a detection nothing fires for ``refractory`` seconds: one spoken word, one
   detection, although about ten overlapping windows heard it.

Rejection comes from the spotting model's ``_silence_`` and ``_unknown_`` classes: on noise or on a word
outside the vocabulary they take the probability, and no word reaches its threshold. Its open-set gate
(``speech.openset``) moves a window's word probability to ``_unknown_`` when the window lies far from every word's
training clips in the model's embedding. A 30-word model works
too (that is the naive reference of ``benchmarks/spotting.py``), but it has no way to say "none of these".

:class:`Spotter` is the streaming form (``feed(chunk) -> new detections``); the file path is one ``feed`` of the
whole recording and a ``flush``, so both give the same detections.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from speech.audio import CLIP_SAMPLES, SAMPLE_RATE, AudioError, load_audio
from speech.catalog import checkpoints_dir
from speech.data import loud_span
from speech.evaluate import predict_batches
from speech.model import CheckpointError
from speech.predict import Predictor
from speech.recordings import Score, score

SPOTTING_CHECKPOINT = "spotting.pt"
WINDOW_SECONDS = CLIP_SAMPLES / SAMPLE_RATE
BATCH_SIZE = 64  # windows per forward pass (benchmarks/spotting.py --batch-sizes compares)


@dataclass(frozen=True)
class SpotConfig:
    """The detector's settings. Times in seconds; probabilities in [0, 1]."""

    hop: float = 0.1                  # between window starts
    smooth: int = 5                   # windows in the moving average (1 = none)
    threshold: float = 0.7            # a word fires when its smoothed probability reaches this
    thresholds: dict = field(default_factory=dict)  # word -> its own threshold, overriding ``threshold``
    refractory: float = 0.5           # no new detection this soon after a detection's peak

    @property
    def hop_samples(self) -> int:
        return max(1, round(self.hop * SAMPLE_RATE))

    def threshold_of(self, word: str) -> float:
        return self.thresholds.get(word, self.threshold)


@dataclass(frozen=True)
class Detection:
    """One spotted word: ``start``/``end`` in seconds from the start of the audio (the loud part of the
    1 s window that fired), ``confidence`` its smoothed probability."""

    word: str
    start: float
    end: float
    confidence: float

    def to_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def is_word(label: str) -> bool:
    """True for a vocabulary word, False for the rejection classes ``_silence_`` and ``_unknown_``."""
    return not label.startswith("_")


def rejected(prediction) -> bool:
    """True when a spotting model's :class:`speech.predict.Prediction` of one clip says "no command word": its
    most likely class is ``_silence_`` or ``_unknown_`` (a 30-word model's prediction is never rejected)."""
    return not is_word(prediction.word)


def closest_word(prediction) -> tuple[str, float]:
    """The most likely vocabulary word of a prediction and its probability (the guess shown greyed out)."""
    return max(((c, float(p)) for c, p in zip(prediction.classes, prediction.probabilities) if is_word(c)),
               key=lambda pair: pair[1])


def window_count(samples: int, hop_samples: int) -> int:
    """Windows of a recording of ``samples``: one starting at every hop before its end (at least one)."""
    return max(1, math.ceil(samples / hop_samples))


@torch.inference_mode()
def window_posteriors(predictor: Predictor, waveform: torch.Tensor, hop: float = SpotConfig.hop,
                      batch_size: int = BATCH_SIZE,
                      progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Class probabilities float32 ``[windows, classes]`` of the 1 s windows of ``waveform`` (float32
    ``[time]``, mono, 16 kHz) starting every ``hop`` seconds; the end is zero-padded to whole windows."""
    hop_samples = SpotConfig(hop=hop).hop_samples
    count = window_count(waveform.numel(), hop_samples)
    padded = torch.zeros((count - 1) * hop_samples + CLIP_SAMPLES)
    padded[:waveform.numel()] = waveform
    return _posteriors_of(predictor, padded.unfold(0, CLIP_SAMPLES, hop_samples), batch_size, progress)


def _posteriors_of(predictor: Predictor, windows: torch.Tensor, batch_size: int,
                   progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    logits = predict_batches(predictor.model, predictor.featurizer, windows, batch_size, progress=progress)
    return logits.softmax(1)


@dataclass
class _Candidate:
    word: str
    confidence: float
    index: int  # of the smoothed posterior row where it peaked


class Decoder:
    """Steps 2-4 online: push one window's probabilities at a time, get detections as they are decided.

    A word's *run* is the rows where it is the top word at or above its threshold. The detection is the run's
    peak, decided when the run ends or when its peak has stood for ``refractory`` seconds (so a detection is
    never later than that). A word that fired must fall below its threshold before it can fire again, and
    no word fires within ``refractory`` seconds after a peak. The detection's 1 s window is centred on the
    average centre of the windows smoothed into the peak.
    """

    def __init__(self, classes: Sequence[str], config: SpotConfig):
        self.classes, self.config = list(classes), config
        self.words = torch.tensor([is_word(c) for c in self.classes])
        self.thresholds = torch.tensor([config.threshold_of(c) for c in self.classes])
        self.recent: deque = deque(maxlen=max(1, config.smooth))
        self.index = 0
        self.candidate: Optional[_Candidate] = None
        self.fired: set[str] = set()  # words that fired and have not yet fallen below their threshold
        self.quiet_until = 0          # no new candidate before this row (refractory)
        self.refractory_rows = max(1, round(config.refractory / config.hop))

    def push(self, probabilities: torch.Tensor) -> list[Detection]:
        """Add one window's ``[classes]`` probabilities; returns the detections it decided."""
        self.recent.append(probabilities)
        smoothed = torch.stack(tuple(self.recent)).mean(0).masked_fill(~self.words, -1.0)
        row, self.index = self.index, self.index + 1
        above = smoothed >= self.thresholds
        self.fired -= {c for c, up in zip(self.classes, above.tolist()) if not up}
        best = int(smoothed.argmax())
        decided = []
        if self.candidate is not None:
            own = self.classes.index(self.candidate.word)
            if not above[own] or best != own:
                decided.append(self._decide())
            elif float(smoothed[own]) > self.candidate.confidence:
                self.candidate = _Candidate(self.candidate.word, float(smoothed[own]), row)
            elif row - self.candidate.index >= self.refractory_rows:
                decided.append(self._decide())
        word = self.classes[best]
        if self.candidate is None and above[best] and row >= self.quiet_until and word not in self.fired:
            self.candidate = _Candidate(word, float(smoothed[best]), row)
        return decided

    def flush(self) -> list[Detection]:
        """The detection still waiting at the end of the audio, if any."""
        return [self._decide()] if self.candidate is not None else []

    def _decide(self) -> Detection:
        candidate, self.candidate = self.candidate, None
        self.quiet_until = candidate.index + self.refractory_rows
        self.fired.add(candidate.word)
        centre = float(row_times(candidate.index + 1, self.config)[-1])
        return Detection(candidate.word, centre - WINDOW_SECONDS / 2, centre + WINDOW_SECONDS / 2,
                         candidate.confidence)


def tighten(detection: Detection, waveform: torch.Tensor, offset: int = 0) -> Detection:
    """Narrow a detection's 1 s window to its loud part, where the word is. ``waveform`` float32 ``[time]``
    holds the audio from sample ``offset`` on; a window not wholly inside it stays as it is."""
    start = max(0, round(detection.start * SAMPLE_RATE))
    begin, end = start - offset, start - offset + CLIP_SAMPLES
    if begin < 0 or begin >= waveform.numel():
        return detection
    loud_start, loud_end = loud_span(waveform[begin:min(end, waveform.numel())], fraction=0.25)
    return replace(detection, start=(start + loud_start) / SAMPLE_RATE, end=(start + loud_end) / SAMPLE_RATE)


def detect(posteriors: torch.Tensor, classes: Sequence[str], config: SpotConfig = SpotConfig(),
           waveform: Optional[torch.Tensor] = None) -> list[Detection]:
    """Detections from window probabilities ``[windows, classes]`` (steps 2-4; the Word spotting page calls
    this on cached probabilities when a control moves). With the ``waveform`` each span is tightened."""
    decoder = Decoder(classes, config)
    decided = [d for row in posteriors for d in decoder.push(row)] + decoder.flush()
    return [tighten(d, waveform) if waveform is not None else d for d in decided]


class Spotter:
    """Streaming detection: ``feed`` chunks of float32 16 kHz audio as they arrive, get new detections.

    Windows are computed as soon as they are complete (a batch for a long chunk, one for a 100 ms chunk);
    ``flush`` at the end pads the last windows with zeros, exactly as the file path does.
    """

    def __init__(self, predictor: Predictor, config: SpotConfig = SpotConfig(), batch_size: int = BATCH_SIZE):
        self.predictor, self.config, self.batch_size = predictor, config, batch_size
        self.decoder = Decoder(predictor.classes, config)
        self.buffer = torch.zeros(0)
        self.buffer_start = 0   # sample index of buffer[0]
        self.next_window = 0    # sample index where the next window starts
        self.received = 0
        # the audio kept: a window, the smoothing, and the longest wait for a decision
        self.keep = CLIP_SAMPLES + (config.smooth + 2 * self.decoder.refractory_rows + 2) * config.hop_samples

    def feed(self, chunk: torch.Tensor) -> list[Detection]:
        """Add float32 ``[time]`` audio; returns the detections decided by it."""
        self.buffer = torch.cat([self.buffer, chunk.float().flatten()])
        self.received += chunk.numel()
        return self._run(self.received)

    def flush(self) -> list[Detection]:
        """End of audio: the remaining windows (zero-padded) and the last waiting detection."""
        hop = self.config.hop_samples
        ends = (window_count(self.received, hop) - 1) * hop + CLIP_SAMPLES
        self.buffer = torch.cat([self.buffer, torch.zeros(max(0, ends - self.buffer_start - self.buffer.numel()))])
        found = self._run(ends)  # ``ends`` admits exactly the file path's windows
        return found + [tighten(d, self.buffer, self.buffer_start) for d in self.decoder.flush()]

    def _run(self, available: int) -> list[Detection]:
        """Compute every window that ends by sample ``available`` and decode it."""
        starts = []
        while self.next_window + CLIP_SAMPLES <= available:
            starts.append(self.next_window)
            self.next_window += self.config.hop_samples
        found = []
        if starts:
            windows = torch.stack([self.buffer[s - self.buffer_start:s - self.buffer_start + CLIP_SAMPLES]
                                   for s in starts])
            for row in _posteriors_of(self.predictor, windows, self.batch_size):
                found += [tighten(d, self.buffer, self.buffer_start) for d in self.decoder.push(row)]
        drop = max(0, min(self.next_window, self.buffer_start + self.buffer.numel()) - self.keep - self.buffer_start)
        self.buffer, self.buffer_start = self.buffer[drop:], self.buffer_start + drop
        return found


def spot(predictor: Predictor, waveform: torch.Tensor, config: SpotConfig = SpotConfig()) -> list[Detection]:
    """Every detection in float32 ``[time]`` 16 kHz audio (the file path: windows batched)."""
    return detect(window_posteriors(predictor, waveform, config.hop), predictor.classes, config, waveform)


def segment(waveform: torch.Tensor, detection: Detection, margin: float = 0.15) -> torch.Tensor:
    """The audio of a detection with ``margin`` seconds each side: float32 ``[time]`` from 16 kHz ``waveform``."""
    start = max(0, round((detection.start - margin) * SAMPLE_RATE))
    return waveform[start:max(start + 1, round((detection.end + margin) * SAMPLE_RATE))]


def smoothed(posteriors: torch.Tensor, smooth: int) -> torch.Tensor:
    """The moving average the decoder thresholds: row i is the mean of windows ``max(0, i-smooth+1)..i``."""
    cumulative = torch.cat([torch.zeros(1, posteriors.shape[1]), posteriors.cumsum(0)])
    rows = torch.arange(1, posteriors.shape[0] + 1)
    first = (rows - max(1, smooth)).clamp_min(0)
    return (cumulative[rows] - cumulative[first]) / (rows - first).unsqueeze(1)


def row_times(rows: int, config: SpotConfig) -> torch.Tensor:
    """Seconds ``[rows]``: the average centre of the windows smoothed into each row (where the curve is drawn)."""
    index = torch.arange(rows, dtype=torch.float64)
    return (index - (index.clamp(max=max(1, config.smooth) - 1)) / 2) * config.hop + WINDOW_SECONDS / 2


def words_that_matter(posteriors: torch.Tensor, classes: Sequence[str], detections: Sequence[Detection],
                      count: int = 4) -> list[str]:
    """The words to draw: those detected, then those with the highest peaks, ``count`` at most (or all detected)."""
    detected = list(dict.fromkeys(d.word for d in detections))
    peaks = posteriors.max(0).values
    ranked = [classes[int(i)] for i in peaks.argsort(descending=True) if is_word(classes[int(i)])]
    return (detected + [w for w in ranked if w not in detected])[:max(count, len(detected))]


def threshold_sweep(posteriors: Sequence[torch.Tensor], truths: Sequence, seconds: Sequence[float],
                    classes: Sequence[str], config: SpotConfig,
                    thresholds: Sequence[float] = tuple(t / 20 for t in range(2, 20))) -> list[dict]:
    """Detection rate and false alarms per minute at each threshold (the miss / false-alarm trade-off) over
    recordings with known words: ``posteriors[i]`` ``[windows, classes]``, ``truths[i]`` their
    :class:`speech.recordings.Spoken` words, ``seconds[i]`` their length."""
    vocabulary, rows = [c for c in classes if is_word(c)], []
    for threshold in thresholds:
        swept = replace(config, threshold=threshold)
        total = Score(0, 0, 0, 0.0, 0, 0)
        for p, truth, length in zip(posteriors, truths, seconds):
            total = total + score(detect(p, classes, swept), truth, vocabulary, length)
        rows.append({"threshold": threshold, "detection_rate": total.recall,
                     "false_alarms_per_minute": total.false_alarms_per_minute, "oov_rate": total.oov_rate})
    return rows


def default_checkpoint() -> Path:
    """The spotting model in the app's checkpoint folder (``$SPEECH_LAB_CHECKPOINTS`` or the shipped ones)."""
    return checkpoints_dir() / SPOTTING_CHECKPOINT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", help="an audio file (WAV, FLAC, OGG, MP3; any rate; up to 10 min)")
    parser.add_argument("--checkpoint", help=f"default: checkpoints/{SPOTTING_CHECKPOINT}")
    parser.add_argument("--threshold", type=float, default=SpotConfig.threshold,
                        help="smoothed probability a word must reach (0-1); higher: fewer false alarms, more misses")
    parser.add_argument("--json", action="store_true", help='print one JSON list of {"word","start","end",'
                                                            '"confidence"}')
    args = parser.parse_args(argv)
    try:
        if not 0.0 < args.threshold <= 1.0:
            raise ValueError(f"--threshold must be in (0, 1], got {args.threshold}")
        predictor = Predictor.from_checkpoint(args.checkpoint or default_checkpoint())
        audio = load_audio(args.recording, name=Path(args.recording).name)
        detections = spot(predictor, audio.waveform, SpotConfig(threshold=args.threshold))
    except (AudioError, CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([d.to_dict() for d in detections]))
    elif not detections:
        print("no command word heard")
    else:
        for d in detections:
            print(f"{d.start:7.2f}-{d.end:7.2f} s  {d.word:8s} {d.confidence:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
