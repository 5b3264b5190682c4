"""A trained PaLM-E checkpoint as the closed-loop planner."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodied.config import DECODING, FAILURE_DETECTION, RECOGNITION
from embodied.data.speech import TranscribedInstructions
from embodied.decoding import MAX_REPLY_TOKENS, TokenTrie, greedy_decode
from embodied.entity_names import EntityNames
from embodied.instructions import HELD_OUT_SEED, instruction_inputs, transcribed_instructions
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
    """What the learned planner spent: model calls and their wall time (``latencies``, one
    per call), and the instruction sensor's input work (speech synthesis, region drawing).
    ``seconds`` is the sum of both, all the time planning took."""

    calls: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    instruction_seconds: float = 0.0


class PalmEPlanner(Planner):
    """A trained PaLM-E checkpoint as the planner: one greedy decode per step (KV cache).

    ``decoding="constrained"`` restricts steps to valid skill calls over the entities present;
    in ``free`` mode (PaLM-E's) a step the episode loop rejects is decoded again constrained,
    so a malformed step costs one retry, never the episode. ``failure_detection="model"``
    asks the model itself, after each pick/open/close, "Was pick(can) successful?" and marks
    the history by its answer (the kitchen's recovery); ``"skill"`` trusts the skills' reports
    (and, for a model trained with ``failure_reasons``, shows their reasons). ``recognizer``
    (a CTC audio encoder's directory) puts speech recognition in front of a planner that
    reads: it reads what the recognizer makes of its instruction spoken in voices training
    never used, a free transcript (``recognition="free"``) or the likeliest of the sentences
    the env's task families can pose in the scene (``"constrained"``, ``ArmEnv.all_instructions``;
    free where a family cannot list them).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        decoding: str = "free",
        failure_detection: str = "skill",
        max_new_tokens: int = MAX_REPLY_TOKENS,
        device: str = "cpu",
        recognizer: str | Path | None = None,
        recognition: str = "free",
    ) -> None:
        if decoding not in DECODING:
            raise ValueError(f"decoding={decoding!r}: allowed {DECODING}")
        if recognition not in RECOGNITION:
            raise ValueError(f"recognition={recognition!r}: allowed {RECOGNITION}")
        if failure_detection not in FAILURE_DETECTION:
            raise ValueError(
                f"failure_detection={failure_detection!r}: allowed {FAILURE_DETECTION}"
            )
        self.model = PalmE.load(checkpoint).to(device).eval()
        if self.model.config.instruction_sensor == "audio" and failure_detection == "model":
            raise ValueError(
                "failure_detection='model' asks the model questions in text, and this "
                "checkpoint hears its instructions spoken: use failure_detection='skill'"
            )
        # The task's instruction spoken in voices training never used, or an object it names
        # pointed at on the current views; None when the model reads it.
        self._inputs = instruction_inputs(self.model.instruction_encoder, held_out=True)
        if recognizer is not None:  # spoken, then transcribed for a planner that reads
            if self._inputs is not None:
                raise ValueError(
                    f"recognizer={recognizer}: this checkpoint takes its instructions through "
                    f"its {self.model.config.instruction_sensor} sensor; a recognizer goes in "
                    f"front of a planner that reads them"
                )
            self._inputs = transcribed_instructions(recognizer, held_out=True)
        self.decoding, self.failure_detection = decoding, failure_detection
        self.recognition = recognition
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
        instruction_arrays: dict[str, torch.Tensor],
    ) -> str:
        started = time.perf_counter()
        read = [key for key in self.model.inputs if key not in instruction_arrays]
        missing = [key for key in read if key not in observation]
        if missing:
            raise ValueError(
                f"the observation lacks {missing}, which the planner's encoders read: make the "
                f"env render them (observe_images=true)"
            )
        batch = {  # only what the sensors read, with a batch dimension
            key: torch.from_numpy(np.asarray(observation[key])[None]) for key in read
        }
        batch = {
            key: value.to(self.model.device)
            for key, value in {**batch, **instruction_arrays}.items()
        }
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

    def _instruction(
        self, env: ArmEnv, observation: dict[str, Any], history: list[str]
    ) -> tuple[str, dict[str, torch.Tensor]]:
        """The task's instruction as the prompt carries it, and the instruction sensor's
        inputs (none when the model reads it): its speech, or a region on the current views
        (drawn from the episode's instruction and step, so a rerun draws the same)."""
        task = env.task
        assert task is not None
        if self._inputs is None:
            return task.instruction, {}
        started = time.perf_counter()
        if isinstance(self._inputs, TranscribedInstructions):
            phrasings = env.all_instructions() if self.recognition == "constrained" else None
            heard = self._inputs.recognize(task.instruction, phrasings)
            elapsed = time.perf_counter() - started
            self.stats.instruction_seconds += elapsed
            self.stats.seconds += elapsed
            return heard, {}
        arrays = {
            key: torch.from_numpy(np.asarray(observation[key])[None]) for key in self._inputs.needs
        }
        draws = np.random.default_rng(
            [HELD_OUT_SEED, zlib.crc32(task.instruction.encode()), len(history)]
        )
        texts, extra = self._inputs.prepare(
            [task.instruction], [list(env.observed_names)], arrays, draws
        )
        elapsed = time.perf_counter() - started
        self.stats.instruction_seconds += elapsed
        self.stats.seconds += elapsed
        return texts[0], extra

    def heard(self, instruction: str) -> str | None:
        """What the planner read for ``instruction`` through its recognizer (None: it has none,
        or has not heard that instruction)."""
        if not isinstance(self._inputs, TranscribedInstructions):
            return None
        return self._inputs.heard(instruction)

    def _names(self, env: ArmEnv) -> EntityNames:
        """The scene's labels in the model's names (``ModelConfig.entity_names``)."""
        colours = {spec.name: getattr(spec, "colour", None) for spec in env.entity_specs()}
        return EntityNames.of_scene(self.model.config.entity_names, colours)

    def _history_success(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        history: list[str],
        outcomes: list[bool],
        instruction_arrays: dict[str, torch.Tensor],
    ) -> list[bool]:
        if self.failure_detection == "skill":
            return outcomes
        marks = list(outcomes)
        names = self._names(env)
        entities = [names.to_model(e) for e in env.observed_names]
        for i, step in enumerate(history):
            if step.split("(")[0] not in ATTEMPT_VERBS:
                continue
            key = (i, step)
            if key not in self._detected:  # asked once, right after the step ran
                question = self.model.prompt(
                    names.to_model(f"Was {step} successful?"), "question", entities
                )
                answer = self._generate(
                    env, observation, question, ["yes", "no"], instruction_arrays
                )
                self._detected[key] = answer == "yes"
            marks[i] = self._detected[key]
        return marks

    def next_step(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        history: list[str],
        outcomes: list[bool] | None = None,
        reasons: list[str] | None = None,
    ) -> str:
        if not history:
            self._detected = {}
        outcomes = list(outcomes) if outcomes is not None else [True] * len(history)
        # The skills' reasons go with the skills' marks; the model's own detection gives none.
        reasons = list(reasons or []) if self.failure_detection == "skill" else []
        instruction, arrays = self._instruction(env, observation, history)
        marks = self._history_success(env, observation, history, outcomes, arrays)
        names = self._names(env)
        prompt = self.model.prompt(
            names.to_model(instruction),
            "plan",
            [names.to_model(e) for e in env.observed_names],
            [names.to_model(step) for step in history],
            marks,
            [names.to_model(reason) for reason in reasons],
        )
        constrained = self.decoding == "constrained" or self._retry_constrained
        self._retry_constrained = False
        allowed = [names.to_model(s) for s in valid_steps(env)] if constrained else None
        return names.to_env(self._generate(env, observation, prompt, allowed, arrays))

    def rejected(self, text: str, reason: str) -> None:
        self._retry_constrained = True

    def answer(self, env: ArmEnv, observation: dict[str, Any]) -> str:
        instruction, arrays = self._instruction(env, observation, [])
        names = self._names(env)
        entities = [names.to_model(e) for e in env.observed_names]
        prompt = self.model.prompt(names.to_model(instruction), "question", entities)
        return self._generate(env, observation, prompt, None, arrays)
