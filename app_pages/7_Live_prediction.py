import streamlit as st

from speech.audio import CLIP_SAMPLES, SAMPLE_RATE, AudioError, model_window
from speech.catalog import CLASSES, ROBUST, best_checkpoint
from speech.plots import waveform_figure
from speech.spot import SPOTTING_CHECKPOINT, rejected
from speech.ui import (
    checkpoint_upload,
    decode,
    load_predictor,
    require_checkpoints,
    show_answers,
    show_details,
    show_what_models_hear,
    warn_about,
    word_input,
)

st.title("Live prediction")
st.markdown(f"Say one of the 30 words — *{', '.join(CLASSES)}* — or upload a recording, and watch the models decide.")

checkpoints = require_checkpoints()
names = list(checkpoints)
SPOTTING = SPOTTING_CHECKPOINT.removesuffix(".pt")
# The controls always take the same two elements, so the widgets below keep their place in the page when the mode
# changes (a moved microphone widget loses its recording and shows an error).
left, right = st.columns([1, 2])
mode = left.radio("Models", ["One model", "All side by side"], horizontal=True, key="live-mode")
if mode == "One model":
    best = best_checkpoint(checkpoints)  # start on the model with the best validation figure
    chosen = [right.selectbox("Model", names, index=names.index(best) if best else 0, key="live-model",
                              help="The default is the best on validation.")]
else:
    chosen = names
    right.caption(f"All {len(names)} models: {', '.join(names)}.")

with st.expander("Use your own model: upload a checkpoint (.pt)"):
    own = checkpoint_upload("Checkpoint", key="live-checkpoint")

audio_file = word_input("live")
if audio_file is None:
    st.info("Record a word or upload a file to get a prediction.")
    st.stop()

try:
    clip = decode(audio_file.getvalue(), audio_file.name)
except AudioError as error:
    st.error(str(error))
    st.stop()
warn_about(clip, ROBUST if ROBUST in checkpoints else None)

predictors = {name: p for name in chosen if (p := load_predictor(name, checkpoints[name])) is not None}
if own is not None:
    predictors[own[0]] = own[1]
if not predictors:
    st.stop()
window, start = model_window(clip.waveform)  # once for every model: they all hear the same second
predictions = {name: p.predict(window) for name, p in predictors.items()}
# The spotting model decides whether a command word was said at all (its _silence_ and _unknown_ classes).
gate = load_predictor(SPOTTING, checkpoints[SPOTTING]) if SPOTTING in checkpoints else None
gate_prediction = predictions.get(SPOTTING) or (gate.predict(window) if gate is not None else None)
no_word = gate_prediction is not None and rejected(gate_prediction)
show_answers(predictions, predictors, gate_prediction if no_word else None)  # what a user looks for first
start_s = start / SAMPLE_RATE
highlight = (start_s, start_s + CLIP_SAMPLES / SAMPLE_RATE) if clip.seconds > 1 else None
st.plotly_chart(waveform_figure(clip.waveform, SAMPLE_RATE, f"Your input: {clip.seconds:.2f} s", highlight))
if clip.seconds > 1:
    st.caption(f"The models were trained on 1 s clips, so they hear the loudest second: {start_s:.2f}–"
               f"{start_s + 1:.2f} s. Speech carries far more energy than silence, so that is where the word is.")
elif clip.seconds < 1:
    st.caption(f"Shorter than 1 s: padded with {1 - clip.seconds:.2f} s of silence, like the training clips.")

show_details(predictions, predictors)
st.subheader("Hear what the models hear, see where they look")
st.caption("Each model's input turned back into sound (the book's point: only the complex input keeps everything), "
           "and saliency over that input for the predicted word: red is where covering the input lowers the word's "
           "probability most (occlusion, a 10 × 10 grid of patches), or where the input pushes towards the word "
           "(gradient × input).")
show_what_models_hear(predictions, predictors)
