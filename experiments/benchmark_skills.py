"""Learned skills against the scripted ones: per-skill success and end-to-end task success, the
oracle planning, on the same fixed evaluation seeds, in physics.

    python -m experiments.benchmark_skills --checkpoint runs/skills/final
    python -m experiments.benchmark_skills --checkpoint runs/skills/final --episodes 50

The oracle writes every plan (re-planning after a failed step), so a difference between the two
rows is the skills' alone. Per skill, three ways (each judged from the simulator state):
- every call of the closed-loop episodes;
- the calls from a clean start (the first, or one after a success): a failed call leaves a
  state the oracle's retries keep failing from, and the first figure counts those again;
- one call at a time (``swapped_calls``): each call of the scripted episode, run once by the
  learned policy from the state the scripted skills left before it, as skills are usually
  evaluated from fixed start states; the same states as the scripted row's calls.
End to end: p1, p2 and the long-horizon tower family. Targets (issue 9): learned pick >= 90%,
place >= 85%.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from embodied.config import EvaluateConfig, TabletopEnvConfig
from embodied.evaluate import evaluate
from embodied.planners import OraclePlanner
from embodied.training import last_metrics
from envs import TABLETOP_ID
from envs.base import ArmEnv
from envs.plan import SkillCall, parse_step
from experiments.common import RESULTS_DIR, machine, success_summary, write_results
from policies.base import Skill, SkillRun, run_skill
from policies.factory import make_skill
from policies.learned import LearnedSkill, SkillPolicy

FAMILIES = ["p1", "p2", "tower"]


def call_outcomes(
    episodes: list[dict[str, Any]],
) -> tuple[dict[str, list[bool]], dict[str, list[bool]]]:
    """Per verb, the outcome of every skill call of the episodes (``eval_info.json``'s), and of
    the calls from a clean start: the first call of an episode, or one after a successful call.
    A failed call leaves the world in a state the retries keep failing from (an object knocked
    over, the arm stuck low), so the first figure counts those retries again and again."""
    calls: dict[str, list[bool]] = defaultdict(list)
    clean: dict[str, list[bool]] = defaultdict(list)
    for episode in episodes:
        previous_succeeded = True
        for step in episode["steps"]:
            if step["success"] is None:  # done(), or a step that was never run
                continue
            verb, success = step["text"].split("(")[0], bool(step["success"])
            calls[verb].append(success)
            if previous_succeeded:
                clean[verb].append(success)
            previous_succeeded = success
    return calls, clean


def success_steps(episodes: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per verb, the control steps each successful call of the episodes took: a skill that
    gets there slowly fills more of its step budget (MAX_SKILL_STEPS, the same for both)."""
    steps: dict[str, list[int]] = defaultdict(list)
    for episode in episodes:
        for step in episode["steps"]:
            if step["success"]:
                steps[step["text"].split("(")[0]].append(int(step["control_steps"]))
    return steps


def swapped_calls(checkpoint: str | None, family: str, seed: int) -> list[dict[str, Any]]:
    """Each call of the oracle's scripted episode of ``family`` on ``seed``, run once by the
    learned policy of ``checkpoint`` (None: by the scripts again) from the state the scripted
    skills left before it (the scene reset and the earlier calls replayed by the scripts): per
    call, its text, success, reason and control steps."""
    policy = SkillPolicy.load(checkpoint) if checkpoint else None
    env = gym.make(policy.config.env if policy else TABLETOP_ID, observe_images=False)
    sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
    try:
        plan = _scripted_plan(env, family, seed)
        records = []
        for index, text in enumerate(plan):
            observation, _ = env.reset(seed=seed, options={"task": family})
            for earlier in plan[:index]:
                scripted = make_skill(sim, _call(earlier))
                observation = _run_skill(env, scripted, observation).observation
            call = _call(text)
            skill = LearnedSkill(sim, call, policy) if policy else make_skill(sim, call)
            outcome = _run_skill(env, skill, observation).outcome
            records.append(
                {"text": text, "success": outcome.success, "reason": outcome.reason}
                | {"control_steps": outcome.steps}
            )
        return records
    finally:
        env.close()


def _scripted_plan(env: gym.Env[Any, Any], family: str, seed: int) -> list[str]:
    """The skill calls the oracle writes while the scripted skills run the episode (its plan
    is then deterministic: every scripted call succeeds on the tabletop)."""
    sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
    observation, _ = env.reset(seed=seed, options={"task": family})
    plan: list[str] = []
    while len(plan) < EPISODE_STEP_CAP:
        text = OraclePlanner().next_step(sim, observation, plan, [True] * len(plan))
        call = _call(text)
        if call.verb == "done":
            break
        ran = _run_skill(env, make_skill(sim, call), observation)
        if not ran.outcome.success:
            raise RuntimeError(f"{family} seed {seed}: scripted {text} failed: {ran.outcome}")
        observation = ran.observation
        plan.append(text)
    return plan


EPISODE_STEP_CAP = EvaluateConfig.max_plan_steps  # plan steps, as the episodes'


def _call(text: str) -> SkillCall:
    call = parse_step(text)
    assert isinstance(call, SkillCall), f"the oracle wrote {text!r}"
    return call


def _run_skill(env: gym.Env[Any, Any], skill: Skill, observation: Any) -> SkillRun:
    """Run ``skill`` to its end as the episodes do (``policies.base.run_skill``: cut off by the
    episode's time limit too), nothing injected."""
    return run_skill(env, skill, observation, {}, inject_failure=False)


def _swapped_job(job: tuple[str | None, str, int]) -> list[dict[str, Any]]:
    torch.set_num_threads(1)  # one per worker process
    return swapped_calls(*job)


def swapped_outcomes(
    checkpoint: str | None, episodes: list[tuple[str, int]], workers: int
) -> dict[str, list[bool]]:
    """Per verb, the outcome of every call run one at a time (``swapped_calls``) over the
    episodes' (family, seed)."""
    jobs = [(checkpoint, family, seed) for family, seed in episodes]
    context = multiprocessing.get_context("spawn")  # fresh processes: no forked sim or torch
    with context.Pool(workers) as pool:
        calls = [call for records in pool.imap(_swapped_job, jobs) for call in records]
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for call in calls:
        outcomes[call["text"].split("(")[0]].append(bool(call["success"]))
    return outcomes


def run(skills: str, checkpoint: str | None, args: argparse.Namespace) -> dict[str, Any]:
    info = evaluate(
        EvaluateConfig(
            env=TabletopEnvConfig(observe_images=False),  # a learned skill renders its views
            planner="oracle",
            skills=skills,
            skills_checkpoint=checkpoint,
            tasks=args.families,
            episodes=args.episodes,
            workers=args.workers,
            output_dir=str(Path(args.run_dir) / f"evaluation_{skills}"),
        )
    )
    calls, clean = call_outcomes(info["episodes"])
    seeds = [(e["family"], e["seed"]) for e in info["episodes"]]
    one_at_a_time = swapped_outcomes(checkpoint, seeds, args.workers)
    table = info["summary"]["eval"]
    return {
        "skills": skills,
        "checkpoint": checkpoint,
        "per_skill": {verb: success_summary(sum(o), len(o)) for verb, o in sorted(calls.items())},
        "per_skill_clean_start": {
            verb: success_summary(sum(o), len(o)) for verb, o in sorted(clean.items())
        },
        "per_skill_one_at_a_time": {
            verb: success_summary(sum(o), len(o)) for verb, o in sorted(one_at_a_time.items())
        },
        "steps_per_success": {
            verb: {"median": int(np.median(s)), "p90": int(np.percentile(s, 90))}
            for verb, s in sorted(success_steps(info["episodes"]).items())
        },
        "per_family": {f: row["rate"] for f, row in table["families"].items()},
        "ci95": {f: row["ci95"] for f, row in table["families"].items()},
        "control_steps": sum(e["control_steps"] for e in info["episodes"]),
        "wall_s": info["wall_time_s"],
    }


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Learned vs scripted skills (`python -m experiments.benchmark_skills`)",
        "",
        "| skills | pick | place | pick, clean start | place, clean start "
        + "| pick, one at a time | place, one at a time | "
        + " | ".join(results["families"])
        + " | steps per successful pick, place | wall s |",
        "|---|---|---|---|---|---|---|" + "---|" * len(results["families"]) + "---|---|",
    ]
    for row in results["rows"]:
        skills = [
            (f"{s['success_rate']:.3f} ({s['calls']} calls)" if (s := row[column].get(v)) else "-")
            for column in ("per_skill", "per_skill_clean_start", "per_skill_one_at_a_time")
            for v in ("pick", "place")
        ]
        families = [
            f"{row['per_family'][f]:.3f} [{row['ci95'][f][0]:.2f}, {row['ci95'][f][1]:.2f}]"
            for f in results["families"]
        ]
        steps = ", ".join(
            f"{s['median']} (p90 {s['p90']})" if (s := row["steps_per_success"].get(v)) else "-"
            for v in ("pick", "place")
        )
        lines.append(
            f"| {row['skills']} | "
            + " | ".join([*skills, *families, steps])
            + f" | {row['wall_s']} |"
        )
    training = results.get("training") or {}
    lines += [
        "",
        f"The oracle plans; {results['episodes']} episodes per family on the evaluation seeds "
        f"(100000+), {results['workers']} workers. Per skill: calls "
        "that did what they name; clean start: only the calls that follow a successful call "
        "(or come first), since a failed call leaves a state that the retries keep failing "
        "from (the oracle re-plans, up to its step cap); one at a time: each call of the "
        "scripted episode on the same seeds, run once by these skills from the state the "
        "scripts left before it. Policy training: "
        f"{json.dumps(training) if training else 'not recorded'}. "
        f"{results['machine']['cpus']} CPUs, commit {results['machine']['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train_skills final/ directory")
    parser.add_argument("--episodes", type=int, default=20, help="per family")
    parser.add_argument("--families", nargs="+", default=FAMILIES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--run-dir", default="runs/benchmark_skills")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    training = last_metrics(Path(args.checkpoint).parent)
    results = {
        "episodes": args.episodes,
        "families": args.families,
        "workers": args.workers,
        "training": training,
        "machine": machine(),
        "rows": [run("scripted", None, args), run("learned", args.checkpoint, args)],
    }
    write_results("benchmark_skills", results, to_markdown(results), args.output_dir)


if __name__ == "__main__":
    main()
