import streamlit as st

from speech.audio import SAMPLE_RATE
from speech.explore import bin_frequencies, frame_times, resolution, spectrogram
from speech.features import WINDOWS, FeatureConfig
from speech.plots import SCALES, spectrogram_figure
from speech.ui import clip_picker

st.title("Spectrogram")
st.markdown(
    "A spectrogram cuts the clip into short, overlapping windows and takes a DFT of each: frequency on one axis, "
    "time on the other. The window length decides what you can see — **short windows** locate events in time "
    "but smear frequencies; **long windows** separate frequencies but blur time. The model's input uses 480 "
    "samples (30 ms) with a hop of 160 (10 ms) and n_fft 512."
)
clip = clip_picker("spectrogram")
WINDOW_SIZES = [64, 128, 256, 480, 512, 1024, 2048]
with st.sidebar:
    st.header("STFT settings")
    win_length = st.select_slider("Window size (samples)", WINDOW_SIZES, value=480, key="window")
    hop_length = st.slider("Hop (samples)", 16, win_length, min(160, win_length), step=16, key="hop")
    fft_sizes = [n for n in (64, 128, 256, 512, 1024, 2048, 4096) if n >= win_length]
    n_fft = st.select_slider("n_fft", fft_sizes, value=fft_sizes[0] if win_length != 480 else 512, key="n_fft")
    window = st.selectbox("Window function", list(WINDOWS), key="window_fn")
    scale = st.selectbox("Colour scale", SCALES, index=SCALES.index("dB"), key="scale")
    log_frequency = st.checkbox("Log frequency axis", key="log_frequency")

if clip is not None:
    wave = clip.waveform
    config = FeatureConfig(win_length=win_length, hop_length=hop_length, n_fft=n_fft, window=window)
    power = spectrogram(wave, config)
    window_ms, hop_ms, bin_hz = resolution(config)
    cols = st.columns(4)
    cols[0].metric("Shape (frequency bins × frames)", f"{power.shape[0]} × {power.shape[1]}")
    cols[1].metric("Time resolution (window)", f"{window_ms:.1f} ms")
    cols[2].metric("Hop", f"{hop_ms:.1f} ms")
    cols[3].metric("Frequency resolution (bin spacing)", f"{bin_hz:.1f} Hz")
    st.plotly_chart(spectrogram_figure(power, frame_times(power.shape[1], config), bin_frequencies(config), scale,
                                       log_frequency, f"Window {win_length} samples, hop {hop_length}, n_fft {n_fft}"))

    st.subheader("The trade-off, side by side")
    left, right = st.columns(2)
    for column, size in ((left, 128), (right, 2048)):
        side = FeatureConfig(win_length=size, hop_length=size // 4, n_fft=size, window=window)
        side_power = spectrogram(wave, side)
        ms, _, hz = resolution(side)
        column.plotly_chart(spectrogram_figure(
            side_power, frame_times(side_power.shape[1], side), bin_frequencies(side), scale, log_frequency,
            f"{size} samples: {ms:.0f} ms windows, {hz:.1f} Hz bins"), key=f"side-{size}")
    st.markdown(
        "Left: sharp onsets, blurred pitch. Right: crisp harmonics (horizontal lines of a voiced vowel), but every "
        "event is stretched over 128 ms. The product of time and frequency resolution cannot shrink below a limit — "
        "the uncertainty principle of signal processing."
    )
