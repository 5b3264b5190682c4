"""Spoken instructions for the audio encoder: the task families' own instructions, spoken by
espeak-ng in several voices, speeds and pitches, with noise, as log-mel features and transcripts.

The texts come from the task families sampled on real scenes of both worlds (each scene serves
every family, each object referral), so the corpus speaks the project's language: "How to stack
obj 2 on top of obj 5", "Put the sponge in the drawer", "Is the red object below the blue
object". Everything is drawn from one seed: the same seed gives the same corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

import envs  # noqa: F401  (registers the environments)
from encoders.audio import (
    AUDIO_FEATURES,
    AUDIO_LENGTHS,
    TRANSCRIPT,
    TRANSCRIPT_LENGTHS,
    encode_transcript,
    log_mel,
    synthesize,
)
from envs.tasks import KITCHEN_FAMILIES, TABLETOP_FAMILIES
from envs.tasks.base import REFERRALS

VOICES = (
    "en-us",
    "en-us+f2",
    "en-us+m7",
    "en-gb",
    "en-gb+f3",
    "en-gb-scotland",
    "en-gb-x-rp+f4",
    "en-029+m3",
)
"""espeak-ng voices (language + variant) the corpus is spoken in."""
SPEEDS = (130, 200)  # words per minute
PITCHES = (30, 70)  # espeak's 0-99 scale
SNR_DB = (10.0, 35.0)  # white noise added at a signal-to-noise ratio drawn from this range


def instruction_corpus(count: int, seed: int) -> list[str]:
    """``count`` instructions and questions of every family, sampled on scenes of both worlds."""
    rng = np.random.default_rng(seed)
    worlds = (
        ("embodied/Tabletop-v0", TABLETOP_FAMILIES),
        ("embodied/Kitchen-v0", KITCHEN_FAMILIES),
    )
    made = {env_id: gym.make(env_id, observe_images=False) for env_id, _ in worlds}
    texts: list[str] = []
    try:
        while len(texts) < count:
            for env_id, families in worlds:
                env = made[env_id]
                env.reset(seed=int(rng.integers(2**31)))
                state = env.unwrapped.symbolic_state()  # type: ignore[attr-defined]
                for family in families.values():
                    referral = REFERRALS[int(rng.integers(len(REFERRALS)))]
                    task = family.sample(state, rng, referral)
                    if task is not None:
                        texts.append(task.instruction)
    finally:
        for env in made.values():
            env.close()
    order = rng.permutation(len(texts))[:count]
    return [texts[i] for i in order]


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: str
    speed: int
    pitch: int
    snr_db: float


class SpeechCorpus:
    """Synthesized utterances as log-mel features with their transcripts, in memory."""

    def __init__(self, count: int, seed: int, n_mels: int = 80) -> None:
        rng = np.random.default_rng([seed, 1])
        self.utterances = [
            Utterance(
                text,
                VOICES[int(rng.integers(len(VOICES)))],
                int(rng.integers(*SPEEDS)),
                int(rng.integers(*PITCHES)),
                float(rng.uniform(*SNR_DB)),
            )
            for text in instruction_corpus(count, seed)
        ]
        self.features: list[Tensor] = []
        self.transcripts: list[list[int]] = []
        for utterance in self.utterances:
            samples = synthesize(utterance.text, utterance.voice, utterance.speed, utterance.pitch)
            power = float(np.mean(samples**2)) + 1e-12
            noise_power = power / 10 ** (utterance.snr_db / 10)
            samples = samples + rng.normal(0.0, np.sqrt(noise_power), samples.shape).astype(
                np.float32
            )
            self.features.append(log_mel(samples, n_mels))  # (T, M)
            self.transcripts.append(encode_transcript(utterance.text))

    def __len__(self) -> int:
        return len(self.utterances)

    def batch(self, size: int, seed: int, step: int) -> dict[str, Tensor]:
        """``size`` utterances drawn by ``(seed, step)``, zero-padded."""
        rng = np.random.default_rng([seed, step])
        index = rng.choice(len(self), size=min(size, len(self)), replace=False)
        features = [self.features[i] for i in index]
        return collate_speech(features, [self.transcripts[i] for i in index])


def collate_speech(features: list[Tensor], transcripts: list[list[int]]) -> dict[str, Tensor]:
    b, m = len(features), features[0].shape[1]
    frames = max(f.shape[0] for f in features)
    longest = max(len(t) for t in transcripts)
    audio = torch.zeros(b, frames, m)
    text = torch.zeros(b, longest, dtype=torch.long)
    for i, (f, t) in enumerate(zip(features, transcripts, strict=True)):
        audio[i, : f.shape[0]] = f
        text[i, : len(t)] = torch.tensor(t)
    return {
        AUDIO_FEATURES: audio,
        AUDIO_LENGTHS: torch.tensor([f.shape[0] for f in features]),
        TRANSCRIPT: text,
        TRANSCRIPT_LENGTHS: torch.tensor([len(t) for t in transcripts]),
    }
