"""Reproduce the PaLM-E planner shipped in ``embodied/checkpoints/palme``, and measure it.

    python -m experiments.train_default_planner              # data, training, evaluation
    python -m experiments.train_default_planner --evaluate-only

1. The data: ``python -m embodied.generate episodes=5000 output_dir=data/tabletop_5k`` (p1, p2,
   q1-q4 as the default rollout; 5000 training and 200 held-out episodes, ~10 minutes with 2
   workers), skipped when already there.
2. ``python -m embodied.train data=data/tabletop_5k`` at its other defaults (state tokens from
   PaLM-E's per-object MLP, the small Llama pretrained on the task text first, 3000 steps),
   into ``runs/planner_state``; its ``final/`` is copied to the shipped path.
3. Closed-loop episodes of the default rollout (tabletop, every family in turn) on the
   evaluation seeds, in physics: success per family, parse failures, planning time.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  (registers the environments)
from embodied.config import (
    DEFAULT_PLANNER_CHECKPOINT,
    GenerateConfig,
    LMConfig,
    TabletopEnvConfig,
    TrainConfig,
)
from embodied.data.dataset import MANIFEST
from embodied.episode import EVAL_SEED_START, run_episode
from embodied.generate import generate
from embodied.palme_planner import PalmEPlanner
from embodied.train import FINAL, train
from experiments.common import RESULTS_DIR, machine, write_results

DATA = "data/tabletop_5k"
EPISODES = 5000
RUN = "runs/planner_state"


def evaluate(checkpoint: str, episodes: int, decoding: str) -> dict[str, Any]:
    """Success per family over ``episodes`` default tabletop episodes (families in turn)."""
    planner = PalmEPlanner(checkpoint, decoding=decoding)
    families = TabletopEnvConfig().tasks
    env = gym.make("embodied/Tabletop-v0")
    outcomes: dict[str, list[bool]] = defaultdict(list)
    parse_failures, wall = 0, 0.0
    try:
        for i in range(episodes):
            result = run_episode(env, planner, EVAL_SEED_START + i, families[i % len(families)])
            outcomes[result.task].append(result.success)
            parse_failures += result.parse_failures
            wall += result.wall_time_s
    finally:
        env.close()
    successes = sum(sum(v) for v in outcomes.values())
    return {
        "decoding": decoding,
        "episodes": episodes,
        "success_rate": round(successes / episodes, 4),
        "per_family": {f: round(sum(v) / len(v), 4) for f, v in sorted(outcomes.items())},
        "parse_failures": parse_failures,
        "planning_s": round(planner.stats.seconds, 2),
        "wall_s": round(wall, 2),
    }


def to_markdown(results: dict[str, Any]) -> str:
    families = sorted(results["evaluations"][0]["per_family"])
    lines = [
        "## The shipped PaLM-E planner (`python -m experiments.train_default_planner`)",
        "",
        "| decoding | episodes | success | " + " | ".join(families) + " | parse failures |",
        "|---|---|---|" + "---|" * len(families) + "---|",
    ]
    for e in results["evaluations"]:
        cells = " | ".join(str(e["per_family"].get(f, "")) for f in families)
        lines.append(
            f"| {e['decoding']} | {e['episodes']} | **{e['success_rate']}** | {cells} | "
            f"{e['parse_failures']} |"
        )
    training = results.get("training", {})
    lines += [
        "",
        f"Closed-loop episodes in physics on the evaluation seeds ({EVAL_SEED_START}+), the "
        f"default rollout's families in turn. Training: {training.get('metrics', 'not rerun')}; "
        f"{training.get('seconds', '?')} s. Checkpoint {results['checkpoint_mb']} MB. "
        f"{results['machine']['cpus']} CPUs, commit {results['machine']['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=120, help="evaluation episodes")
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--run", default=RUN)
    parser.add_argument("--checkpoint", default=DEFAULT_PLANNER_CHECKPOINT, help="copied here")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny data and model")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    generating = GenerateConfig(env=TabletopEnvConfig(), episodes=EPISODES, output_dir=args.data)
    training = TrainConfig(data=args.data, output_dir=args.run)
    if args.quick:
        generating = replace(generating, episodes=6, eval_episodes=3, shard_size=3, workers=1)
        training = replace(
            training,
            steps=4,
            eval_every=2,
            eval_examples=2,
            checkpoint_every=2,
            lm=LMConfig(hidden=32, layers=1, heads=2, intermediate=64, pretrain_steps=2),
        )
        args.episodes = 2
    results: dict[str, Any] = {"machine": machine()}
    if not args.evaluate_only:
        if not (Path(args.data) / MANIFEST).exists():
            generate(generating)
        started = time.perf_counter()
        metrics = train(training)
        results["training"] = {"metrics": metrics, "seconds": round(time.perf_counter() - started)}
        shutil.rmtree(args.checkpoint, ignore_errors=True)
        shutil.copytree(Path(args.run) / FINAL, args.checkpoint)
    size = sum(f.stat().st_size for f in Path(args.checkpoint).rglob("*") if f.is_file())
    results["checkpoint_mb"] = round(size / 1e6, 2)
    results["evaluations"] = [
        evaluate(args.checkpoint, args.episodes, decoding) for decoding in ("free", "constrained")
    ]
    print(to_markdown(results), flush=True)
    write_results("default_planner", results, to_markdown(results), args.output_dir)


if __name__ == "__main__":
    main()
