"""``python -m embodied.train_encoder encoder=<name>``: pretrain a sensor encoder on generated data.

Examples::

    python -m embodied.generate                          # the data (data/tabletop), once
    python -m embodied.train_encoder encoder=vit
    python -m embodied.train_encoder encoder=object_centric steps=3000
    python -m embodied.train_encoder encoder=vit +model.reduce=tokenlearner output_dir=runs/vit_tl

Each encoder brings its own objective (``pretrain_loss``). AdamW with a linear warm-up and cosine
decay; a progress bar; ``metrics.jsonl`` (one JSON line per evaluation: step, train and held-out
loss, elapsed seconds); a checkpoint every ``checkpoint_every`` steps (``checkpoint/``: the encoder
in safetensors plus ``trainer.pt``, the optimizer state, loaded with ``weights_only=True``); the
final encoder in ``final/``. Rerunning the same command resumes from the checkpoint, and because
batches and every random draw of a step (dropout, sampled rays) come from (seed, step) the resumed
run ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import hydra
import torch
from omegaconf import DictConfig

from embodied.config import TrainEncoderConfig, register_configs, to_config_or_exit
from embodied.data.frames import FrameBank, add_regions
from embodied.data.speech import SpeechCorpus
from embodied.generate import MANIFEST
from embodied.training import (
    CHECKPOINT,
    FINAL,
    FRESH,
    TrainingConflict,
    latest_checkpoint,
    load_trainer_state,
    optimize,
    run_or_exit,
)
from encoders import SensorEncoder, load_encoder, make_encoder

register_configs()

INPUT_KEYS = {
    "vit": ["rgb", "depth", "segmentation"],
    "object_centric": ["rgb", "segmentation", "objects", "object_mask"],
    "region": ["rgb", "segmentation", "objects", "object_mask"],
    "osrt": ["rgb", "depth", "segmentation", "intrinsics", "extrinsics"],
}
"""Observation arrays each objective reads (only these are loaded)."""


def encoder_fields(encoder: str, data: str | Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """An encoder's config fields: for vision encoders image size and views from the dataset's
    manifest; then ``overrides``."""
    if encoder not in INPUT_KEYS:
        return dict(overrides)
    path = Path(data) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: generate the data first (python -m embodied.generate "
            f"output_dir={data})"
        )
    env = json.loads(path.read_text())["generator"]["env"]
    return {"image_size": env["image_size"], "views": len(env["views"]), **overrides}


class Source(Protocol):
    """Where training batches come from: generated frames, or synthesized speech."""

    def __len__(self) -> int: ...
    def batch(self, size: int, seed: int, step: int) -> dict[str, torch.Tensor]: ...


def make_sources(config: TrainEncoderConfig) -> tuple[Source, Source]:
    """Training and held-out sources for the encoder."""
    if config.encoder == "audio":
        n_mels = int(config.model.get("n_mels", 80))
        held_out = max(1, config.utterances // 10)
        return (
            SpeechCorpus(config.utterances, config.seed, n_mels),
            SpeechCorpus(held_out, config.seed + 1_000, n_mels),
        )
    keys_ = INPUT_KEYS[config.encoder]
    return FrameBank(config.data, config.split, keys_), FrameBank(
        config.data, config.eval_split, keys_
    )


def make_batch(
    bank: Source, config: TrainEncoderConfig, step: int, seed: int
) -> dict[str, torch.Tensor]:
    batch = bank.batch(config.batch_size, seed, step)
    return add_regions(batch, seed, step) if config.encoder == "region" else batch


def evaluate(encoder: SensorEncoder, bank: Source, config: TrainEncoderConfig) -> dict[str, float]:
    """Mean objective (``eval_loss``) and the encoder's own measures over ``eval_batches``
    fixed held-out batches."""
    encoder.eval()
    totals: dict[str, float] = {}
    with torch.no_grad():
        for i in range(config.eval_batches):
            batch = make_batch(bank, config, i, seed=config.seed + 1)
            torch.manual_seed(config.seed + 1 + i)  # the same draws (held-back view...) each time
            measures = {"eval_loss": float(encoder.pretrain_loss(batch))}
            measures.update(encoder.eval_metrics(batch))
            for key, value in measures.items():
                totals[key] = totals.get(key, 0.0) + value / config.eval_batches
    encoder.train()
    return {key: round(value, 5) for key, value in totals.items()}


def train(config: TrainEncoderConfig) -> dict[str, Any]:
    """Pretrain ``config.encoder``; returns the last metrics."""
    torch.manual_seed(config.seed)
    output_dir = Path(config.output_dir)
    fields = encoder_fields(config.encoder, config.data, config.model)
    encoder = make_encoder(config.encoder, **fields)
    optimizer = torch.optim.AdamW(
        encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    start = FRESH
    checkpoint = output_dir / CHECKPOINT
    found = latest_checkpoint(checkpoint) if config.resume else None
    if found is not None:
        saved = load_encoder(found)
        if saved.name != encoder.name or saved.config != encoder.config:
            raise TrainingConflict(
                f"{found} holds {saved.name} {saved.config}, not {encoder.name} "
                f"{encoder.config}: choose another output_dir or resume=false"
            )
        encoder.load_state_dict(saved.state_dict())
        start = load_trainer_state(found, optimizer)
        print(f"resuming {found} at step {start.step}", flush=True)
    train_bank, eval_bank = make_sources(config)
    print(
        f"{config.encoder}: {sum(p.numel() for p in encoder.parameters()):,} parameters, "
        f"{encoder.n_tokens} tokens of {encoder.dim}; {len(train_bank)} training examples, "
        f"{len(eval_bank)} held-out",
        flush=True,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    encoder.train()
    metrics = optimize(
        config,
        config.total_steps,
        start,
        optimizer,
        lambda at: encoder.pretrain_loss(make_batch(train_bank, config, at, config.seed)),
        lambda _: evaluate(encoder, eval_bank, config),
        encoder.save,
        output_dir,
    )
    encoder.save(output_dir / FINAL)
    print(f"done: {metrics}; encoder in {output_dir / FINAL}", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=None, config_name="train_encoder")
def main(cfg: DictConfig) -> None:
    run_or_exit(train, to_config_or_exit(cfg))


if __name__ == "__main__":
    main()
