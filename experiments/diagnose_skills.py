"""What a learned skill policy predicts on held-out demonstrations, and what it looks at.

    python -m experiments.diagnose_skills --checkpoint runs/skills/final --data data/tabletop_demos

Open loop, on the eval split's demonstrations (``python -m embodied.generate demos=true``):
- R^2 of the motion labels (x, y, z, turn) and the accuracy of the grip (close or open) per
  verb: how much of the demonstrated motion the policy predicts;
- the same with every image (rgb and masks) and the objects located from them zeroed: if it
  barely drops, the policy is replaying an average path from proprio instead of looking;
- the stop's probability by steps left in the demonstration: a stop that fires far from the end
  ends skills early.
Closed-loop success is ``experiments.benchmark_skills``'s job.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from embodied.data.demos import load_demos
from embodied.train_skills import batch_of
from policies.learned import ACTION_DIM, GRIP, VERBS, SkillPolicy

SAMPLE = 4096  # held-out steps used (fixed draw)


def r_squared(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(D,) 1 - MSE / variance per dimension of predicted and labels (N, D)."""
    variance = labels.var(axis=0)
    return 1.0 - ((predicted - labels) ** 2).mean(axis=0) / np.maximum(variance, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train_skills final/ directory")
    parser.add_argument("--data", required=True, help="a dataset made with demos=true")
    args = parser.parse_args()
    policy = SkillPolicy.load(args.checkpoint)
    demos = load_demos(args.data, "eval", policy.config)
    rng = np.random.default_rng(0)
    index = np.sort(rng.choice(len(demos), min(SAMPLE, len(demos)), replace=False))
    (images, located, proprio, verbs), actions, _ = batch_of(demos, index, policy.config)
    with torch.no_grad():
        output = policy(images, located, proprio, verbs).numpy()  # (N, ACTION_DIM + 1)
        nothing_seen = torch.zeros_like(images), torch.zeros_like(located)
        blind = policy(*nothing_seen, proprio, verbs).numpy()
    labels = actions.numpy()
    print(f"{len(index)} held-out steps of {args.data}; R^2 of x, y, z, turn; grip accuracy")
    for v, verb in enumerate(VERBS):
        rows = verbs.numpy() == v
        if rows.sum() < 2:
            continue
        for name, predicted in (("", output), ("images and located objects zeroed:", blind)):
            motion = r_squared(predicted[rows, :GRIP], labels[rows, :GRIP])
            grip = ((predicted[rows, GRIP] > 0) == (labels[rows, GRIP] > 0.5)).mean()
            head = f"{verb:6s} {rows.sum():5d} steps:" if not name else f"{'':6s} {name}"
            print(f"  {head} {np.round(motion, 3)}; {grip:.3f}")

    stop = 1.0 / (1.0 + np.exp(-output[:, ACTION_DIM]))
    demo = demos.demo[index]
    last = {d: np.flatnonzero(demos.demo == d).max() for d in np.unique(demo)}
    left = np.array([last[d] - i for d, i in zip(demo, index, strict=True)])
    threshold = policy.config.done_threshold
    print(f"stop probability by steps left (share above 0.5, above {threshold}, mean):")
    for steps in (0, 1, 2, 3, 5, 10, 20):
        rows = left == steps
        if rows.any():
            shares = (stop[rows] > 0.5).mean(), (stop[rows] > threshold).mean()
            print(f"  {steps:3d}: {shares[0]:.3f}, {shares[1]:.3f}, {stop[rows].mean():.3f}")
    far = left > 5
    print(f"  >5 : {(stop[far] > threshold).mean():.4f} of {far.sum()} steps fire early")


if __name__ == "__main__":
    main()
