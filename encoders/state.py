"""``state``: PaLM-E's state-vector input. An MLP maps each object's state (position, orientation,
size, colour: one row of the ``objects`` observation) to one token, so token j is obj_j."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from encoders.base import Batch, EncoderConfig, SensorEncoder, register
from envs import keys
from envs.base import OBJECT_CAPACITY


@dataclass
class StateConfig(EncoderConfig):
    hidden: int = 128
    """Width of the MLP's hidden layers."""
    context_layers: int = 0
    """Transformer layers over the scene's object tokens after the MLP (0: PaLM-E's plain
    per-object MLP). With them each token also carries its relations (what rests on it, what
    is near), which a planner otherwise has to work out inside the LM."""
    heads: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("hidden", "heads")
        if self.context_layers < 0:
            raise ValueError(f"context_layers={self.context_layers}: must be >= 0")
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be a multiple of heads={self.heads}")


@register
class StateEncoder(SensorEncoder):
    """``objects (B, 8, 11)`` -> ``(B, 8, dim)``: one token per object row, padding masked."""

    name = "state"
    inputs = (keys.OBJECTS, keys.OBJECT_MASK)
    config_class = StateConfig

    def __init__(self, config: StateConfig) -> None:
        super().__init__(config)
        # Per-feature standardisation of the object rows, set from training data by ``fit``
        # (saved with the weights): a cube's colour or a 4 cm stacking step then weighs as much
        # as its place on the table.
        self.feature_mean: Tensor
        self.feature_std: Tensor
        self.register_buffer("feature_mean", torch.zeros(keys.OBJECT_FEATURES))
        self.register_buffer("feature_std", torch.ones(keys.OBJECT_FEATURES))
        self.mlp = nn.Sequential(
            nn.Linear(keys.OBJECT_FEATURES, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.dim),
            nn.LayerNorm(config.dim),  # unit-scale tokens: the objects' differences stand out
        )
        self.context = (
            nn.TransformerEncoder(
                nn.TransformerEncoderLayer(
                    config.dim, config.heads, 2 * config.dim, 0.0, batch_first=True, norm_first=True
                ),
                config.context_layers,
                enable_nested_tensor=False,
            )
            if config.context_layers
            else None
        )

    @property
    def n_tokens(self) -> int:
        return OBJECT_CAPACITY

    def forward(self, batch: Batch) -> Tensor:
        objects = (batch[keys.OBJECTS].float() - self.feature_mean) / self.feature_std  # (B,N,F)
        tokens = self.mlp(objects)  # (B, N, D)
        if self.context is not None:  # objects attend to the scene's other objects, not padding
            tokens = self.context(tokens, src_key_padding_mask=~self.token_mask(batch))
        return tokens * self.token_mask(batch).unsqueeze(-1)  # padding rows -> zero tokens

    def fit(self, batch: Batch) -> None:
        """Set the standardisation from the real (unpadded) object rows of ``batch``."""
        rows = batch[keys.OBJECTS].float()[batch[keys.OBJECT_MASK].bool()]  # (M, F)
        if len(rows) < 2:
            raise ValueError(f"fit needs at least 2 object rows, got {len(rows)}")
        self.feature_mean.copy_(rows.mean(0))
        self.feature_std.copy_(rows.std(0).clamp(min=1e-3))

    def token_mask(self, batch: Batch) -> Tensor:
        return batch[keys.OBJECT_MASK].bool()  # (B, N)
