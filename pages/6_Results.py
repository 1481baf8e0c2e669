import csv
from pathlib import Path

import streamlit as st
import torch

from speech import EXAMPLES_DIR, REPO_ROOT
from speech.data import folder_clips, is_downloaded, labels_tensor, load_waveforms, speech_commands_clips
from speech.evaluate import evaluate_waves
from speech.plots import alluvial_figure, confusion_figure, lr_finder_figure, training_curves_figure
from speech.ui import load_predictor, play_clip, shipped_checkpoints

st.title("Results")
st.markdown(
    "The same CNN was trained on three inputs: the **power spectrogram** (baseline), a **128-band mel** "
    "spectrogram, and the **complex** STFT (real and imaginary parts as two channels). Compare how they learned "
    "and where they go wrong — each variant makes *different* mistakes. Beside the book's CNN there is an extra "
    "architecture, **tcresnet**: a small temporal-convolution ResNet on 64 mel bands that treats the frequency rows "
    "as channels and convolves along time only — add it in the variant picker."
)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@st.cache_data(show_spinner=False)
def source_clips(kind: str, location: str):
    if kind == "test":
        return speech_commands_clips(location, "testing")
    return folder_clips(location)


@st.cache_resource
def computed() -> dict:
    """Decoded sources and evaluations, kept across reruns so switching views is instant."""
    return {}


def decoded(kind: str, location: str) -> torch.Tensor:
    key = ("waves", kind, location)
    if key not in computed():
        clips = source_clips(kind, location)
        bar = st.progress(0.0, text=f"Decoding {len(clips)} clips…")
        computed()[key] = load_waveforms(clips, progress=lambda d, t: bar.progress(d / t, f"Decoding clip {d} of {t}"))
        bar.empty()
    return computed()[key]


def evaluation(name: str, path: Path, kind: str, location: str):
    key = ("evaluation", str(path), path.stat().st_mtime, kind, location)
    if key not in computed():
        predictor = load_predictor(name, path)
        waves = decoded(kind, location)
        targets = labels_tensor(source_clips(kind, location), predictor.classes)
        bar = st.progress(0.0, text=f"Evaluating {name}…")
        computed()[key] = evaluate_waves(predictor.model, predictor.featurizer, waves, targets, predictor.classes,
                                         progress=lambda d, t: bar.progress(d / t, f"{name}: {d} of {t} clips"))
        bar.empty()
    return computed()[key]


checkpoints = shipped_checkpoints()
if not checkpoints:
    st.error("No checkpoints found in checkpoints/. Train one with `python -m speech.train` (see README).")
    st.stop()
chosen = st.multiselect("Variants", list(checkpoints), default=list(checkpoints)[:3])
if not chosen:
    st.info("Choose at least one variant.")
    st.stop()

st.header("How they learned")
columns = st.columns(len(chosen))
for column, name in zip(columns, chosen):
    path = checkpoints[name]
    with column:
        st.subheader(name)
        predictor = load_predictor(name, path)
        card = predictor.card if predictor else {}
        if card:
            validation, training = card["validation"], card["training"]
            st.markdown(f"Architecture **{card.get('arch', 'book')}** on **{card['variant']}** features. "
                        f"Validation (speakers never trained on): accuracy **{validation['accuracy']:.3f}**, "
                        f"macro accuracy **{validation['macro_accuracy']:.3f}** on {validation['n']} clips. "
                        f"Best epoch {training['best_epoch']} of {training['epochs_run']}, "
                        f"{card['data']['training_clips']} training clips.")
            start = card.get("initialized_from")
            if start:
                before = start.get("validation_macro_accuracy")
                st.caption(f"Continued from `{start['checkpoint']}` ({start.get('training', {}).get('epochs_run', '?')} "
                           "epochs from scratch" + (f", validation macro accuracy {before:.3f}" if before else "")
                           + "); the curves show the continuation.")
            with st.expander("Model card"):
                st.json(card)
        log = path.with_suffix(".log.csv")
        if log.is_file():
            st.plotly_chart(training_curves_figure(read_csv(log), f"{name}: training curves"), key=f"curves-{name}")
        lr_log = path.with_suffix(".lr_find.csv")
        if lr_log.is_file():
            max_lr = card.get("training", {}).get("max_lr")
            st.plotly_chart(lr_finder_figure(read_csv(lr_log), max_lr, f"{name}: learning-rate finder"),
                            key=f"lr-{name}")

st.header("Where they go wrong")
source = st.radio("Evaluate on", ["Bundled examples", "Speech Commands test subset", "A folder"], horizontal=True)
kind, location = "folder", str(EXAMPLES_DIR)
if source == "Speech Commands test subset":
    root = st.text_input("Download folder", str(REPO_ROOT / "data"))
    if not is_downloaded(root):
        st.warning("Speech Commands is not downloaded there; use the Dataset page to download it.")
        st.stop()
    kind, location = "test", root
elif source == "A folder":
    entered = Path(st.text_input("Folder with <word>/<clip> files", "../shared/speech_commands_real")).expanduser()
    location = str(entered if entered.is_absolute() else (REPO_ROOT / entered).resolve())
    if not Path(location).is_dir():
        st.error(f"No such folder: {location}")
        st.stop()
clips = source_clips(kind, location)
if not clips:
    st.warning("No clips of the 30 words there.")
    st.stop()

results = {}
for name in chosen:
    if load_predictor(name, checkpoints[name]) is not None:
        results[name] = evaluation(name, checkpoints[name], kind, location)
if not results:
    st.stop()
st.table({"variant": list(results), "accuracy": [f"{r.accuracy:.3f}" for r, _ in results.values()],
          "macro accuracy": [f"{r.macro_accuracy:.3f}" for r, _ in results.values()],
          "clips": [r.n for r, _ in results.values()]})

controls = st.columns(3)
normalise = controls[0].toggle("Row-normalised confusion", value=True)
threshold = controls[1].number_input("Hide flows rarer than (share of clips)", 0.0, 0.5, 0.001, step=0.001,
                                     format="%.3f")
columns = st.columns(len(results))
for column, (name, (report, predictions)) in zip(columns, results.items()):
    with column:
        st.subheader(name)
        st.plotly_chart(confusion_figure(report.confusion, report.classes, normalise, f"{name}: confusion matrix"),
                        key=f"confusion-{name}")
        st.plotly_chart(alluvial_figure(report.confusion, report.classes, threshold, f"{name}: predictions → targets"),
                        key=f"alluvial-{name}")
        st.markdown("**Most confused pairs**")
        for rank, pair in enumerate(report.most_confused[:8]):
            row = st.columns([3, 1])
            row[0].write(f"{pair['target']} → predicted **{pair['prediction']}**: {pair['count']}")
            if row[1].button("▶ listen", key=f"listen-{name}-{rank}"):
                target, prediction = report.classes.index(pair["target"]), report.classes.index(pair["prediction"])
                targets = labels_tensor(clips, report.classes)
                index = int(((targets == target) & (predictions == prediction)).nonzero()[0])
                play_clip(clips[index].path)
