"""Reproduce the PaLM-E planner shipped in ``embodied/checkpoints/palme``, and measure it.

    python -m experiments.train_default_planner              # data, training, evaluation
    python -m experiments.train_default_planner --evaluate-only

1. The data: ``python -m embodied.generate episodes=5000 output_dir=data/tabletop_5k`` (p1, p2,
   q1-q4 as the default rollout; 5000 training and 200 held-out episodes, ~10 minutes with 2
   workers), skipped when already there.
2. ``python -m embodied.train data=data/tabletop_5k`` at its other defaults (state tokens from
   PaLM-E's per-object MLP, the small Llama pretrained on the task text first, 3000 steps),
   into ``runs/planner_state``; its ``final/`` is copied to the shipped path.
3. ``embodied.evaluate``: closed-loop episodes of the default rollout's families (in turn) on
   the eval split's fixed seeds, in physics, free and constrained: success per family with
   95% intervals, parse failures, wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from embodied.config import (
    DEFAULT_PLANNER_CHECKPOINT,
    EvaluateConfig,
    GenerateConfig,
    LMConfig,
    TabletopEnvConfig,
    TrainConfig,
)
from embodied.data.dataset import MANIFEST
from embodied.episode import EVAL_SEED_START
from embodied.evaluate import evaluate as evaluate_planner
from embodied.generate import generate
from embodied.train import FINAL, train
from experiments.common import RESULTS_DIR, machine, write_results

DATA = "data/tabletop_5k"
EPISODES = 5000
RUN = "runs/planner_state"


def evaluate(checkpoint: str, episodes: int, decoding: str, output_dir: Path) -> dict[str, Any]:
    """Success per family (``embodied.evaluate``: the eval split's fixed seeds, families in
    turn, ``episodes`` per family) with 95% intervals."""
    info = evaluate_planner(
        EvaluateConfig(
            env=TabletopEnvConfig(),
            checkpoint=checkpoint,
            decoding=decoding,
            episodes=episodes,
            workers=2,
            output_dir=str(output_dir),
        )
    )
    summary = info["summary"]["eval"]
    return {
        "decoding": decoding,
        "episodes": summary["overall"]["trials"],
        "success_rate": round(summary["overall"]["rate"], 4),
        "ci95": summary["overall"]["ci95"],
        "per_family": {f: round(row["rate"], 4) for f, row in summary["families"].items()},
        "parse_failures": sum(e["parse_failures"] for e in info["episodes"]),
        "planning_s": round(sum(e["planning_s"] for e in info["episodes"]), 2),
        "wall_s": info["wall_time_s"],
    }


def to_markdown(results: dict[str, Any]) -> str:
    families = sorted(results["evaluations"][0]["per_family"])
    lines = [
        "## The shipped PaLM-E planner (`python -m experiments.train_default_planner`)",
        "",
        "| decoding | episodes | success | 95% CI | "
        + " | ".join(families)
        + " | parse failures | wall s |",
        "|---|---|---|---|" + "---|" * len(families) + "---|---|",
    ]
    for e in results["evaluations"]:
        cells = " | ".join(str(e["per_family"].get(f, "")) for f in families)
        low, high = e["ci95"]
        lines.append(
            f"| {e['decoding']} | {e['episodes']} | **{e['success_rate']}** | "
            f"[{low:.2f}, {high:.2f}] | {cells} | {e['parse_failures']} | {e['wall_s']} |"
        )
    training = results.get("training", {})
    lines += [
        "",
        f"Closed-loop episodes in physics on the evaluation seeds ({EVAL_SEED_START}+), the "
        f"default rollout's families in turn (`python -m embodied.evaluate`, 2 workers). "
        f"Training: {training.get('metrics', 'not rerun')}; {training.get('seconds', '?')} s. "
        f"Checkpoint {results['checkpoint_mb']} MB. {results['machine']['cpus']} CPUs, commit "
        f"{results['machine']['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per family")
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
        args.episodes = 1
    results: dict[str, Any] = {"machine": machine()}
    previous = args.output_dir / "default_planner.json"
    if args.evaluate_only and previous.exists():  # keep the record of how it was trained
        results["training"] = json.loads(previous.read_text()).get("training", {})
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
        evaluate(args.checkpoint, args.episodes, mode, Path(args.run) / f"evaluation_{mode}")
        for mode in ("free", "constrained")
    ]
    print(to_markdown(results), flush=True)
    write_results("default_planner", results, to_markdown(results), args.output_dir)


if __name__ == "__main__":
    main()
