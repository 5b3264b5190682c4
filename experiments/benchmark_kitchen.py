"""Benchmark of the kitchen env: control steps/s, and the success of every skill.

    python -m experiments.benchmark_kitchen              # full run (~10 minutes)
    python -m experiments.benchmark_kitchen --quick      # smoke run (seconds)

Speed: control steps/s of ``env.step`` with 1 and 3 views at 64 px (each step is 12 physics steps
and the rendering), as in the tabletop benchmark. Skills: on random kitchen scenes, short chains
of calls that each end in the skill kind tried least so far, preceded by what it needs (open the
cabinet and pick something before placing into the cabinet), until every kind has ``--trials``
calls: open and close of the drawer and of the cabinet, pick, and place into each of counter
(hand-over zone), drawer, cabinet, sink and bowl (target: >= 95% each). Every call counts under
its own kind. No failures are injected here (``failure_rate=0``); ``--failure-rate`` measures
what injection does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the environments)
from envs.kitchen import KitchenEnv
from envs.kitchen_scene import PLACE_TARGETS, STORES, KitchenState
from envs.plan import SkillCall
from experiments.benchmark_env import sweep_actions, timed_steps_per_second
from experiments.common import RESULTS_DIR, machine, success_summary, write_results
from policies.base import run_skill
from policies.factory import make_skill

KITCHEN = "embodied/Kitchen-v0"
VIEW_SETS = {1: ["front"], 3: ["front", "left", "right"]}
CHAINS_PER_SCENE = 3  # skill kinds exercised per scene, each with its preconditions
MAX_CHAIN = 4  # calls in a chain: open, pick, place at most (plus setting something down)


def steps_per_second(views: list[str], size: int, actions: np.ndarray) -> float:
    env = gym.make(KITCHEN, views=views, image_size=size)
    env.reset(seed=0)
    return timed_steps_per_second(env, actions)


def measure_speed(steps: int, repeats: int) -> list[dict[str, Any]]:
    actions = sweep_actions(steps)
    rows = []
    for count, views in VIEW_SETS.items():
        rate = max(steps_per_second(views, 64, actions) for _ in range(repeats))
        rows.append({"views": count, "image_size": 64, "env_steps_per_s": round(rate, 1)})
        print(f"  {count} view(s) at 64px: {rate:.1f} steps/s")
    return rows


def kind_of(call: SkillCall) -> str:
    """The benchmark's name for a call's skill: pick, open_drawer, place_sink, ..."""
    return call.verb if call.verb == "pick" else f"{call.verb}_{call.args[-1]}"


def next_call(goal: str, state: KitchenState, rng: np.random.Generator) -> SkillCall | None:
    """The next call of a short chain that ends in a call of kind ``goal`` (the preconditions
    first: open the cabinet and pick something before placing into the cabinet, ...); None when
    this scene cannot get there."""
    verb, _, target = goal.partition("_")
    if verb in ("open", "close"):
        if state.held is not None:
            return SkillCall("place", (state.held, "counter"))
        wanted_open = verb == "close"  # to close it, it must be open first
        if wanted_open and not state.is_open(target):
            return SkillCall("open", (target,))
        if not wanted_open and not state.is_closed(target):
            return SkillCall("close", (target,))
        return SkillCall(verb, (target,))
    if state.held is not None:
        if verb == "place":
            return SkillCall("place", (state.held, target))
        return SkillCall("place", (state.held, "counter"))
    if target in STORES and not state.is_open(target):
        return SkillCall("open", (target,))
    pickable = [
        name
        for name, obj in state.objects.items()
        if state.pick_blocker(name) is None and obj.location not in ("none", target)
    ]
    if verb == "place":
        pickable = [n for n in pickable if state.free_spot(n, target) is not None]
    if not pickable:
        return None
    return SkillCall("pick", (pickable[int(rng.integers(len(pickable)))],))


def measure_skills(trials: int, failure_rate: float, max_scenes: int) -> dict[str, Any]:
    env = gym.make(KITCHEN, observe_images=False, failure_rate=failure_rate)
    sim: KitchenEnv = env.unwrapped  # type: ignore[assignment]
    kinds = ["pick", *(f"{v}_{f}" for f in STORES for v in ("open", "close"))]
    kinds += [f"place_{t}" for t in PLACE_TARGETS]
    counts = {kind: [0, 0] for kind in kinds}  # [successes, calls]
    injected = {kind: 0 for kind in kinds}
    failures: list[str] = []
    started = time.perf_counter()
    scene = 0
    while min(total for _, total in counts.values()) < trials and scene < max_scenes:
        env.reset(seed=scene)
        rng = np.random.default_rng(scene)
        for _ in range(CHAINS_PER_SCENE):
            goal = min(kinds, key=lambda k: (counts[k][1], rng.random()))
            for _ in range(MAX_CHAIN):
                call = next_call(goal, sim.symbolic_state(), rng)
                if call is None:
                    break
                observation, info = sim.current_observation(), sim.current_info()
                run = run_skill(env, make_skill(sim, call), observation, info)
                kind = kind_of(call)
                counts[kind][0] += run.outcome.success
                counts[kind][1] += 1
                injected[kind] += bool(run.outcome.injected)
                if not run.outcome.success and not run.outcome.injected:
                    failures.append(f"seed {scene} {call}: {run.outcome.reason}")
                if kind == goal or not run.outcome.success or run.episode_over:
                    break
        scene += 1
        if scene % 25 == 0:
            tried = ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in counts.items())
            print(f"  {scene} scenes, {time.perf_counter() - started:.0f} s: {tried}", flush=True)
    env.close()
    result: dict[str, Any] = {
        "wall_time_s": round(time.perf_counter() - started, 1),
        "scenes": scene,
        "failure_rate": failure_rate,
    }
    for kind, (ok, total) in counts.items():
        result[kind] = {**success_summary(ok, total), "injected": injected[kind]}
    result["failures"] = failures
    return result


def to_markdown(speed: list[dict[str, Any]], skills: dict[str, Any]) -> str:
    lines = [
        "## Kitchen env speed (control steps/s; each step = 12 physics steps + rendering)",
        "",
        "| views | px | env steps/s |",
        "|---|---|---|",
    ]
    lines += [f"| {r['views']} | {r['image_size']} | {r['env_steps_per_s']} |" for r in speed]
    rate = skills["failure_rate"]
    lines += [
        "",
        f"## Kitchen skill success (random feasible calls on {skills['scenes']} random scenes, "
        f"injected failure rate {rate})",
        "",
        "| skill | calls | success | 95% CI | injected failures |",
        "|---|---|---|---|---|",
    ]
    for kind, entry in skills.items():
        if isinstance(entry, dict):
            lines.append(
                f"| {kind} | {entry['calls']} | {entry['success_rate']:.3f} | "
                f"{entry['ci95'][0]:.3f}-{entry['ci95'][1]:.3f} | {entry['injected']} |"
            )
    if skills["failures"]:
        lines += ["", "Failures (not injected):", *(f"- {f}" for f in skills["failures"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300, help="control steps timed per setting")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (best kept)")
    parser.add_argument("--trials", type=int, default=100, help="least calls of every skill kind")
    parser.add_argument("--max-scenes", type=int, default=1000, help="give up after this many")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="injected failure rate")
    parser.add_argument("--quick", action="store_true", help="tiny budget, for a smoke test")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.trials, args.max_scenes = 30, 1, 1, 5
    for name in ("steps", "repeats", "trials", "max_scenes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0.0 <= args.failure_rate <= 1.0:
        parser.error(f"--failure-rate {args.failure_rate}: must be in [0, 1]")
    print("speed:")
    speed = measure_speed(args.steps, args.repeats)
    print("skills:")
    skills = measure_skills(args.trials, args.failure_rate, args.max_scenes)
    results = {
        "machine": machine(),
        "speed": speed,
        "skills": skills,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    name = "benchmark_kitchen" if args.failure_rate == 0 else "benchmark_kitchen_injected"
    write_results(name, results, to_markdown(speed, skills), args.output_dir)


if __name__ == "__main__":
    main()
