"""Spoken instructions for the audio encoder: the task families' own instructions, spoken by
espeak-ng in several voices, speeds and pitches, with noise, as log-mel features and transcripts.

The texts come from the task families sampled on real scenes of both worlds (each scene serves
every family, each object referral), so the corpus speaks the project's language: "How to stack
obj 2 on top of obj 5", "Put the sponge in the drawer", "Is the red object below the blue
object". Everything is drawn from one seed: the same seed gives the same corpus.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
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
    AudioEncoder,
    encode_transcript,
    log_mel,
    synthesize,
    written_form,
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


def draw_utterance(text: str, rng: np.random.Generator) -> Utterance:
    """How ``text`` is spoken: a voice, speed, pitch and noise level drawn from ``rng``."""
    return Utterance(
        text,
        VOICES[int(rng.integers(len(VOICES)))],
        int(rng.integers(*SPEEDS)),
        int(rng.integers(*PITCHES)),
        float(rng.uniform(*SNR_DB)),
    )


def spoken_features(utterance: Utterance, rng: np.random.Generator, n_mels: int) -> Tensor:
    """The utterance synthesized, with white noise (drawn from ``rng``) at its SNR:
    ``(T, n_mels)`` log-mel frames."""
    samples = synthesize(utterance.text, utterance.voice, utterance.speed, utterance.pitch)
    power = float(np.mean(samples**2)) + 1e-12
    noise_power = power / 10 ** (utterance.snr_db / 10)
    noise = rng.normal(0.0, np.sqrt(noise_power), samples.shape).astype(np.float32)
    return log_mel(samples + noise, n_mels)


class SpeechCorpus:
    """Synthesized utterances as log-mel features with their transcripts, in memory."""

    def __init__(self, count: int, seed: int, n_mels: int = 80) -> None:
        rng = np.random.default_rng([seed, 1])
        self.utterances = [draw_utterance(text, rng) for text in instruction_corpus(count, seed)]
        self.features = [spoken_features(u, rng, n_mels) for u in self.utterances]
        self.transcripts = [encode_transcript(u.text) for u in self.utterances]

    def __len__(self) -> int:
        return len(self.utterances)

    def batch(self, size: int, seed: int, step: int) -> dict[str, Tensor]:
        """``size`` utterances drawn by ``(seed, step)``, zero-padded."""
        rng = np.random.default_rng([seed, step])
        index = rng.choice(len(self), size=min(size, len(self)), replace=False)
        features = [self.features[i] for i in index]
        return collate_speech(features, [self.transcripts[i] for i in index])


class SpokenInstructions:
    """The planner's instruction sensor for ``audio``: instructions spoken on demand, text ``t``
    in its ``variant``-th way (voice, speed, pitch, noise drawn from ``(seed, variant, t)``; a
    draw picks one of ``variants`` per example), synthesized once and cached. The same seed
    speaks a text the same way everywhere; another seed, in other voices."""

    needs: tuple[str, ...] = ()
    """Observation arrays it reads: none, it speaks the instruction's text."""

    def __init__(self, seed: int, n_mels: int = 80, variants: int = 1) -> None:
        self.seed, self.n_mels, self.variants = seed, n_mels, variants
        self._cache: dict[tuple[str, int], Tensor] = {}

    def prepare(
        self,
        instructions: Sequence[str],
        entities: Sequence[Sequence[str]],
        observation: Mapping[str, Tensor],
        draws: np.random.Generator,
    ) -> tuple[list[str], dict[str, Tensor]]:
        """The instructions (the prompt puts ``<audio>`` in their place) and their speech,
        each spoken one of ``variants`` ways drawn from ``draws``."""
        variants = draws.integers(self.variants, size=len(instructions)).tolist()
        return list(instructions), self.batch(list(instructions), variants)

    def features(self, text: str, variant: int = 0) -> Tensor:
        """``(T, n_mels)`` log-mel frames of ``text`` spoken its ``variant``-th way."""
        key = (text, variant)
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, variant, zlib.crc32(text.encode())])
            self._cache[key] = spoken_features(draw_utterance(text, rng), rng, self.n_mels)
        return self._cache[key]

    def batch(self, texts: list[str], variants: list[int] | None = None) -> dict[str, Tensor]:
        """The audio encoder's inputs for ``texts`` (zero-padded)."""
        variants = variants if variants is not None else [0] * len(texts)
        return collate_audio([self.features(t, v) for t, v in zip(texts, variants, strict=True)])


