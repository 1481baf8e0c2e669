from pathlib import Path

import streamlit as st

from speech import REPO_ROOT
from speech.catalog import card_summary
from speech.compare import answer, shipped_summaries, table_rows
from speech.data import is_downloaded, labels_tensor
from speech.plots import (
    alluvial_figure,
    comparison_curves_figure,
    confusion_figure,
    embedding_figure,
    largest_error_flow,
    lr_finder_figure,
    per_word_comparison_figure,
    training_curves_figure,
)
from speech.results import SHARED_REAL, clips_behind, read_csv_rows, selected_cells, training_history, training_sources
from speech.ui import (
    decoded_waves,
    embedding_points,
    evaluation,
    folder_input,
    load_predictor,
    play_clip,
    require_checkpoints,
    show_clips_behind,
    source,
)

st.title("Results")
st.markdown(
    "The same CNN was trained on three inputs: the **power spectrogram** (baseline), a **128-band mel** "
    "spectrogram, and the **complex** STFT (real and imaginary parts as two channels). Compare how they learned "
    "and where they go wrong — each variant makes *different* mistakes. Beside the book's CNN there is an extra "
    "architecture, **tcresnet**: a small temporal-convolution ResNet on 64 mel bands that treats the frequency rows "
    "as channels and convolves along time only — add it in the model picker. **robust** is the same network "
    "hearing only a phone line's 300–3400 Hz, trained on clipped, noisy and quiet takes: less accurate on clean "
    "speech, but it loses little when the microphone is bad. **ensemble** averages the probabilities of four "
    "tcresnets trained from different seeds, with and without mixup: they make different mistakes, so their mean "
    "is right more often than any one of them."
)

checkpoints = require_checkpoints()
chosen = st.multiselect("Models", list(checkpoints), default=list(checkpoints)[:3])
if not chosen:
    st.info("Choose at least one model.")
    st.stop()
predictors = {name: p for name in chosen if (p := load_predictor(name, checkpoints[name])) is not None}

st.header("How they learned")
for tab, name in zip(st.tabs(chosen), chosen):
    with tab:
        path = checkpoints[name]
        card = predictors[name].card if name in predictors else {}
        if card:
            st.markdown(card_summary(card))
            start = card.get("initialized_from")
            if start:
                st.caption(f"Continued from `{start['checkpoint']}`; the curves show every stage, the later ones "
                           "marked by a dotted line.")
            with st.expander("Model card"):
                st.json(card)
        history = training_history(path)
        if history:
            st.plotly_chart(training_curves_figure(history, f"{name}: training curves"), key=f"curves-{name}")
        lr_rows = read_csv_rows(path.with_suffix(".lr_find.csv"))
        if lr_rows:
            st.plotly_chart(lr_finder_figure(lr_rows, card.get("training", {}).get("max_lr"),
                                             f"{name}: learning-rate finder"), key=f"lr-{name}")

st.header("Does the input matter?")
comparisons, problems = shipped_summaries()
for problem in problems:
    st.error(f"{problem} Re-create it with `scripts/compare_inputs.sh` (`long` for the long budget's file).")
if comparisons:
    budget = st.radio("Budget", list(comparisons), horizontal=True, key="compare-budget",
                      help="The same comparison at each training budget that was run: how much each run could "
                           "learn changes the answer.")
    comparison = comparisons[budget]
    st.markdown(answer(comparison))
    st.table(table_rows(comparison))
    st.caption("Validation speakers: real people whose clips no run trained on. The book's figures are test "
               "accuracy on the full dataset's test list, so compare the order, not the numbers. Minutes per run "
               "are the cards' wall-clock training time on a 2-core CPU that other jobs shared at times: a rough "
               "cost, not a benchmark.")
    st.plotly_chart(comparison_curves_figure(comparison), key="compare-curves")
    st.plotly_chart(per_word_comparison_figure(comparison), key="compare-words")
elif not problems:
    st.info("No comparison yet: `scripts/compare_inputs.sh` trains the book's CNN on each input with equal budgets "
            "over three seeds and writes checkpoints/compare_inputs.json.")

st.header("Where they go wrong")
SOURCES = {"Bundled examples": "examples", "Validation speakers": "validation",
           "Speech Commands test subset": "test", "A folder": "folder"}
choice = st.radio("Evaluate on", list(SOURCES), horizontal=True, key="results-source",
                  help="Bundled examples run at once; the larger sources start with a button.")
