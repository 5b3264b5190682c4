"""Benchmark of data generation: scenes/s with 1 and 2 worker processes, bytes per 1000 episodes.

    python -m experiments.benchmark_generate            # full run (~10 minutes)
    python -m experiments.benchmark_generate --quick    # smoke run (seconds)

For each world, one dataset config (the defaults of ``python -m embodied.generate``: 3 views at
64 px, the world's default task families, balancing on) is generated twice into fresh
directories, with ``workers=1`` and ``workers=2``. The same seeds are planned both times, so the
two runs write the same episodes. Scenes/s counts the generation stage (oracle episodes,
rendering, compression, writing); the survey and balancing stage is reported beside it. Size is
what the shards take on disk (HDF5, gzip level 4 after byte shuffling: lossless).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from embodied.config import GenerateConfig, KitchenEnvConfig, TabletopEnvConfig
from embodied.generate import generate
from experiments.common import RESULTS_DIR, machine, write_results

WORLDS = {"tabletop": TabletopEnvConfig, "kitchen": KitchenEnvConfig}


QUICK_TASKS = {"tabletop": ["q1", "p1"], "kitchen": ["affordance", "success_detection"]}


def run(
    world: str, episodes: int, shard_size: int, workers: int, root: Path, quick: bool
) -> dict[str, Any]:
    config = GenerateConfig(
        env=WORLDS[world](),
        tasks=QUICK_TASKS[world] if quick else None,
        splits=["train"],
        episodes=episodes,
        shard_size=shard_size,
        workers=workers,
        output_dir=str(root / f"{world}_{workers}"),
        progress=False,
    )
    summary = generate(config)
    frames = summary["frames"]
    return {
        "world": world,
        "workers": workers,
        "episodes": summary["episodes"],
        "frames": frames,
        "oracle_success_rate": round(summary["success_rate"], 3),
        "planning_s": summary["planning_s"],
        "generating_s": summary["generating_s"],
        "scenes_per_s": summary["scenes_per_s"],
        "frames_per_s": round(frames / summary["generating_s"], 1),
        "mb_per_1000_episodes": round(summary["bytes_per_1000_episodes"] / 1e6, 1),
        "kb_per_frame": round(summary["bytes"] / frames / 1e3, 1),
    }


def to_markdown(
    rows: list[dict[str, Any]], speedups: dict[str, float], info: dict[str, Any]
) -> str:
    lines = [
        "## Data generation (`python -m embodied.generate`)",
        "",
        "| world | workers | episodes | frames | scenes/s | frames/s | speed-up | survey s "
        "| MB per 1000 episodes | kB per frame |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        speedup = f"{speedups[r['world']]:.2f}x" if r["workers"] == 2 else "1.00x"
        lines.append(
            f"| {r['world']} | {r['workers']} | {r['episodes']} | {r['frames']} | "
            f"{r['scenes_per_s']} | {r['frames_per_s']} | {speedup} | {r['planning_s']} | "
            f"{r['mb_per_1000_episodes']} | {r['kb_per_frame']} |"
        )
    lines += [
        "",
        f"3 views at 64 px (rgb, depth, segmentation, objects, proprio, cameras per frame); "
        f"a frame is one re-planning step or one question. {info['cpus']} CPUs, "
        f"commit {info['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: a few episodes of fast families"
    )
    parser.add_argument("--tabletop-episodes", type=int, default=400)
    parser.add_argument("--kitchen-episodes", type=int, default=80)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    episodes = {"tabletop": args.tabletop_episodes, "kitchen": args.kitchen_episodes}
    shard_sizes = {"tabletop": 10, "kitchen": 4}
    if args.quick:
        episodes, shard_sizes = {"tabletop": 4, "kitchen": 4}, {"tabletop": 1, "kitchen": 1}
    rows: list[dict[str, Any]] = []
    speedups: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        for world in WORLDS:
            pair = [
                run(world, episodes[world], shard_sizes[world], w, Path(root), args.quick)
                for w in (1, 2)
            ]
            speedups[world] = round(pair[1]["scenes_per_s"] / pair[0]["scenes_per_s"], 2)
            rows += pair
            print(
                f"{world}: {pair[0]['scenes_per_s']} -> {pair[1]['scenes_per_s']} scenes/s "
                f"({speedups[world]:.2f}x)",
                flush=True,
            )
    info = machine()
    results = {"machine": info, "rows": rows, "speedup_2_workers": speedups}
    write_results("benchmark_generate", results, to_markdown(rows, speedups, info), args.output_dir)


if __name__ == "__main__":
    main()
