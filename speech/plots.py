"""Plotly figure builders for every page. Each takes plain tensors/lists and returns a ``go.Figure``."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from speech.audio import SAMPLE_RATE
from speech.embedding import EmbeddingMap
from speech.explore import bin_frequencies, frame_times, overview_spectrogram, row_frequencies, spectrogram
from speech.features import FeatureConfig
from speech.spot import Detection, SpotConfig, is_word, row_times, smoothed, words_that_matter

SCALES = ("power", "magnitude", "sqrt", "dB")
DB_FLOOR = 1e-10
CORRECT_COLOUR, ERROR_COLOUR = "#2a9d8f", "#e76f51"
SCREEN_POINTS = 2000   # a line figure carries at most about this many x positions: a screen's width, twice
SCREEN_COLUMNS = 500   # a heatmap at most this many columns
SCREEN_CELLS = 150_000  # and this many cells: under 1 MB of float32 in the page


def envelope(values: np.ndarray, x: np.ndarray, points: int = SCREEN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A line of any length cut to about ``points`` x positions without losing a peak: each group of samples
    becomes its minimum and its maximum (in their order), so the drawn envelope looks like the full line."""
    if values.size <= points:
        return x, values
    group = int(np.ceil(values.size / (points // 2 - 1)))
    blocks = np.pad(values, (0, -values.size % group), mode="edge").reshape(-1, group)
    low, high = blocks.argmin(1), blocks.argmax(1)
    starts = np.arange(blocks.shape[0]) * group
    index = np.stack([starts + np.minimum(low, high), starts + np.maximum(low, high)], 1).ravel()
    index = np.unique(np.concatenate([[0], index.clip(max=values.size - 1), [values.size - 1]]))  # keep both ends
    return x[index], values[index]


def pool_columns(values: np.ndarray, x: np.ndarray, columns: int = SCREEN_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """A heatmap ``[rows, n]`` cut to at most ``columns`` columns by taking each group's maximum (a short loud
    event stays visible); ``x`` keeps each group's first position."""
    if values.shape[1] <= columns:
        return values, x
    group = int(np.ceil(values.shape[1] / columns))
    usable = values.shape[1] // group * group
    pooled = values[:, :usable].reshape(values.shape[0], -1, group).max(2)
    return pooled, x[:usable:group]


def pool_grid(values: np.ndarray, x: np.ndarray, y: np.ndarray, columns: int = SCREEN_COLUMNS,
              cells: int = SCREEN_CELLS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pool_columns` to at most ``columns`` columns, then over rows when still more than ``cells`` cells
    (a 1 s clip's 257 x 101 spectrogram stays whole)."""
    values, x = pool_columns(values, x, columns)
    values, y = pool_columns(values.T, y, max(cells // values.shape[1], 1))
    return values.T, x, y


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=20, t=50, b=50), template="plotly_white")
    return fig


def waveform_figure(waveform: torch.Tensor, sample_rate: int, title: str = "Waveform",
                    highlight: Optional[tuple[float, float]] = None) -> go.Figure:
    """Amplitude over time (s); ``highlight`` shades a (start s, end s) span, e.g. the model's window. A long
    waveform is drawn as its min/max :func:`envelope`, so the figure stays small whatever the length."""
    t, y = envelope(waveform.numpy(), np.arange(waveform.numel()) / sample_rate)
    fig = go.Figure(go.Scattergl(x=t, y=y, mode="lines", line=dict(width=1), name="amplitude"))
    if highlight is not None:
        fig.add_vrect(x0=highlight[0], x1=highlight[1], fillcolor="orange", opacity=0.2, line_width=0,
                      annotation_text="window the model heard", annotation_position="top left")
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="amplitude")
    return _layout(fig, title)


def dft_figure(frequencies: torch.Tensor, magnitude: torch.Tensor, phase: Optional[torch.Tensor] = None,
               title: str = "DFT") -> go.Figure:
    """|DFT| against frequency (Hz, up to Nyquist); with ``phase`` a second panel shows it (rad)."""
    rows = 2 if phase is not None else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x, y = envelope(magnitude.numpy(), frequencies.numpy())
    fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name="magnitude"), 1, 1)
    fig.update_yaxes(title="magnitude", row=1, col=1)
    if phase is not None:
        step = max(1, phase.numel() // SCREEN_POINTS)  # phase is noise-like: every step-th point shows it as well
        fig.add_trace(go.Scattergl(x=frequencies.numpy()[::step], y=phase.numpy()[::step], mode="markers",
                                   marker=dict(size=2), name="phase"), 2, 1)
        fig.update_yaxes(title="phase (rad)", row=2, col=1)
    fig.update_xaxes(title="frequency (Hz)", row=rows, col=1)
    return _layout(fig, title, 300 * rows + 60)


def scale_values(power: torch.Tensor, scale: str) -> np.ndarray:
    """Map a power spectrogram to the colour scale: power, magnitude (sqrt of power), sqrt (of magnitude), dB."""
    if scale == "power":
        return power.numpy()
    if scale == "magnitude":
        return power.sqrt().numpy()
    if scale == "sqrt":
        return power.pow(0.25).numpy()
    if scale == "dB":
        return (10 * torch.log10(power.clamp_min(DB_FLOOR))).numpy()
    raise ValueError(f"scale must be one of {SCALES}")


def heatmap_figure(values: np.ndarray, x: np.ndarray, y: np.ndarray, title: str, x_title: str, y_title: str,
                   colour_title: str = "", log_y: bool = False, height: int = 380) -> go.Figure:
    """A time x frequency (or any) heatmap; ``values`` is ``[len(y), len(x)]``, cut to at most
    screen size (:func:`pool_grid`) and sent as float32."""
    values, x, y = pool_grid(np.asarray(values, dtype=np.float32), np.asarray(x), np.asarray(y))
    fig = go.Figure(go.Heatmap(z=values, x=x, y=y, colorscale="Viridis", colorbar=dict(title=dict(text=colour_title,
                                                                                                  side="right"))))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, type="log" if log_y else "linear")
    return _layout(fig, title, height)


def spectrogram_figure(power: torch.Tensor, times: torch.Tensor, frequencies: torch.Tensor, scale: str = "dB",
                       log_frequency: bool = False, title: str = "Spectrogram", height: int = 380) -> go.Figure:
    """Heatmap of a power spectrogram ``[bins, frames]`` over time (s) and frequency (Hz)."""
    y = frequencies.numpy()
    values = scale_values(power, scale)
    if log_frequency:  # a log axis cannot show 0 Hz
        y, values = y[1:], values[1:]
    return heatmap_figure(values, times.numpy(), y, title, "time (s)", "frequency (Hz)", scale, log_frequency,
                          height)


def filter_bank_figure(bank: torch.Tensor, frequencies: torch.Tensor, title: str = "Mel filter bank") -> go.Figure:
    """One line per mel filter ``bank [n_freqs, n_mels]`` over frequency (Hz)."""
    fig = go.Figure([go.Scatter(x=frequencies.numpy(), y=bank[:, m].numpy(), mode="lines", line=dict(width=1),
                                name=f"filter {m}", showlegend=False) for m in range(bank.shape[1])])
    fig.update_xaxes(title="frequency (Hz)")
    fig.update_yaxes(title="weight")
    return _layout(fig, title)


def fourier_vs_mel_figure(fourier: torch.Tensor, frequencies: torch.Tensor, mel: torch.Tensor,
                          centres: torch.Tensor, title: str = "Fourier vs mel coefficients") -> go.Figure:
    """The book's figure 22.8: one frame's power per Fourier bin and per mel band (at its centre, Hz), in dB."""
    to_db = lambda x: (10 * torch.log10(x.clamp_min(DB_FLOOR))).numpy()  # noqa: E731
    fig = go.Figure([
        go.Scatter(x=frequencies.numpy(), y=to_db(fourier), mode="lines", name=f"Fourier ({fourier.numel()} bins)"),
        go.Scatter(x=centres.numpy(), y=to_db(mel), mode="lines+markers", name=f"mel ({mel.numel()} bands)"),
    ])
    fig.update_xaxes(title="frequency (Hz)")
    fig.update_yaxes(title="power (dB)")
    fig.update_layout(legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    return _layout(fig, title)


def training_curves_figure(rows: Sequence[dict], title: str = "Training curves") -> go.Figure:
    """Loss and accuracy per epoch from log rows ``{"epoch", "set", "loss", "acc"}`` (with ``stage`` when the
    model was continued from an earlier run: each later stage's start is marked), one line per set."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    colours = {"train": "#1f77b4", "valid": "#ff7f0e"}
    for subset in sorted({r["set"] for r in rows}):
        part = [r for r in rows if r["set"] == subset]
        epochs = [int(r["epoch"]) for r in part]
        colour = colours.get(subset)
        fig.add_trace(go.Scatter(x=epochs, y=[float(r["loss"]) for r in part], name=subset, mode="lines+markers",
                                 line=dict(color=colour), legendgroup=subset), 1, 1)
        fig.add_trace(go.Scatter(x=epochs, y=[float(r["acc"]) for r in part], name=subset, mode="lines+markers",
                                 line=dict(color=colour), legendgroup=subset, showlegend=False), 1, 2)
    stages = sorted({r.get("stage", 1) for r in rows})
    for stage in stages[1:]:
        first = min(int(r["epoch"]) for r in rows if r.get("stage", 1) == stage)
        for col in (1, 2):
            fig.add_vline(x=first - 0.5, line_dash="dot", line_color="grey", row=1, col=col)
        fig.add_annotation(x=first - 0.5, y=1.0, xref="x2", yref="paper", text=f"stage {stage} starts",
                           showarrow=False, xanchor="left", yanchor="bottom")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="loss", row=1, col=1)
    fig.update_yaxes(title="accuracy", row=1, col=2)
    return _layout(fig, title, 380)


def lr_finder_figure(rows: Sequence[dict], chosen_lr: Optional[float] = None,
                     title: str = "Learning-rate finder") -> go.Figure:
    """Smoothed loss against learning rate (log axis over the data's range); ``chosen_lr`` is marked by a dashed
    line when it lies inside that range, and named in the title either way."""
    lrs, losses = [float(r["lr"]) for r in rows], [float(r["loss"]) for r in rows]
    fig = go.Figure(go.Scatter(x=lrs, y=losses, mode="lines", name="loss"))
    if chosen_lr is not None:
        title = f"{title} (max lr used: {chosen_lr:g})"
        if lrs and min(lrs) <= chosen_lr <= max(lrs):
            fig.add_trace(go.Scatter(x=[chosen_lr, chosen_lr], y=[min(losses), max(losses)], mode="lines",
                                     line=dict(dash="dash", color="red"), name="max lr used"))
    if lrs:
        fig.update_xaxes(range=[np.log10(min(lrs)), np.log10(max(lrs))])
    fig.update_xaxes(title="learning rate", type="log")
    fig.update_yaxes(title="loss (smoothed)")
    return _layout(fig, title, 340)


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], normalise: bool = False,
                     title: str = "Confusion matrix") -> go.Figure:
    """Targets (rows, y) x predictions (columns, x); row-normalised shares when ``normalise``."""
    counts = np.asarray(confusion, dtype=float)
    values = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalise else counts
    fig = go.Figure(go.Heatmap(z=values, x=list(classes), y=list(classes), colorscale="Blues", hoverinfo="skip"))
    # Plotly selection events do not report heatmap cells: one transparent marker per non-empty cell carries the
    # hover text and is what a click selects (the selected cell turns orange).
    targets, predicted = np.nonzero(counts)
    fig.add_trace(go.Scatter(
        x=[classes[p] for p in predicted], y=[classes[t] for t in targets], mode="markers", showlegend=False,
        marker=dict(size=16, symbol="square", color="rgba(0, 0, 0, 0)"), selected=dict(marker=dict(color=ERROR_COLOUR)),
        unselected=dict(marker=dict(opacity=0)), customdata=np.stack([counts[targets, predicted],
                                                                       values[targets, predicted]], 1),
        hovertemplate="target %{y} → prediction %{x}<br>count %{customdata[0]:.0f}<br>share %{customdata[1]:.2f}"
                      "<br>click to list these clips<extra></extra>"))
    fig.update_xaxes(title="prediction", tickangle=-60, tickmode="array", tickvals=list(classes), constrain="domain")
    fig.update_yaxes(title="target", autorange="reversed", tickmode="array", tickvals=list(classes),
                     scaleanchor="x", constrain="domain")
    return _layout(fig, title, 760)


def largest_error_flow(confusion: Sequence[Sequence[int]]) -> int:
    """The count of the most frequent (target, prediction) error: the highest sensible hiding threshold."""
    counts = np.asarray(confusion, dtype=int).copy()
    np.fill_diagonal(counts, 0)
    return int(counts.max()) if counts.size else 0


def alluvial_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], min_count: int = 1,
                    title: str = "Predictions flowing into targets") -> go.Figure:
    """Parcats flows from prediction (left) to target (right); correct flows green, errors orange. Flows of
    fewer than ``min_count`` clips are hidden; keep ``min_count`` at most :func:`largest_error_flow` and at
    least one error flow stays."""
    counts = np.asarray(confusion, dtype=int)
    total = int(counts.sum())
    predictions, targets, weights, colours = [], [], [], []
    for t, p in zip(*np.nonzero(counts >= max(min_count, 1))):
        predictions.append(classes[p])
        targets.append(classes[t])
        weights.append(int(counts[t, p]))
        colours.append(0 if t == p else 1)
    fig = go.Figure(go.Parcats(
        dimensions=[dict(label="prediction", values=predictions), dict(label="target", values=targets)],
        counts=weights, line=dict(color=colours, colorscale=[[0, CORRECT_COLOUR], [1, ERROR_COLOUR]], cmin=0, cmax=1,
                                  shape="hspline"),
        hoveron="color", arrangement="freeform", sortpaths="forward"))
    hidden = f"; flows under {min_count} clips hidden" if min_count > 1 else ""
    fig = _layout(fig, f"{title}<br><sup>{sum(weights)} of {total} clips shown{hidden}</sup>", 760)
    return fig.update_layout(margin=dict(t=110))  # room for the subtitle above the dimension labels


def probability_figure(top: Sequence[tuple[str, float]], title: str = "Top probabilities") -> go.Figure:
    """Horizontal bars of (word, probability), most likely on top."""
    words = [w for w, _ in top][::-1]
    values = [p for _, p in top][::-1]
    fig = go.Figure(go.Bar(x=values, y=words, orientation="h", text=[f"{v:.1%}" for v in values],
                           textposition="auto"))
    fig.update_xaxes(title="probability", range=[0, 1])
    return _layout(fig, title, 260)


def model_input_figure(image: torch.Tensor, config: FeatureConfig, title: str) -> go.Figure:
    """The model's input image ``[n_bins, frames]`` over time (s) and frequency (Hz; mel band centres for mel)."""
    frequencies = row_frequencies(config)
    label = "|X|^0.3" if config.variant == "complex" else "log power"
    return heatmap_figure(image.numpy(), frame_times(image.shape[1], config).numpy(), frequencies.numpy(), title,
                          "time (s)", "frequency (Hz)", label, height=320)


def class_counts_figure(counts: dict[str, int], title: str = "Clips per word") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values())))
    fig.update_xaxes(title="word", tickangle=-60)
    fig.update_yaxes(title="clips")
    return _layout(fig, title, 320)


SPAN_COLOUR = "rgba(42, 157, 143, 0.18)"


def spotting_figure(waveform: torch.Tensor, posteriors: torch.Tensor, classes: Sequence[str], config: SpotConfig,
                    detections: Sequence[Detection], title: str = "What the detector heard") -> go.Figure:
    """Three panels on one time axis (s) for float32 ``waveform [time]`` at 16 kHz: the waveform (envelope),
    its spectrogram (dB) and the smoothed probabilities of the words that matter (plus the rejection classes,
    dotted grey) from ``posteriors [windows, classes]``, with the threshold line. Each detection is a labelled
    span over all three. Any length stays screen-sized."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.09, row_heights=[0.25, 0.35, 0.4],
                        subplot_titles=("", "spectrogram",  # the words heard are written above the waveform
                                        f"probability, averaged over {config.smooth} windows"))
    t, y = envelope(waveform.numpy(), np.arange(waveform.numel()) / SAMPLE_RATE)
    fig.add_trace(go.Scattergl(x=t, y=y, mode="lines", line=dict(width=1, color="#457b9d"), name="amplitude",
                               showlegend=False), 1, 1)
    db, times, frequencies = overview_spectrogram(waveform, SAMPLE_RATE)
    values, x, f = pool_grid(db.numpy().astype(np.float32), times.numpy(), frequencies.numpy())
    fig.add_trace(go.Heatmap(z=values, x=x, y=f, colorscale="Viridis", showscale=False, name="dB"), 2, 1)
    curves, row_t = smoothed(posteriors, config.smooth), row_times(len(posteriors), config).numpy()
    shown = words_that_matter(posteriors, classes, detections) + [c for c in classes if not is_word(c)]
    for label in shown:
        rejection = not is_word(label)
        x_line, y_line = envelope(curves[:, classes.index(label)].numpy(), row_t)
        fig.add_trace(go.Scatter(x=x_line, y=y_line, mode="lines", name=label,
                                 line=dict(width=1 if rejection else 2, dash="dot" if rejection else "solid",
                                           color="#999999" if rejection else None)), 3, 1)
    fig.add_hline(y=config.threshold, line=dict(color=ERROR_COLOUR, dash="dash", width=1), row=3, col=1,
                  annotation_text=f"threshold {config.threshold:.2f}", annotation_position="bottom right")
    for d in detections:
        for row in (1, 2, 3):
            fig.add_vrect(x0=d.start, x1=d.end, fillcolor=SPAN_COLOUR, line_width=0, row=row, col=1)
        fig.add_annotation(x=(d.start + d.end) / 2, y=1, yref="y domain", text=f"<b>{d.word}</b>", showarrow=False,
                           yanchor="bottom", font=dict(size=13, color=CORRECT_COLOUR), row=1, col=1)
    fig.update_yaxes(title="amplitude", row=1, col=1)
    fig.update_yaxes(title="frequency (Hz)", row=2, col=1)
    fig.update_yaxes(title="probability", range=[0, 1.02], row=3, col=1)
    fig.update_xaxes(title="time (s)", row=3, col=1)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.1, x=0))
    return _layout(fig, title, 760)


def threshold_sweep_figure(rows: Sequence[dict], current: float,
                           title: str = "Misses against false alarms") -> go.Figure:
    """Detection rate against false alarms per minute, one point per threshold (``rows`` from
    :func:`speech.spot.threshold_sweep`); the ``current`` threshold is marked."""
    fig = go.Figure(go.Scatter(x=[r["false_alarms_per_minute"] for r in rows], y=[r["detection_rate"] for r in rows],
                               mode="lines+markers", name="thresholds",
                               text=[f"threshold {r['threshold']:.2f}" for r in rows],
                               hovertemplate="%{text}<br>%{x:.2f} false alarms / min<br>detected %{y:.0%}"))
    near = min(rows, key=lambda r: abs(r["threshold"] - current))
    fig.add_trace(go.Scatter(x=[near["false_alarms_per_minute"]], y=[near["detection_rate"]], mode="markers+text",
                             marker=dict(size=12, color=ERROR_COLOUR), text=[f"threshold {near['threshold']:.2f}"],
                             textposition="bottom right", name="your threshold"))
    fig.update_xaxes(title="false alarms per minute", rangemode="tozero")
    fig.update_yaxes(title="words detected", range=[0, 1.05], tickformat=".0%")
    fig.update_layout(showlegend=False)
    return _layout(fig, title, 340)


def clip_figure(wave: torch.Tensor, title: str) -> go.Figure:
    """A 1 s clip float32 ``[16000]`` at 16 kHz, small: its waveform over its spectrogram (dB), on one time axis."""
    config = FeatureConfig(variant="baseline")
    power = spectrogram(wave, config)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.35, 0.65])
    fig.add_trace(go.Scattergl(x=np.arange(wave.numel()) / SAMPLE_RATE, y=wave.numpy(), mode="lines",
                               line=dict(width=1), showlegend=False, name="amplitude"), 1, 1)
    fig.add_trace(go.Heatmap(z=scale_values(power, "dB"), x=frame_times(power.shape[1], config).numpy(),
                             y=bin_frequencies(config).numpy(), colorscale="Viridis", showscale=False,
                             name="spectrogram"), 2, 1)
    fig.update_yaxes(title="amplitude", row=1, col=1)
    fig.update_yaxes(title="Hz", row=2, col=1)
    fig.update_xaxes(title="time (s)", row=2, col=1)
    fig.update_layout(title=title, height=280, margin=dict(l=60, r=10, t=40, b=40), template="plotly_white")
    return fig


BACKGROUND_POINT = "#b8bec6"


def embedding_figure(points: EmbeddingMap, title: str = "Embedding map") -> go.Figure:
    """A scatter of an :class:`~speech.embedding.EmbeddingMap`: the highlighted words in colour with a legend,
    every other word as grey points labelled at their centre (so 30 words stay readable); hover names each point.
    With nothing highlighted every word gets its own colour."""
    coordinates = points.coordinates.numpy()
    words = np.array(points.words)
    names = np.array(points.names)
    palette = qualitative.Dark24 + qualitative.Light24
    coloured = points.highlighted or sorted(set(points.words))
    fig = go.Figure()
    background = [w for w in dict.fromkeys(points.words) if w not in coloured]
    for word in background:
        at = words == word
        fig.add_trace(go.Scatter(x=coordinates[at, 0], y=coordinates[at, 1], mode="markers", name=word,
                                 marker=dict(size=7, color=BACKGROUND_POINT), showlegend=False,
                                 customdata=names[at], hovertemplate=f"{word}<br>%{{customdata}}<extra></extra>"))
    for i, word in enumerate(coloured):
        at = words == word
        fig.add_trace(go.Scatter(x=coordinates[at, 0], y=coordinates[at, 1], mode="markers", name=word,
                                 marker=dict(size=13 if points.highlighted else 8, color=palette[i % len(palette)],
                                             symbol="star" if points.highlighted else "circle",
                                             line=dict(width=1, color="white")),
                                 customdata=names[at], hovertemplate=f"{word}<br>%{{customdata}}<extra></extra>"))
    for word in dict.fromkeys(points.words):  # each word's name at the centre of its points
        centre = coordinates[words == word].mean(0)
        fig.add_annotation(x=centre[0], y=centre[1], text=word, showarrow=False, yshift=12,
                           font=dict(size=13 if word in points.highlighted else 10,
                                     color="black" if word in points.highlighted else "#4a5059"))
    fig.update_xaxes(title="first principal direction (arbitrary units)", zeroline=False)
    fig.update_yaxes(title="second principal direction", zeroline=False)
    return _layout(fig, f"{title} ({points.variance_kept:.0%} of the spread between words shown)", 560)


SALIENCY_SCALE = [[0.0, "rgba(230, 57, 70, 0.0)"], [0.3, "rgba(230, 57, 70, 0.25)"], [1.0, "rgba(230, 57, 70, 0.95)"]]


def saliency_figure(image: torch.Tensor, saliency: torch.Tensor, config: FeatureConfig, title: str,
                    colour_title: str) -> go.Figure:
    """A saliency map ``[n_bins, frames]`` in red over the model's input image ``[n_bins, frames]`` (grey), on the
    input's axes: time (s) and frequency (Hz; mel band centres for mel). Only positive saliency (evidence for the
    word) is coloured."""
    frequencies = row_frequencies(config).numpy()
    times = frame_times(image.shape[1], config).numpy()
    evidence = saliency.clamp_min(0).numpy()
    fig = go.Figure([
        go.Heatmap(z=image.numpy(), x=times, y=frequencies, colorscale="Greys", showscale=False,
                   hoverinfo="skip"),
        go.Heatmap(z=evidence, x=times, y=frequencies, colorscale=SALIENCY_SCALE, zmin=0,
                   zmax=max(float(evidence.max()), 1e-12), colorbar=dict(title=dict(text=colour_title, side="right")),
                   hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.3g}<extra></extra>")])
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="frequency (Hz)")
    return _layout(fig, title, 320)


VARIANT_COLOURS = {"baseline": "#1f77b4", "mel": "#2a9d8f", "complex": "#e76f51"}


def comparison_curves_figure(summary: dict, title: str = "Every seed's validation curves") -> go.Figure:
    """Validation loss and accuracy per epoch of each run of a :func:`speech.compare.summarize` summary: one line
    per seed, one colour per input."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    shown = set()
    for run in summary["runs"]:
        rows = [r for r in run["history"] if r["set"] == "valid"]
        epochs = [r["epoch"] for r in rows]
        style = dict(color=VARIANT_COLOURS.get(run["variant"]), width=1.5)
        for col, key in ((1, "loss"), (2, "acc")):
            fig.add_trace(go.Scatter(x=epochs, y=[r[key] for r in rows], mode="lines+markers", line=style,
                                     marker=dict(size=5), name=run["variant"], legendgroup=run["variant"],
                                     showlegend=col == 1 and run["variant"] not in shown,
                                     hovertemplate=f"{run['name']}<br>epoch %{{x}}: %{{y:.3f}}<extra></extra>"), 1, col)
        shown.add(run["variant"])
    fig.update_xaxes(title="epoch", dtick=1)
    fig.update_yaxes(title="validation loss", row=1, col=1)
    fig.update_yaxes(title="validation accuracy", row=1, col=2)
    return _layout(fig, title, 380)


def per_word_comparison_figure(summary: dict,
                               title: str = "Accuracy per word (mean over seeds, bars: ± sd)") -> go.Figure:
    """Grouped bars: each word's validation accuracy for each input, mean over seeds with ± sd error bars; each word
    is labelled with its number of validation clips (one clip of a rare word moves its bar a lot)."""
    fig = go.Figure()
    counts = summary.get("validation_counts", {})
    for variant, figures in summary["variants"].items():
        words = list(figures["per_class"])
        fig.add_trace(go.Bar(x=[f"{w} ({counts[w]})" if w in counts else w for w in words],
                             y=[figures["per_class"][w]["mean"] for w in words], name=variant,
                             marker_color=VARIANT_COLOURS.get(variant),
                             error_y=dict(type="data", array=[figures["per_class"][w]["sd"] for w in words])))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    fig.update_xaxes(title="word (validation clips)", tickangle=-60)
    fig.update_yaxes(title="accuracy", range=[0, 1.05])
    return _layout(fig, title, 400)
