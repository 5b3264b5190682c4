"""Dataset splits: fixed, disjoint seed ranges and the scene options that make each one.

``train`` and ``eval`` share one distribution (3-5 cubes, colour combinations seen in training,
objects named ``obj_j``); the tabletop's generalization splits change one thing each, as PaLM-E's
out-of-distribution tests do: 6 or 8 cubes, colour pairs held out of training
(``envs.scene.HELD_OUT_COLOUR_PAIRS``), or objects named by colour instead of ``obj_j``.
Every split owns SPLIT_SEEDS consecutive seeds, so no seed is in two splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from embodied.episode import EVAL_SEED_START, TRAIN_SEED_START
from envs.tasks import TASK_FAMILIES

SPLIT_SEEDS = 100_000
"""Seeds per split: split k owns [seed_start, seed_start + SPLIT_SEEDS)."""
TABLETOP = "embodied/Tabletop-v0"
KITCHEN = "embodied/Kitchen-v0"


@dataclass(frozen=True)
class Split:
    """One split: where its seeds start, the reset options its scenes get, the worlds it
    exists for, and whether only families whose instructions name single objects belong."""

    name: str
    seed_start: int
    options: Mapping[str, Any] = field(default_factory=dict)
    worlds: tuple[str, ...] = (TABLETOP, KITCHEN)
    only_object_referring: bool = False

    def families(self, families: list[str]) -> list[str]:
        """The families of ``families`` this split holds."""
        if not self.only_object_referring:
            return list(families)
        return [f for f in families if TASK_FAMILIES[f].refers_to_objects]

    def seed(self, index: int) -> int:
        if not 0 <= index < SPLIT_SEEDS:
            raise ValueError(f"split {self.name}: candidate {index} beyond its {SPLIT_SEEDS} seeds")
        return self.seed_start + index


SPLITS: dict[str, Split] = {
    split.name: split
    for split in (
        Split("train", TRAIN_SEED_START),
        Split("eval", EVAL_SEED_START),
        Split("objects_6", 2 * SPLIT_SEEDS, {"num_objects": 6}, (TABLETOP,)),
        Split("objects_8", 3 * SPLIT_SEEDS, {"num_objects": 8}, (TABLETOP,)),
        Split("unseen_colours", 4 * SPLIT_SEEDS, {"colour_combos": "unseen"}, (TABLETOP,)),
        Split("colour_referral", 5 * SPLIT_SEEDS, {"referral": "colour"}, (TABLETOP,), True),
    )
}
"""Every split by name."""
