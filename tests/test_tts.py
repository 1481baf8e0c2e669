"""The synthetic-voice sets: which voices may reach training, and how a word is placed in its clip."""
import random

import torch

from speech.audio import CLIP_SAMPLES
from speech.catalog import RESERVED_WORDS, SPOTTING_CLASSES
from speech.tts import (
    ACCENTED_TRAINING_VOICES,
    EXAMPLE_VOICES,
    EXTRA_TRAINING_VOICES,
    MORE_WORDS,
    TRAINING_VOICES,
    VOICE_SETS,
    place_in_clip,
)


def test_bundled_example_voices_are_never_training_voices():
    # The bundled examples are the "voices no model heard" of README's table.
    training = [name for set_name, voices in VOICE_SETS.items() if set_name != "examples" for name in voices]
    assert not set(EXAMPLE_VOICES) & set(training)


def test_each_training_voice_belongs_to_one_training_set():
    # A voice is a speaker: were it in two sets, training on both would count it twice.
    sets = [set(TRAINING_VOICES), set(EXTRA_TRAINING_VOICES), set(ACCENTED_TRAINING_VOICES)]
    assert sum(len(s) for s in sets) == len(set().union(*sets))
    assert len(ACCENTED_TRAINING_VOICES) == 13


def test_the_more_words_hold_no_vocabulary_or_reserved_word():
    # Each becomes a training class of the few-shot base: a reserved word (or "learned", "followed") there would
    # make the few-shot benchmark's new words not new.
    assert len(MORE_WORDS) == len(set(MORE_WORDS)) == 1000 and all(w.isalpha() and w.islower() for w in MORE_WORDS)
    assert not set(MORE_WORDS) & set(SPOTTING_CLASSES)
    assert not [w for w in MORE_WORDS if any(reserved in w for reserved in RESERVED_WORDS)]


def test_a_word_is_trimmed_scaled_and_placed_inside_one_second():
    word = torch.sin(torch.linspace(0, 400, 4000))  # 0.25 s
    spoken = torch.cat([torch.zeros(14000), word, torch.zeros(14000)])  # 2 s: cut untrimmed, it would lose the word
    clip = place_in_clip(spoken, random.Random(0))
    assert clip.shape == (CLIP_SAMPLES,) and clip.dtype == torch.float32
    assert 0.2 <= clip.abs().max() <= 0.9
    loud = (clip.abs() > 0.02 * clip.abs().max()).nonzero().flatten()
    assert 3990 <= loud[-1] - loud[0] < 4000  # the whole word, without its silence


def test_a_word_longer_than_a_clip_is_cut_to_one_second():
    clip = place_in_clip(torch.ones(3 * CLIP_SAMPLES), random.Random(1))
    assert clip.shape == (CLIP_SAMPLES,) and (clip != 0).all()
