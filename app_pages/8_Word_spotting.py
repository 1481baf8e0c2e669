import streamlit as st

from speech.audio import to_wav_bytes
from speech.plots import spotting_figure, threshold_sweep_figure
from speech.recordings import score
from speech.spot import SPOTTING_CHECKPOINT, SpotConfig, detect, is_word, segment, threshold_sweep
from speech.ui import load_predictor, recording_input, require_checkpoints, window_posteriors

MAX_ROWS = 25  # detections listed with a player; the figure shows them all

st.title("Word spotting")
st.markdown("Find the 30 words in a recording of any length — and stay quiet on noise, silence and other words. "
            "The detector slides a 1 s window along the audio every 0.1 s, asks the model about each window, "
            "smooths the answers and fires once per spoken word.")

checkpoints = require_checkpoints()
names = list(checkpoints)
spotting_name = SPOTTING_CHECKPOINT.removesuffix(".pt")
loaded, content, truth = recording_input("spot")
if loaded is None:
    st.stop()

model_column, threshold_column, smooth_column, refractory_column = st.columns([2, 2, 2, 2])
name = model_column.selectbox("Model", names, index=names.index(spotting_name) if spotting_name in names else 0,
                              key="spot-model", help="The spotting model has two extra classes, _silence_ and "
                              "_unknown_, that let it say 'none of the 30'.")
threshold = threshold_column.slider("Threshold", 0.05, 0.99, SpotConfig.threshold, 0.01, key="spot-threshold",
                                    help="A word fires when its smoothed probability reaches this.")
smooth = smooth_column.slider("Smoothing (windows)", 1, 9, SpotConfig.smooth, key="spot-smooth",
                              help="Average each word's probability over this many successive windows (0.1 s apart).")
refractory = refractory_column.slider("Refractory time (s)", 0.1, 2.0, SpotConfig.refractory, 0.1,
                                      key="spot-refractory", help="After a detection, nothing fires for this long.")
predictor = load_predictor(name, checkpoints[name])
if predictor is None:
    st.stop()
if all(is_word(c) for c in predictor.classes):
    st.warning(f"**{name}** knows only the 30 words: it has no way to say 'none of these', so noise and other "
               "words turn into false alarms. Compare it with the spotting model.")

posteriors = window_posteriors(str(checkpoints[name]), checkpoints[name].stat().st_mtime, content, predictor,
                               loaded.waveform)
config = SpotConfig(threshold=threshold, smooth=smooth, refractory=refractory)
detections = detect(posteriors, predictor.classes, config, loaded.waveform)
st.plotly_chart(spotting_figure(loaded.waveform, posteriors, predictor.classes, config, detections),
                key="spot-figure")

if not detections:
    st.info("No command word heard.")
else:
    st.subheader(f"{len(detections)} word{'s' if len(detections) > 1 else ''} heard")
    for d in detections[:MAX_ROWS]:
        word, when, player = st.columns([1, 2, 3])
        word.markdown(f"**{d.word}** · {d.confidence:.0%}")
        when.caption(f"{d.start:.2f}–{d.end:.2f} s")
        player.audio(to_wav_bytes(segment(loaded.waveform, d)), format="audio/wav")
    if len(detections) > MAX_ROWS:
        st.caption(f"The first {MAX_ROWS} of {len(detections)} are listed; the figure shows all of them.")

if truth is not None:
    words = [c for c in predictor.classes if is_word(c)]
    result = score(detections, truth, words, loaded.seconds)
    st.subheader("How it did on this example")
    st.markdown(f"The example's words are known ({', '.join(w.word for w in truth)}). "
                f"**{result.hits} of {result.spoken}** words found, **{result.false_alarms}** false alarm(s)"
                + (f"; the {result.out_of_vocabulary} words outside the vocabulary drew {result.oov_detections}."
                   if result.out_of_vocabulary else "."))
    sweep = threshold_sweep([posteriors], [truth], [loaded.seconds], predictor.classes, config)
    st.plotly_chart(threshold_sweep_figure(sweep, threshold), key="spot-sweep")
    st.caption("Each point is one threshold. Lower it and more words are found, but noise and other words start to "
               "fire too: the trade-off every keyword spotter tunes.")

with st.expander("How the detector works"):
    st.markdown(
        "1. **Sliding windows.** The model was trained on 1 s clips, so the detector cuts the recording into 1 s "
        "windows that start every 0.1 s; each word is heard by about ten overlapping windows.\n"
        "2. **Smoothing.** Each word's probability is averaged over a few successive windows, so a single odd "
        "window cannot fire alone.\n"
        "3. **Threshold and peak.** A word fires when its smoothed probability reaches the threshold; the "
        "detection is the highest point of that run, and the span shown is the loud part of its window.\n"
        "4. **Refractory time.** After a detection nothing fires for a moment, and a word must drop below the "
        "threshold before it can fire again: one spoken word, one detection.\n\n"
        "**Why `_silence_` and `_unknown_` matter.** A 30-word model must share all its probability among the 30 "
        "words, so every cough or unknown word becomes one of them with high confidence. The spotting model was also "
        "trained on background noise (`_silence_`) and on speech that is no word of the 30 (`_unknown_`: other "
        "English words from synthetic voices, real words played backwards or spliced together); on those, the "
        "rejection classes take the probability and no word reaches the threshold (the dotted grey lines). "
        "A real word it never met can still sound more like one of the 30 (\"forward\" like \"four\"), so the "
        "shipped spotting model also has an **open-set gate**: when a window lies, in the model's embedding, "
        "farther from every word's training clips than almost all of them lie from their own word, its word "
        "probability goes to `_unknown_` (fewer false alarms, at the price of some rare words said by new voices).")