kind, location = SOURCES[choice], ""
if kind == "validation":
    location = folder_input("Folder the models were trained on", str(SHARED_REAL), key="results-validation")
elif kind == "test":
    location = REPO_ROOT / "data"
    if not is_downloaded(location):
        st.warning(f"Speech Commands is not downloaded into {location}; use the Dataset page to download it.")
        st.stop()
elif kind == "folder":
    location = folder_input("Folder with <word>/<clip> files", "examples", key="results-folder")
if location is None:
    st.stop()
evaluated = source(kind, str(location), tuple(training_sources(checkpoints)))
if not evaluated.clips:
    st.warning(f"No clips of the 30 words in the {evaluated.label}.")
    st.stop()
(st.warning if evaluated.seen_in_training else st.caption)(evaluated.note)

key = f"{kind}:{location}"
if kind != "examples" and st.session_state.get("results-evaluating") != key:
    seconds = len(evaluated.clips) * len(predictors) * 0.02  # about 20 ms a clip and model on this 2-core CPU
    if st.button(f"Evaluate {len(predictors)} model(s) on {len(evaluated.clips)} clips (roughly {seconds:.0f} s)",
                 type="primary"):
        st.session_state["results-evaluating"] = key
        st.rerun()
    st.stop()
if kind != "examples" and st.button("Cancel", key="results-cancel"):
    st.session_state.pop("results-evaluating", None)
    st.rerun()

waves = decoded_waves(key, evaluated.clips)
results = {}
for name, predictor in predictors.items():
    path = checkpoints[name]
    results[name] = evaluation(str(path), path.stat().st_mtime, key, predictor, waves,
                               labels_tensor(evaluated.clips, predictor.classes))
if not results:
    st.stop()
st.table({"model": list(results), "accuracy": [f"{r.accuracy:.3f}" for r, _ in results.values()],
          "macro accuracy": [f"{r.macro_accuracy:.3f}" for r, _ in results.values()],
          "clips": [r.n for r, _ in results.values()]})

normalise = st.toggle("Row-normalised confusion", value=True, key="results-normalise")
for tab, (name, (report, predictions)) in zip(st.tabs(list(results)), results.items()):
    with tab:
        event = st.plotly_chart(confusion_figure(report.confusion, report.classes, normalise,
                                                 f"{name}: confusion matrix"), key=f"confusion-{name}",
                                on_select="rerun", selection_mode="points")
        pairs = {f"{p['target']} → {p['prediction']} ({p['count']})": (p["target"], p["prediction"])
                 for p in report.most_confused[:10]}
        picked = st.selectbox("Click a cell of the matrix, or pick one of the most confused pairs", ["—", *pairs],
                              key=f"pair-{name}")
        cells = selected_cells(event.selection.points) or ([pairs[picked]] if picked in pairs else [])
        for cell in cells[:1]:
            show_clips_behind(cell, clips_behind(predictions, evaluated.clips, report.classes, *cell), name,
                              predictors)
        largest = largest_error_flow(report.confusion)
        minimum = st.slider("Hide flows of fewer clips than", 1, max(largest, 2), 1, key=f"flows-{name}",
                            disabled=largest < 2, help="Up to the largest error flow, so one always stays.")
        st.plotly_chart(alluvial_figure(report.confusion, report.classes, min(minimum, max(largest, 1)),
                                        f"{name}: predictions → targets"), key=f"alluvial-{name}")
        st.caption("Streamlit does not report clicks on this kind of chart (plotly parcats), so the clips behind a "
                   "flow are listed from the confusion matrix above: its cells are the same flows.")

st.header("The embedding map")
st.markdown("Each clip as its model's last layer sees it (the *embedding*), flattened to 2-D along the directions in "
            "which the words' centres differ most. Words the model finds close lie close; compare the models. "
            "Click a point to hear it.")
mapped = st.selectbox("Model", list(results), key="results-map-model")
points = embedding_points(str(checkpoints[mapped]), checkpoints[mapped].stat().st_mtime, key, predictors[mapped],
                          waves, evaluated.clips)
event = st.plotly_chart(embedding_figure(points, f"{mapped}: embedding of the {evaluated.label}"),
                        key="results-map", on_select="rerun", selection_mode="points")
for point in event.selection.points[:3]:
    play_clip(Path(point["customdata"]))
