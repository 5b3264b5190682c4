"""Planners: given the current observation and the steps so far, write the next step as text.

Planners speak text, exactly as a language model does, so that the episode loop parses every
planner's output the same way. The oracle reads the simulator's symbolic state; the learned planner
(a later issue) reads observations only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from envs.base import ArmEnv
from envs.plan import format_step
from envs.tasks import PlanTask, QuestionTask


class Planner(ABC):
    """Writes the next plan step, or the answer to a question."""

    @abstractmethod
    def next_step(self, env: ArmEnv, observation: dict[str, Any], history: list[str]) -> str:
        """The next step of the plan, e.g. ``"pick(obj_3)"``; ``"done()"`` when finished."""

    @abstractmethod
    def answer(self, env: ArmEnv, observation: dict[str, Any]) -> str:
        """The answer to the episode's question, e.g. ``"red"``."""


class OraclePlanner(Planner):
    """The task's own closed-loop oracle: privileged, always right, the ceiling for learned ones."""

    def next_step(self, env: ArmEnv, observation: dict[str, Any], history: list[str]) -> str:
        task = env.task
        if not isinstance(task, PlanTask):
            raise TypeError(f"next_step() needs a planning task, got {type(task).__name__}")
        return format_step(task.oracle_step(env.symbolic_state()))

    def answer(self, env: ArmEnv, observation: dict[str, Any]) -> str:
        task = env.task
        if not isinstance(task, QuestionTask):
            raise TypeError(f"answer() needs a question, got {type(task).__name__}")
        return task.answer


PLANNERS: dict[str, type[Planner]] = {"oracle": OraclePlanner}
"""Planners by config name."""


def make_planner(name: str) -> Planner:
    if name not in PLANNERS:
        raise ValueError(f"planner={name!r}: allowed {sorted(PLANNERS)}")
    return PLANNERS[name]()
