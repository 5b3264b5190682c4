"""What every training entry point shares: the learning-rate schedule, crash-safe checkpoints,
the metrics log.

A checkpoint directory holds the model (written by the caller) and ``trainer.pt`` (optimizer
state and step, loaded with ``weights_only=True``). It is written beside its final name and
swapped in, so that a kill at any moment leaves a whole checkpoint to resume from.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TRAINER_STATE = "trainer.pt"


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
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, staging / TRAINER_STATE)
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


def load_trainer_state(checkpoint: Path, optimizer: torch.optim.Optimizer) -> int:
    """Restore the optimizer from ``checkpoint``; returns the step it was saved at."""
    state = torch.load(checkpoint / TRAINER_STATE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


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
