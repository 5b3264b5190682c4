"""Train the learned skills by behaviour cloning on the scripted skills' demonstrations.

    python -m embodied.generate tasks=[p1,p2,tower] demos=true demo_noise=0.02 \\
        episodes=600 eval_episodes=60 'env.views=[front,left,right]' output_dir=data/tabletop_demos
    python -m embodied.train_skills data=data/tabletop_demos
    python -m embodied.rollout skills=learned skills_checkpoint=runs/skills/final

One policy for every verb (``policies.learned``): each step of a demonstration is one example,
its label the tool target and wrist turn the script commanded there (or, with
``policy.lookahead``, the path the tool took), whether it closed the fingers, and whether the
skill is about to stop (``policies.learned.action_labels``). The loss is the squared error of the
motion and the binary cross-entropy of the grip and of the stop; training images are shifted at
random by a few pixels (DrQ). Held-out
demonstrations (the eval split) give the loss and the stop's accuracy; ``final/`` holds the
policy in safetensors with its config.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.nn import functional as F

from embodied.config import TrainSkillsConfig, register_configs, to_config_or_exit
from embodied.data.demos import DemoArrays, dataset_views, load_demos
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
from policies.learned import ACTION_DIM, GRIP, SkillPolicy, policy_batch
from policies.learned_config import SkillPolicyConfig

register_configs()


def batch_of(
    demos: DemoArrays, index: np.ndarray, config: SkillPolicyConfig
) -> tuple[tuple[Tensor, ...], Tensor, Tensor]:
    """The network's inputs, the action labels (B, ACTION_DIM) and stop labels (B,)."""
    inputs = policy_batch(
        demos.rgb[index],
        demos.masks(index),
        demos.memory[index],
        demos.proprio[index],
        demos.previous[index],
        demos.verbs[index],
        config,
    )
    return inputs, torch.from_numpy(demos.actions[index]), torch.from_numpy(demos.done[index])


def random_shift(images: Tensor, pixels: int, generator: torch.Generator) -> Tensor:
    """images (B, V, C, H, W) each shifted by up to ``pixels`` in x and y (edge pixels repeat),
    every image on its own: DrQ's augmentation (Kostrikov et al., 2020)."""
    b, v, c, h, w = images.shape
    flat = images.flatten(0, 1)  # (B * V, C, H, W)
    padded = F.pad(flat, (pixels,) * 4, mode="replicate")  # (B * V, C, H + 2p, W + 2p)
    offsets = torch.randint(0, 2 * pixels + 1, (len(flat), 2), generator=generator)
    shifted = [
        image[:, dy : dy + h, dx : dx + w]
        for image, (dy, dx) in zip(padded, offsets.tolist(), strict=True)
    ]
    return torch.stack(shifted).view(b, v, c, h, w)


def losses(
    policy: SkillPolicy,
    demos: DemoArrays,
    index: np.ndarray,
    done_weight: float,
    shift: tuple[int, torch.Generator] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The training loss of a batch and its parts; ``shift`` (pixels, generator) augments."""
    (images, located, proprio, verbs), actions, done = batch_of(demos, index, policy.config)
    if shift is not None and shift[0] > 0:
        images = random_shift(images, *shift)
    output = policy(images, located, proprio, verbs)  # (B, ACTION_DIM + 1)
    motion = F.mse_loss(output[:, :GRIP], actions[:, :GRIP])
    grip = F.binary_cross_entropy_with_logits(output[:, GRIP], actions[:, GRIP])
    stop = F.binary_cross_entropy_with_logits(
        output[:, ACTION_DIM], done, pos_weight=torch.tensor(done_weight)
    )
    detached = output.detach()
    predicted_stop = detached[:, ACTION_DIM] > 0
    predicted_grip = detached[:, GRIP] > 0
    return motion + grip + stop, {
        "motion_loss": motion.item(),
        "grip_loss": grip.item(),
        "stop_loss": stop.item(),
        "grip_accuracy": float((predicted_grip == actions[:, GRIP].bool()).float().mean()),
        "stop_accuracy": float((predicted_stop == done.bool()).float().mean()),
    }


def evaluate(policy: SkillPolicy, demos: DemoArrays, config: TrainSkillsConfig) -> dict[str, float]:
    """Held-out losses over (up to) 1024 fixed steps."""
    policy.eval()
    rng = np.random.default_rng(config.seed + 1)
    index = rng.choice(len(demos), min(len(demos), 1024), replace=False)
    totals: dict[str, float] = {}
    with torch.no_grad():
        chunks = np.array_split(index, max(1, len(index) // config.batch_size))
        for chunk in chunks:
            loss, parts = losses(policy, demos, chunk, config.done_weight)
            for key, value in {"eval_loss": float(loss), **parts}.items():
                totals[key] = totals.get(key, 0.0) + value / len(chunks)
    policy.train()
    return {f"eval_{k}" if not k.startswith("eval") else k: round(v, 5) for k, v in totals.items()}


def train(config: TrainSkillsConfig) -> dict[str, Any]:
    """Behaviour-clone the skills; returns the last metrics."""
    torch.manual_seed(config.seed)
    env, views, image_size = dataset_views(config.data)
    policy_config = replace(config.policy, views=views, image_size=image_size, env=env)
    train_demos = load_demos(config.data, "train", policy_config)
    eval_demos = load_demos(config.data, "eval", policy_config)
    if config.batch_size > len(train_demos):
        raise ValueError(
            f"batch_size={config.batch_size}: more than the {len(train_demos)} demonstration "
            f"steps of {config.data}; lower it or generate more (episodes=...)"
        )
    policy = SkillPolicy(policy_config)
    optimizer = torch.optim.AdamW(
        policy.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    output_dir = Path(config.output_dir)
    checkpoint = output_dir / CHECKPOINT
    start = FRESH
    found = latest_checkpoint(checkpoint) if config.resume else None
    if found is not None:
        saved = SkillPolicy.load(found)
        if saved.config != policy_config:
            raise TrainingConflict(
                f"{found} holds a policy with {saved.config}, not {policy_config}: choose "
                f"another output_dir, or resume=false to start over"
            )
        policy.load_state_dict(saved.state_dict())
        start = load_trainer_state(found, optimizer)
        print(f"resuming {found} at step {start.step}", flush=True)
    print(
        f"skill policy: {sum(p.numel() for p in policy.parameters()):,} parameters, views "
        f"{views} at {image_size} px; {len(train_demos)} training steps from "
        f"{int(train_demos.demo.max()) + 1} demonstrations, {len(eval_demos)} held-out",
        flush=True,
    )
    output_dir.mkdir(parents=True, exist_ok=True)

    def loss_at(at: int) -> Tensor:
        rng = np.random.default_rng([config.seed, at])
        index = rng.choice(len(train_demos), config.batch_size, replace=False)
        shifts = torch.Generator().manual_seed(config.seed * 1_000_003 + at)
        loss, _ = losses(policy, train_demos, index, config.done_weight, (config.shift, shifts))
        return loss

    policy.train()
    metrics = optimize(
        config,
        config.steps,
        start,
        optimizer,
        loss_at,
        lambda _: evaluate(policy, eval_demos, config),
        policy.save,
        output_dir,
    )
    policy.save(output_dir / FINAL)
    print(f"done: {metrics}; policy in {output_dir / FINAL}", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=None, config_name="train_skills")
def main(cfg: DictConfig) -> None:
    run_or_exit(train, to_config_or_exit(cfg))


if __name__ == "__main__":
    main()
