"""What every training entry point shares: the optimization loop (``optimize``), its
learning-rate schedule, crash-safe checkpoints, the metrics log.

A checkpoint directory holds the model (written by the caller) and ``trainer.pt`` (optimizer
state, step and the optimization seconds spent so far, loaded with ``weights_only=True``). It
is written beside its final name and swapped in, so that a kill at any moment leaves a whole
checkpoint to resume from.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm import tqdm

from embodied.config import TrainingRun

TRAINER_STATE = "trainer.pt"
CHECKPOINT = "checkpoint"
"""``output_dir/checkpoint``: the latest checkpoint, resumed from."""
FINAL = "final"
"""``output_dir/final``: the trained model."""


class TrainingConflict(ValueError):
    """The checkpoint in output_dir belongs to another model or config."""


METRICS = "metrics.jsonl"


def learning_rate(lr: float, warmup_steps: int, total_steps: int, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``total_steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def save_checkpoint(
    write_model: Callable[[Path], None],
    optimizer: torch.optim.Optimizer,
    step: int,
    directory: Path,
    elapsed_s: float = 0.0,
) -> None:
    """``write_model(staging)`` plus the trainer state, written beside ``directory`` and
    swapped in (``directory``, or ``<directory>.old`` during the swap, is always whole:
    ``latest_checkpoint`` finds it)."""
    staging, old = (
        directory.with_name(f"{directory.name}.new"),
        directory.with_name(f"{directory.name}.old"),
    )
    shutil.rmtree(staging, ignore_errors=True)
    write_model(staging)
    state = {"optimizer": optimizer.state_dict(), "step": step, "elapsed_s": elapsed_s}
    torch.save(state, staging / TRAINER_STATE)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(directory: Path) -> Path | None:
    """The whole checkpoint to resume from, if any."""
    for candidate in (directory, directory.with_name(f"{directory.name}.old")):
        if (candidate / TRAINER_STATE).exists():
            return candidate
    return None


class Start(NamedTuple):
    """Where a run starts: its step, and the optimization seconds spent before it (over every
    run that led to its checkpoint; 0 for checkpoints written before this was recorded)."""

    step: int
    elapsed_s: float


FRESH = Start(0, 0.0)
"""The start of a run that resumes from nothing."""


def load_trainer_state(checkpoint: Path, optimizer: torch.optim.Optimizer) -> Start:
    """Restore the optimizer from ``checkpoint``; returns where the run resumes."""
    state = torch.load(checkpoint / TRAINER_STATE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return Start(int(state["step"]), float(state.get("elapsed_s", 0.0)))


def last_metrics(run: Path) -> dict[str, Any] | None:
    """The last line of ``run``'s metrics log (``METRICS``); None when it has none."""
    log = run / METRICS
    lines = log.read_text().splitlines() if log.exists() else []
    return json.loads(lines[-1]) if lines else None


def trained_seconds(checkpoint: Path) -> float:
    """The optimization seconds spent up to ``checkpoint``, over every run that led to it (0
    for checkpoints written before this was recorded)."""
    state = torch.load(checkpoint / TRAINER_STATE, weights_only=True)
    return float(state.get("elapsed_s", 0.0))


def run_or_exit(train: Callable[[Any], Any], config: Any) -> None:
    """Run an entry point's ``train(config)``; a missing file or a bad value prints what was
    wrong and exits with status 2 (no traceback)."""
    try:
        train(config)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def log_metrics(output_dir: Path, metrics: dict[str, Any]) -> None:
    """Append one JSON line to ``output_dir/metrics.jsonl``."""
    with open(output_dir / METRICS, "a") as log:
        log.write(json.dumps(metrics) + "\n")


def optimize(
    run: TrainingRun,
    total_steps: int,
    start: Start,
    optimizer: torch.optim.Optimizer,
    loss_at: Callable[[int], torch.Tensor],
    measure: Callable[[float], dict[str, Any]],
    save: Callable[[Path], None],
    output_dir: Path,
    leader: bool = True,
) -> dict[str, Any]:
    """The optimization loop of every entry point, from ``start.step`` to ``total_steps``.

    Each step sets the warm-up-then-cosine learning rate, seeds torch with the step (dropout
    and random draws repeat on resume), backpropagates ``loss_at(step)`` and clips the
    optimizer's gradients to norm 1. Every ``run.eval_every`` steps and at the last, the leader
    (rank 0; the only process with ``leader``) logs ``step``, ``loss``, ``measure(seconds of
    this run)`` and ``elapsed_s``, the optimization seconds since step 0 (a resumed run
    continues the clock of its checkpoint, ``start.elapsed_s``); every
    ``run.checkpoint_every`` steps and at the last, it checkpoints ``output_dir/checkpoint``
    (``save`` writes the model). Returns the last metrics logged (empty on other processes)."""
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    checkpoint = output_dir / CHECKPOINT
    step, before = start
    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    with tqdm(total=total_steps, initial=step, disable=not (leader and run.progress)) as bar:
        while step < total_steps:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(run.lr, run.warmup_steps, total_steps, step)
            torch.manual_seed(run.seed * 1_000_003 + step)
            loss = loss_at(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            last = step == total_steps
            if leader and (step % run.eval_every == 0 or last):
                elapsed = time.perf_counter() - started
                metrics = {
                    "step": step,
                    "loss": round(loss.item(), 5),
                    **measure(elapsed),
                    "elapsed_s": round(before + elapsed, 1),
                }
                log_metrics(output_dir, metrics)
            if leader and (step % run.checkpoint_every == 0 or last):
                elapsed_s = before + time.perf_counter() - started
                save_checkpoint(save, optimizer, step, checkpoint, elapsed_s)
    return metrics
