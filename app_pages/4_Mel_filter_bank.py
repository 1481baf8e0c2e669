import streamlit as st

from speech.audio import SAMPLE_RATE
from speech.explore import (
    MIN_BAND_HZ,
    bin_frequencies,
    filter_bank,
    filter_bank_check,
    frame_times,
    mel_centres,
    mel_spectrogram,
    mfcc,
    spectrogram,
)
from speech.features import FeatureConfig
from speech.plots import filter_bank_figure, fourier_vs_mel_figure, heatmap_figure, spectrogram_figure
from speech.ui import clip_picker

st.title("Mel filter bank")
st.markdown(
    "We hear pitch differences at low frequencies far better than at high ones. The **mel scale** models this, "
    "and a **mel filter bank** is a set of triangular filters, narrow at low and wide at high frequencies, each "
    "summing a range of Fourier bins into one band. The model's mel variant uses 128 bands; the book shows 16 to "
    "make the filters visible."
)
clip = clip_picker("mel")
with st.sidebar:
    st.header("Filter bank")
    n_mels = st.slider("Mel bands (n_mels)", 4, 128, 16, key="n_mels")
    f_min, f_max = st.slider("Frequency range (Hz)", 0, SAMPLE_RATE // 2, (0, SAMPLE_RATE // 2), step=50,
                             key="f_range")
    n_mfcc = st.slider("MFCC coefficients", 2, min(40, n_mels), min(13, n_mels), key="n_mfcc")

if f_max - f_min < MIN_BAND_HZ:
    st.error(f"The range {f_min}–{f_max} Hz is too narrow for a filter bank: the filters would have nothing to "
             f"sum. Keep at least {MIN_BAND_HZ} Hz between f_min and f_max.")
    st.stop()
config = FeatureConfig(variant="mel", n_mels=n_mels, f_min=float(f_min), f_max=float(f_max))
bank = filter_bank(config)
frequencies = bin_frequencies(config)
st.plotly_chart(filter_bank_figure(bank, frequencies, f"{n_mels} mel filters over {bank.shape[0]} Fourier bins "
                                                      f"({f_min}–{f_max} Hz)"))
empty = int((bank.sum(0) == 0).sum())
if empty:
    st.warning(f"{empty} of the {n_mels} filters fall between two Fourier bins and sum nothing: too many bands for "
               "this range and n_fft. Their rows of the mel spectrogram stay at zero.")
if clip is not None:
    wave = clip.waveform
    power = spectrogram(wave, config)
    mel = mel_spectrogram(wave, config)
    frame = st.slider("Frame for the comparison", 0, power.shape[1] - 1, int(power.sum(0).argmax()), key="frame")
    st.plotly_chart(fourier_vs_mel_figure(power[:, frame], frequencies, mel[:, frame], mel_centres(config),
                                          f"Frame {frame} ({frame * config.hop_length / SAMPLE_RATE:.2f} s): "
                                          f"{power.shape[0]} Fourier coefficients vs {n_mels} mel coefficients"))
    difference = filter_bank_check(wave, config)
    st.metric("max |filter bankᵀ · power spectrogram − torchaudio MelSpectrogram|", f"{difference:.2e}")
    st.caption("The mel spectrogram is nothing but a matrix product: the filter-bank matrix applied to every "
               "frame of the power spectrogram.")
    times = frame_times(mel.shape[1], config)
    left, right = st.columns(2)
    left.plotly_chart(spectrogram_figure(mel, times, mel_centres(config), "dB", False,
                                         f"Mel spectrogram ({n_mels} bands × {mel.shape[1]} frames)"))
    coefficients = mfcc(wave, config, n_mfcc)
    right.plotly_chart(heatmap_figure(coefficients.numpy(), times.numpy(), list(range(n_mfcc)),
                                      f"MFCC ({n_mfcc} coefficients)", "time (s)", "coefficient"))
    st.markdown("MFCCs take a discrete cosine transform of the log mel spectrum: the first few coefficients "
                "describe its overall shape (the vocal tract), compactly.")
