"""Streamlit widgets and caches shared by the pages (clip picker, checkpoint guard, folder input). The only
module that imports Streamlit; no computation lives here, only the calls into ``speech`` and their caching."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import plotly
import streamlit as st
import streamlit.components.v1 as components
import torch

from speech import EXAMPLES_DIR, REPO_ROOT, saliency, spot
from speech.audio import SAMPLE_RATE, AudioError, LoadedAudio, from_int16, is_clipped, load_audio, to_wav_bytes
from speech.catalog import SILENCE, checkpoint_files, checkpoints_dir, example_files, recording_files
from speech.data import load_waveforms, read_clip
from speech.embedding import EmbeddingMap, embed, embedding_map
from speech.evaluate import Report, evaluate_waves
from speech.features import VARIANTS
from speech.hear import Reconstruction, reconstruct
from speech.model import CheckpointError
from speech.plots import clip_figure, model_input_figure, probability_figure, saliency_figure
from speech.predict import LOW_CONFIDENCE, Prediction, Predictor
from speech.recordings import Spoken, read_truth
from speech.results import Progress, Source, evaluation_source
from speech.saliency import SALIENT_SHARE
from speech.spot import closest_word

FRAME_PAGE = Path(__file__).with_name("plotly_frame") / "index.html"


@st.cache_resource(show_spinner=False)
def _plotly_frame():
    """The component behind :func:`plotly_in_frame`. Streamlit serves a component's files from one folder and
    follows no link out of it, so the page and the plotly package's own ``plotly.min.js`` are copied into one."""
    folder = Path(tempfile.gettempdir()) / f"speech-plotly-frame-{plotly.__version__}"
    folder.mkdir(exist_ok=True)
    for source in (FRAME_PAGE, Path(plotly.__file__).parent / "package_data" / "plotly.min.js"):
        partial = folder / f".{source.name}.{os.getpid()}"  # a rename is atomic: no server reads half a file
        shutil.copyfile(source, partial)
        os.replace(partial, folder / source.name)
    return components.declare_component("plotly_frame", path=str(folder))


def plotly_in_frame(figure, key: str) -> None:
    """Draw ``figure`` in a component iframe that stays mounted across reruns: a new figure is one ``Plotly.react``
    in a small document, instead of a redraw that makes the whole page lay out again."""
    _plotly_frame()(figure=figure.to_json(), key=key, default=None)


SOURCES = ("Bundled example", "Upload a file", "Record with the microphone")
UPLOAD_HELP = "WAV, FLAC, OGG or MP3 — any sample rate, mono or stereo, up to 10 minutes"


@st.cache_data(show_spinner=False, max_entries=16)
def decode(data: bytes, name: str) -> LoadedAudio:
    """Cached :func:`speech.audio.load_audio` of uploaded or recorded bytes (raises AudioError naming ``name``)."""
    return load_audio(data, name=name)


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def predictor(path: str, expect_variant: Optional[str], modified: float) -> Predictor:
    """Cached per file and modification time, so a retrained checkpoint is picked up."""
    return Predictor.from_checkpoint(path, expect_variant)


def available_checkpoints() -> dict[str, Path]:
    """name -> checkpoint file in the app's folder: $SPEECH_LAB_CHECKPOINTS when set, else the shipped ones."""
    return checkpoint_files(checkpoints_dir())


def require_checkpoints() -> dict[str, Path]:
    """:func:`available_checkpoints`, or an error and the end of the page when there are none."""
    checkpoints = available_checkpoints()
    if not checkpoints:
        st.error(f"No checkpoints found in `{checkpoints_dir()}`. Train one with `python -m speech.train` "
                 "(see README).")
        st.stop()
    return checkpoints


def load_predictor(name: str, path: Path) -> Optional[Predictor]:
    """The cached predictor, or None after showing the checkpoint problem as st.error. A file named after a
    book variant (``mel.pt``) must hold that variant."""
    try:
        return predictor(str(path), name if name in VARIANTS else None, path.stat().st_mtime)
    except CheckpointError as error:
        st.error(f"Checkpoint **{name}** cannot be used: {error}")
        return None


