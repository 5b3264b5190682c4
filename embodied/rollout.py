"""``python -m embodied.rollout``: run closed-loop episodes, print them, save videos and a summary.

Examples::

    python -m embodied.rollout                       # 6 tabletop episodes, oracle planner, videos
    python -m embodied.rollout task=p2 episodes=20 video=false
    python -m embodied.rollout env.num_objects=6 env.views=[front,overhead]
    python -m embodied.rollout env=kitchen            # the kitchen's four planning tasks
    python -m embodied.rollout env=kitchen task=success_detection env.failure_rate=0.2
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
from omegaconf import DictConfig

import envs  # noqa: F401  (registers the environments)
from embodied.config import RolloutConfig, register_configs, to_config_or_exit
from embodied.episode import EpisodeResult, run_episode
from embodied.evaluate import outcome_row, planning_seconds
from embodied.planners import make_planner
from embodied.video import VideoRecorder
from policies.factory import make_skills

register_configs()


def rollout(config: RolloutConfig) -> dict[str, Any]:
    """Run the episodes the config asks for; returns (and writes) the summary."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    env_kwargs = config.env.make_kwargs()
    families = [config.task] if config.task is not None else list(config.env.tasks)
    env_kwargs["tasks"] = families
    env = gym.make(config.env.id, render_mode="rgb_array" if config.video else None, **env_kwargs)
    planner = make_planner(
        config.planner,
        config.planner_checkpoint,
        decoding=config.decoding,
        failure_detection=config.failure_detection,
        recognizer=config.recognizer,
        recognition=config.recognition,
    )
    skills = make_skills(config.skills, config.skills_checkpoint)
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    videos: list[str] = []
    try:
        for index in range(config.episodes):
            seed = config.seed + index
            recorder = None
            if config.video:
                recorder = VideoRecorder(
                    output_dir / "videos" / f"episode_{index:03d}_seed{seed}.mp4",
                    config.video_every,
                )
            family = families[index % len(families)]  # every family in turn
            planning_before = planning_seconds(planner)
            result = run_episode(
                env,
                planner,
                seed,
                family,
                max_plan_steps=config.max_plan_steps,
                observer=recorder,
                skills=skills,
            )
            planning = planning_seconds(planner) - planning_before
            records.append({**result.to_json(), "planning_s": round(planning, 4)})
            if recorder is not None:
                videos.append(str(recorder.path))
            print(_describe(index, config.episodes, result), flush=True)
    finally:
        env.close()
    summary = summarize(records)
    summary["wall_time_s"] = round(time.perf_counter() - started, 2)
    summary["planner"] = config.planner
    summary["checkpoint"] = config.planner_checkpoint if config.planner == "palme" else None
    summary["skills"] = config.skills
    summary["skills_checkpoint"] = config.skills_checkpoint
    summary["env"] = config.env.id
    summary["videos"] = videos
    summary["episodes"] = records
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    low, high = summary["overall"]["ci95"]
    print(
        f"success rate {summary['overall']['rate']:.2f} [{low:.2f}, {high:.2f}] over "
        f"{len(records)} episodes ({summary['wall_time_s']} s); summary: "
        f"{output_dir / 'summary.json'}"
    )
    return summary


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The evaluator's rows (``embodied.evaluate.outcome_row``): overall and per task family."""
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_family[record["task"]].append(record)
    return {
        "overall": outcome_row(records),
        "families": {family: outcome_row(rows) for family, rows in sorted(by_family.items())},
    }


def _describe(index: int, total: int, result: EpisodeResult) -> str:
    verdict = "SUCCESS" if result.success else "FAILURE"
    if result.kind == "question":
        body = f"answer: {result.answer!r} (expected {result.expected_answer!r})"
    else:
        body = (
            f"plan: {result.plan or '(none)'} | progress {result.progress:.2f} | "
            f"{result.control_steps} control steps"
        )
        failed = [s for s in result.steps if s.success is False]
        if failed:
            body += " | failed: " + "; ".join(f"{s.text}: {s.reason}" for s in failed)
    return (
        f"[episode {index + 1}/{total}] seed={result.seed} task={result.task} "
        f"| {result.instruction} | {body} | {verdict} ({result.wall_time_s:.1f} s)"
    )


@hydra.main(version_base="1.3", config_path=None, config_name="rollout")
def main(cfg: DictConfig) -> None:
    config = to_config_or_exit(cfg)
    rollout(config)


if __name__ == "__main__":
    main()
