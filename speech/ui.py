"""Streamlit widgets shared by the pages (clip picker, cached loaders). No computation lives here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import streamlit as st
import torch

from speech import EXAMPLES_DIR, checkpoint_files, checkpoints_dir
from speech.audio import SAMPLE_RATE, AudioError, LoadedAudio, load_audio, to_wav_bytes
from speech.data import folder_clips
from speech.features import VARIANTS
from speech.model import CheckpointError
from speech.predict import Predictor

SOURCES = ("Bundled example", "Upload a file", "Record with the microphone")
UPLOAD_TYPES = ["wav", "flac", "ogg", "mp3"]


@st.cache_data(show_spinner=False, max_entries=64)
def decode(data: bytes, name: str) -> tuple[torch.Tensor, int, int]:
    """Cached decode of uploaded/recorded bytes (raises AudioError)."""
    loaded = load_audio(data)
    return loaded.waveform, loaded.source_rate, loaded.source_channels


@st.cache_data(show_spinner=False)
def example_paths() -> dict[str, list[str]]:
    """word -> bundled example files."""
    paths: dict[str, list[str]] = {}
    for clip in folder_clips(EXAMPLES_DIR):
        paths.setdefault(clip.label, []).append(str(clip.path))
    return paths


@st.cache_resource(show_spinner="Loading model…")
def predictor(path: str, expect_variant: Optional[str], modified: float) -> Predictor:
    """Cached per file and modification time, so a retrained checkpoint is picked up."""
    return Predictor.from_checkpoint(path, expect_variant)


def shipped_checkpoints() -> dict[str, Path]:
    """name -> checkpoint file in the checkpoints folder (the book's three variants first)."""
    return checkpoint_files(checkpoints_dir())


def load_predictor(name: str, path: Path) -> Optional[Predictor]:
    """The cached predictor, or None after showing the checkpoint problem as st.error. A file named after a
    book variant (``mel.pt``) must hold that variant."""
    try:
        return predictor(str(path), name if name in VARIANTS else None, path.stat().st_mtime)
    except CheckpointError as error:
        st.error(f"Checkpoint **{name}** cannot be used: {error}")
        return None


def clip_picker(key: str, default_word: str = "yes") -> Optional[LoadedAudio]:
    """Let the user pick a bundled example, upload a file or record; play it; return it (or None).

    Bad input is reported with st.error/st.warning and returns None.
    """
    source = st.radio("Clip", SOURCES, horizontal=True, key=f"{key}-source")
    loaded = None
    if source == SOURCES[0]:
        examples = example_paths()
        if not examples:
            st.warning(f"No bundled examples found in {EXAMPLES_DIR}. Upload or record a clip instead.")
            return None
        words = sorted(examples)
        col_word, col_voice = st.columns(2)
        word = col_word.selectbox("Word", words, index=words.index(default_word) if default_word in words else 0,
                                  key=f"{key}-word")
        files = examples[word]
        voice = col_voice.selectbox("Voice", files, format_func=lambda p: Path(p).name.split("_nohash_")[0],
                                    key=f"{key}-voice")
        loaded = _load(lambda: load_audio(voice))
    else:
        if source == SOURCES[1]:
            upload = st.file_uploader("Audio file (WAV, FLAC, OGG, MP3; any sample rate; mono or stereo)",
                                      type=UPLOAD_TYPES, key=f"{key}-upload")
        else:
            upload = st.audio_input("Record a word (about one second)", sample_rate=SAMPLE_RATE,
                                    key=f"{key}-record")
        if upload is None:
            st.info("Waiting for audio…")
            return None
        loaded = _load(lambda: LoadedAudio(*decode(upload.getvalue(), upload.name)))
    if loaded is not None:
        st.audio(to_wav_bytes(loaded.waveform), format="audio/wav")
        st.caption(f"{loaded.seconds:.2f} s · file: {loaded.source_rate} Hz, {loaded.source_channels} channel(s) "
                   f"→ used as {SAMPLE_RATE} Hz mono")
    return loaded


def play_clip(path: Path) -> None:
    """An audio player for a dataset file (errors shown, not raised)."""
    loaded = _load(lambda: load_audio(path, min_seconds=0.0, reject_silence=False))
    if loaded is not None:
        st.audio(to_wav_bytes(loaded.waveform), format="audio/wav")
        st.caption(path.name)


def _load(load) -> Optional[LoadedAudio]:
    try:
        return load()
    except AudioError as error:
        st.error(f"{error}")
        return None

