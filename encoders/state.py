"""``state``: PaLM-E's state-vector input. An MLP maps each object's state (position, orientation,
size, colour: one row of the ``objects`` observation) to one token, so token j is obj_j.
``support_relations`` adds to each row which row it rests on and which rests on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from encoders.base import Batch, EncoderConfig, SensorEncoder, register
from envs import keys
from envs.base import OBJECT_CAPACITY
from envs.scene import SUPPORT_OVERHANG, SUPPORT_TOLERANCE


@dataclass
class StateConfig(EncoderConfig):
    hidden: int = 128
    """Width of the MLP's hidden layers."""
    context_layers: int = 0
    """Transformer layers over the scene's object tokens after the MLP (0: PaLM-E's plain
    per-object MLP). With them each token also carries its relations (what rests on it, what
    is near), which a planner otherwise has to work out inside the LM."""
    heads: int = 4
    support_relations: bool = False
    """Append to each object row the support relation, read from the rows' positions and sizes
    by the simulator's own rule (``envs.scene.read_symbolic_state``): which row the object rests
    on and which row rests on it, one-hot over the rows (``support_relations``). The relation
    PaLM-E's q4 and the blocked picks of p1/p2 turn on, given to the planner instead of left for
    the LM to work out from poses. Tabletop cubes only: kitchen fixtures are not cubes."""

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
        self.support_relations = config.support_relations
        relation_features = 2 * OBJECT_CAPACITY if config.support_relations else 0
        self.mlp = nn.Sequential(
            nn.Linear(keys.OBJECT_FEATURES + relation_features, config.hidden),
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
        rows = batch[keys.OBJECTS].float()  # (B, N, F)
        objects = (rows - self.feature_mean) / self.feature_std  # (B, N, F)
        if self.support_relations:
            rests_on = support_relations(rows, self.token_mask(batch)).float()  # (B, N, N)
            objects = torch.cat([objects, rests_on, rests_on.transpose(1, 2)], dim=-1)  # (B,N,F+2N)
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


def support_relations(objects: Tensor, mask: Tensor) -> Tensor:
    """``objects (B, N, F)``, ``mask (B, N)`` -> ``(B, N, N)`` bool, True at ``[b, i, j]`` where
    row i's cube rests on row j's: its bottom face within SUPPORT_TOLERANCE of j's top face and
    its centre over j's top (the rule ``envs.scene.read_symbolic_state`` applies to the
    simulator's boxes; the rows' cubes turn about z only, so their boxes are ``size`` high)."""
    position, size = objects[..., keys.OBJECT_POSITION], objects[..., keys.OBJECT_SIZE]
    bottom = position[..., 2:3] - size / 2  # (B, N, 1)
    top = (position[..., 2:3] + size / 2).transpose(1, 2)  # (B, 1, N)
    horizontal = torch.cdist(position[..., :2], position[..., :2])  # (B, N, N)
    touching = (bottom - top).abs() < SUPPORT_TOLERANCE  # (B, N, N)
    over = horizontal < size.transpose(1, 2) / 2 + SUPPORT_OVERHANG  # (B, N, N)
    real = mask.unsqueeze(2) & mask.unsqueeze(1)  # (B, N, N)
    itself = torch.eye(objects.shape[1], dtype=torch.bool, device=objects.device)  # (N, N)
    return touching & over & real & ~itself
