"""Planners: given the current observation and the steps so far, write the next step as text.

Planners speak text, exactly as a language model does, so that the episode loop parses every
planner's output the same way. The oracle reads the simulator's symbolic state; the learned
planner (``embodied.palme_planner``, imported only when asked for: it needs torch) reads
observations only: the instruction, what its sensor sees, and the steps so far.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from envs.base import ArmEnv
from envs.plan import format_step
from envs.tasks import PlanTask, QuestionTask


class Planner(ABC):
    """Writes the next plan step, or the answer to a question."""

    @abstractmethod
    def next_step(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        history: list[str],
        outcomes: list[bool] | None = None,
        reasons: list[str] | None = None,
    ) -> str:
        """The next step of the plan, e.g. ``"pick(obj_3)"``; ``"done()"`` when finished.
        ``outcomes[i]``: whether the skill of ``history[i]`` reported success; ``reasons[i]``:
        why it failed, as the skill reported it ("" where it succeeded)."""

    @abstractmethod
    def answer(self, env: ArmEnv, observation: dict[str, Any]) -> str:
        """The answer to the episode's question, e.g. ``"red"``."""

    def rejected(self, text: str, reason: str) -> None:  # noqa: B027 (optional hook)
        """The episode loop could not use ``text`` (malformed or invalid step)."""


class OraclePlanner(Planner):
    """The task's own closed-loop oracle: privileged, always right, the ceiling for learned ones."""

    def next_step(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        history: list[str],
        outcomes: list[bool] | None = None,
        reasons: list[str] | None = None,
    ) -> str:
        task = env.task
        if not isinstance(task, PlanTask):
            raise TypeError(f"next_step() needs a planning task, got {type(task).__name__}")
        return format_step(task.oracle_step(env.symbolic_state()))

    def answer(self, env: ArmEnv, observation: dict[str, Any]) -> str:
        task = env.task
        if not isinstance(task, QuestionTask):
            raise TypeError(f"answer() needs a question, got {type(task).__name__}")
        return task.answer


MISTAKE_PICKS = ("any", "blocked")
"""Which object ``MistakenOraclePlanner``'s mistaken picks take: any other, or a blocked one."""


class MistakenOraclePlanner(OraclePlanner):
    """The oracle, except that at each pick or place step, with probability ``mistake_rate``,
    it makes a plausible mistake instead: it picks another object, or puts the held one
    somewhere else (another object, another place). The mistake runs in physics like any step
    (a covered cube's pick fails there as it would for a learned planner); ``generate``'s
    ``mistake_rate`` records the oracle's step as the frame's target, so the data shows the
    states a planner's mistakes lead to and the way back from them (DART's idea, Laskey et al.
    2017, at the planner's level). ``picks="blocked"`` makes a mistaken pick take an object
    that cannot be picked now (another covers it) whenever the scene has one."""

    def __init__(self, mistake_rate: float, seed: int, picks: str = "any") -> None:
        if not 0.0 <= mistake_rate < 1.0:
            raise ValueError(f"mistake_rate={mistake_rate}: must be in [0, 1)")
        if picks not in MISTAKE_PICKS:
            raise ValueError(f"picks={picks!r}: allowed {MISTAKE_PICKS}")
        self.mistake_rate = mistake_rate
        self.picks = picks
        self.rng = np.random.default_rng(seed)

    def next_step(
        self,
        env: ArmEnv,
        observation: dict[str, Any],
        history: list[str],
        outcomes: list[bool] | None = None,
        reasons: list[str] | None = None,
    ) -> str:
        right = super().next_step(env, observation, history, outcomes, reasons)
        if self.rng.random() >= self.mistake_rate:
            return right
        held = env.held()
        if held is None:
            candidates = list(env.entities)
            if self.picks == "blocked":
                blocked = [e for e in candidates if env.pick_blocker(e) is not None]
                candidates = blocked or candidates
            wrong = [f"pick({e})" for e in candidates]
        else:
            targets = [t for t in (*env.entities, *env.place_targets) if t != held]
            wrong = [f"place({held}, {t})" for t in targets]
        wrong = [step for step in wrong if step != right]
        if right == "done()" or not wrong:
            return right
        return wrong[int(self.rng.integers(len(wrong)))]


PLANNERS = ("oracle", "palme")
"""Planners by config name."""


def make_planner(name: str, checkpoint: str | Path | None = None, **options: Any) -> Planner:
    """The oracle, or a PaLM-E checkpoint as planner (``options``: PalmEPlanner's; the oracle
    needs none)."""
    if name == "oracle":
        return OraclePlanner()
    if name == "palme":
        if checkpoint is None:
            raise ValueError("planner=palme needs a checkpoint (a directory from embodied.train)")
        from embodied.palme_planner import PalmEPlanner

        return PalmEPlanner(checkpoint, **options)
    raise ValueError(f"planner={name!r}: allowed {PLANNERS}")
