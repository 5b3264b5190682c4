"""The skill interface: a skill is made from one parsed plan step and drives the env step by step.

The episode loop owns ``env.step``: it asks the skill for an action, steps the env, and repeats
until the skill reports an outcome. Scripted and learned skills look the same from outside.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from envs.base import ArmEnv
from envs.plan import SkillCall

Observation = dict[str, np.ndarray]


@dataclass(frozen=True)
class SkillOutcome:
    """How a skill ended, judged from the simulator state."""

    success: bool
    reason: str = ""
    """Why it failed ("" on success): a precondition, a timeout, a grasp that did not hold, ..."""
    steps: int = 0
    """Control steps it took."""
    injected: str = ""
    """The failure the env injected into this call ("slip", "stuck"; "" for none), so that data
    can be labelled with why a skill failed."""


class Skill(ABC):
    """One skill call in progress. ``act`` returns the next action, or None once it has finished."""

    def __init__(self, call: SkillCall) -> None:
        self.call = call
        self.outcome: SkillOutcome | None = None

    @abstractmethod
    def act(self, observation: Observation) -> np.ndarray | None:
        """The next action for env.step, or None when done (``self.outcome`` is then set)."""


SkillFactory = Callable[[ArmEnv, SkillCall], Skill]
"""Makes the skill that executes a parsed plan step (``policies.factory.make_skill``: the
scripted skills; ``policies.learned.LearnedSkills``: learned policies)."""


@dataclass(frozen=True)
class SkillRun:
    """A finished skill call: its outcome and the env's state after its last step."""

    outcome: SkillOutcome
    observation: Observation
    info: dict[str, Any]
    episode_over: bool
    """True when the env terminated or truncated during the skill."""


StepCallback = Callable[[Observation, dict[str, Any]], None]


def run_skill(
    env: gym.Env[Observation, np.ndarray],
    skill: Skill,
    observation: Observation,
    info: dict[str, Any],
    on_step: StepCallback | None = None,
    inject_failure: bool | None = None,
) -> SkillRun:
    """Step the env with the skill's actions until it finishes or the episode ends.

    The env may inject a failure into the call (``ArmEnv.begin_skill``: at its configured rate,
    or always/never when ``inject_failure`` says so); the outcome names it.
    """
    sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
    injected = sim.begin_skill(skill.call, inject_failure)
    try:
        steps = 0
        while True:
            action = skill.act(observation)
            if action is None:
                assert skill.outcome is not None, f"{type(skill).__name__} ended without an outcome"
                # A call that failed its preconditions never acted: nothing was injected into it.
                acted = skill.outcome.steps > 0
                outcome = replace(skill.outcome, injected=injected if acted else "")
                return SkillRun(outcome, observation, info, episode_over=False)
            observation, _, terminated, truncated, info = env.step(action)
            steps += 1
            if on_step is not None:
                on_step(observation, info)
            if terminated or truncated:
                reason = "episode terminated" if terminated else "episode time limit reached"
                outcome = SkillOutcome(False, reason, steps, injected)
                return SkillRun(outcome, observation, info, episode_over=True)
    finally:
        sim.end_skill()
