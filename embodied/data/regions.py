"""Region referrals for the planner (Ferret's referring, on this project's tasks): one object the
instruction names is pointed at on a camera view instead of named.

    "How to stack obj_2 on top of obj_5?"
    -> "How to stack [41, 52, 47, 60] <region> on top of obj_5?"

with the region (a point on obj_2, its box or its mask, on a view that sees it) as the region
encoder's input; the planner still answers in entity names ("pick(obj_2)"), so it must find
which object the region shows. The first entity the instruction names is the one pointed at; an
instruction that names none, or whose object no view shows, stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from encoders.region import (
    REGION_MASK,
    REGION_VIEW,
    Region,
    RegionKind,
    draw_region,
    region_mask,
    region_text,
)
from envs import keys


def first_named(instruction: str, entities: Sequence[str]) -> str | None:
    """The entity the instruction names first (whole words), or None."""
    found = [(m.start(), name) for name in entities for m in [_word(name).search(instruction)] if m]
    return min(found)[1] if found else None


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(name)}\b")


def refer_by_region(
    instruction: str,
    entities: Sequence[str],
    segmentation: np.ndarray,
    rng: np.random.Generator,
    kind: RegionKind | None = None,
) -> tuple[str, Region | None]:
    """The instruction with its first named entity replaced by a region's text (quantized
    coordinates and ``<region>``), and the region; ``segmentation (V, H, W)`` labels obj_j as
    j (row j-1). Unchanged, with None, when it names no entity or no view shows it."""
    named = first_named(instruction, entities)
    if named is None:
        return instruction, None
    on_object = segmentation == entities.index(named) + 1  # (V, H, W)
    views = [v for v in range(len(segmentation)) if on_object[v].any()]
    if not views:
        return instruction, None
    view = views[int(rng.integers(len(views)))]
    region = draw_region(on_object[view], view, rng, kind)
    text = region_text(region, segmentation.shape[-1])
    return _word(named).sub(text, instruction, count=1), region


class RegionReferrals:
    """The planner's instruction sensor for ``region``: rewrites each instruction and draws its
    region from the frame's segmentation (a point, box or mask at random, or ``kind``)."""

    needs: tuple[str, ...] = (keys.RGB, keys.SEGMENTATION)
    """Observation arrays it reads: the views the region is drawn on and sampled from."""

    def __init__(self, kind: RegionKind | None = None) -> None:
        self.kind = kind

    def prepare(
        self,
        instructions: Sequence[str],
        entities: Sequence[Sequence[str]],
        observation: Mapping[str, Tensor],
        draws: np.random.Generator,
    ) -> tuple[list[str], dict[str, Tensor]]:
        """The instructions as the prompts carry them, and ``REGION_MASK (B, H, W)`` and
        ``REGION_VIEW (B,)``. A frame without a region gets one pixel of view 0, which no
        placeholder reads."""
        segmentation = observation[keys.SEGMENTATION].numpy()  # (B, V, H, W)
        b, _, h, w = segmentation.shape
        masks, views = np.zeros((b, h, w), dtype=bool), np.zeros(b, dtype=np.int64)
        texts = []
        for i, instruction in enumerate(instructions):
            text, region = refer_by_region(
                instruction, entities[i], segmentation[i], draws, self.kind
            )
            texts.append(text)
            if region is None:
                masks[i, 0, 0] = True
            else:
                masks[i], views[i] = region_mask(region, h), region.view
        return texts, {REGION_MASK: torch.from_numpy(masks), REGION_VIEW: torch.from_numpy(views)}
