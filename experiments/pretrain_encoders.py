"""Pretrain every trainable encoder at its defaults and tabulate the held-out results.

    python -m embodied.generate                                  # the data, once
    python -m experiments.pretrain_encoders                      # every encoder (~1 hour)
    python -m experiments.pretrain_encoders --encoders vit audio
    python -m experiments.pretrain_encoders --collect            # tabulate runs/ as they are
    python -m experiments.pretrain_encoders --collect --encoders osrt_rgbd --eval-batches 10
    python -m experiments.pretrain_encoders --quick              # smoke run (tiny models)

Each encoder is trained by ``embodied.train_encoder.train`` into ``runs/encoder_<name>`` (an
existing run there resumes, a finished one is only read); the table holds the last evaluation of
``metrics.jsonl``: held-out loss, the encoder's own measures (patch accuracy, depth error;
object position error; PSNR and FG-ARI; CER) and the wall time of training. Encoders not named
by ``--encoders`` keep their earlier rows, each with the commit it was tabulated at.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from embodied.config import TrainEncoderConfig
from embodied.train_encoder import evaluate, make_sources, train
from embodied.training import FINAL, METRICS
from encoders import load_encoder
from experiments.common import RESULTS_DIR, machine, merge_rows, write_results

ENCODERS = ("vit", "object_centric", "region", "osrt", "audio")
OSRT_RGBD: dict[str, Any] = {
    "model": {
        "decoder": "broadcast",
        "foreground_rays": 0.5,
        "slots": 10,
        "rgbd": True,
        "patch_size": 2,
        "slot_iterations": 1,
    },
    "data": "data/tabletop_views_zoom",
    "steps": 2000,
    "batch_size": 16,
    "lr": 4e-4,
    "eval_batches": 2,
}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "osrt_broadcast": (
        "osrt",
        {
            "model": {"decoder": "broadcast", "foreground_rays": 0.5, "slots": 8},
            "steps": 4000,
            "batch_size": 16,
            "lr": 4e-4,
            "eval_batches": 2,
        },
    ),
    "osrt_rgbd": ("osrt", OSRT_RGBD),
    "osrt_rgbd_slot_mixer": (
        "osrt",
        {
            **OSRT_RGBD,
            "model": {**OSRT_RGBD["model"], "decoder": "slot_mixer", "slot_teaching": 0.05},
        },
    ),
}
"""Runs beside the defaults: name -> (encoder, TrainEncoderConfig fields; ``data`` replaces
``--data``). osrt_broadcast: the spatial-broadcast decoder, half the rays on objects, 8 slots
(about an hour here). osrt_rgbd: the same decoder with depth (slots that are Gaussian blobs in
the world and in appearance, inputs joining them by their density, seeded on one dense token
per colour and the rest spread over the table; the decoder relative to their positions), 10
slots, 1 iteration, on 2 px tokens of the views narrowed to the workspace (``python -m
experiments.osrt_views`` generates them), where a cube covers ~38 px of a view instead of ~17
(2456 s here, measured before the seeding). osrt_rgbd_slot_mixer: the same with OSRT's Slot
Mixer decoder, taught the slots' split of the input tokens (``slot_teaching`` 0.05): on 160
held-out scenes fg_ari 0.808, slot_fg_ari 0.856, PSNR 20.4 (1726 s here); untaught, under the
earlier seed test, fg_ari 0.724 and PSNR 21.2, taught 0.755."""
TARGETS = {name: "FG-ARI >= 0.8" for name in ("osrt", *VARIANTS)}
TARGETS["audio"] = "CER <= 0.10"
QUICK_MODELS: dict[str, dict[str, Any]] = {
    "vit": {"hidden": 32, "layers": 1, "heads": 2},
    "object_centric": {"hidden": 32, "layers": 1, "heads": 2},
    "region": {"hidden": 32, "layers": 1, "heads": 2},
    "osrt": {"width": 32, "encoder_layers": 1, "heads": 2, "slots": 4, "target_rays": 64},
    "audio": {"width": 32, "layers": 1, "heads": 2},
}


def last_metrics(run_dir: Path) -> dict[str, Any]:
    lines = (run_dir / METRICS).read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def measure_again(final: Path, config: TrainEncoderConfig) -> dict[str, float]:
    """The final encoder's held-out loss and measures on ``config.eval_batches`` batches."""
    if not final.exists():
        raise SystemExit(f"{final} not found: the run has not finished")
    return evaluate(load_encoder(final), make_sources(config)[1], config)


