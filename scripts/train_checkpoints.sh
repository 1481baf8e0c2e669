#!/usr/bin/env bash
# Reproduces checkpoints/: synthetic training voices, then lr finder and training for the three book variants.
# Needs ../shared/speech_commands_real and the Debian TTS packages listed in README (for data/tts).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -d data/tts ] || $PY -m speech.tts --set training --out data/tts --per-word 78
COMMON=(--data ../shared/speech_commands_real --extra-train data/tts --epoch-size 6400 --batch-size 32
        --max-lr 1e-3 --patience 5 --dropout-ramp 0.5 --bf16 --seed 0 --out checkpoints)
for spec in mel:18 baseline:16 complex:16; do
  variant=${spec%%:*} epochs=${spec##*:}
  $PY -m speech.train --variant "$variant" "${COMMON[@]}" --epochs "$epochs" --lr-find --lr-find-steps 100
  $PY -m speech.train --variant "$variant" "${COMMON[@]}" --epochs "$epochs"
done
