from pathlib import Path

import streamlit as st

from speech import EXAMPLES_DIR, REPO_ROOT
from speech.audio import AudioError, load_audio, to_wav_bytes
from speech.data import (
    CLASSES,
    CREDIT,
    class_counts,
    download_speech_commands,
    folder_clips,
    is_downloaded,
    speech_commands_folder,
)
from speech.plots import class_counts_figure
from speech.ui import folder_input

st.title("Dataset")
st.markdown(
    "Speech Commands v0.01 holds about 65,000 one-second clips of 30 words from 1,881 speakers. Its official split "
    "puts every speaker in exactly one of training, validation and testing, so a model is judged on voices it never "
    "heard. Browse any source below."
)
DEFAULT_DOWNLOAD_ROOT = REPO_ROOT / "data"


@st.cache_data(show_spinner="Scanning clips…")
def scan(folder: str):
    return folder_clips(folder)


source = st.radio("Source", ["Bundled examples", "Downloaded Speech Commands", "A folder on this computer"],
                  horizontal=True)
folder = None
if source == "Bundled examples":
    folder = EXAMPLES_DIR
elif source == "Downloaded Speech Commands":
    root = Path(st.text_input("Download folder", str(DEFAULT_DOWNLOAD_ROOT)))
    if is_downloaded(root):
        folder = speech_commands_folder(root)
        st.success(f"Found Speech Commands v0.01 in {folder}.")
    else:
        st.info(f"Not downloaded yet into {root}. The archive is 1.4 GB; extraction needs about 2.5 GB.")
        if st.button("Download Speech Commands v0.01"):
            bar = st.progress(0.0, text="Connecting…")

            def report(done, total):
                if total:
                    bar.progress(done / total, text=f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")

            try:
                with st.spinner("Downloading and extracting…"):
                    folder = download_speech_commands(root, progress=report)
                st.success(f"Done: {folder}")
            except RuntimeError as error:
                bar.empty()
                st.error(str(error))
else:
    folder = folder_input("Folder with <word>/<clip> files", "../shared/speech_commands_real", key="dataset-folder")

if folder is not None:
    clips = scan(str(folder))
    if not clips:
        st.warning(f"No clips of the 30 words in {folder} (expected <word>/<file>.wav|flac|ogg|mp3).")
    else:
        counts = class_counts(clips)
        speakers = len({clip.speaker for clip in clips})
        st.markdown(f"**{len(clips)} clips** of {sum(1 for v in counts.values() if v)} words from {speakers} speakers.")
        st.plotly_chart(class_counts_figure(counts))
        word = st.selectbox("Word", [w for w in CLASSES if counts[w]])
        of_word = [c for c in clips if c.label == word]
        most = min(20, len(of_word))
        shown = st.slider("Clips to list", 1, most, min(5, most)) if most > 1 else 1
        for item in of_word[:shown]:
            try:
                audio = load_audio(item.path, min_seconds=0.0, reject_silence=False)
            except AudioError as error:
                st.warning(f"{item.path.name}: {error}")
                continue
            cols = st.columns([1, 3])
            cols[0].write(f"`{item.path.name}` · speaker {item.speaker} · {audio.seconds:.2f} s")
            cols[1].audio(to_wav_bytes(audio.waveform), format="audio/wav")
st.caption(CREDIT)
