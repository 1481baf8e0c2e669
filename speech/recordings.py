"""Long recordings whose words are known: assemble them from 1 s clips, and score detections against them.

``benchmarks/spotting.py``, the tests and the bundled spotting examples build their recordings here, and the
Word spotting page scores the examples with :func:`score` (its miss / false-alarm curve).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from speech.audio import SAMPLE_RATE
from speech.data import loud_span

MARGIN_SECONDS = 0.05  # kept around a word's loud part when it is cut from its clip
# A word is every 10 ms frame within 30 dB of its loudest. At 20 dB (10 % of the peak) the cut chopped quiet
# consonants ("stop" became "top"): zeroing all but that part cost tcresnet 0.022 of validation accuracy, at
# 30 dB 0.004 (zeroing the clip's own background costs something too).
WORD_FLOOR = 10 ** (-30 / 20)
TOLERANCE_SECONDS = 0.3  # a detection's centre may lie this far outside the spoken word


@dataclass(frozen=True)
class Spoken:
    """A word in a recording: ``start``/``end`` in seconds of its frames within 30 dB of its loudest."""

    word: str
    start: float
    end: float


def cut_word(clip: torch.Tensor) -> torch.Tensor:
    """The word in float32 ``clip [time]`` (16 kHz; its frames within 30 dB of the loudest) with a 50 ms margin
    each side."""
    start, end = loud_span(clip, WORD_FLOOR)
    margin = round(MARGIN_SECONDS * SAMPLE_RATE)
    return clip[max(0, start - margin):end + margin]


def assemble(words: Sequence[tuple[str, torch.Tensor]], gaps: Sequence[float], noise: Optional[torch.Tensor] = None,
             snr_db: float = 20.0, lead: float = 0.5, seed: int = 0) -> tuple[torch.Tensor, list[Spoken]]:
    """One recording: each ``(word, clip)`` cut to its word (:func:`cut_word`) and placed after ``lead`` seconds
    of quiet, ``gaps[i]`` seconds after word i, with ``lead`` at the end too. With ``noise`` (float32 ``[time]``) a
    random excerpt runs under it all, ``snr_db`` below the words' mean power.
    Returns (float32 ``[time]`` at 16 kHz, the words with their spans)."""
    cuts = [cut_word(clip) for _, clip in words]
    parts, spoken = [torch.zeros(round(lead * SAMPLE_RATE))], []
    position = parts[0].numel()
    for i, ((word, _), cut) in enumerate(zip(words, cuts)):
        start, end = loud_span(cut, WORD_FLOOR)
        spoken.append(Spoken(word, (position + start) / SAMPLE_RATE, (position + end) / SAMPLE_RATE))
        gap = torch.zeros(round((gaps[i] if i < len(gaps) else lead) * SAMPLE_RATE))
        parts += [cut, gap]
        position += cut.numel() + gap.numel()
    recording = torch.cat(parts)
    if noise is not None and noise.numel() > recording.numel():
        generator = torch.Generator().manual_seed(seed)
        offset = int(torch.randint(noise.numel() - recording.numel(), (1,), generator=generator))
        excerpt = noise[offset:offset + recording.numel()]
        speech = torch.cat(cuts).pow(2).mean()
        scale = (speech / excerpt.pow(2).mean().clamp_min(1e-12) / 10 ** (snr_db / 10)).sqrt()
        recording = (recording + excerpt * scale).clamp(-1, 1)
    return recording, spoken


@dataclass(frozen=True)
class Score:
    """Detections against the spoken words of recordings (vocabulary words count; others are out of
    vocabulary). A detection is right when its word matches an unclaimed spoken word whose span, widened by
    0.3 s each side, holds the detection's centre; every other detection is a false alarm."""

    spoken: int            # vocabulary words spoken
    hits: int
    false_alarms: int
    minutes: float
    out_of_vocabulary: int  # spoken words outside the vocabulary
    oov_detections: int     # false alarms whose centre lies on one of those

    @property
    def precision(self) -> float:
        return self.hits / max(self.hits + self.false_alarms, 1)

    @property
    def recall(self) -> float:
        return self.hits / max(self.spoken, 1)

    @property
    def f1(self) -> float:
        return 2 * self.precision * self.recall / max(self.precision + self.recall, 1e-9)

    @property
    def false_alarms_per_minute(self) -> float:
        return self.false_alarms / max(self.minutes, 1e-9)

    @property
    def oov_rate(self) -> float:
        """Detections per out-of-vocabulary word spoken."""
        return self.oov_detections / max(self.out_of_vocabulary, 1)

    def __add__(self, other: "Score") -> "Score":
        return Score(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))


def _centre(detection) -> float:
    return (detection.start + detection.end) / 2


def _near(centre: float, word: Spoken) -> bool:
    return word.start - TOLERANCE_SECONDS <= centre <= word.end + TOLERANCE_SECONDS


def matched(detections: Sequence, spoken: Sequence[Spoken], vocabulary: Sequence[str]) -> tuple[list[Spoken], list]:
    """(the vocabulary words found, the false alarms) of one recording, by :class:`Score`'s rule; each spoken
    word is found at most once."""
    unclaimed = [w for w in spoken if w.word in vocabulary]
    found, false_alarms = [], []
    for detection in detections:
        centre = _centre(detection)
        match = next((w for w in unclaimed if w.word == detection.word and _near(centre, w)), None)
        if match is None:
            false_alarms.append(detection)
        else:
            unclaimed.remove(match)
            found.append(match)
    return found, false_alarms


def score(detections: Sequence, spoken: Sequence[Spoken], vocabulary: Sequence[str], seconds: float) -> Score:
    """Score ``detections`` (anything with ``word``, ``start``, ``end``) of one recording of ``seconds``."""
    found, false_alarms = matched(detections, spoken, vocabulary)
    oov = [w for w in spoken if w.word not in vocabulary]
    oov_detections = sum(any(_near(_centre(d), w) for w in oov) for d in false_alarms)
    return Score(len(spoken) - len(oov), len(found), len(false_alarms), seconds / 60, len(oov), oov_detections)


def write_truth(path: Path, spoken: Sequence[Spoken]) -> None:
    """The words of a recording as JSON beside it (``name.flac`` -> ``name.json``)."""
    path.with_suffix(".json").write_text(json.dumps([asdict(w) for w in spoken], indent=1) + "\n")


def read_truth(path: Path) -> Optional[list[Spoken]]:
    """The words written by :func:`write_truth` for recording ``path``, or None when there is no such file."""
    truth = Path(path).with_suffix(".json")
    if not truth.is_file():
        return None
    return [Spoken(**w) for w in json.loads(truth.read_text())]
