"""Oracle plans executed by the scripted skills, on fixed evaluation seeds, per task family.

    python -m experiments.oracle_success                # 100 episodes per family (a few minutes)
    python -m experiments.oracle_success --quick        # smoke run

This is the ceiling a learned planner is measured against: a failure here is a skill or task
bug, not a planning error (target: >= 97% per planning family).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  (registers the environments)
from embodied.episode import EVAL_SEED_START, run_episode
from embodied.planners import OraclePlanner
from envs.tasks import TASK_FAMILIES
from experiments.common import RESULTS_DIR, machine, wilson_interval, write_results

FAMILIES = tuple(TASK_FAMILIES)
LONG_HORIZON_OBJECTS = (4, 8)  # long-horizon scenes hold 4-8 blocks; the TAMP ones 3-5


def evaluate_family(family: str, episodes: int, num_objects: int | None) -> dict[str, Any]:
    env = gym.make(
        "embodied/Tabletop-v0", observe_images=False, tasks=[family], num_objects=num_objects
    )
    started = time.perf_counter()
    results = [run_episode(env, OraclePlanner(), EVAL_SEED_START + i) for i in range(episodes)]
    env.close()
    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, episodes)
    plans = [r for r in results if r.kind == "plan"]
    return {
        "episodes": episodes,
        "success_rate": successes / episodes,
        "ci95": [round(low, 3), round(high, 3)],
        "mean_plan_length": (sum(len(r.steps) for r in plans) / len(plans)) if plans else 0.0,
        "max_plan_length": max((len(r.steps) for r in plans), default=0),
        "mean_control_steps": sum(r.control_steps for r in results) / episodes,
        "mean_progress": sum(r.progress for r in results) / episodes,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "failures": [
            {
                "seed": r.seed,
                "instruction": r.instruction,
                "plan": r.plan,
                "reasons": [s.reason for s in r.steps if s.reason],
            }
            for r in results
            if not r.success
        ],
    }


def to_markdown(per_family: dict[str, dict[str, Any]], num_objects: int | None) -> str:
    scene = f"{num_objects} cubes" if num_objects else "3-5 cubes, long-horizon families 4-8"
    lines = [
        f"## Oracle success on fixed evaluation seeds ({scene}, executed in physics)",
        "",
        "| family | episodes | success | 95% CI | progress | mean steps (incl. done) | max "
        "| wall time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family, row in per_family.items():
        lines.append(
            f"| {family} | {row['episodes']} | {row['success_rate']:.3f} | "
            f"{row['ci95'][0]:.3f}-{row['ci95'][1]:.3f} | {row['mean_progress']:.3f} | "
            f"{row['mean_plan_length']:.2f} | "
            f"{row['max_plan_length']} | {row['wall_time_s']} |"
        )
    failures = [(f, x) for f, row in per_family.items() for x in row["failures"]]
    if failures:
        lines += ["", "Failures:"]
        lines += [
            f"- {f} seed {x['seed']}: {x['plan']} ({'; '.join(x['reasons'])})" for f, x in failures
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes per family")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument(
        "--num-objects", type=int, default=None, help="fixed cube count (default 3-5)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny budget, for a smoke test")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.episodes = 2
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.num_objects is not None and not 1 <= args.num_objects <= 8:
        parser.error(f"--num-objects {args.num_objects}: allowed 1..8")
    per_family = {}
    for family in args.families:
        per_family[family] = evaluate_family(family, args.episodes, args.num_objects)
        row = per_family[family]
        print(f"  {family}: {row['success_rate']:.3f} ({row['wall_time_s']} s)")
    name = (
        "oracle_success"
        if args.num_objects is None
        else f"oracle_success_{args.num_objects}_objects"
    )
    results = {"machine": machine(), "seeds_from": EVAL_SEED_START, "families": per_family}
    write_results(name, results, to_markdown(per_family, args.num_objects), args.output_dir)


if __name__ == "__main__":
    main()