def merged_rows(rows: list[dict[str, Any]], earlier: Path) -> list[dict[str, Any]]:
    """The rows just tabulated, with the earlier table's rows of the other encoders, in the
    order of ENCODERS then VARIANTS: pretraining one encoder again keeps the rest of the
    table."""
    previous: list[dict[str, Any]] = []
    if earlier.exists():
        table = json.loads(earlier.read_text())
        previous = table["rows"]
        for row in previous:  # a row from before rows had commits and data: its table's
            row.setdefault("commit", table["machine"]["commit"])
            row.setdefault("data", "data/tabletop")
    return merge_rows(rows, previous, "encoder", [*ENCODERS, *VARIANTS])


def to_markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        "## Encoder pretraining (held-out, at the defaults)",
        "",
        "| encoder | data | steps | held-out loss | measures | target | training s "
        "| tabulated at |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["metrics"]
        measures = ", ".join(
            f"{k} {v}" for k, v in m.items() if k not in ("step", "loss", "eval_loss", "elapsed_s")
        )
        if "held_out_examples" in row:
            measures += f" (on {row['held_out_examples']} held-out examples)"
        lines.append(
            f"| {row['encoder']} | {row['data']} | {m.get('step')} | {m.get('eval_loss')} | "
            f"{measures} | {TARGETS.get(row['encoder'], '')} | {m.get('elapsed_s')} | "
            f"{row['commit']} |"
        )
    lines += ["", f"{info['cpus']} CPUs; table written at commit {info['commit']}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--encoders", nargs="+", default=list(ENCODERS), choices=[*ENCODERS, *VARIANTS]
    )
    parser.add_argument("--data", default="data/tabletop")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--collect", action="store_true", help="only tabulate existing runs")
    parser.add_argument("--quick", action="store_true", help="tiny models, a few steps")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--eval-batches",
        type=int,
        help="measure each final encoder again on this many held-out batches (default: the "
        "last evaluation of training, on the run's eval_batches)",
    )
    args = parser.parse_args()
    if args.eval_batches is not None and args.eval_batches < 1:
        parser.error(f"--eval-batches {args.eval_batches}: must be >= 1")
    rows = []
    for name in args.encoders:
        run_dir = args.runs / f"encoder_{name}"
        encoder, overrides = VARIANTS.get(name, (name, {}))
        overrides = {"data": args.data, **overrides}
        if not args.collect:
            if args.quick:
                overrides = {
                    "model": {**overrides.get("model", {}), **QUICK_MODELS[encoder]},
                    "data": args.data,
                    "steps": 4,
                    "batch_size": 4,
                    "eval_every": 2,
                    "eval_batches": 1,
                    "checkpoint_every": 2,
                    "utterances": 20,
                }
            started = time.perf_counter()
            train(
                TrainEncoderConfig(
                    encoder=encoder,
                    output_dir=str(run_dir),
                    progress=False,
                    **overrides,
                )
            )
            print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
        if not (run_dir / METRICS).exists():
            raise SystemExit(f"{run_dir / METRICS} not found: train {name} first")
        row = {
            "encoder": name,
            "run": str(run_dir),
            "data": overrides["data"],
            "commit": machine()["commit"],
            "metrics": last_metrics(run_dir),
        }
        if args.eval_batches is not None:
            config = TrainEncoderConfig(
                encoder=encoder,
                output_dir=str(run_dir),
                **{**overrides, "eval_batches": args.eval_batches},
            )
            row["metrics"] |= measure_again(run_dir / FINAL, config)
            row["held_out_examples"] = args.eval_batches * config.batch_size
        rows.append(row)
    info = machine()
    rows = merged_rows(rows, args.output_dir / "pretrain_encoders.json")
    results = {"machine": info, "rows": rows}
    write_results("pretrain_encoders", results, to_markdown(rows, info), args.output_dir)


if __name__ == "__main__":
    main()
