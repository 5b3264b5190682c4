"""Every frame of a generated split in memory, and random batches of it for encoder pretraining.

Pretraining reads the same frames thousands of times; decompressing HDF5 each time would cost
more than the model. A split of a few thousand 64 px frames is a few hundred MB as tensors, so
``FrameBank`` loads it once. Batches are drawn from ``(seed, step)``: the same step always gets
the same batch, which is what makes a resumed training run exactly equal to an uninterrupted one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from embodied.data.dataset import EpisodeDataset, collate_examples
from encoders.region import REGION_MASK, REGION_TARGET, REGION_VIEW, draw_region, region_mask
from envs import keys


class FrameBank:
    """Every frame of one split: the observation arrays stacked, ``arrays[key] (F, ...)``, and
    the rest of each example (instruction, history, target, ...) in ``records``."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        keys_: Sequence[str] | None = None,
        families: Sequence[str] | None = None,
    ) -> None:
        dataset = EpisodeDataset(root, split, families=families, keys=keys_)
        if len(dataset) == 0:
            raise ValueError(f"split {split!r} of {root} holds no frames (families: {families})")
        examples = [dataset[i] for i in range(len(dataset))]
        dataset.close()
        self.arrays: dict[str, Tensor] = collate_examples(examples)["observation"]
        self.records: list[dict[str, Any]] = [
            {k: v for k, v in e.items() if k != "observation"} for e in examples
        ]
        self._families = [record["family"] for record in self.records]
        self._weights: dict[float, np.ndarray] = {}  # family_alpha -> draw probabilities

    def __len__(self) -> int:
        return len(self.records)

    def draw(self, size: int, seed: int, step: int, family_alpha: float = 1.0) -> Tensor:
        """``size`` frame indices drawn (without replacement) by ``(seed, step)``.

        A task family with n frames gets a share of the draw proportional to n ** family_alpha
        (XLM's and mT5's temperature sampling of a mixture), its frames equally likely within
        it: 1 draws every frame equally (a p2 episode has ~4 frames, a question one, so plans
        dominate), 0 gives every family the same share."""
        rng = np.random.default_rng([seed, step])
        weights = None if family_alpha == 1.0 else self.family_weights(family_alpha)
        index = rng.choice(len(self), size=min(size, len(self)), replace=False, p=weights)
        return torch.from_numpy(index)

    def family_weights(self, family_alpha: float) -> np.ndarray:
        """``(F,)`` draw probabilities: family share ~ frames ** family_alpha."""
        if family_alpha not in self._weights:
            counts = Counter(self._families)
            share = {family: count**family_alpha for family, count in counts.items()}
            weights = np.array([share[f] / counts[f] for f in self._families])
            self._weights[family_alpha] = weights / weights.sum()
        return self._weights[family_alpha]

    def observations(self, index: Tensor) -> dict[str, Tensor]:
        """The observation arrays of the frames ``index``."""
        return {key: value[index] for key, value in self.arrays.items()}

    def batch(self, size: int, seed: int, step: int) -> dict[str, Tensor]:
        """The observations of ``size`` frames drawn by ``(seed, step)``."""
        return self.observations(self.draw(size, seed, step))


def add_regions(batch: dict[str, Tensor], seed: int, step: int) -> dict[str, Tensor]:
    """Draw one region per frame on a visible object: a point on it, its bounding box, or its
    mask (a third each), on a view that sees it. Adds REGION_MASK, REGION_VIEW, REGION_TARGET."""
    rng = np.random.default_rng([seed, step, 1])
    segmentation = batch[keys.SEGMENTATION].numpy()  # (B, V, H, W)
    b, v, h, w = segmentation.shape
    masks = np.zeros((b, h, w), dtype=bool)
    views, targets = np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64)
    for i in range(b):
        seen = [(view, label) for view in range(v) for label in np.unique(segmentation[i, view])]
        seen = [(view, int(label)) for view, label in seen if label > 0]
        if not seen:
            raise ValueError("a frame shows no object: regions need one")
        view, label = seen[int(rng.integers(len(seen)))]
        region = draw_region(segmentation[i, view] == label, view, rng)
        masks[i] = region_mask(region, h)
        views[i], targets[i] = view, label - 1
    return {
        **batch,
        REGION_MASK: torch.from_numpy(masks),
        REGION_VIEW: torch.from_numpy(views),
        REGION_TARGET: torch.from_numpy(targets),
    }
