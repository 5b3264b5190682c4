"""A trained PaLM-E checkpoint as the closed-loop planner."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodied.config import DECODING, FAILURE_DETECTION
from embodied.data.speech import HELD_OUT_SPEECH_SEED, instruction_speech
from embodied.decoding import TokenTrie, greedy_decode
from embodied.model import PalmE
from embodied.planners import Planner
from embodied.sentence import encode
from envs.base import ArmEnv
from envs.plan import VERB_ARITY

ATTEMPT_VERBS = ("pick", "open", "close")
"""Steps the kitchen's success-detection family asks about ("Was pick(can) successful?")."""


def valid_steps(env: ArmEnv) -> list[str]:
    """Every skill call the scene admits: its entities, place targets and openables."""
    entities = list(env.entities)
    steps = [f"pick({e})" for e in entities]
    steps += [
        f"place({e}, {t})" for e in entities for t in [*entities, *env.place_targets] if t != e
    ]
    steps += [f"{verb}({o})" for verb in ("open", "close") for o in env.openables]
    assert set(VERB_ARITY) == {"pick", "place", "open", "close", "done"}, "update valid_steps"
    return [*steps, "done()"]


@dataclass
class PlanningStats:
    """What the learned planner spent: model calls and their wall time."""

    calls: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)


class PalmEPlanner(Planner):
    """A trained PaLM-E checkpoint as the planner: one greedy decode per step (KV cache).

    ``decoding="constrained"`` restricts steps to valid skill calls over the entities present;
    in ``free`` mode (PaLM-E's) a step the episode loop rejects is decoded again constrained,
    so a malformed step costs one retry, never the episode. ``failure_detection="model"``
    asks the model itself, after each pick/open/close, "Was pick(can) successful?" and marks
    the history by its answer (the kitchen's recovery); ``"skill"`` trusts the skills' reports.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        decoding: str = "free",
        failure_detection: str = "skill",
        max_new_tokens: int = 24,
        device: str = "cpu",
    ) -> None:
        if decoding not in DECODING:
            raise ValueError(f"decoding={decoding!r}: allowed {DECODING}")
        if failure_detection not in FAILURE_DETECTION:
            raise ValueError(
                f"failure_detection={failure_detection!r}: allowed {FAILURE_DETECTION}"
            )
        self.model = PalmE.load(checkpoint).to(device).eval()
        if self.model.config.spoken_instructions and failure_detection == "model":
            raise ValueError(
                "failure_detection='model' asks the model questions in text, and this "
                "checkpoint hears its instructions spoken: use failure_detection='skill'"
            )
        # A model that hears its instructions gets the task's spoken in voices it never heard.
        self._speech = instruction_speech(self.model.speech_encoder, HELD_OUT_SPEECH_SEED)
        self.decoding, self.failure_detection = decoding, failure_detection
        self.max_new_tokens = max_new_tokens
        self.stats = PlanningStats()
        self._retry_constrained = False
        self._detected: dict[tuple[int, str], bool] = {}
        self._tries: dict[tuple[str, ...], TokenTrie] = {}  # allowed texts -> their trie

    def _generate(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        prompt: str,
        allowed: list[str] | None,
    ) -> str:
        started = time.perf_counter()
        missing = [key for key in self.model.encoder.inputs if key not in observation]
        if missing:
            raise ValueError(
                f"the observation lacks {missing}, which the planner's {self.model.encoder.name} "
                f"encoder reads: make the env render them (observe_images=true)"
            )
        batch = {  # only what the sensor reads, with a batch dimension
            key: torch.from_numpy(np.asarray(observation[key])[None])
            for key in self.model.encoder.inputs
        }
        if self._speech is not None:  # the user speaks the task's instruction
            assert env.task is not None
            batch |= self._speech.batch([env.task.instruction])
        batch = {key: value.to(self.model.device) for key, value in batch.items()}
        tokenizer = self.model.tokenizer
        input_ids = encode(tokenizer, [prompt]).input_ids.to(self.model.device)  # (1, T)
        with torch.no_grad():
            embeddings = self.model.embed(input_ids, batch)  # (1, T, D)
        trie = None
        if allowed is not None:
            key = tuple(allowed)
            if key not in self._tries:
                self._tries[key] = TokenTrie.of_texts(tokenizer, allowed)
            trie = self._tries[key]
        tokens = greedy_decode(
            self.model.lm, embeddings, tokenizer.eos_token_id, self.max_new_tokens, trie
        )
        elapsed = time.perf_counter() - started
        self.stats.calls += 1
        self.stats.seconds += elapsed
        self.stats.latencies.append(elapsed)
        return str(tokenizer.decode(tokens)).strip()

    def _history_success(
        self, env: ArmEnv, observation: dict[str, Any], history: list[str], outcomes: list[bool]
    ) -> list[bool]:
        if self.failure_detection == "skill":
            return outcomes
        marks = list(outcomes)
        for i, step in enumerate(history):
            if step.split("(")[0] not in ATTEMPT_VERBS:
                continue
            key = (i, step)
            if key not in self._detected:  # asked once, right after the step ran
                question = self.model.prompt(
                    f"Was {step} successful?", "question", list(env.observed_names)
                )
                self._detected[key] = (
                    self._generate(env, observation, question, ["yes", "no"]) == "yes"
                )
            marks[i] = self._detected[key]
        return marks

    def next_step(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        history: list[str],
        outcomes: list[bool] | None = None,
    ) -> str:
        if not history:
            self._detected = {}
        outcomes = list(outcomes) if outcomes is not None else [True] * len(history)
        task = env.task
        assert task is not None
        marks = self._history_success(env, observation, history, outcomes)
        prompt = self.model.prompt(
            task.instruction, "plan", list(env.observed_names), history, marks
        )
        constrained = self.decoding == "constrained" or self._retry_constrained
        self._retry_constrained = False
        return self._generate(env, observation, prompt, valid_steps(env) if constrained else None)

    def rejected(self, text: str, reason: str) -> None:
        self._retry_constrained = True

    def answer(self, env: ArmEnv, observation: dict[str, Any]) -> str:
        task = env.task
        assert task is not None
        prompt = self.model.prompt(task.instruction, "question", list(env.observed_names))
        return self._generate(env, observation, prompt, None)
