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

from embodied.data.storage import NOT_RUN, EpisodeRecord, Frame
from embodied.episode import StepRecord, run_episode
from embodied.planners import OraclePlanner
from envs.base import ArmEnv


class FrameRecorder:
    """An EpisodeObserver that keeps the observation at every plan step."""

    def __init__(self, images: bool) -> None:
        self.images = images
        self.sim: ArmEnv | None = None
        self.frames: list[Frame] = []
        self.scene_config = ""

    def capture(self, target: str) -> Frame:
        assert self.sim is not None, "the episode has not started"
        return Frame(
            self.sim.current_observation(images=self.images),
            self.sim.symbolic_state().to_json(),
            target,
        )

    def on_episode_start(self, env: ArmEnv, instruction: str) -> None:
        self.sim, self.frames = env, []
        self.scene_config = env.scene_config()  # the scene as reset made it

    def on_plan_step(self, step_index: int, text: str) -> None:
        assert self.sim is not None and self.sim.task is not None
        if self.sim.task.kind == "plan":  # a question's frame is the scene once it is asked
            self.frames.append(self.capture(text))

    def on_control_step(self, env: ArmEnv) -> None:
        pass

    def on_step_outcome(self, text: str) -> None:
        pass

    def on_episode_end(self, env: ArmEnv, verdict: str) -> None:
        pass


def record_episode(
    env: gym.Env[dict[str, np.ndarray], np.ndarray],
    seed: int,
    family: str,
    split: str,
    options: dict[str, Any],
    images: bool = True,
    max_plan_steps: int = 24,
) -> EpisodeRecord:
    """Run the oracle on one scene and return the record of it."""
    recorder = FrameRecorder(images)
    result = run_episode(
        env,
        OraclePlanner(),
        seed,
        family,
        max_plan_steps=max_plan_steps,
        observer=recorder,
        options=options,
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
    return record


def _fill_outcome(frame: Frame, step: StepRecord) -> None:
    frame.skill_success = NOT_RUN if step.success is None else int(step.success)
    frame.skill_reason = step.reason
    frame.injected = step.injected
    frame.control_steps = step.control_steps
