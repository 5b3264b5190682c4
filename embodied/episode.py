"""One closed-loop episode: observe, plan a step, parse it, run its skill, repeat."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from envs.base import ArmEnv
from envs.plan import ParseFailure, SkillCall, format_step, parse_step, validate_step
from envs.tasks import AttemptQuestion, PlanTask, QuestionTask
from policies.base import SkillFactory, SkillOutcome, run_skill
from policies.factory import make_skill

TRAIN_SEED_START = 0
"""Training scenes use seeds from here up."""
EVAL_SEED_START = 100_000
"""Evaluation scenes use fixed seeds from here up, disjoint from training seeds."""


class EpisodeObserver(Protocol):
    """Gets told what happens, e.g. to record a video."""

    def on_episode_start(self, env: ArmEnv, instruction: str) -> None: ...
    def on_plan_step(self, step_index: int, text: str) -> None: ...
    def on_control_step(self, env: ArmEnv) -> None: ...
    def on_step_outcome(self, text: str) -> None: ...
    def on_episode_end(self, env: ArmEnv, verdict: str) -> None: ...


@dataclass
class StepRecord:
    """One planner output and what became of it."""

    text: str
    parse_error: str = ""
    success: bool | None = None  # the skill's outcome; None if it did not run
    reason: str = ""
    control_steps: int = 0
    injected: str = ""  # the failure the env injected into the skill ("" for none)


@dataclass
class EpisodeResult:
    seed: int
    task: str
    kind: str
    instruction: str
    success: bool
    steps: list[StepRecord] = field(default_factory=list)
    answer: str | None = None
    expected_answer: str | None = None
    progress: float = 0.0
    """Partial progress at the end, in [0, 1]: the fraction of blocks in their goal place (1.0 or
    0.0 for tasks without partial credit and for questions)."""
    control_steps: int = 0
    parse_failures: int = 0
    wall_time_s: float = 0.0

    @property
    def plan(self) -> str:
        return "; ".join(step.text for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_episode(
    env: gym.Env[dict[str, np.ndarray], np.ndarray],
    planner: Any,
    seed: int,
    family: str | None = None,
    max_plan_steps: int = 24,
    max_parse_failures: int = 3,
    observer: EpisodeObserver | None = None,
    options: dict[str, Any] | None = None,
    skills: SkillFactory = make_skill,
) -> EpisodeResult:
    """Run one episode with ``planner`` choosing steps and ``skills`` executing them (the
    scripted ones by default; ``policies.learned.LearnedSkills`` for learned policies).

    ``family`` names the task family; None lets the env draw one from its configured families.
    ``options`` are further reset options (``num_objects``, ``referral``, ...).

    Malformed or invalid steps are recorded and the planner asked again, up to
    ``max_parse_failures`` times; the episode ends at ``done()``, at ``max_plan_steps`` steps, or
    when the env's time limit truncates it. Success is the task predicate on the final state (for
    questions: the answer is correct).
    """
    started = time.perf_counter()
    reset_options = dict(options or {})
    if family:
        reset_options["task"] = family
    observation, info = env.reset(seed=seed, options=reset_options)
    sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
    task = sim.task
    assert task is not None
    result = EpisodeResult(seed, task.family, task.kind, task.instruction, success=False)
    if observer:
        observer.on_episode_start(sim, task.instruction)

    if isinstance(task, QuestionTask):
        if isinstance(task, AttemptQuestion):  # the robot tries first, then is asked about it
            step = StepRecord(format_step(task.attempt))
            result.steps.append(step)
            if observer:
                observer.on_plan_step(1, step.text)
            run = run_skill(
                env,
                skills(sim, task.attempt),
                observation,
                info,
                _control_observer(sim, observer),
                inject_failure=task.inject_failure,
            )
            observation, info = run.observation, run.info
            _record_outcome(step, run.outcome, result, observer)
            task = replace(task, answer=task.answer_after(sim.symbolic_state()))
            sim.task = task
        result.answer = planner.answer(sim, observation)
        result.expected_answer = task.answer
        result.success = task.is_correct(result.answer)
        result.progress = float(result.success)
        if observer:
            observer.on_plan_step(len(result.steps), f"A: {result.answer}")
    else:
        history: list[str] = []
        outcomes: list[bool] = []
        reasons: list[str] = []  # why each step of history failed ("" if it did not)
        while len(history) < max_plan_steps:
            text = planner.next_step(sim, observation, history, outcomes, reasons)
            parsed = parse_step(text)
            if isinstance(parsed, SkillCall):
                invalid = validate_step(parsed, sim.entities, sim.place_targets, sim.openables)
                parsed = invalid if invalid is not None else parsed
            if isinstance(parsed, ParseFailure):
                result.parse_failures += 1
                result.steps.append(StepRecord(text, parse_error=parsed.reason))
                planner.rejected(text, parsed.reason)
                if result.parse_failures > max_parse_failures:
                    break
                continue
            step = StepRecord(format_step(parsed))
            result.steps.append(step)
            history.append(step.text)
            if observer:
                observer.on_plan_step(len(history), step.text)
            if parsed.verb == "done":
                break
            skill = skills(sim, parsed)
            run = run_skill(env, skill, observation, info, _control_observer(sim, observer))
            observation, info = run.observation, run.info
            _record_outcome(step, run.outcome, result, observer)
            outcomes.append(run.outcome.success)
            reasons.append("" if run.outcome.success else run.outcome.reason)
            if run.episode_over:
                break
        result.success = sim.is_success()
        assert isinstance(task, PlanTask)
        result.progress = task.progress(sim.symbolic_state())
    result.wall_time_s = time.perf_counter() - started
    if observer:
        observer.on_episode_end(sim, "SUCCESS" if result.success else "FAILURE")
    return result


def _control_observer(
    sim: ArmEnv, observer: EpisodeObserver | None
) -> Callable[[dict[str, np.ndarray], dict[str, Any]], None]:
    def on_control_step(_obs: dict[str, np.ndarray], _info: dict[str, Any]) -> None:
        if observer:
            observer.on_control_step(sim)

    return on_control_step


def _record_outcome(
    step: StepRecord, outcome: SkillOutcome, result: EpisodeResult, observer: EpisodeObserver | None
) -> None:
    step.success, step.reason, step.injected = outcome.success, outcome.reason, outcome.injected
    step.control_steps = outcome.steps
    result.control_steps += outcome.steps
    if observer:
        observer.on_step_outcome("ok" if step.success else f"failed: {step.reason}")
