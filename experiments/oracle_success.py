"""Oracle plans executed by the scripted skills, on fixed evaluation seeds, per task family.

    python -m experiments.oracle_success                # 100 episodes per family (a few minutes)
    python -m experiments.oracle_success --quick        # smoke run
    python -m experiments.oracle_success --env kitchen  # the kitchen's families
    python -m experiments.oracle_success --env kitchen --failure-rate 0.2   # with re-planning

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
from embodied.statistics import wilson_interval
from envs.tasks import KITCHEN_FAMILIES, TABLETOP_FAMILIES
from experiments.common import RESULTS_DIR, machine, write_results

ENVS = {"tabletop": "embodied/Tabletop-v0", "kitchen": "embodied/Kitchen-v0"}
FAMILIES = {"tabletop": tuple(TABLETOP_FAMILIES), "kitchen": tuple(KITCHEN_FAMILIES)}
OBJECT_COUNTS = {"tabletop": (1, 8), "kitchen": (4, 6)}
MAX_PLAN_STEPS = 40  # room for re-planning after injected failures


def evaluate_family(
    env_name: str, family: str, episodes: int, num_objects: int | None, failure_rate: float
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"observe_images": False, "tasks": [family]}
    if num_objects is not None:
        kwargs["num_objects"] = num_objects
    if failure_rate:
        kwargs["failure_rate"] = failure_rate
    env = gym.make(ENVS[env_name], **kwargs)
    started = time.perf_counter()
    results = [
        run_episode(env, OraclePlanner(), EVAL_SEED_START + i, max_plan_steps=MAX_PLAN_STEPS)
        for i in range(episodes)
    ]
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
        "injected_failures": sum(bool(s.injected) for r in results for s in r.steps),
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


def collapse_repeats(items: list[str], limit: int | None = None) -> str:
    """``["a", "b", "b", "b"]`` -> ``"a; b x3"``: an oracle retrying an unreachable object
    writes the same step dozens of times, which would fill a table's failure list. At most
    ``limit`` runs are written, then how many more there are."""
    runs: list[list[Any]] = []
    for item in items:
        if runs and runs[-1][0] == item:
            runs[-1][1] += 1
        else:
            runs.append([item, 1])
    shown = runs if limit is None else runs[:limit]
    text = "; ".join(item if count == 1 else f"{item} x{count}" for item, count in shown)
    hidden = len(runs) - len(shown)
    return text + (f"; {hidden} more in the JSON" if hidden else "")


def to_markdown(
    env_name: str, per_family: dict[str, dict[str, Any]], num_objects: int | None, rate: float
) -> str:
    if env_name == "kitchen":
        scene = f"kitchen, {num_objects or '4-6'} objects"
    else:
        scene = f"{num_objects} cubes" if num_objects else "3-5 cubes, long-horizon families 4-8"
    injected = f", skill failures injected at rate {rate}" if rate else ""
    lines = [
        f"## Oracle success on fixed evaluation seeds ({scene}{injected}, executed in physics)",
        "",
        "| family | episodes | success | 95% CI | progress | mean steps (incl. done) | max "
        "| injected failures | wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for family, row in per_family.items():
        lines.append(
            f"| {family} | {row['episodes']} | {row['success_rate']:.3f} | "
            f"{row['ci95'][0]:.3f}-{row['ci95'][1]:.3f} | {row['mean_progress']:.3f} | "
            f"{row['mean_plan_length']:.2f} | "
            f"{row['max_plan_length']} | {row['injected_failures']} | {row['wall_time_s']} |"
        )
    failures = [(f, x) for f, row in per_family.items() for x in row["failures"]]
    if failures:
        lines += ["", "Failures:"]
        lines += [
            f"- {f} seed {x['seed']}: {collapse_repeats(x['plan'].split('; '))} "
            f"({collapse_repeats(x['reasons'], limit=3)})"
            for f, x in failures
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes per family")
    parser.add_argument("--env", choices=sorted(ENVS), default="tabletop")
    parser.add_argument("--families", nargs="+", help="default: every family of the env")
    parser.add_argument("--num-objects", type=int, default=None, help="fixed object count")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="injected skill failures")
    parser.add_argument("--quick", action="store_true", help="tiny budget, for a smoke test")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.episodes = 2
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    families = args.families or list(FAMILIES[args.env])
    unknown = [f for f in families if f not in FAMILIES[args.env]]
    if unknown:
        parser.error(f"--families {unknown}: allowed {list(FAMILIES[args.env])} for {args.env}")
    if not 0.0 <= args.failure_rate <= 1.0:
        parser.error(f"--failure-rate {args.failure_rate}: must be in [0, 1]")
    low, high = OBJECT_COUNTS[args.env]
    if args.num_objects is not None and not low <= args.num_objects <= high:
        parser.error(f"--num-objects {args.num_objects}: allowed {low}..{high} for {args.env}")
    per_family = {}
    for family in families:
        per_family[family] = evaluate_family(
            args.env, family, args.episodes, args.num_objects, args.failure_rate
        )
        row = per_family[family]
        print(f"  {family}: {row['success_rate']:.3f} ({row['wall_time_s']} s)", flush=True)
    name = "oracle_success" if args.env == "tabletop" else f"oracle_success_{args.env}"
    if args.num_objects is not None:
        name += f"_{args.num_objects}_objects"
    if args.failure_rate:
        name += f"_failure_rate_{args.failure_rate}"
    results = {
        "machine": machine(),
        "env": args.env,
        "seeds_from": EVAL_SEED_START,
        "failure_rate": args.failure_rate,
        "families": per_family,
    }
    markdown = to_markdown(args.env, per_family, args.num_objects, args.failure_rate)
    write_results(name, results, markdown, args.output_dir)


if __name__ == "__main__":
    main()
