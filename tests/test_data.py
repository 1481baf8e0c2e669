import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pytest
import soundfile as sf
import torch

from speech.data import (
    CLASSES,
    class_counts,
    download_speech_commands,
    folder_clips,
    is_downloaded,
    labels_tensor,
    load_background_noise,
    load_waveforms,
    speaker_of,
    speech_commands_clips,
    speech_commands_folder,
    split_clips,
    split_of,
)
from tests.conftest import SR, TONES, tone, write_tree


def test_classes_are_the_30_words_in_alphabetical_order():
    assert len(CLASSES) == 30 and list(CLASSES) == sorted(CLASSES)
    assert {"yes", "no", "marvin", "sheila", "wow"} <= set(CLASSES)


def test_folder_clips_ignore_noise_and_extra_words(tiny_tree):
    clips = folder_clips(tiny_tree)
    assert {c.label for c in clips} == set(TONES)
    assert len(clips) == 3 * 8 * 2
    assert all(c.speaker.startswith("spk") for c in clips)
    assert {c.label for c in folder_clips(tiny_tree, classes=None)} == set(TONES) | {"backward"}
    assert class_counts(clips)["yes"] == 16 and class_counts(clips)["bed"] == 0


def test_speaker_split_is_disjoint_stable_and_complete(tiny_tree):
    clips = folder_clips(tiny_tree)
    parts = {s: split_clips(clips, s, 30, 20) for s in ("training", "validation", "testing")}
    assert sum(len(p) for p in parts.values()) == len(clips)
    speakers = {s: {c.speaker for c in p} for s, p in parts.items()}
    assert not speakers["training"] & speakers["validation"]
    assert not speakers["training"] & speakers["testing"]
    # pinned: the sha1 of the speaker id, mod 10,000, as a percentage (11.35, 41.96, 67.79, 49.08, 89.59)
    assert [split_of(s, 30, 20) for s in ("spk03", "spk00", "0a7c2a8d", "ffd2ba2f", "c50f55b8")] == \
        ["validation", "testing", "training", "testing", "training"]
    assert speaker_of(Path("bed/0a7c2a8d_nohash_1.wav")) == "0a7c2a8d"
    # the share of speakers in validation follows the percentage
    shares = [split_of(f"speaker{i}", 10, 10) for i in range(2000)]
    assert 0.07 < shares.count("validation") / 2000 < 0.13


def test_load_waveforms_pads_short_clips(tmp_path):
    (tmp_path / "yes").mkdir()
    sf.write(tmp_path / "yes" / "a_nohash_0.flac", tone(300.0, seconds=0.4), SR)
    sf.write(tmp_path / "yes" / "b_nohash_0.wav", tone(300.0, seconds=1.3, rate=8000), 8000)
    clips = folder_clips(tmp_path)
    waves = load_waveforms(clips)
    assert waves.shape == (2, SR) and waves.dtype == torch.int16
    assert (waves[0, int(0.4 * SR) + 10:] == 0).all()
    assert labels_tensor(clips).tolist() == [CLASSES.index("yes")] * 2


def test_background_noise(tiny_tree, tmp_path):
    assert load_background_noise(tiny_tree / "_background_noise_").numel() == 3 * SR
    assert load_background_noise(tmp_path / "missing").numel() == 0


def make_speech_commands(root: Path) -> Path:
    """A tiny extracted v0.01 tree with the official list files."""
    folder = write_tree(speech_commands_folder(root), speakers=4, per_speaker=1)
    (folder / "validation_list.txt").write_text("yes/spk01_nohash_0.wav\nno/spk01_nohash_0.wav\n")
    (folder / "testing_list.txt").write_text("yes/spk02_nohash_0.wav\nup/spk02_nohash_0.wav\n")
    return folder


def test_speech_commands_official_subsets(tmp_path):
    make_speech_commands(tmp_path)
    assert is_downloaded(tmp_path)
    validation = speech_commands_clips(tmp_path, "validation")
    testing = speech_commands_clips(tmp_path, "testing")
    training = speech_commands_clips(tmp_path, "training")
    assert {(c.label, c.speaker) for c in validation} == {("yes", "spk01"), ("no", "spk01")}
    assert {(c.label, c.speaker) for c in testing} == {("yes", "spk02"), ("up", "spk02")}
    assert len(training) == 12 - 4  # 3 words x 4 speakers, minus the listed clips; backward is no class
    assert all(c.path.is_file() for c in training + validation + testing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_failure_is_clear_and_leaves_nothing(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/speech_commands_v0.01.tar.gz"
    with pytest.raises(RuntimeError, match="Cannot download"):
        download_speech_commands(tmp_path / "root", url=url)
    assert list((tmp_path / "root").iterdir()) == []


def test_download_extracts_through_torchaudio(tmp_path):
    source = make_speech_commands(tmp_path / "source")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    payload = archive.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen = []
    try:
        folder = download_speech_commands(tmp_path / "root", url=f"http://127.0.0.1:{server.server_port}/"
                                                                 "speech_commands_v0.01.tar.gz",
                                          progress=lambda done, total: seen.append((done, total)))
    finally:
        server.shutdown()
    assert folder == speech_commands_folder(tmp_path / "root") and is_downloaded(tmp_path / "root")
    assert seen[-1] == (len(payload), len(payload))
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["SpeechCommands"]  # no staging left behind
    assert len(speech_commands_clips(tmp_path / "root", "testing")) == 2