class TranscribedInstructions:
    """A speech recognizer in front of a planner that reads (a cascade, against the audio
    tokens of ``instruction_sensor=audio``): each instruction spoken in one of ``variants``
    ways of ``seed`` (``SpokenInstructions``) and recognized by a CTC-pretrained audio encoder,
    freely (greedy, written back by ``written_form``) or among the sentences it may be
    (``recognize``); the planner reads the result, and no sensor input goes with it."""

    needs: tuple[str, ...] = ()
    """Observation arrays it reads: none, it speaks the instruction's text."""

    def __init__(self, recognizer: AudioEncoder, seed: int, variants: int = 1) -> None:
        self.recognizer = recognizer.eval()
        self.speech = SpokenInstructions(seed, recognizer.config.n_mels, variants)
        self._free: dict[tuple[str, int], str] = {}  # (instruction, variant) -> transcript
        self._constrained: dict[tuple[str, tuple[str, ...]], str] = {}
        self._heard: dict[str, str] = {}  # instruction -> what recognize() last gave

    def prepare(
        self,
        instructions: Sequence[str],
        entities: Sequence[Sequence[str]],
        observation: Mapping[str, Tensor],
        draws: np.random.Generator,
    ) -> tuple[list[str], dict[str, Tensor]]:
        """The instructions as heard (each one of ``variants`` ways, drawn from ``draws``)
        and transcribed freely, each recording once; no sensor inputs."""
        variants = draws.integers(self.speech.variants, size=len(instructions)).tolist()
        return self._transcripts(list(zip(instructions, variants, strict=True))), {}

    def _transcripts(self, recordings: list[tuple[str, int]]) -> list[str]:
        """Free transcripts of ``(instruction, variant)`` recordings, each transcribed once."""
        new = [r for r in dict.fromkeys(recordings) if r not in self._free]
        if new:
            batch = self.speech.batch([text for text, _ in new], [v for _, v in new])
            with torch.no_grad():
                transcripts = self.recognizer.transcribe(batch)
            self._free.update(zip(new, map(written_form, transcripts), strict=True))
        return [self._free[r] for r in recordings]

    def recognize(self, instruction: str, phrasings: list[str] | None) -> str:
        """``instruction`` spoken its first way and recognized: freely, or, given the
        ``phrasings`` it may be, as the one the recognizer finds likeliest (constrained
        recognition, as command interfaces listen for their grammar's sentences; of two that
        ``normalize_transcript`` spells alike, the first)."""
        if phrasings is None:
            heard = self._transcripts([(instruction, 0)])[0]
        else:
            key = (instruction, tuple(phrasings))
            if key not in self._constrained:
                with torch.no_grad():
                    batch = self.speech.batch([instruction])
                    scores = self.recognizer.likelihoods(batch, phrasings)  # (K,)
                self._constrained[key] = phrasings[int(scores.argmax())]
            heard = self._constrained[key]
        self._heard[instruction] = heard
        return heard

    def heard(self, instruction: str) -> str | None:
        """What ``recognize`` last gave for ``instruction`` (None: not asked yet)."""
        return self._heard.get(instruction)


def collate_audio(features: list[Tensor]) -> dict[str, Tensor]:
    """``(T_i, M)`` utterances -> zero-padded ``(B, T, M)`` frames and ``(B,)`` lengths."""
    b, m = len(features), features[0].shape[1]
    audio = torch.zeros(b, max(f.shape[0] for f in features), m)
    for i, f in enumerate(features):
        audio[i, : f.shape[0]] = f
    return {AUDIO_FEATURES: audio, AUDIO_LENGTHS: torch.tensor([f.shape[0] for f in features])}


def collate_speech(features: list[Tensor], transcripts: list[list[int]]) -> dict[str, Tensor]:
    """``collate_audio`` plus the zero-padded transcripts (CTC pretraining)."""
    text = torch.zeros(len(transcripts), max(len(t) for t in transcripts), dtype=torch.long)
    for i, t in enumerate(transcripts):
        text[i, : len(t)] = torch.tensor(t)
    return {
        **collate_audio(features),
        TRANSCRIPT: text,
        TRANSCRIPT_LENGTHS: torch.tensor([len(t) for t in transcripts]),
    }
