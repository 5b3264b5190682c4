"""Typed Hydra configs (structured configs in the ConfigStore), validated when converted.

Entry points call ``to_config(cfg)``: it turns the composed DictConfig into these dataclasses,
which runs every ``__post_init__`` check, so a bad override fails with the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from embodied.episode import EVAL_SEED_START
from embodied.planners import PLANNERS
from envs.kitchen import KitchenConfig, KitchenEnv
from envs.tabletop import TabletopConfig, TabletopEnv
from envs.tasks import TaskFamily


def _make_kwargs(config: Any, fields: dict[str, Any]) -> dict[str, Any]:
    kwargs = {name: getattr(config, name) for name in fields}
    return {name: list(v) if isinstance(v, list) else v for name, v in kwargs.items()}


@dataclass
class TabletopEnvConfig(TabletopConfig):
    """The tabletop env: its registered id plus every TabletopConfig field."""

    id: str = "embodied/Tabletop-v0"

    def make_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for gym.make (everything but the id)."""
        return _make_kwargs(self, TabletopConfig.__dataclass_fields__)

    @property
    def families(self) -> dict[str, TaskFamily[Any]]:
        return dict(TabletopEnv.families)


@dataclass
class KitchenEnvConfig(KitchenConfig):
    """The kitchen env: its registered id plus every KitchenConfig field."""

    id: str = "embodied/Kitchen-v0"

    def make_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for gym.make (everything but the id)."""
        return _make_kwargs(self, KitchenConfig.__dataclass_fields__)

    @property
    def families(self) -> dict[str, TaskFamily[Any]]:
        return dict(KitchenEnv.families)


@dataclass
class RolloutConfig:
    """``python -m embodied.rollout``: run and record closed-loop episodes."""

    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"env": "tabletop"}])
    env: Any = MISSING
    """The environment (config group ``env``: tabletop or kitchen)."""
    planner: str = "oracle"
    """Who writes the plan: one of embodied.planners.PLANNERS."""
    task: str | None = None
    """Run only this task family (tabletop: p1, p2, q1-q4, sort, tower, line, pair, gather;
    kitchen: put_in_drawer, bring_from_cabinet, clear_counter, put_away, affordance,
    success_detection); None runs the families of env.tasks in turn."""
    episodes: int = 6
    """Number of episodes (the tabletop's default runs each TAMP family once)."""
    seed: int = EVAL_SEED_START
    """Seed of the first episode; episode i uses seed + i (evaluation seeds start at 100000)."""
    video: bool = True
    """Write one mp4 per episode."""
    video_every: int = 2
    """Keep every k-th control step as a video frame."""
    max_plan_steps: int = 24
    """Most skill calls per episode before it is cut off."""
    output_dir: str = "${hydra:runtime.output_dir}"
    """Where videos and summary.json go (Hydra's run directory by default)."""

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ValueError(f"planner={self.planner!r}: allowed {sorted(PLANNERS)}")
        if self.task is not None and self.task not in self.env.families:
            raise ValueError(
                f"task={self.task!r}: allowed {sorted(self.env.families)} or null for {self.env.id}"
            )
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes}: must be >= 1")
        if self.video_every < 1:
            raise ValueError(f"video_every={self.video_every}: must be >= 1")
        if self.max_plan_steps < 1:
            raise ValueError(f"max_plan_steps={self.max_plan_steps}: must be >= 1")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be >= 0")
        if self.env.id not in gym.registry:
            raise ValueError(f"env.id={self.env.id!r} is not a registered gymnasium id")


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="rollout", node=RolloutConfig)
    store.store(group="env", name="tabletop", node=TabletopEnvConfig)
    store.store(group="env", name="kitchen", node=KitchenEnvConfig)


def to_config(cfg: DictConfig) -> Any:
    """DictConfig -> validated dataclasses (raises ValueError naming the bad field)."""
    return OmegaConf.to_object(cfg)
