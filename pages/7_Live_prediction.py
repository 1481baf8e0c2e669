import streamlit as st

from speech import best_checkpoint
from speech.audio import CLIP_SAMPLES, SAMPLE_RATE, AudioError, LoadedAudio
from speech.data import CLASSES
from speech.plots import model_input_figure, probability_figure, waveform_figure
from speech.predict import LOW_CONFIDENCE
from speech.ui import UPLOAD_TYPES, decode, load_predictor, shipped_checkpoints

st.title("Live prediction")
st.markdown(f"Say one of the 30 words — *{', '.join(CLASSES)}* — or upload a recording, and watch the models decide.")

checkpoints = shipped_checkpoints()
if not checkpoints:
    st.error("No checkpoints found in checkpoints/. Train one with `python -m speech.train` (see README).")
    st.stop()
names = list(checkpoints)
mode = st.radio("Models", ["One variant", "All side by side"], horizontal=True)
best = best_checkpoint(checkpoints)  # start on the model with the best validation figure
chosen = names if mode == "All side by side" else [st.selectbox("Variant", names, index=names.index(best) if best else 0,
                                                               help="The default is the best on validation.")]

microphone, upload = st.tabs(["Microphone", "Upload a file"])
with microphone:
    recording = st.audio_input("Record a word (about one second)", sample_rate=SAMPLE_RATE, key="live-record")
with upload:
    uploaded = st.file_uploader("WAV, FLAC, OGG or MP3 — any sample rate, mono or stereo", type=UPLOAD_TYPES,
                                key="live-upload")
audio_file = uploaded if uploaded is not None else recording
if audio_file is None:
    st.info("Record a word or upload a file to get a prediction.")
    st.stop()

try:
    clip = LoadedAudio(*decode(audio_file.getvalue(), audio_file.name))
except AudioError as error:
    st.error(f"{error}")
    st.stop()

st.audio(audio_file.getvalue())
if uploaded is not None and recording is not None:
    st.caption("Showing the uploaded file; remove it to use the recording.")

predictors = {name: p for name in chosen if (p := load_predictor(name, checkpoints[name])) is not None}
if not predictors:
    st.stop()
predictions = {name: p.predict(clip.waveform) for name, p in predictors.items()}
first = next(iter(predictions.values()))
start_s = first.window_start / SAMPLE_RATE
highlight = (start_s, start_s + CLIP_SAMPLES / SAMPLE_RATE) if clip.seconds > 1 else None
st.plotly_chart(waveform_figure(clip.waveform, SAMPLE_RATE, f"Your input: {clip.seconds:.2f} s", highlight))
if clip.seconds > 1:
    st.caption(f"The models were trained on 1 s clips, so they hear the loudest second: {start_s:.2f}–"
               f"{start_s + 1:.2f} s. Speech carries far more energy than silence, so that is where the word is.")
elif clip.seconds < 1:
    st.caption(f"Shorter than 1 s: padded with {1 - clip.seconds:.2f} s of silence, like the training clips.")

columns = st.columns(len(predictions))
for column, (name, prediction) in zip(columns, predictions.items()):
    with column:
        st.metric(f"Prediction ({name})", prediction.word, delta=f"{prediction.confidence:.0%} confident",
                  delta_color="off", help="The word with the highest probability.")
        if prediction.confidence < LOW_CONFIDENCE:
            st.warning(f"Not sure ({prediction.confidence:.0%}) — is it one of the 30 words?")
        st.plotly_chart(probability_figure(prediction.top(5), f"{name}: top 5"), key=f"probabilities-{name}")
        st.plotly_chart(model_input_figure(prediction.feature_image(), predictors[name].features,
                                           f"What the {name} model sees"), key=f"input-{name}")
