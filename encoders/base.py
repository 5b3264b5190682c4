"""What every sensor encoder is: a module that maps an observation batch to ``(B, n_tokens, dim)``
tokens, built from a typed config, freezable, saved and loaded with safetensors.

A checkpoint is a directory::

    encoder.json          {"name": "state", "config": {...}}  (the registry key and its config)
    model.safetensors     the state dict (no pickles)
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

Batch = dict[str, Tensor]
"""Observation arrays by key (``envs.keys``), each with a leading batch dimension."""
CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class EncoderConfig:
    """Settings every encoder has; each encoder's config subclasses it."""

    dim: int = 128
    """Width of the output tokens."""

    def __post_init__(self) -> None:
        self.check_positive("dim")

    def check_positive(self, *names: str) -> None:
        """Raise ValueError naming the first of these fields that is below 1."""
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")


class SensorEncoder(nn.Module, ABC):
    """Observation batch -> ``(B, n_tokens, dim)`` tokens (and which of them are real)."""

    name: ClassVar[str]
    config_class: ClassVar[type[EncoderConfig]]
    inputs: ClassVar[tuple[str, ...]]
    """The observation arrays ``forward`` reads (a planner loads only these)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        # Modules kept as loaded: they stay in eval mode (no dropout) whatever ``train()`` says,
        # so that a frozen part computes what it computed when it was pretrained.
        self._frozen_parts: list[nn.Module] = []

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    @abstractmethod
    def n_tokens(self) -> int:
        """Tokens per example."""

    @abstractmethod
    def forward(self, batch: Batch) -> Tensor:
        """``(B, n_tokens, dim)`` float tokens."""

    def pretrain_loss(self, batch: Batch) -> Tensor:
        """The encoder's own pretraining objective on a batch (scalar; lower is better)."""
        raise NotImplementedError(f"{self.name} has no pretraining objective")

    def eval_metrics(self, batch: Batch) -> dict[str, float]:
        """Held-out measures beside the loss (the audio encoder's character error rate)."""
        return {}

    def fit(self, batch: Batch) -> None:
        """Set data-dependent constants (input standardisation) from training data, before
        training; most encoders have none."""

    @classmethod
    def pretrainable(cls) -> bool:
        """Whether the class defines a pretraining objective."""
        return cls.pretrain_loss is not SensorEncoder.pretrain_loss

    def token_mask(self, batch: Batch) -> Tensor:
        """``(B, n_tokens)`` bool: which tokens stand for something (all, unless padded)."""
        size = next(iter(batch.values())).shape[0]
        return torch.ones(size, self.n_tokens, dtype=torch.bool)

    def backbone_parts(self) -> list[nn.Module]:
        """The pretrained feature extractor, which ``freeze_backbone`` keeps as loaded while the
        rest (what reads its features out into tokens) trains on. Default: the whole encoder."""
        return [self]

    def freeze(self) -> SensorEncoder:
        """Stop gradients into every parameter; eval mode from now on."""
        return self._freeze([self])

    def freeze_backbone(self) -> SensorEncoder:
        """Stop gradients into ``backbone_parts()``; they run in eval mode from now on."""
        return self._freeze(self.backbone_parts())

    def _freeze(self, parts: list[nn.Module]) -> SensorEncoder:
        for part in parts:
            part.requires_grad_(False)
        self._frozen_parts = [*self._frozen_parts, *parts]
        return self.train(self.training)

    def train(self, mode: bool = True) -> SensorEncoder:
        """``nn.Module.train``, except that frozen parts stay in eval mode."""
        super().train(mode)
        for part in self._frozen_parts:
            nn.Module.train(part, False)  # not ``part.train``: ``part`` may be ``self``
        return self

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.parameters())

    def save(self, directory: str | Path) -> None:
        """``encoder.json`` (name and config) and ``model.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        spec = {"name": self.name, "config": asdict(self.config)}
        (directory / CONFIG_FILE).write_text(json.dumps(spec, indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))


ENCODERS: dict[str, type[SensorEncoder]] = {}
"""Encoder classes by registry name; filled by ``register``."""


def register(cls: type[SensorEncoder]) -> type[SensorEncoder]:
    """Class decorator: make an encoder buildable by name."""
    if cls.name in ENCODERS:
        raise ValueError(f"encoder {cls.name!r} is registered twice")
    ENCODERS[cls.name] = cls
    return cls


def make_encoder(name: str, **config: Any) -> SensorEncoder:
    """Build an encoder by registry name from its config fields (validated)."""
    if name not in ENCODERS:
        raise ValueError(f"encoder={name!r}: allowed {sorted(ENCODERS)}")
    cls = ENCODERS[name]
    return cls(cls.config_class(**config))


def load_encoder(directory: str | Path, **overrides: Any) -> SensorEncoder:
    """An encoder saved by ``SensorEncoder.save``: weights loaded exactly, strictly.
    ``overrides`` change config fields that shape no weight (how audio tokens pool, say)."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not an encoder checkpoint directory")
    spec = json.loads(path.read_text())
    encoder = make_encoder(spec["name"], **{**spec["config"], **overrides})
    try:
        encoder.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
    except RuntimeError as error:
        if not overrides:
            raise
        raise ValueError(
            f"{directory}: the overrides {overrides} change the weights' shapes, so the saved "
            f"weights do not fit; override only fields that shape no weight"
        ) from error
    return encoder
