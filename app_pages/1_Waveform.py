import streamlit as st

from speech.audio import SAMPLE_RATE
from speech.plots import waveform_figure
from speech.ui import clip_picker

st.title("Waveform")
st.markdown(
    "A microphone measures air pressure many times a second. At 16 kHz a one-second clip is 16,000 numbers "
    "between −1 and 1: the **waveform**. Zoom in (drag a box on the plot) and the word turns into oscillations."
)
clip = clip_picker("waveform")
if clip is not None:
    wave = clip.waveform
    cols = st.columns(4)
    cols[0].metric("Duration", f"{clip.seconds:.3f} s")
    cols[1].metric("Sample rate", f"{SAMPLE_RATE} Hz")
    cols[2].metric("Peak", f"{wave.abs().max():.3f}")
    cols[3].metric("RMS", f"{wave.pow(2).mean().sqrt():.4f}")
    st.plotly_chart(waveform_figure(wave, SAMPLE_RATE))
    st.markdown(
        "Silence sits near zero; the word is the burst in the middle. Vowels are long, regular oscillations; "
        "consonants like *s* in *six* look like noise."
    )
