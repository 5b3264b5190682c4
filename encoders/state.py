"""``state``: PaLM-E's state-vector input. An MLP maps each object's state (position, orientation,
size, colour: one row of the ``objects`` observation) to one token, so token j is obj_j."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from encoders.base import Batch, EncoderConfig, SensorEncoder, register
from envs import keys
from envs.base import OBJECT_CAPACITY


@dataclass
class StateConfig(EncoderConfig):
    hidden: int = 128
    """Width of the MLP's hidden layers."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("hidden")


@register
class StateEncoder(SensorEncoder):
    """``objects (B, 8, 11)`` -> ``(B, 8, dim)``: one token per object row, padding masked."""

    name = "state"
    inputs = (keys.OBJECTS, keys.OBJECT_MASK)
    config_class = StateConfig

    def __init__(self, config: StateConfig) -> None:
        super().__init__(config)
        self.mlp = nn.Sequential(
            nn.Linear(keys.OBJECT_FEATURES, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.dim),
        )

    @property
    def n_tokens(self) -> int:
        return OBJECT_CAPACITY

    def forward(self, batch: Batch) -> Tensor:
        objects = batch[keys.OBJECTS].float()  # (B, N, F)
        tokens = self.mlp(objects)  # (B, N, D)
        return tokens * self.token_mask(batch).unsqueeze(-1)  # padding rows -> zero tokens

    def token_mask(self, batch: Batch) -> Tensor:
        return batch[keys.OBJECT_MASK].bool()  # (B, N)
