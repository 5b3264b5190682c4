"""Does OSRT separate the cubes when the views show them larger? The same scenes seen by the
default views (front, left, right: a cube covers ~17 px of a 64 px view) and by the same cameras
narrowed to the workspace (``*_zoom``, 30 degrees: ~38 px), OSRT trained alike on each.

    python -m experiments.osrt_views            # both datasets (~5 min each), both runs
    python -m experiments.osrt_views --quick    # smoke run: tiny data and model

Each dataset is ``embodied.generate`` at its defaults (1000 + 200 episodes of p1, p2, q1-q4)
but for the views; each run is ``embodied.train_encoder encoder=osrt`` with the spatial-broadcast
decoder, 8 slots, half the target rays on objects (``pretrain_encoders``' ``osrt_broadcast``
settings) for ``STEPS`` steps. Results: ``experiments/results/osrt_views.{json,md}``: held-out
PSNR and foreground ARI (target >= 0.8) at every evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from embodied.config import GenerateConfig, TabletopEnvConfig, TrainEncoderConfig
from embodied.data.dataset import MANIFEST
from embodied.generate import generate
from embodied.train_encoder import train
from embodied.training import METRICS
from experiments.common import RESULTS_DIR, machine, write_results

VIEWS = {
    "default": ["front", "left", "right"],
    "zoom": ["front_zoom", "left_zoom", "right_zoom"],
}
STEPS = 1000
OSRT = {"decoder": "broadcast", "foreground_rays": 0.5, "slots": 8}


def to_markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        "## OSRT on default vs narrowed views (`python -m experiments.osrt_views`)",
        "",
        "| views | step | held-out loss | PSNR | FG-ARI | training s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        for m in row["metrics"]:
            lines.append(
                f"| {row['views']} | {m['step']} | {m['eval_loss']} | {m['psnr']} | "
                f"{m['fg_ari']} | {m['elapsed_s']} |"
            )
    first = rows[0]
    lines += [
        "",
        f"The same {first['episodes']} generated scenes seen through each set of views; OSRT "
        f"with the spatial-broadcast decoder, 8 slots, half the target rays on objects, "
        f"{first['steps']} steps of 16 examples. FG-ARI target >= 0.8. {info['cpus']} CPUs, "
        f"commit {info['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--quick", action="store_true", help="tiny data, model and training")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name, views in VIEWS.items():
        data = args.data / f"tabletop_views_{name}"
        generating = GenerateConfig(
            env=TabletopEnvConfig(views=views), output_dir=str(data), progress=False
        )
        training = TrainEncoderConfig(
            encoder="osrt",
            data=str(data),
            model=dict(OSRT),
            steps=STEPS,
            batch_size=16,
            lr=4e-4,
            eval_every=250,
            eval_batches=2,
            output_dir=str(args.runs / f"osrt_views_{name}"),
            progress=False,
        )
        if args.quick:
            generating = replace(generating, episodes=6, eval_episodes=3, shard_size=3, workers=1)
            tiny = {"width": 32, "encoder_layers": 1, "heads": 2, "target_rays": 64}
            training = replace(
                training,
                model={**OSRT, **tiny},
                steps=2,
                batch_size=2,
                eval_every=1,
                eval_batches=1,
            )
        if not (data / MANIFEST).exists():
            generate(generating)
        started = time.perf_counter()
        train(training)
        log = Path(training.output_dir) / METRICS
        rows.append(
            {
                "views": name,
                "camera_views": views,
                "episodes": generating.episodes,
                "steps": training.steps,
                "metrics": [json.loads(line) for line in log.read_text().splitlines()],
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
        print(f"{name}: {rows[-1]['metrics'][-1]}", flush=True)
    info = machine()
    results = "osrt_views" + ("_quick" if args.quick else "")
    write_results(
        results, {"machine": info, "rows": rows}, to_markdown(rows, info), args.output_dir
    )


if __name__ == "__main__":
    main()
