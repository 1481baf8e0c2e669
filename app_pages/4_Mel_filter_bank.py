import streamlit as st

from speech.audio import SAMPLE_RATE, to_wav_bytes
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
from speech.hear import MAX_SECONDS, audible_part, band_mask, masked, mel_filter_mask, reconstruct
from speech.plots import filter_bank_figure, fourier_vs_mel_figure, heatmap_figure, spectrogram_figure
from speech.ui import clip_picker, play_reconstruction

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

    st.subheader("Hear what the bands keep")
    st.markdown(f"Turn the {n_mels} mel bands and the {n_mfcc} MFCCs back into sound (InverseMelScale, then "
                "Griffin-Lim for the lost phase). Move the sliders in the sidebar: 16 bands sound muffled and "
                "buzzy, 128 nearly like the clip.")
    audible = audible_part(wave)
    mel_column, mfcc_column = st.columns(2)
    play_reconstruction(reconstruct(audible, config), mel_column)
    play_reconstruction(reconstruct(audible, config, n_mfcc=n_mfcc), mfcc_column)
    if wave.numel() > audible.numel():
        st.caption(f"Only the first {MAX_SECONDS:.0f} s are turned back into sound.")
    st.markdown("**Listen to one band**: only the frequencies of one mel filter (weighted by its triangle), or a "
                "range you choose; everything else is removed from the STFT before inverting it.")
    filter_column, range_column = st.columns(2)
    band = filter_column.slider("Mel filter", 0, n_mels - 1, min(n_mels - 1, n_mels // 4), key="listen-band")
    mask = mel_filter_mask(config, band)
    filter_column.audio(to_wav_bytes(masked(audible, config, mask)), format="audio/wav")
    passed = frequencies[mask > 0]
    filter_column.caption(f"Filter {band}: {passed.min():.0f}–{passed.max():.0f} Hz" if passed.numel() else
                          f"Filter {band} is empty: it falls between two Fourier bins.")
    range_low, range_high = range_column.slider("Frequency range (Hz)", 0, SAMPLE_RATE // 2, (300, 3400), step=50,
                                                key="listen-range")
    range_column.audio(to_wav_bytes(masked(audible, config, band_mask(config, range_low, range_high))),
                       format="audio/wav")
    range_column.caption(f"{range_low}–{range_high} Hz (300–3400 Hz is the old telephone band: still intelligible)")
