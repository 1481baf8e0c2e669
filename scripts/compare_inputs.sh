#!/usr/bin/env bash
# "Does the input matter?" The book's CNN on its three inputs (power spectrogram, mel, complex STFT), each trained
# from scratch with identical data, augmentation, epochs and schedule, three seeds each; then the summary that
# README and the Results page show (checkpoints/compare_inputs.json).
#   scripts/compare_inputs.sh [EPOCHS]       # default 8 epochs of 6400 clips: the budget that fits a 2-core CPU
# Two runs at a time, one thread each (on 2 cores that beats one run on two threads). Runs go to runs/compare/;
# an interrupted run continues with the same command (each run resumes from its .last.pt).
# Needs ../shared/speech_commands_real and data/tts, data/tts-extra (made here with the TTS packages from README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
EPOCHS=${1:-8}
OUT=runs/compare
[ -d data/tts ] || $PY -m speech.tts --set training --out data/tts --per-word 78
[ -d data/tts-extra ] || $PY -m speech.tts --set extra-training --out data/tts-extra --per-word 50
mkdir -p "$OUT"

run() {  # variant seed
  local name="$1-seed$2"
  [ -f "$OUT/$name.card.json" ] && return 0  # finished earlier
  $PY -m speech.train --variant "$1" --seed "$2" --name "$name" --out "$OUT" \
      --data ../shared/speech_commands_real --extra-train data/tts data/tts-extra \
      --epochs "$EPOCHS" --epoch-size 6400 --batch-size 32 --max-lr 1e-3 --patience "$EPOCHS" \
      --dropout-ramp 0.5 --speed 0.1 --bf16 --threads 1 --resume > "$OUT/$name.out" 2>&1
}
export -f run
export PY OUT EPOCHS
printf '%s\n' baseline:0 mel:0 complex:0 baseline:1 mel:1 complex:1 baseline:2 mel:2 complex:2 |
  xargs -P 2 -I{} bash -c 'spec={}; run "${spec%%:*}" "${spec##*:}"'
$PY -m speech.compare "$OUT" --out checkpoints/compare_inputs.json
