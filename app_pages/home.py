import streamlit as st

from speech import EXAMPLES_DIR

# Home imports no torch (speech.catalog is standard library only), so the first page of a cold start is quick.
from speech.catalog import (
    CLASSES,
    CREDIT,
    checkpoint_files,
    checkpoints_dir,
    example_files,
    features_summary,
    read_model_card,
)

st.title("Speech Commands Lab")
st.markdown(
    "See, hear and understand how a neural network recognises spoken words. The lab follows the classic "
    "lesson *audio classification with torch* on Google's **Speech Commands v0.01** — 30 words, one-second "
    "clips at 16 kHz — and lets you take every step apart."
)
st.subheader("The path through the pages")
st.markdown(
    """
1. **Waveform** — a clip as amplitudes over time: what the microphone measured.
2. **Fourier transform** — the same clip as frequencies; why the time axis disappears, and how it comes back.
3. **Spectrogram** — short windows of Fourier transforms: time *and* frequency. Move the window-size slider to
   feel the trade-off between the two.
4. **Mel filter bank** — squeeze 257 Fourier bins into a few mel bands spaced like human hearing.
5. **Dataset** — browse the clips by word, listen, count, and download the full dataset.
6. **Results** — how the CNN learned on three inputs (power spectrogram, mel, complex), and an extra, smaller
   architecture (tcresnet): curves, confusion matrix, and an alluvial plot of predictions flowing into targets.
7. **Live prediction** — say a word into the microphone or upload a file and watch the model decide.
8. **Word spotting** — find the command words in a long recording, and hear nothing where there is none.
9. **Your own words** — teach a model new words from a few takes, and take it with you as ONNX.
"""
)
left, right = st.columns(2)
with left:
    st.subheader("Data")
    examples = example_files()
    st.markdown(
        f"- **Bundled examples:** {sum(len(v) for v in examples.values())} clips of {len(examples)} words in "
        f"`{EXAMPLES_DIR.name}/`, spoken by free synthetic voices (flite) the models never heard in training.\n"
        "- **Speech Commands v0.01** can be downloaded on the Dataset page (1.4 GB) where the internet is reachable.\n"
        "- **Any folder** of `<word>/*.wav|flac` clips, e.g. your own recordings.\n\n"
        f"The 30 words: {', '.join(CLASSES)}."
    )
with right:
    st.subheader("Checkpoints")
    checkpoints = checkpoint_files(checkpoints_dir())
    if not checkpoints:
        st.warning(f"No checkpoints in `{checkpoints_dir()}`; train one with `python -m speech.train` (see README).")
    for name, path in checkpoints.items():
        card = read_model_card(path)
        figure = ""
        if "validation" in card:
            validation = card["validation"]
            figure = (f" ({card.get('arch', 'book')} architecture, {features_summary(card)}) — validation macro "
                      f"accuracy **{validation['macro_accuracy']:.3f}** (accuracy {validation['accuracy']:.3f}, "
                      f"{validation['n']} clips of held-out speakers)")
        st.markdown(f"- `{path.name}`{figure}")
st.caption(CREDIT)
