#!/usr/bin/env bash
# "Does the input matter?" The book's CNN on its three inputs (power spectrogram, mel, complex STFT), each trained
# from scratch with identical data, augmentation, epochs and schedule; then the summary that README and the
# Results page show.
#   scripts/compare_inputs.sh          # short: 8 epochs of 6400 clips, speed ±10 %, seeds 0-2 (about 2 h here)
#                                      #   -> runs/compare, checkpoints/compare_inputs.json
#   scripts/compare_inputs.sh long     # long: the shipped book models' recipe (50 epochs, SpecAugment, speed
#                                      #   ±15 %), seeds 0-1 (about 5 h here) -> runs/compare-long,
#                                      #   checkpoints/compare_inputs_long.json
# Two runs at a time, one thread each (on 2 cores that beats one run on two threads). An interrupted run
# continues with the same command (each run resumes from its .last.pt).
# Needs ../shared/speech_commands_real and data/tts, data/tts-extra (made here with the TTS packages from README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
case "${1:-short}" in
  short) EPOCHS=8;  SEEDS="0 1 2"; OUT=runs/compare;      SUMMARY=checkpoints/compare_inputs.json
         RECIPE="--speed 0.1" ;;
  long)  EPOCHS=50; SEEDS="0 1";   OUT=runs/compare-long; SUMMARY=checkpoints/compare_inputs_long.json
         RECIPE="--speed 0.15 --specaugment" ;;
  *) echo "usage: $0 [short|long]" >&2; exit 2 ;;
esac
[ -d data/tts ] || $PY -m speech.tts --set training --out data/tts --per-word 78
[ -d data/tts-extra ] || $PY -m speech.tts --set extra-training --out data/tts-extra --per-word 50
mkdir -p "$OUT"

run() {  # variant seed
  local name="$1-seed$2"
  [ -f "$OUT/$name.card.json" ] && return 0  # finished earlier
  # shellcheck disable=SC2086  # RECIPE holds several flags
  $PY -m speech.train --variant "$1" --seed "$2" --name "$name" --out "$OUT" \
      --data ../shared/speech_commands_real --extra-train data/tts data/tts-extra \
      --epochs "$EPOCHS" --epoch-size 6400 --batch-size 32 --max-lr 1e-3 --patience "$EPOCHS" \
      --dropout-ramp 0.5 $RECIPE --bf16 --threads 1 --resume > "$OUT/$name.out" 2>&1
}
export -f run
export PY OUT EPOCHS RECIPE
for seed in $SEEDS; do printf '%s\n' "baseline:$seed" "mel:$seed" "complex:$seed"; done |
  xargs -P 2 -I{} bash -c 'spec={}; run "${spec%%:*}" "${spec##*:}"'
$PY -m speech.compare "$OUT" --out "$SUMMARY"