@st.cache_resource(show_spinner="Loading your model…", max_entries=4)
def uploaded_predictor(digest: str, name: str, _data: bytes) -> Predictor:
    """An uploaded checkpoint, cached by the digest of its bytes (raises CheckpointError)."""
    return Predictor.from_checkpoint(_data, name=name)


def checkpoint_upload(label: str, key: str) -> Optional[tuple[str, Predictor]]:
    """An uploader for a checkpoint; (file name, predictor), or None when there is none or, after an error shown,
    when the file cannot be used."""
    upload = st.file_uploader(label, key=key, help="A .pt checkpoint from this lab: trained with speech.train or "
                              "built on the 'Your own words' page. It is read with weights_only=True, so a file "
                              "cannot run code.")
    if upload is None:
        return None
    data = upload.getvalue()
    try:
        return upload.name, uploaded_predictor(hashlib.sha1(data).hexdigest(), upload.name, data)
    except CheckpointError as error:
        st.error(f"**{upload.name}** cannot be used: {error}")
        return None


def show_predictions(predictions: dict[str, Prediction], predictors: dict[str, Predictor],
                     gate: Optional[Prediction] = None) -> None:
    """Each model's answer (:func:`show_answers`), then its top 5 and the input it heard (:func:`show_details`)."""
    show_answers(predictions, predictors, gate)
    show_details(predictions, predictors)


ANSWERS_PER_ROW = 4


def show_answers(predictions: dict[str, Prediction], predictors: dict[str, Predictor],
                 gate: Optional[Prediction] = None) -> None:
    """Each model's word and confidence, :data:`ANSWERS_PER_ROW` to a row. ``gate``: the spotting model's
    prediction when it rejected the clip; the answers of models that know no word beyond the spotting model's are
    then greyed out as closest guesses (a model taught new words is not: to the spotting model, its new words are
    unknown speech)."""
    greyed = {name for name in predictions if gate is not None and set(predictors[name].classes) <= set(gate.classes)}
    if greyed:
        heard = "silence or noise" if gate.word == SILENCE else "speech that is not one of the 30 words"
        st.info(f"**No command word heard**: the spotting model hears {heard} ({gate.confidence:.0%}). "
                "The closest guesses are greyed out below.")
    per_row = min(len(predictions), ANSWERS_PER_ROW)  # narrower columns cut the labels ("Prediction (ens…")
    columns = [column for _ in range(0, len(predictions), per_row) for column in st.columns(per_row)]
    for column, (name, prediction) in zip(columns, predictions.items()):
        if name in greyed:
            word, probability = closest_word(prediction)
            column.metric(f"Prediction ({name})", "no command word", help="The spotting model rejected this clip.")
            column.markdown(f":gray[closest guess: {word} ({probability:.0%})]")
            continue
        column.metric(f"Prediction ({name})", prediction.word, delta=f"{prediction.confidence:.0%} confident",
                      delta_color="off", delta_arrow="off", help="The word with the highest probability.")
        if prediction.confidence < LOW_CONFIDENCE:
            column.warning(f"Not sure ({prediction.confidence:.0%}): is it one of the model's words?")


def show_details(predictions: dict[str, Prediction], predictors: dict[str, Predictor]) -> None:
    """Per model: the top 5 probabilities beside the features it heard."""
    for name, prediction in predictions.items():
        bars, image = st.columns([2, 3])
        bars.plotly_chart(probability_figure(prediction.top(5), f"{name}: top 5"), key=f"probabilities-{name}")
        image.plotly_chart(model_input_figure(prediction.feature_image(), predictors[name].features,
                                              f"What {name} hears"), key=f"input-{name}")


def play_reconstruction(reconstruction: Reconstruction, container=st, heading: str = "") -> None:
    """A model input turned back into sound: its title, a player, how far it is from the original, what was lost."""
    container.markdown(f"**{heading}{reconstruction.title}**")
    container.audio(to_wav_bytes(reconstruction.waveform), format="audio/wav")
    figure = (f"Largest sample error: {reconstruction.max_error:.1e}." if reconstruction.max_error is not None
              else f"Spectral convergence {reconstruction.convergence:.2f} (0 = the original's magnitudes).")
    container.caption(f"{reconstruction.lost} {figure}")


