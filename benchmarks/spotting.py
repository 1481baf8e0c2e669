"""Word spotting on continuous recordings of speakers no checkpoint heard: the detector against the naive way.

    .venv/bin/python benchmarks/spotting.py [--data ../shared/speech_commands_real] [--recordings 60]

Builds ``--recordings`` recordings (seeded) from the **validation speakers** of the shared folder (the
speakers ``speech.train`` holds out): each holds 5-7 real clips with 0.3-1.2 s gaps; half of them also hold
one or two of the five reserved words (backward, follow, forward, learn, visual: no model was trained on
them), and everything lies over the dataset's background noise 12-25 dB below the speech.

Scoring (``speech.recordings.score``): a detection is right when its word matches and its centre lies within
0.3 s of the spoken word's span; each spoken word counts once; any other detection is a false alarm.

Rows, all in this run on this machine:
- naive: 1 s windows every 100 ms through the shipped 30-word tcresnet, confident windows (top probability
  >= 0.9) kept and consecutive runs of one word merged into one detection;
- detector + 30-word tcresnet: smoothing, threshold, peaks and refractory time, but no rejection classes;
- detector + spotting model: the same with ``_silence_`` and ``_unknown_``; for a model with an open-set gate
  (``speech.openset``) also without it, the row before.
Then the recall within reach of each model (the share of spoken words for which some window near the word has
the right word on top over the threshold: the most any peak picking can find) and, for the spotting model, how
much of it the background noise and the smoothing cost (the same recordings without their noise; single windows
instead of the moving average), the threshold sweep of the
spotting detector (its miss / false-alarm trade-off, with that reach), the real-time factor of
one long file (batched, per batch size and thread count), and the time per streamed 100 ms chunk.
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech.audio import SAMPLE_RATE, from_int16  # noqa: E402
from speech.catalog import CLASSES, RESERVED_WORDS, checkpoints_dir  # noqa: E402
from speech.data import (  # noqa: E402
    BACKGROUND_FOLDER,
    VALIDATION_PERCENT,
    folder_clips,
    load_background_noise,
    load_waveforms,
    speaker_split,
)
from speech.model import OpenSetGate  # noqa: E402
from speech.predict import Predictor  # noqa: E402
from speech.recordings import TOLERANCE_SECONDS, Score, assemble, matched, score  # noqa: E402
from speech.spot import (  # noqa: E402
    SPOTTING_CHECKPOINT,
    Detection,
    SpotConfig,
    Spotter,
    detect,
    is_word,
    row_times,
    smoothed,
    spot,
    window_posteriors,
)


def build_recordings(data: Path, count: int, seed: int, validation_percent: float, noisy: bool = True):
    """``count`` (waveform, spoken words) pairs as described above; with ``noisy=False`` the same recordings
    without their background noise."""
    rng = random.Random(seed)
    words = speaker_split(data, validation_percent)[1]
    reserved = folder_clips(data, RESERVED_WORDS)
    word_waves = from_int16(load_waveforms(words, desc="validation clips"))
    reserved_waves = from_int16(load_waveforms(reserved, desc="reserved words"))
    noise = load_background_noise(data / BACKGROUND_FOLDER)
    order = list(range(len(words)))
    rng.shuffle(order)
    recordings = []
    for n in range(count):
        size = rng.randint(5, 7)
        chosen = [(words[i].label, word_waves[i]) for i in (order.pop() for _ in range(size))]
        if n % 2 == 1:
            for _ in range(rng.randint(1, 2)):
                j = rng.randrange(len(reserved))
                chosen.insert(rng.randrange(len(chosen) + 1), (reserved[j].label, reserved_waves[j]))
        gaps = [rng.uniform(0.3, 1.2) for _ in chosen]
        recordings.append(assemble(chosen, gaps, noise if noisy else None, snr_db=rng.uniform(12, 25),
                                   seed=seed * 1000 + n))
    return recordings


def naive_detections(posteriors: torch.Tensor, classes, hop: float, confident: float = 0.9) -> list[Detection]:
    """Runs of consecutive windows whose top word has probability >= ``confident`` merged into one detection."""
    top, best = posteriors.max(1)
    detections, run = [], []
    for i, (p, c) in enumerate([*zip(top.tolist(), best.tolist()), (0.0, -1)]):  # the last pair ends any run
        if run and (p < confident or c != run[0][1]):
            centre = (run[0][0] + run[-1][0]) / 2 * hop + 0.5
            detections.append(Detection(classes[run[0][1]], centre - 0.5, centre + 0.5, max(q for _, _, q in run)))
            run = []
        if p >= confident:
            run.append((i, c, p))
    return detections


def total(recordings, detections_of) -> Score:
    result = Score(0, 0, 0, 0.0, 0, 0)
    for i, (wave, spoken) in enumerate(recordings):
        result = result + score(detections_of(i), spoken, CLASSES, wave.numel() / SAMPLE_RATE)
    return result


def recall_by_gap(recordings, detections_of, edges=(0.5, 0.8)) -> list[tuple[str, int, int]]:
    """(span of the silence to the nearest neighbouring word, words found, words spoken) per span: how much
    harder a word is when another comes close (the 1 s windows around it hear part of the neighbour)."""
    names = [f"< {edges[0]} s", *(f"{a}-{b} s" for a, b in zip(edges, edges[1:])), f">= {edges[-1]} s"]
    counts = {name: [0, 0] for name in names}
    for i, (_, spoken) in enumerate(recordings):
        found, _ = matched(detections_of(i), spoken, CLASSES)
        for k, word in enumerate(spoken):
            if word.word not in CLASSES:
                continue
            gaps = [word.start - spoken[k - 1].end] if k > 0 else []
            if k + 1 < len(spoken):
                gaps.append(spoken[k + 1].start - word.end)
            gap = min(gaps, default=math.inf)
            name = names[sum(gap >= edge for edge in edges)]
            counts[name][0] += any(w is word for w in found)
            counts[name][1] += 1
    return [(name, *counts[name]) for name in names]


def reach(recordings, posteriors, classes, config: SpotConfig) -> float:
    """The share of spoken vocabulary words for which some smoothed window centred within the scoring tolerance
    of the word has the right word on top of the words, at or above the threshold: the detector fires only on
    such a window, so its recall cannot beat this whatever its peak picking and refractory time."""
    words = torch.tensor([is_word(c) for c in classes])
    reached = spoken_words = 0
    for (_, spoken), window_probabilities in zip(recordings, posteriors):
        rows = smoothed(window_probabilities, config.smooth).masked_fill(~words, -1.0)
        centres = row_times(rows.shape[0], config)
        for word in (w for w in spoken if w.word in CLASSES):
            k = classes.index(word.word)
            near = rows[(centres >= word.start - TOLERANCE_SECONDS) & (centres <= word.end + TOLERANCE_SECONDS)]
            spoken_words += 1
            reached += bool(((near.argmax(1) == k) & (near[:, k] >= config.threshold_of(word.word))).any())
    return reached / max(spoken_words, 1)


def row(name: str, s: Score) -> str:
    return (f"{name:34s} {s.precision:9.3f} {s.recall:7.3f} {s.f1:6.3f} {s.false_alarms_per_minute:8.2f} "
            f"{s.oov_detections:4d}/{s.out_of_vocabulary:<4d}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/speech_commands_real"))
    parser.add_argument("--checkpoint", type=Path, default=checkpoints_dir() / SPOTTING_CHECKPOINT)
    parser.add_argument("--reference", type=Path, default=checkpoints_dir() / "tcresnet.pt")
    parser.add_argument("--recordings", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-percent", type=float, default=VALIDATION_PERCENT)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    args = parser.parse_args(argv)
    try:
        spotter, reference = Predictor.from_checkpoint(args.checkpoint), Predictor.from_checkpoint(args.reference)
        recordings = build_recordings(args.data, args.recordings, args.seed, args.validation_percent)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = SpotConfig()
    minutes = sum(w.numel() for w, _ in recordings) / SAMPLE_RATE / 60
    print(f"{len(recordings)} recordings, {minutes:.1f} min, {sum(len(s) for _, s in recordings)} spoken words "
          f"({sum(w.word not in CLASSES for _, s in recordings for w in s)} out of vocabulary); "
          f"detector settings {config}\n")
    ungated = (Predictor(spotter.model.model, spotter.features, spotter.classes, spotter.card)
               if isinstance(spotter.model, OpenSetGate) else None)  # the same model without its open-set gate
    models = (("spot", spotter), ("ref", reference), *((("ungated", ungated),) if ungated else ()))
    posteriors = {name: [window_posteriors(p, w, config.hop) for w, _ in recordings] for name, p in models}
    header = f"{'method':34s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'FA/min':>8s} {'OOV det.':>9s}"
    print(header + "\n" + "-" * len(header))
    print(row(f"naive ({args.reference.stem})",
              total(recordings, lambda i: naive_detections(posteriors["ref"][i], reference.classes, config.hop))))
    print(row(f"detector + {args.reference.stem}",
              total(recordings, lambda i: detect(posteriors["ref"][i], reference.classes, config))))
    if ungated:
        print(row(f"detector + {args.checkpoint.stem}, gate off",
                  total(recordings, lambda i: detect(posteriors["ungated"][i], spotter.classes, config))))
    print(row(f"detector + {args.checkpoint.stem}",
              total(recordings, lambda i: detect(posteriors["spot"][i], spotter.classes, config))))

    print(f"\nrecall of detector + {args.checkpoint.stem} by the silence to the nearest other word: " + ", ".join(
        f"{name} {found}/{spoken} ({found / max(spoken, 1):.3f})" for name, found, spoken in recall_by_gap(
            recordings, lambda i: detect(posteriors["spot"][i], spotter.classes, config))))

    print("\nrecall within reach (the right word on top and over the threshold in a window near it): " + ", ".join(
        f"{name} {reach(recordings, posteriors[key], model.classes, config):.3f}"
        for key, name, model in (("spot", args.checkpoint.stem, spotter), ("ref", args.reference.stem, reference))))

    quiet = [window_posteriors(spotter, w, config.hop)
             for w, _ in build_recordings(args.data, args.recordings, args.seed, args.validation_percent, False)]
    print(f"where recall is lost, {args.checkpoint.stem}: reach without the background noise, single windows "
          f"{reach(recordings, quiet, spotter.classes, replace(config, smooth=1)):.3f}, smoothed "
          f"{reach(recordings, quiet, spotter.classes, config):.3f}; with the noise, single windows "
          f"{reach(recordings, posteriors['spot'], spotter.classes, replace(config, smooth=1)):.3f}, smoothed (the "
          f"detector's) {reach(recordings, posteriors['spot'], spotter.classes, config):.3f}")

    print(f"\nthreshold sweep, detector + {args.checkpoint.stem} (miss vs false alarms):")
    sweep_header = header.replace("method", "threshold") + f" {'reach':>6s}"
    print(sweep_header + "\n" + "-" * len(sweep_header))
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        swept = SpotConfig(threshold=threshold)
        print(row(f"{threshold:.2f}", total(recordings, lambda i: detect(posteriors["spot"][i], spotter.classes,
                                                                           swept)))
              + f" {reach(recordings, posteriors['spot'], spotter.classes, swept):6.3f}")

    long_file = torch.cat([w for w, _ in recordings])
    seconds = long_file.numel() / SAMPLE_RATE
    print(f"\nspeed on one {seconds:.0f} s file (audio seconds per wall second; higher is faster):")
    threads = torch.get_num_threads()
    for thread_count in sorted({1, threads}):
        torch.set_num_threads(thread_count)
        for batch_size in args.batch_sizes:
            spot(spotter, long_file[:10 * SAMPLE_RATE], config)  # warm-up
            tick = time.perf_counter()
            window_posteriors(spotter, long_file, config.hop, batch_size)
            print(f"  threads {thread_count} batch {batch_size:4d}: {seconds / (time.perf_counter() - tick):7.0f}x "
                  "real time")
    torch.set_num_threads(threads)

    wave = recordings[0][0]
    stream, chunk, times, streamed = Spotter(spotter, config), SAMPLE_RATE // 10, [], []
    for start in range(0, wave.numel(), chunk):
        tick = time.perf_counter()
        streamed += stream.feed(wave[start:start + chunk])
        times.append(time.perf_counter() - tick)
    streamed += stream.flush()
    same = [d.to_dict() for d in streamed] == [d.to_dict() for d in spot(spotter, wave, config)]  # 1 ms, 0.001
    times = sorted(times[10:])  # after the first second (the first window needs 1 s of audio)
    print(f"\nstreaming 100 ms chunks: median {1000 * statistics.median(times):.1f} ms, "
          f"95th percentile {1000 * times[int(0.95 * (len(times) - 1))]:.1f} ms, max {1000 * times[-1]:.1f} ms per "
          f"chunk; same detections as the file path: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
