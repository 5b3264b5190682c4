"""Record one oracle episode as training data: what the planner saw at every step, what it should
have written, and how each skill went (kitchen failures, injected or not, included).

The episode runs through ``embodied.episode.run_episode`` exactly as a rollout does, with the
oracle planner; a ``FrameRecorder`` observer captures an observation whenever the planner is asked.
Skills run without rendering (the env is made with ``observe_images=False``); the views are
rendered only at those moments, which is most of what makes generation fast.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from embodied.data.storage import NOT_RUN, Demo, EpisodeRecord, Frame
from embodied.episode import StepRecord, run_episode
from embodied.planners import MistakenOraclePlanner, OraclePlanner
from envs import keys
from envs.base import ArmEnv
from envs.geometry import yaw_of
from envs.plan import SkillCall, format_step
from envs.tasks import PlanTask
from policies.base import Observation, Skill
from policies.factory import make_skill
from policies.scripted import ScriptedSkill, tool_action

DEMO_KEYS = (keys.RGB, keys.SEGMENTATION, keys.PROPRIO, keys.OBJECTS, keys.OBJECT_MASK)
"""The observation arrays a demonstration keeps at every control step (not depth: the
learned skills do not read it, and it is most of the bytes)."""


class FrameRecorder:
    """An EpisodeObserver that keeps the observation at every plan step, with the oracle's
    step for that state as its target and, when another step ran, that step as executed."""

    def __init__(self, images: bool) -> None:
        self.images = images
        self.sim: ArmEnv | None = None
        self.frames: list[Frame] = []
        self.scene_config = ""

    def capture(self, target: str, executed: str = "") -> Frame:
        assert self.sim is not None, "the episode has not started"
        return Frame(
            self.sim.current_observation(images=self.images),
            self.sim.symbolic_state().to_json(),
            target,
            executed=executed,
        )

    def on_episode_start(self, env: ArmEnv, instruction: str) -> None:
        self.sim, self.frames = env, []
        self.scene_config = env.scene_config()  # the scene as reset made it

    def on_plan_step(self, step_index: int, text: str) -> None:
        assert self.sim is not None and self.sim.task is not None
        task = self.sim.task
        if isinstance(task, PlanTask):  # a question's frame is the scene once it is asked
            right = format_step(task.oracle_step(self.sim.symbolic_state()))
            self.frames.append(self.capture(right, "" if text == right else text))

    def on_control_step(self, env: ArmEnv) -> None:
        pass

    def on_step_outcome(self, text: str) -> None:
        pass

    def on_episode_end(self, env: ArmEnv, verdict: str) -> None:
        pass


NOISE_CORRELATION = 0.9
"""Per control step, how much of the demonstration noise's offset carries over: it drifts over
~10 steps (a few centimetres of travel), as a learned policy's error does, where white noise
would be smoothed away by the arm."""
NOISE_SPEED = 0.02
"""The script's target speed (metres per step: its travel speed) at which the noise is applied
in full; slower, proportionally less (40% on the final approach, none while the fingers close),
so that grasps and releases mostly still succeed and the demonstration is kept."""


class DemonstratedSkill(Skill):
    """A scripted skill whose every step is kept: the views (rendered even when the env does
    not render), and the tool target the script commanded. With ``noise`` (metres) the arm is
    sent to the commanded target plus a drifting offset (DART): the record keeps the command."""

    def __init__(
        self,
        skill: ScriptedSkill,
        sim: ArmEnv,
        noise: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(skill.call)
        self.skill, self.sim = skill, sim
        self.observations: list[dict[str, np.ndarray]] = []
        self.commands: list[np.ndarray] = []
        self.noise, self.rng = noise, rng or np.random.default_rng(0)
        self.offset = np.zeros(3)
        self._last_target: np.ndarray | None = None
        # An AR(1) offset with stationary std ``noise``: x' = c x + sqrt(1 - c^2) noise e.
        self._innovation = noise * np.sqrt(1.0 - NOISE_CORRELATION**2)

    def act(self, observation: Observation) -> np.ndarray | None:
        seen = self.sim.current_observation(images=False)
        seen[keys.RGB], _, seen[keys.SEGMENTATION] = self.sim.render_views(self.sim.cameras)
        last_opening = float(self.skill.command[4]) if self.commands else None
        action = self.skill.act(observation)
        self.outcome = self.skill.outcome
        if action is None:  # the stop: the tool where it is, the fingers as last commanded
            position, quaternion = self.sim.robot.tool_pose()
            width = seen[keys.PROPRIO][keys.PROPRIO_GRIPPER_WIDTH][0]
            opening = width if last_opening is None else last_opening
            command = np.array([*position, yaw_of(quaternion), opening], dtype=np.float32)
        else:
            command = self.skill.command.copy()
            if self.noise:
                self.offset = NOISE_CORRELATION * self.offset + self.rng.normal(
                    0.0, self._innovation, 3
                )
                last = command[:3] if self._last_target is None else self._last_target
                speed = float(np.linalg.norm(command[:3] - last))
                self._last_target = command[:3]
                strayed = command[:3] + self.offset * min(1.0, speed / NOISE_SPEED)
                action = tool_action(self.sim, strayed, float(command[3]), float(command[4]))
        self.observations.append({key: seen[key] for key in DEMO_KEYS})
        self.commands.append(command)
        return action

    def demo(self, step: StepRecord) -> Demo:
        stacked = {
            key: np.stack([o[key] for o in self.observations]) for key in self.observations[0]
        }
        return Demo(
            step.text,
            bool(step.success),
            step.reason,
            step.injected,
            stacked,
            np.stack(self.commands),
        )


class DemoRecorder:
    """A skill factory (``run_episode(skills=...)``) that runs the scripted skills and keeps
    each call as a ``DemonstratedSkill``."""

    def __init__(self, noise: float = 0.0, seed: int = 0) -> None:
        self.skills: list[DemonstratedSkill] = []
        self.noise, self.rng = noise, np.random.default_rng(seed)

    def __call__(self, sim: ArmEnv, call: SkillCall) -> Skill:
        skill = make_skill(sim, call)
        assert isinstance(skill, ScriptedSkill), "demonstrations come from the scripted skills"
        self.skills.append(DemonstratedSkill(skill, sim, self.noise, self.rng))
        return self.skills[-1]

    def demos(self, steps: list[StepRecord]) -> list[Demo]:
        ran = [step for step in steps if step.success is not None]
        assert len(ran) == len(self.skills), "one demonstration per skill that ran"
        return [skill.demo(step) for skill, step in zip(self.skills, ran, strict=True)]


def record_episode(
    env: gym.Env[dict[str, np.ndarray], np.ndarray],
    seed: int,
    family: str,
    split: str,
    options: dict[str, Any],
    images: bool = True,
    max_plan_steps: int = 24,
    demos: bool = False,
    demo_noise: float = 0.0,
    mistake_rate: float = 0.0,
    mistake_picks: str = "any",
) -> EpisodeRecord:
    """Run the oracle on one scene and return the record of it; ``demos`` keeps every skill
    call step by step as well (``demo_noise``: metres of DART noise, ``DemonstratedSkill``);
    ``mistake_rate``: the oracle makes that share of its pick and place steps wrong
    (``MistakenOraclePlanner``, its picks chosen as ``mistake_picks`` says), each frame's
    target staying the right step."""
    recorder = FrameRecorder(images)
    demo_recorder = DemoRecorder(demo_noise, seed)
    planner = (
        MistakenOraclePlanner(mistake_rate, seed, mistake_picks)
        if mistake_rate
        else OraclePlanner()
    )
    result = run_episode(
        env,
        planner,
        seed,
        family,
        max_plan_steps=max_plan_steps,
        observer=recorder,
        options=options,
        skills=demo_recorder if demos else make_skill,
    )
    sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
    assert sim.spec is not None and sim.task is not None
    record = EpisodeRecord(
        seed=seed,
        split=split,
        env=sim.spec.id,
        family=result.task,
        kind=result.kind,
        instruction=result.instruction,
        answer=result.expected_answer or "",
        success=result.success,
        progress=result.progress,
        scene_config=recorder.scene_config,
        entities=list(sim.observed_names),
    )
    if result.kind == "question":
        record.frames = [recorder.capture(result.expected_answer or "")]
        if result.steps:  # the robot tried a skill before the question (failure detection)
            attempt = result.steps[0]
            record.attempt = {
                "call": attempt.text,
                "success": attempt.success,
                "reason": attempt.reason,
                "injected": attempt.injected,
            }
    else:
        steps = [step for step in result.steps if not step.parse_error]
        assert len(steps) == len(recorder.frames), "one frame per plan step"
        for frame, step in zip(recorder.frames, steps, strict=True):
            _fill_outcome(frame, step)
        record.frames = recorder.frames
    if demos:
        record.demos = demo_recorder.demos(result.steps)
    return record


def _fill_outcome(frame: Frame, step: StepRecord) -> None:
    frame.skill_success = NOT_RUN if step.success is None else int(step.success)
    frame.skill_reason = step.reason
    frame.injected = step.injected
    frame.control_steps = step.control_steps
