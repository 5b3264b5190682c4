"""Benchmark of the PaLM-E planner: what injecting sensor tokens costs in training, how long a
planning step takes, and what share of an episode is spent planning.

    python -m experiments.benchmark_planner                  # the shipped default checkpoint
    python -m experiments.benchmark_planner --checkpoint runs/planner_state/final --episodes 24
    python -m experiments.benchmark_planner --quick          # smoke run (seconds)

Training throughput: the same batches of the generated data (prompts + targets) through (a) the
full model (encoder, projector, injection, LM: forward, backward, AdamW step) and (b) the bare LM
on the same token ids (placeholders left as plain tokens); batches alternate between the two so
that both see the same machine state. Overhead = 1 - full / bare tokens/s (target <= 15%).

Planning: closed-loop episodes with the learned planner (free decoding, KV cache); latency is one
``next_step``/``answer`` call (prompt building, sensor encoding, injection, decoding), and the
planning share is the planner's time over the episodes' wall time (the rest is physics,
rendering and the skills).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import envs  # noqa: F401  (registers the environments)
from embodied.config import GenerateConfig, TabletopEnvConfig
from embodied.data.dataset import MANIFEST
from embodied.data.frames import FrameBank
from embodied.episode import EVAL_SEED_START, run_episode
from embodied.generate import generate
from embodied.model import PalmE, example_mean_loss
from embodied.palme_planner import PalmEPlanner
from embodied.sentence import IGNORE, encode
from embodied.train import frame_records, prompts_and_targets
from envs.tabletop import TabletopConfig
from experiments.common import RESULTS_DIR, machine, write_results

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "embodied" / "checkpoints" / "palme"


def training_throughput(checkpoint: Path, data: str, steps: int, batch_size: int) -> dict[str, Any]:
    """Tokens/s of the full model and of the bare LM on the same batches."""
    model = PalmE.load(checkpoint).train()
    bank = FrameBank(data, "train", model.encoder.inputs)
    full_optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    bare_optimizer = torch.optim.AdamW(model.lm.parameters())
    seconds = {"full": 0.0, "bare": 0.0}
    tokens = 0
    for step in range(steps + 2):  # the first two steps warm up and are not counted
        index = bank.draw(batch_size, 0, step)
        records = frame_records(bank, index, entity_names=model.config.entity_names)
        prompts, targets = prompts_and_targets(model.prompt, records)
        encoded = encode(model.tokenizer, prompts, targets)
        observation = bank.observations(index)
        for name in ("full", "bare"):
            started = time.perf_counter()
            if name == "full":
                loss = model(encoded, observation)
                optimizer = full_optimizer
            else:
                labels = encoded.labels.masked_fill(encoded.attention_mask == 0, IGNORE)
                logits = model.lm(
                    input_ids=encoded.input_ids, attention_mask=encoded.attention_mask
                ).logits
                loss = example_mean_loss(logits, labels)
                optimizer = bare_optimizer
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step >= 2:
                seconds[name] += time.perf_counter() - started
        if step >= 2:
            tokens += int(encoded.attention_mask.sum())
    full, bare = tokens / seconds["full"], tokens / seconds["bare"]
    return {
        "batch_size": batch_size,
        "steps": steps,
        "tokens": tokens,
        "full_tokens_per_s": round(full, 1),
        "bare_lm_tokens_per_s": round(bare, 1),
        "injection_overhead": round(1 - full / bare, 4),
    }


def planning(checkpoint: Path, episodes: int) -> dict[str, Any]:
    """Latency per planning call and planning's share of episode wall time."""
    planner = PalmEPlanner(checkpoint)
    env = gym.make("embodied/Tabletop-v0")
    families = TabletopConfig().tasks
    wall, successes = 0.0, 0
    try:
        for i in range(episodes):
            result = run_episode(env, planner, EVAL_SEED_START + i, families[i % len(families)])
            wall += result.wall_time_s
            successes += result.success
    finally:
        env.close()
    latencies = sorted(planner.stats.latencies)
    return {
        "episodes": episodes,
        "success_rate": round(successes / episodes, 4),
        "planning_calls": planner.stats.calls,
        "latency_ms_median": round(1000 * statistics.median(latencies), 2),
        "latency_ms_p90": round(1000 * latencies[int(0.9 * (len(latencies) - 1))], 2),
        "latency_ms_mean": round(1000 * statistics.fmean(latencies), 2),
        "planning_share_of_wall_time": round(planner.stats.seconds / wall, 4),
        "episode_wall_s_mean": round(wall / episodes, 3),
    }


def to_markdown(results: dict[str, Any]) -> str:
    t, p, info = results["training"], results["planning"], results["machine"]
    return "\n".join(
        [
            "## PaLM-E planner (`python -m experiments.benchmark_planner`)",
            "",
            "| measure | value | target |",
            "|---|---|---|",
            f"| training, full model (tokens/s) | {t['full_tokens_per_s']} | |",
            f"| training, bare LM on the same tokens (tokens/s) | {t['bare_lm_tokens_per_s']} | |",
            f"| injection overhead | {100 * t['injection_overhead']:.1f}% | <= 15% |",
            f"| planning latency per step, median (ms) | {p['latency_ms_median']} | <= 50 ms |",
            f"| planning latency per step, p90 (ms) | {p['latency_ms_p90']} | |",
            f"| planning share of episode wall time | {100 * p['planning_share_of_wall_time']:.1f}%"
            " | |",
            f"| success over the benchmark's episodes | {p['success_rate']} "
            f"({p['episodes']} episodes) | |",
            "",
            f"Checkpoint `{results['checkpoint']}`; training measured over {t['steps']} steps of "
            f"batch {t['batch_size']} ({t['tokens']} tokens); "
            f"{p['planning_calls']} planning calls. "
            f"{info['cpus']} CPUs, commit {info['commit']}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument(
        "--data",
        default="data/tabletop",
        help="generated episodes whose batches are timed (`embodied.generate`'s defaults "
        "are written there when it holds none)",
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.episodes = 2, 2
    if not (Path(args.data) / MANIFEST).exists():
        print(f"{args.data} holds no generated episodes: generating the default corpus there")
        generate(GenerateConfig(env=TabletopEnvConfig(), output_dir=args.data))
    torch.manual_seed(0)
    results = {
        "machine": machine(),
        "checkpoint": str(args.checkpoint),
        "training": training_throughput(args.checkpoint, args.data, args.steps, args.batch_size),
        "planning": planning(args.checkpoint, args.episodes),
    }
    print(to_markdown(results), flush=True)
    write_results("benchmark_planner", results, to_markdown(results), args.output_dir)


if __name__ == "__main__":
    main()
