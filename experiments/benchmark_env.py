"""Benchmark of the tabletop env: control steps/s against bare PyBullet, and skill success rates.

    python -m experiments.benchmark_env                 # full run (a few minutes)
    python -m experiments.benchmark_env --quick         # smoke run (seconds)

Speed: control steps/s of ``env.step`` with 1 and 3 views at 64 and 96 px, against the same physics
and rendering done by bare PyBullet calls (same robot, scene, motor commands, substeps and
cameras); the ratio is the env's overhead (target <= 1.25). Skills: random pick calls on random
scenes, each followed by a stack on another random clear cube, and random place calls into table
regions (targets: pick >= 98%, stack >= 95%).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet

import envs  # noqa: F401  (registers the environments)
from envs.base import PHYSICS_HZ
from envs.cameras import CAMERA_PLACEMENTS, FAR, NEAR
from envs.plan import SkillCall
from envs.regions import REGION_NAMES
from envs.robot import ARM_FORCES, FINGER_JOINTS, HOME_JOINTS, finger_force
from envs.tabletop import TabletopEnv
from experiments.common import RESULTS_DIR, machine, success_summary, write_results
from policies.base import run_skill
from policies.factory import make_skill

VIEW_SETS = {1: ["front"], 3: ["front", "left", "right"]}
IMAGE_SIZES = (64, 96)


def sweep_actions(steps: int) -> np.ndarray:
    """(steps, 8) joint targets sweeping around the home pose, gripper opening and closing."""
    t = np.arange(steps)[:, None] / 20.0
    arm = HOME_JOINTS + 0.35 * np.sin(t * np.array([0.9, 1.3, 0.7, 1.1, 1.7, 0.8, 1.9]))
    gripper = 0.04 + 0.04 * np.sin(t * 2.0)
    return np.concatenate([arm, gripper], axis=1).astype(np.float32)


def timed_steps_per_second(env: gym.Env[Any, np.ndarray], actions: np.ndarray) -> float:
    """Control steps/s of ``env.step`` over ``actions`` after a short warm-up; closes the env."""
    for action in actions[:10]:  # warm up
        env.step(action)
    started = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - started
    env.close()
    return len(actions) / elapsed


def env_steps_per_second(views: list[str], size: int, actions: np.ndarray) -> float:
    env = gym.make("embodied/Tabletop-v0", views=views, image_size=size, num_objects=5)
    env.reset(seed=0, options={"task": "p2"})
    return timed_steps_per_second(env, actions)


def bare_steps_per_second(views: list[str], size: int, actions: np.ndarray) -> float:
    """The same per-step work as env.step, written as direct PyBullet calls on the same world.

    The world (robot, gear-coupled fingers, table, cubes) is the env's own after reset, so that
    physics costs the same; only the per-step code differs.
    """
    env = gym.make("embodied/Tabletop-v0", views=views, image_size=size, num_objects=5)
    env.reset(seed=0, options={"task": "p2"})
    sim: TabletopEnv = env.unwrapped  # type: ignore[assignment]
    client, robot = sim.client, sim.robot.body
    cameras = [  # (view matrix, projection matrix) of each view
        (
            pybullet.computeViewMatrix(
                CAMERA_PLACEMENTS[v].eye, CAMERA_PLACEMENTS[v].target, CAMERA_PLACEMENTS[v].up
            ),
            pybullet.computeProjectionMatrixFOV(CAMERA_PLACEMENTS[v].fov_deg, 1.0, NEAR, FAR),
        )
        for v in views
    ]
    speeds = [client.getJointInfo(robot, j)[11] for j in range(7)]
    substeps = PHYSICS_HZ // 20

    def step(action: np.ndarray) -> None:
        for joint in range(7):
            client.setJointMotorControl2(
                robot,
                joint,
                pybullet.POSITION_CONTROL,
                targetPosition=float(action[joint]),
                force=float(ARM_FORCES[joint]),
                maxVelocity=speeds[joint],
            )
        half = float(action[7]) / 2
        client.setJointMotorControlArray(
            robot,
            FINGER_JOINTS,
            pybullet.POSITION_CONTROL,
            [half, half],
            forces=[finger_force(client, robot, half)] * 2,
        )
        for _ in range(substeps):
            client.stepSimulation()
        for view, projection in cameras:
            client.getCameraImage(
                size,
                size,
                viewMatrix=view,
                projectionMatrix=projection,
                renderer=pybullet.ER_TINY_RENDERER,
            )

    for action in actions[:10]:
        step(action)
    started = time.perf_counter()
    for action in actions:
        step(action)
    elapsed = time.perf_counter() - started
    env.close()
    return len(actions) / elapsed


def measure_speed(steps: int, repeats: int) -> list[dict[str, Any]]:
    """Best of ``repeats`` interleaved runs of each, so that a busy moment does not count."""
    actions = sweep_actions(steps)
    rows = []
    for count, views in VIEW_SETS.items():
        for size in IMAGE_SIZES:
            env_rate = bare_rate = 0.0
            for _ in range(repeats):
                env_rate = max(env_rate, env_steps_per_second(views, size, actions))
                bare_rate = max(bare_rate, bare_steps_per_second(views, size, actions))
            rows.append(
                {
                    "views": count,
                    "image_size": size,
                    "env_steps_per_s": round(env_rate, 1),
                    "bare_steps_per_s": round(bare_rate, 1),
                    "overhead_ratio": round(bare_rate / env_rate, 3),
                }
            )
            print(f"  {count} view(s) at {size}px: env {env_rate:.1f}/s, bare {bare_rate:.1f}/s")
    return rows


def measure_skills(scenes: int, region_calls: int) -> dict[str, Any]:
    """Random pick -> stack calls on random scenes, and random region placements."""
    env = gym.make("embodied/Tabletop-v0", observe_images=False)
    sim: TabletopEnv = env.unwrapped  # type: ignore[assignment]
    counts = {"pick": [0, 0], "stack": [0, 0], "place_region": [0, 0]}  # [successes, calls]
    failures: list[str] = []

    def attempt(kind: str, call: SkillCall) -> bool:
        run = run_skill(env, make_skill(sim, call), sim.current_observation(), sim.current_info())
        counts[kind][0] += run.outcome.success
        counts[kind][1] += 1
        if not run.outcome.success:
            failures.append(f"{kind} {call}: {run.outcome.reason}")
        return run.outcome.success

    started = time.perf_counter()
    for seed in range(scenes + region_calls):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        state = sim.symbolic_state()
        clear = [n for n in state.objects if state.is_clear(n)]
        name = clear[int(rng.integers(len(clear)))]
        if not attempt("pick", SkillCall("pick", (name,))):
            continue
        if seed < scenes:
            state = sim.symbolic_state()
            bases = [n for n in state.objects if n != name and state.is_clear(n)]
            if bases:
                attempt("stack", SkillCall("place", (name, bases[int(rng.integers(len(bases)))])))
        else:
            region = REGION_NAMES[int(rng.integers(len(REGION_NAMES)))]
            attempt("place_region", SkillCall("place", (name, region)))
    env.close()
    result: dict[str, Any] = {"wall_time_s": round(time.perf_counter() - started, 1)}
    for kind, (ok, total) in counts.items():
        result[kind] = success_summary(ok, total)
    result["failures"] = failures
    return result


def to_markdown(speed: list[dict[str, Any]], skills: dict[str, Any]) -> str:
    lines = [
        "## Tabletop env speed (control steps/s; each step = 12 physics steps + rendering)",
        "",
        "| views | px | env steps/s | bare PyBullet steps/s | env cost / bare cost |",
        "|---|---|---|---|---|",
    ]
    for row in speed:
        lines.append(
            f"| {row['views']} | {row['image_size']} | {row['env_steps_per_s']} | "
            f"{row['bare_steps_per_s']} | {row['overhead_ratio']} |"
        )
    lines += ["", "## Scripted skill success (random calls on random scenes)", ""]
    lines += ["| skill | calls | success | 95% CI |", "|---|---|---|---|"]
    for kind in ("pick", "stack", "place_region"):
        entry = skills[kind]
        lines.append(
            f"| {kind} | {entry['calls']} | {entry['success_rate']:.3f} | "
            f"{entry['ci95'][0]:.3f}-{entry['ci95'][1]:.3f} |"
        )
    if skills["failures"]:
        lines += ["", "Failures:", *(f"- {f}" for f in skills["failures"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300, help="control steps timed per setting")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (best kept)")
    parser.add_argument("--scenes", type=int, default=210, help="random scenes for pick -> stack")
    parser.add_argument("--region-calls", type=int, default=100, help="random region placements")
    parser.add_argument("--quick", action="store_true", help="tiny budget, for a smoke test")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.scenes, args.region_calls = 30, 1, 3, 2
    for name in ("steps", "repeats", "scenes", "region_calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    print("speed:")
    speed = measure_speed(args.steps, args.repeats)
    print("skills:")
    skills = measure_skills(args.scenes, args.region_calls)
    results = {
        "machine": machine(),
        "speed": speed,
        "skills": skills,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    write_results("benchmark_env", results, to_markdown(speed, skills), args.output_dir)


if __name__ == "__main__":
    main()
