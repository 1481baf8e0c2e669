import streamlit as st

from speech.audio import SAMPLE_RATE
from speech.explore import dft, inverse_dft_error, sum_of_sines
from speech.plots import dft_figure, waveform_figure
from speech.ui import clip_picker

st.title("Fourier transform")
st.markdown(
    "The discrete Fourier transform (DFT) rewrites N samples as N/2+1 complex coefficients, one per frequency "
    "from 0 Hz up to the Nyquist frequency (half the sample rate, 8 kHz here). The magnitude says how much of each "
    "frequency the clip contains; the phase says where each sine starts."
)
mode = st.radio("Signal", ["A clip", "Synthetic sum of sines"], horizontal=True)
if mode == "A clip":
    clip = clip_picker("fourier")
    wave = clip.waveform if clip is not None else None
else:
    cols = st.columns(3)
    freqs = [cols[i].number_input(f"Frequency {i + 1} (Hz)", 1.0, SAMPLE_RATE / 2 - 1, f, step=10.0)
             for i, f in enumerate([220.0, 440.0, 1250.0])]
    amps = [cols[i].slider(f"Amplitude {i + 1}", 0.0, 1.0, a) for i, a in enumerate([1.0, 0.5, 0.25])]
    wave = sum_of_sines(freqs, amps, SAMPLE_RATE)
    st.plotly_chart(waveform_figure(wave[:800], SAMPLE_RATE, "First 50 ms of the synthetic signal"))
    st.caption("The peaks below land exactly on the frequencies you chose.")

if wave is not None:
    spectrum = dft(wave, SAMPLE_RATE)
    show_phase = st.checkbox("Show phase")
    st.plotly_chart(dft_figure(spectrum.frequencies, spectrum.magnitude, spectrum.phase if show_phase else None,
                               f"DFT magnitude of {wave.numel()} samples ({spectrum.frequencies.numel()} frequencies, "
                               f"{SAMPLE_RATE / wave.numel():.2f} Hz apart)"))
    error = inverse_dft_error(wave)
    st.metric("Inverse DFT round trip: max |x − IDFT(DFT(x))|", f"{error:.2e}")
    st.markdown(
        "**Where did time go?** Every coefficient is a sum over *all* samples, so the DFT tells *which* frequencies "
        "occur but not *when*. Nothing is lost — the inverse DFT gives the waveform back up to rounding error, as "
        "measured above — but the *when* is hidden in the phases. To see both, the **Spectrogram** page takes DFTs "
        "of short windows."
    )
