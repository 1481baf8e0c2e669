#!/usr/bin/env bash
# Reproduces checkpoints/ (see README, "Shipped checkpoints"):
#   mel, baseline, complex: the book's CNN from scratch with SpecAugment and speed augmentation (mel 60 epochs,
#            the others 50: they cost twice mel's time per clip); baseline and complex then 20 more epochs in
#            which the real speakers' clips are at least half of each word's draws;
#   tcresnet: the extra architecture from scratch, 120 epochs;
#   words: the same recipe that also learns 1,000 other English words (outputs dropped): the few-shot base;
#   ensemble: the mean of four tcresnets of that recipe (seeds 0 and 1, each with and without mixup);
#   robust: tcresnet on the telephone band (300-3400 Hz) with microphone effects and heavier noise, 120 epochs;
#   spotting: tcresnet's weights continued with two more classes, _silence_ and _unknown_ (word spotting),
#             with the robust model's microphone effects and heavier noise, then given an open-set gate.
# Needs ../shared/speech_commands_real and the Debian TTS packages listed in README (for data/tts*).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -d data/tts ] || $PY -m speech.tts --set training --out data/tts --per-word 78
[ -d data/tts-extra ] || $PY -m speech.tts --set extra-training --out data/tts-extra --per-word 50
[ -d data/tts-unknown ] || $PY -m speech.tts --set unknown --out data/tts-unknown --per-word 12
[ -d data/tts-more-words ] || $PY -m speech.tts --set more-words --out data/tts-more-words --per-word 12

BOOK=(--data ../shared/speech_commands_real --extra-train data/tts data/tts-extra --epoch-size 6400 --batch-size 32
      --max-lr 1e-3 --patience 60 --dropout-ramp 0.5 --speed 0.15 --specaugment --bf16 --seed 0 --threads 1
      --out checkpoints)
for variant in mel baseline complex; do
  epochs=$([ "$variant" = mel ] && echo 60 || echo 50)
  for mode in --lr-find ""; do
    $PY -m speech.train --variant "$variant" "${BOOK[@]}" --epochs "$epochs" $mode
  done
done
for variant in baseline complex; do  # later flags override the BOOK array's
  $PY -m speech.train --variant "$variant" --init "checkpoints/$variant.pt" "${BOOK[@]}" --max-lr 5e-4 --patience 20 \
      --dropout-ramp 0 --seed 1 --epochs 20 --min-real-share 0.5
done

TC=(--variant mel --arch tcresnet --n-mels 64 --name tcresnet --data ../shared/speech_commands_real
    --extra-train data/tts data/tts-extra --epoch-size 6400 --batch-size 64 --max-lr 3e-3 --patience 120
    --speed 0.15 --specaugment --seed 0 --threads 1 --out checkpoints)
$PY -m speech.train "${TC[@]}" --epochs 120 --lr-find --lr-find-steps 100
$PY -m speech.train "${TC[@]}" --epochs 120

# words: the same command with 1,000 more words as extra outputs (later flags override the TC array's).
$PY -m speech.train "${TC[@]}" --epochs 120 --more-words data/tts-more-words --name words

# The ensemble's other three members, then the ensemble itself.
$PY -m speech.train "${TC[@]}" --epochs 120 --seed 1 --name tcresnet-s1 --out runs/ensemble
for seed in 0 1; do
  $PY -m speech.train "${TC[@]}" --epochs 120 --mixup 0.2 --seed $seed --name tcresnet-mixup-s$seed --out runs/ensemble
done
$PY -m speech.ensemble checkpoints/tcresnet.pt runs/ensemble/tcresnet-s1.pt runs/ensemble/tcresnet-mixup-s0.pt \
    runs/ensemble/tcresnet-mixup-s1.pt --out checkpoints/ensemble.pt

# The robust model: hears only 300-3400 Hz, floors its features 45 dB under each clip's peak, and trains on clipped,
# band-limited and quiet takes and on noise in 80 % of clips down to 0 dB SNR.
$PY -m speech.train --variant mel --arch tcresnet --n-mels 64 --name robust --data ../shared/speech_commands_real \
    --extra-train data/tts data/tts-extra --epoch-size 6400 --batch-size 64 --max-lr 3e-3 --patience 120 --speed 0.15 \
    --specaugment --robust --f-min 300 --f-max 3400 --top-db 45 --noise-probability 0.8 --min-snr-db 0 --seed 1 \
    --threads 1 --epochs 120 --out checkpoints

# The spotting model: 30 words + _silence_ + _unknown_ (other English words from TTS, and non-words made from each
# part's own clips), with the microphone effects and heavier noise. Never trained on the reserved words backward,
# follow, forward, learn, visual.
$PY -m speech.train --variant mel --arch tcresnet --n-mels 64 --spotting --init checkpoints/tcresnet.pt \
    --data ../shared/speech_commands_real --extra-train data/tts data/tts-extra data/tts-unknown --epoch-size 6400 \
    --batch-size 64 --max-lr 2e-3 --patience 60 --speed 0.15 --specaugment --robust --noise-probability 0.8 \
    --min-snr-db 0 --seed 1 --threads 1 --epochs 60 --out runs/spotrob --name spotting-s1
# ... and its open-set gate: a word answer whose embedding lies far from every word's training clips becomes _unknown_.
cp runs/spotrob/spotting-s1.log.csv checkpoints/spotting.log.csv
$PY -m speech.openset runs/spotrob/spotting-s1.pt --extra-train data/tts data/tts-extra --out checkpoints/spotting.pt
