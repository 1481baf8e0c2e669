import streamlit as st

from speech.explore import WINDOW_SIZES, bin_frequencies, fft_size, frame_times, resolution, spectrogram
from speech.features import WINDOWS, FeatureConfig
from speech.hear import MAX_SECONDS, audible_part, reconstruct
from speech.plots import SCALES, spectrogram_figure
from speech.ui import clip_picker, play_reconstruction, plotly_in_frame

st.title("Spectrogram")
st.markdown(
    "A spectrogram cuts the clip into short, overlapping windows and takes a DFT of each: frequency on one axis, "
    "time on the other. The window length decides what you can see — **short windows** locate events in time "
    "but smear frequencies; **long windows** separate frequencies but blur time. The model's input uses 480 "
    "samples (30 ms) with a hop of 160 (10 ms) and n_fft 512."
)
clip = clip_picker("spectrogram")


@st.fragment
def explorer(wave, window: str, scale: str, log_frequency: bool):
    """The window, hop and padding sliders and the figure they change: moving one reruns only this part."""
    controls = st.columns(3)
    win_length = controls[0].select_slider("Window size (samples)", WINDOW_SIZES, value=480, key="window")
    hop_length = controls[1].slider("Hop (samples)", 16, win_length, min(160, win_length), step=16, key="hop")
    padding = controls[2].select_slider("Zero-padding", [1, 2, 4, 8], value=1, key="padding",
                                        format_func=lambda p: "none" if p == 1 else f"{p}×",
                                        help="n_fft follows the window (the next power of two); padding makes it "
                                             "larger on purpose.")
    config = FeatureConfig(win_length=win_length, hop_length=hop_length, n_fft=fft_size(win_length, padding),
                           window=window)
    power = spectrogram(wave, config)
    numbers = resolution(config)
    cols = st.columns(5)
    cols[0].metric("Shape (bins × frames)", f"{power.shape[0]} × {power.shape[1]}")
    cols[1].metric("Window (time resolution)", f"{numbers.window_ms:.1f} ms")
    cols[2].metric("Frequency resolution", f"{numbers.frequency_hz:.1f} Hz",
                   help=f"sample rate / window length; the {window} window's main lobe is {numbers.main_lobe_hz:.0f} "
                        "Hz wide (null to null)")
    cols[3].metric("Bin spacing", f"{numbers.bin_spacing_hz:.1f} Hz", help=f"sample rate / n_fft ({config.n_fft})")
    cols[4].metric("Hop", f"{numbers.hop_ms:.1f} ms")
    st.caption("Zero-padding (n_fft larger than the window) samples the same blurred spectrum on finer bins: the "
               "bin spacing shrinks, the frequency resolution does not.")
    plotly_in_frame(spectrogram_figure(power, frame_times(power.shape[1], config), bin_frequencies(config), scale,
                                       log_frequency, f"Window {win_length} samples, hop {hop_length}, "
                                                      f"n_fft {config.n_fft}"), key="spectrogram")
    st.markdown("**Hear it.** The power spectrogram above has lost the phase; the complex STFT keeps it. Turn both "
                "back into sound with these settings and listen to what each keeps.")
    iterations = st.slider("Griffin-Lim iterations (guessing the lost phase)", 1, 200, 32, key="gl-iterations")
    audible = audible_part(wave)
    power_column, complex_column = st.columns(2)
    play_reconstruction(reconstruct(audible, config, iterations), power_column)
    play_reconstruction(reconstruct(audible, FeatureConfig(**{**config.to_dict(), "variant": "complex"})),
                        complex_column)
    if wave.numel() > audible.numel():
        st.caption(f"Only the first {MAX_SECONDS:.0f} s are turned back into sound.")


if clip is not None:
    wave = clip.waveform
    options = st.columns([1, 1, 2])
    window = options[0].selectbox("Window function", list(WINDOWS), key="window_fn")
    scale = options[1].selectbox("Colour scale", SCALES, index=SCALES.index("dB"), key="scale")
    log_frequency = options[2].checkbox("Log frequency axis", key="log_frequency")
    explorer(wave, window, scale, log_frequency)
    st.subheader("The trade-off, side by side")
    left, right = st.columns(2)
    for column, size in ((left, 128), (right, 2048)):
        side = FeatureConfig(win_length=size, hop_length=size // 4, n_fft=size, window=window)
        side_power = spectrogram(wave, side)
        numbers = resolution(side)
        column.plotly_chart(spectrogram_figure(
            side_power, frame_times(side_power.shape[1], side), bin_frequencies(side), scale, log_frequency,
            f"{size} samples: {numbers.window_ms:.0f} ms, {numbers.frequency_hz:.1f} Hz"), key=f"side-{size}")
        play_reconstruction(reconstruct(audible_part(wave), side), column, f"{size} samples, as sound: ")
    st.markdown(
        "Left: sharp onsets, blurred pitch. Right: crisp harmonics (horizontal lines of a voiced vowel), but every "
        "event is stretched over 128 ms. The product of time and frequency resolution cannot shrink below a limit — "
        "the uncertainty principle of signal processing."
    )
