import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from speech.explore import bin_frequencies, dft, filter_bank, frame_times, mel_centres, spectrogram
from speech.features import FeatureConfig
from speech.plots import (
    SCREEN_CELLS,
    SCREEN_COLUMNS,
    SCREEN_POINTS,
    alluvial_figure,
    class_counts_figure,
    confusion_figure,
    dft_figure,
    envelope,
    filter_bank_figure,
    fourier_vs_mel_figure,
    largest_error_flow,
    lr_finder_figure,
    model_input_figure,
    pool_grid,
    probability_figure,
    scale_values,
    spectrogram_figure,
    training_curves_figure,
    waveform_figure,
)

SR = 16_000
CLASSES = ["no", "up", "yes"]
CONFUSION = [[90, 8, 2], [0, 100, 0], [5, 0, 95]]


def test_waveform_axes_are_seconds():
    fig = waveform_figure(torch.zeros(SR // 2), SR, highlight=(0.1, 0.3))
    assert fig.data[0].x[-1] == pytest.approx(0.5 - 1 / SR)
    assert fig.layout.xaxis.title.text == "time (s)" and len(fig.layout.shapes) == 1


def test_dft_figure_goes_to_nyquist_with_optional_phase():
    spectrum = dft(torch.randn(SR), SR)
    fig = dft_figure(spectrum.frequencies, spectrum.magnitude, spectrum.phase)
    assert len(fig.data) == 2 and fig.data[0].x[-1] == SR / 2
    assert fig.layout.xaxis2.title.text == "frequency (Hz)"
    assert len(dft_figure(spectrum.frequencies, spectrum.magnitude).data) == 1


@pytest.mark.parametrize("scale", ["power", "magnitude", "sqrt", "dB"])
def test_spectrogram_heatmap_shape_and_units(scale):
    config = FeatureConfig()
    power = spectrogram(torch.randn(SR) * 0.1, config)
    fig = spectrogram_figure(power, frame_times(power.shape[1], config), bin_frequencies(config), scale)
    heatmap = fig.data[0]
    assert heatmap.z.shape == (257, 101) and heatmap.y[-1] == SR / 2
    assert fig.layout.yaxis.title.text == "frequency (Hz)" and fig.layout.xaxis.title.text == "time (s)"
    log_fig = spectrogram_figure(power, frame_times(101, config), bin_frequencies(config), scale, log_frequency=True)
    assert log_fig.layout.yaxis.type == "log" and log_fig.data[0].y[0] > 0


def test_scale_values():
    power = torch.tensor([[100.0, 1.0]])
    assert scale_values(power, "magnitude").tolist() == [[10.0, 1.0]]
    assert scale_values(power, "dB").tolist() == [[20.0, 0.0]]
    with pytest.raises(ValueError):
        scale_values(power, "loud")


def test_filter_bank_and_fourier_vs_mel():
    config = FeatureConfig(variant="mel", n_mels=16)
    fig = filter_bank_figure(filter_bank(config), bin_frequencies(config))
    assert len(fig.data) == 16
    power = torch.rand(257)
    fig = fourier_vs_mel_figure(power, bin_frequencies(config), filter_bank(config).T @ power, mel_centres(config))
    assert [len(t.x) for t in fig.data] == [257, 16]


def test_training_curves_mark_the_stages_and_lr_finder():
    rows = [{"epoch": e, "set": s, "loss": 1 / e, "acc": 1 - 1 / e, "stage": 1 if e < 3 else 2}
            for e in (1, 2, 3) for s in ("train", "valid")]
    fig = training_curves_figure(rows)
    assert len(fig.data) == 4 and list(fig.data[0].x) == [1, 2, 3]
    assert len(fig.layout.shapes) == 2 and fig.layout.shapes[0].x0 == 2.5  # one line per panel before epoch 3
    assert any("stage 2" in a.text for a in fig.layout.annotations)
    lr = lr_finder_figure([{"lr": 1e-5, "loss": 3.0}, {"lr": 1e-2, "loss": 2.0}], chosen_lr=1e-3)
    assert lr.layout.xaxis.type == "log" and [t.name for t in lr.data] == ["loss", "max lr used"]


def test_confusion_counts_and_normalised():
    counts = confusion_figure(CONFUSION, CLASSES)
    assert counts.data[0].z.tolist() == CONFUSION
    shares = confusion_figure(CONFUSION, CLASSES, normalise=True).data[0].z
    assert shares[0][0] == pytest.approx(0.9) and shares.sum(1).tolist() == pytest.approx([1, 1, 1])


def test_alluvial_colours_errors_and_hides_rare_pairs():
    fig = alluvial_figure(CONFUSION, CLASSES, min_count=1)
    parcats = fig.data[0]
    assert isinstance(parcats, go.Parcats)
    assert sum(parcats.counts) == 300 and len(parcats.counts) == 6
    assert sorted(parcats.line.color) == [0, 0, 0, 1, 1, 1]
    hidden = alluvial_figure(CONFUSION, CLASSES, min_count=3).data[0]  # the flow of 2 clips is hidden
    assert sum(hidden.counts) == 298
    pairs = set(zip(parcats.dimensions[0].values, parcats.dimensions[1].values))
    assert ("up", "no") in pairs  # prediction "up" flowing into target "no"


def test_probability_and_counts_and_model_input():
    fig = probability_figure([("yes", 0.7), ("no", 0.2)])
    assert list(fig.data[0].y) == ["no", "yes"]
    assert list(class_counts_figure({"yes": 3, "no": 1}).data[0].y) == [3, 1]
    config = FeatureConfig(variant="mel")
    assert model_input_figure(torch.zeros(128, 101), config, "x").data[0].z.shape == (128, 101)


def test_long_lines_and_heatmaps_are_cut_to_screen_size_without_losing_peaks():
    values = np.zeros(9_600_000, dtype=np.float32)
    values[1_234_567] = 1.0
    x, y = envelope(values, np.arange(values.size))
    assert len(y) <= 2 * SCREEN_POINTS and y.max() == 1.0 and 1_234_567 in x
    grid = np.zeros((1025, 60_000), dtype=np.float32)
    grid[700, 31_000] = 5.0
    pooled, columns, rows = pool_grid(grid, np.arange(60_000), np.arange(1025))
    assert pooled.size <= SCREEN_CELLS and pooled.shape[1] <= SCREEN_COLUMNS and pooled.max() == 5.0
    assert len(columns) == pooled.shape[1] and len(rows) == pooled.shape[0]
    small = np.ones((4, 10))
    assert pool_grid(small, np.arange(10), np.arange(4))[0].shape == (4, 10)


def test_a_ten_minute_waveform_figure_is_small():
    figure = waveform_figure(torch.randn(600 * 16_000) * 0.1, 16_000)
    assert len(figure.to_json()) < 200_000


def test_lr_finder_axis_stays_on_the_data():
    rows = [{"lr": 1e-6 * 10 ** (i / 10), "loss": 1.0} for i in range(43)]  # 1e-6 .. ~0.02
    figure = lr_finder_figure(rows, chosen_lr=1e-3)
    low, high = figure.layout.xaxis.range
    assert low == pytest.approx(-6) and high == pytest.approx(np.log10(rows[-1]["lr"]))
    assert "1e-3" in figure.layout.title.text or "0.001" in figure.layout.title.text


def test_alluvial_keeps_an_error_flow_up_to_the_largest():
    confusion = np.diag([10, 10, 10])
    confusion[0, 1], confusion[2, 1] = 3, 1
    assert largest_error_flow(confusion) == 3
    shown = alluvial_figure(confusion, ["a", "b", "c"], min_count=3).data[0]
    assert 3 in shown.counts and 1 not in shown.counts


def test_confusion_cells_are_selectable_points_and_map_back_to_pairs():
    from speech.results import selected_cells
    classes = ["yes", "no", "up"]
    figure = confusion_figure([[5, 2, 0], [0, 4, 1], [0, 0, 3]], classes)
    cells = figure.data[1]  # the selectable layer: one point per non-empty cell
    assert list(zip(cells.y, cells.x)) == [("yes", "yes"), ("yes", "no"), ("no", "no"), ("no", "up"), ("up", "up")]
    event = [{"x": "no", "y": "yes", "point_index": 1}, {"x": "no", "y": "yes"}, {"x": "up", "y": "no"}]
    assert selected_cells(event) == [("yes", "no"), ("no", "up")]
