import time

import streamlit as st

from speech.audio import SAMPLE_RATE, AudioError, to_wav_bytes
from speech.catalog import single_models, teaching_base
from speech.export import onnx_bytes
from speech.plots import clip_figure, embedding_figure
from speech.teach import MAX_TAKES, MAX_WORDS, MIN_TAKES, TakeBook, TeachError, as_bytes, teach
from speech.ui import (
    checkpoint_upload,
    decode,
    load_predictor,
    require_checkpoints,
    show_predictions,
    word_input,
)

st.title("Your own words")
st.markdown(f"Teach a model up to {MAX_WORDS} words of your own from {MIN_TAKES}–{MAX_TAKES} takes each, in "
            "seconds. Why so few are enough: the model already turns every second of audio into an *embedding*, "
            "a list of numbers in which takes of one word lie close together. A new word needs only its own place "
            "in that space, and its takes show where that is.")

checkpoints = single_models(require_checkpoints())  # an ensemble has no one last layer to extend
if not checkpoints:
    st.info("Every checkpoint here is an ensemble; new words need a single model (e.g. tcresnet) to build on.")
    st.stop()
names = list(checkpoints)
default = teaching_base(checkpoints)
book = st.session_state.setdefault("teach-book", TakeBook())

base_name = st.selectbox("Base model", names, index=names.index(default) if default else 0, key="teach-base",
                         help="Its embedding is what your words are placed in (an ensemble has no one embedding "
                              "to extend). The default (words, when it is here) is a tcresnet that also learned "
                              "1,000 other English words in training: on five real words no model heard it learns "
                              "new words best, while tcresnet keeps the 30 words best (README, Few-shot).")
base = load_predictor(base_name, checkpoints[base_name])
if base is None:
    st.stop()

st.subheader("1. Your words")
name_column, add_column = st.columns([3, 1], vertical_alignment="bottom")
new_word = name_column.text_input("New word", key="teach-new-word", placeholder="e.g. lamp")
if add_column.button("Add word", key="teach-add-word", width="stretch"):
    try:
        book.add_word(new_word, base.classes)
    except TeachError as error:
        st.error(str(error))
if not book.takes:
    st.info("Add a word, then record or upload its takes.")
    st.stop()

word_column, remove_column = st.columns([3, 1], vertical_alignment="bottom")
word = word_column.radio("Recording takes for", list(book.takes), horizontal=True, key="teach-word",
                         format_func=lambda w: f"{w} ({len(book.takes[w])})")
if remove_column.button(f"Remove '{word}'", key="teach-remove-word", width="stretch"):
    book.remove_word(word)
    st.rerun()

microphone, upload = st.tabs(["Microphone", "Upload files"])
with microphone:
    recording = st.audio_input(f"Say '{word}' once per recording; each recording becomes a take",
                               sample_rate=SAMPLE_RATE, key=f"teach-record-{word}")
with upload:
    uploads = st.file_uploader(f"Takes of '{word}'", accept_multiple_files=True, key=f"teach-upload-{word}",
                               help="WAV, FLAC, OGG or MP3, any sample rate; the loudest second of each is used.")
incoming = ([(recording.getvalue(), f"recording {len(book.takes[word]) + 1}")] if recording is not None else []) + \
    [(file.getvalue(), file.name) for file in uploads or []]
added = False
for data, take_name in incoming:
    try:
        added |= book.add_take(word, data, take_name)
    except (AudioError, TeachError) as error:
        st.error(str(error))
if added:  # show the new count in the word list above too
    st.rerun()

takes = book.takes[word]
st.caption(f"'{word}': {len(takes)} of {MIN_TAKES}–{MAX_TAKES} takes. Each shows the second the model will hear.")
for row in range(0, len(takes), 3):
    for column, (index, take) in zip(st.columns(3), enumerate(takes[row:row + 3], start=row)):
        column.plotly_chart(clip_figure(take.wave, f"take {index + 1}: {take.name}"), key=f"take-{take.digest}")
        column.audio(to_wav_bytes(take.wave), format="audio/wav")
        if column.button("Remove", key=f"teach-remove-{take.digest}"):
            book.remove_take(word, index)
            st.rerun()

st.subheader("2. Build")
problems = book.problems()
if st.button("Build my model", type="primary", disabled=bool(problems), key="teach-build"):
    with st.spinner("Embedding the takes and fitting your words…"):
        tick = time.perf_counter()
        built = teach(base, book.waves())
        st.session_state["teach-built"] = built, book.signature(), time.perf_counter() - tick
for problem in problems:
    st.caption(problem)

taught, built_from, build_seconds = st.session_state.get("teach-built", (None, None, None))
with st.expander("Or load a model you built before (.pt)"):
    loaded = checkpoint_upload("Checkpoint", key="teach-checkpoint")
if loaded is not None:
    model_name, custom = loaded
elif taught is not None:
    model_name, custom = "your model", taught.predictor
else:
    st.stop()

if loaded is None:
    if built_from != book.signature():
        st.warning("Your words or takes changed since the build: build again to use them.")
    accuracy, classes, seconds = st.columns(3)
    accuracy.metric("Takes recognised from the others", f"{taught.leave_one_out:.0%}",
                    help="Leave-one-out: each take is classified by a model built from all the other takes.")
    classes.metric("Words the model knows", len(custom.classes), help=", ".join(custom.classes))
    seconds.metric("Built in", f"{build_seconds:.1f} s")
    for warning in taught.warnings:
        st.warning(warning)
    st.plotly_chart(embedding_figure(taught.map, f"Where your words land in the {base_name} model's embedding"),
                    key="teach-map")
    st.caption("Each point is one second of audio: grey ones are the bundled examples of the built-in words, "
               "stars are your takes. Points that lie close sound alike to the model; a word whose stars mix "
               "with another word's points will be confused with it. The map is flat, the embedding is not: "
               "two words may overlap here and still be told apart.")
else:
    st.caption(f"{model_name}: {len(custom.classes)} words ({', '.join(custom.classes[-5:])}, …)")

st.subheader("3. Try it")
heard = word_input("teach-test", "Say a word")
if heard is not None:
    try:
        clip = decode(heard.getvalue(), heard.name)
        show_predictions({model_name: custom.predict(clip.waveform)}, {model_name: custom})
    except AudioError as error:
        st.error(str(error))

st.subheader("4. Take it with you")
checkpoint_column, onnx_column = st.columns(2)
checkpoint_column.download_button("Download the checkpoint (.pt)", lambda: as_bytes(custom), file_name="my_words.pt",
                                  mime="application/octet-stream", key="teach-download-pt",
                                  help="Use it here, on the Live page, or with python -m speech.predict.")
onnx_column.download_button("Download for onnxruntime (.onnx)", lambda: onnx_bytes(custom), file_name="my_words.onnx",
                            mime="application/octet-stream", key="teach-download-onnx",
                            help="One file with the feature extraction inside: float32 waveform [batch, 16000] at "
                                 "16 kHz in, class probabilities out; the class names are in its metadata.")