@st.cache_data(show_spinner="Covering the input patch by patch…", max_entries=32)
def _saliency_maps(model_key: str, window_digest: str, _predictor: Predictor,
                   _prediction: Prediction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    occluded = saliency.occlusion(_predictor, _prediction)
    return occluded, saliency.gradient_x_input(_predictor, _prediction), saliency.salient_audio(
        _predictor, _prediction, occluded)


def saliency_maps(name: str, predictor: Predictor,
                  prediction: Prediction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(occlusion map, gradient x input map, the sound of the salient cells) for the predicted word, cached per
    model and heard window, so a rerun of the page does not recompute them."""
    # the predictor objects are cached resources, one per checkpoint file and version: their id names the model
    digest = hashlib.sha1(prediction.window.numpy().tobytes()).hexdigest()
    return _saliency_maps(f"{name}:{id(predictor)}", digest, predictor, prediction)


def show_what_models_hear(predictions: dict[str, Prediction], predictors: dict[str, Predictor]) -> None:
    """For each model: its input turned back into sound, where it looks (occlusion and gradient x input over its
    input), and the sound of the part it looks at."""
    for name, prediction in predictions.items():
        predictor = predictors[name]
        st.markdown(f"#### {name}: what it hears and where it looks for '{prediction.word}'")
        heard, salient = st.columns(2)
        play_reconstruction(reconstruct(prediction.window, predictor.features), heard, "It hears: ")
        occluded, gradient, audio = saliency_maps(name, predictor, prediction)
        salient.markdown(f"**Only the part it looks at** (the {SALIENT_SHARE:.0%} most salient cells)")
        salient.audio(to_wav_bytes(audio), format="audio/wav")
        salient.caption("The STFT cells outside the red areas of the occlusion map are removed before inverting.")
        image = prediction.feature_image()
        left, right = st.columns(2)
        left.plotly_chart(saliency_figure(image, occluded, predictor.features, "Occlusion: covering here hurts",
                                          "log-prob drop"), key=f"occlusion-{name}")
        right.plotly_chart(saliency_figure(image, gradient, predictor.features, "Gradient × input: evidence for "
                                           "the word", "contribution"), key=f"gradient-{name}")


CLIPS_LISTED = 3  # clips shown behind a confusion cell (each with its saliency)


def show_clips_behind(cell: tuple[str, str], clips: list, name: str, predictors: dict[str, Predictor]) -> None:
    """The clips of one confusion cell (target, prediction) of model ``name``: each with its waveform and
    spectrogram, a player, where ``name`` looked, and what every model predicted (top 3), side by side."""
    target, predicted = cell
    st.markdown(f"**{len(clips)} clip(s) of '{target}' that {name} took for '{predicted}'**"
                + (f" (the first {CLIPS_LISTED})" if len(clips) > CLIPS_LISTED else ""))
    for clip in clips[:CLIPS_LISTED]:
        wave = read_clip(clip.path)
        picture, looked, verdicts = st.columns([2, 2, 2])
        picture.plotly_chart(clip_figure(wave, f"{clip.path.parent.name}/{clip.path.name}"),
                             key=f"clip-{name}-{clip.path}")
        picture.audio(to_wav_bytes(wave), format="audio/wav")
        predictions = {model: other.predict(wave) for model, other in predictors.items()}
        prediction = predictions[name]
        occluded, _, _ = saliency_maps(name, predictors[name], prediction)
        looked.plotly_chart(saliency_figure(prediction.feature_image(), occluded, predictors[name].features,
                                            f"Where {name} looked for '{prediction.word}'", "log-prob drop"),
                            key=f"saliency-{name}-{clip.path}")
        verdicts.markdown("**What each model heard**")
        verdicts.table({model: [f"{word} {probability:.0%}" for word, probability in p.top(3)]
                        for model, p in predictions.items()})


def folder_input(label: str, default: str, key: str) -> Optional[Path]:
    """A text box for a folder (relative paths are taken from the repository root); None, with an error
    shown, when it does not exist."""
    entered = Path(st.text_input(label, default, key=key)).expanduser()
    folder = entered if entered.is_absolute() else (REPO_ROOT / entered).resolve()
    if not folder.is_dir():
        st.error(f"No such folder: {folder}")
        return None
    return folder


def upload_input(label: str, key: str):
    """A file uploader that accepts any file, so a wrong one gets our message rather than a bare red chip."""
    return st.file_uploader(label, help=UPLOAD_HELP, key=key)


def word_input(key: str, record_label: str = "Record a word (about one second)"):
    """Microphone and upload tabs for one short clip; the uploaded file when there is one (said when both are
    there), else the recording, or None. Keys ``{key}-record`` and ``{key}-upload``."""
    microphone, upload = st.tabs(["Microphone", "Upload a file"])
    with microphone:
        recording = st.audio_input(record_label, sample_rate=SAMPLE_RATE, key=f"{key}-record")
    with upload:
        uploaded = upload_input("Audio file", key=f"{key}-upload")
    if uploaded is not None and recording is not None:
        st.caption("Using the uploaded file; remove it to use the recording.")
    return uploaded if uploaded is not None else recording


def clip_picker(key: str, default_word: str = "yes") -> Optional[LoadedAudio]:
    """Let the user pick a bundled example, upload a file or record; play it; return it (or None).

    Bad input is reported with st.error and returns None.
    """
    source = st.radio("Clip", SOURCES, horizontal=True, key=f"{key}-source")
    if source == SOURCES[0]:
        examples = example_files()
        if not examples:
            st.warning(f"No bundled examples found in {EXAMPLES_DIR}. Upload or record a clip instead.")
            return None
        words = sorted(examples)
        col_word, col_voice = st.columns(2)
        word = col_word.selectbox("Word", words, index=words.index(default_word) if default_word in words else 0,
                                  key=f"{key}-word")
        # Options are voice names, the same for every word, so a word change keeps the voice and changes the clip.
        voice = col_voice.selectbox("Voice", sorted(examples[word]), key=f"{key}-voice")
        loaded = show_errors(lambda: load_audio(examples[word][voice]))
    else:
        if source == SOURCES[1]:
            upload = upload_input("Audio file", key=f"{key}-upload")
        else:
            upload = st.audio_input("Record a word (about one second)", sample_rate=SAMPLE_RATE,
                                    key=f"{key}-record")
        if upload is None:
            st.info("Waiting for audio…")
            return None
        loaded = show_errors(lambda: decode(upload.getvalue(), upload.name))
    if loaded is not None:
        st.audio(to_wav_bytes(loaded.waveform), format="audio/wav")
        st.caption(f"{loaded.seconds:.2f} s · file: {loaded.source_rate} Hz, {loaded.source_channels} channel(s) "
                   f"→ used as {SAMPLE_RATE} Hz mono")
        warn_about(loaded)
    return loaded


RECORDING_SOURCES = ("Example recording", "Upload a file", "Record with the microphone")


def recording_input(key: str) -> tuple[Optional[LoadedAudio], str, Optional[list[Spoken]]]:
    """A long recording: a bundled example, an upload (up to 10 min) or the microphone. Plays it and returns
    (the audio or None after an error, a key naming its content for caches, the words spoken when known)."""
    source = st.radio("Recording", RECORDING_SOURCES, horizontal=True, key=f"{key}-source")
    if source == RECORDING_SOURCES[0]:
        files = {p.stem.replace("_", " "): p for p in recording_files()}
        if not files:
            st.warning(f"No example recordings in {EXAMPLES_DIR / '_recordings'}. Upload or record one instead.")
            return None, "", None
        path = files[st.selectbox("Example", list(files), key=f"{key}-example")]
        loaded, content, truth = show_errors(lambda: load_audio(path)), f"example:{path}", read_truth(path)
    else:
        if source == RECORDING_SOURCES[1]:
            upload = upload_input("Audio file", key=f"{key}-upload")
        else:
            upload = st.audio_input("Record a few words with pauses between them (up to about 30 s)",
                                    sample_rate=SAMPLE_RATE, key=f"{key}-record")
        if upload is None:
            st.info("Waiting for audio…")
            return None, "", None
        data = upload.getvalue()
        loaded, truth = show_errors(lambda: decode(data, upload.name)), None
        content = f"{upload.name}:{hashlib.sha1(data).hexdigest()}"
    if loaded is not None:
        st.audio(to_wav_bytes(loaded.waveform), format="audio/wav")
        st.caption(f"{loaded.seconds:.1f} s · file: {loaded.source_rate} Hz, {loaded.source_channels} channel(s) "
                   f"→ used as {SAMPLE_RATE} Hz mono")
        warn_about(loaded)
    return loaded, content, truth


def warn_about(loaded: LoadedAudio, robust_model: Optional[str] = None) -> None:
    """Say what is wrong with a clip that can still be used: cut off, or clipped (and name ``robust_model``, a
    model trained on such recordings, when there is one)."""
    if loaded.truncated:
        st.warning(f"The file ends before its header says it should: it was truncated. Using the "
                   f"{loaded.seconds:.2f} s that are there.")
    if is_clipped(loaded.waveform):
        advice = (f" The **{robust_model}** model was trained on clipped, noisy and telephone-band recordings: "
                  "it is the one to trust here." if robust_model else "")
        st.warning("The recording is clipped: the loudest parts hit the limit and were cut flat. Move back from "
                   "the microphone or speak more softly." + advice)


def play_clip(path: Path) -> None:
    """An audio player for a dataset file (errors shown, not raised)."""
    loaded = show_errors(lambda: load_audio(path, min_seconds=0.0, reject_silence=False))
    if loaded is not None:
        st.audio(to_wav_bytes(loaded.waveform), format="audio/wav")
        st.caption(path.name)


def show_errors(load) -> Optional[LoadedAudio]:
    """``load()``, or None after showing its AudioError."""
    try:
        return load()
    except AudioError as error:
        st.error(str(error))
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def window_posteriors(checkpoint: str, modified: float, audio_key: str, _predictor: Predictor,
                      _waveform: torch.Tensor) -> torch.Tensor:
    """:func:`speech.spot.window_posteriors` ``[windows, classes]``, cached per checkpoint and recording, so moving a
    detector control only re-runs the cheap decoding; a progress bar with the time left while the model runs."""
    bar = st.progress(0.0, text="Listening…")
    progress = Progress(bar.progress, "listening", "1 s windows")
    posteriors = spot.window_posteriors(_predictor, _waveform, progress=progress)
    bar.empty()
    return posteriors


@st.cache_data(show_spinner="Listing clips…", max_entries=8)
def source(kind: str, location: str, trained_on: tuple[str, ...]) -> Source:
    """:func:`speech.results.evaluation_source`, cached: listing thousands of files is not redone on every rerun."""
    return evaluation_source(kind, location, trained_on)


@st.cache_data(show_spinner=False, max_entries=4)
def decoded_waves(source_key: str, _clips) -> torch.Tensor:
    """int16 ``[n, 16000]`` of a source's clips, cached by ``source_key`` (at most four sources in memory), with a
    progress bar and the time left while it decodes."""
    bar = st.progress(0.0, text=f"Decoding {len(_clips)} clips…")
    waves = load_waveforms(list(_clips), progress=Progress(bar.progress, "decoding"))
    bar.empty()
    return waves


@st.cache_data(show_spinner="Embedding the clips…", max_entries=8)
def embedding_points(checkpoint: str, modified: float, source_key: str, _predictor: Predictor, _waves,
                     _clips) -> EmbeddingMap:
    """The embedding map of a source's clips (int16 ``_waves [n, 16000]``) in one model, every word coloured, each
    point named by its file; cached per checkpoint version and source."""
    embeddings = embed(_predictor, from_int16(_waves))
    return embedding_map(embeddings, [c.label for c in _clips], [str(c.path) for c in _clips])


@st.cache_data(show_spinner=False, max_entries=16)
def evaluation(checkpoint: str, modified: float, source_key: str, _predictor: Predictor, _waves,
               _targets) -> tuple[Report, torch.Tensor]:
    """:func:`speech.evaluate.evaluate_waves`, cached per checkpoint file, its modification time and source, with
    a progress bar and the time left."""
    bar = st.progress(0.0, text=f"Evaluating {Path(checkpoint).stem}…")
    result = evaluate_waves(_predictor, _waves, _targets, progress=Progress(bar.progress, Path(checkpoint).stem))
    bar.empty()
    return result
