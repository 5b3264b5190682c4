"""``object_centric``: PaLM-E's object-centric ViT. The ViT's patch features are pooled under each
object's ground-truth instance mask (the env's segmentation: pixel value j is obj_j), over every
view that sees the object, giving one token per object, aligned with obj_j.

Pretraining (``pretrain_loss``): each object's token predicts that object's state (position,
size, colour from the ``objects`` observation), so the pooled features carry what a planner needs
to know of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from encoders.base import Batch, SensorEncoder, register
from encoders.vit import ViTEncoder, ViTEncoderConfig
from envs import keys
from envs.base import OBJECT_CAPACITY
from envs.scene import PALETTE

WORKSPACE_CENTRE = (0.5, 0.0, 0.65)  # metres: object positions are regressed relative to this


@dataclass
class ObjectCentricConfig(ViTEncoderConfig):
    """The backbone's settings (``reduce`` is unused: pooling is by mask)."""


def mask_weights(segmentation: Tensor, patch: int) -> Tensor:
    """``(B, V, H, W)`` labels -> ``(B, N, V, g, g)``: the share of each patch covered by obj_j."""
    labels = torch.arange(1, OBJECT_CAPACITY + 1, device=segmentation.device)
    masks = (segmentation.unsqueeze(1) == labels.view(1, -1, 1, 1, 1)).float()  # (B, N, V, H, W)
    b, n, v, h, w = masks.shape
    shares = F.avg_pool2d(masks.reshape(b * n * v, 1, h, w), patch)  # (BNV, 1, g, g)
    return shares.reshape(b, n, v, h // patch, w // patch)


@register
class ObjectCentricEncoder(SensorEncoder):
    """``rgb`` and ``segmentation`` -> ``(B, 8, dim)``: token j pools obj_j's patches."""

    name = "object_centric"
    inputs = (keys.RGB, keys.SEGMENTATION, keys.OBJECT_MASK)
    config_class = ObjectCentricConfig

    def __init__(self, config: ObjectCentricConfig) -> None:
        super().__init__(config)
        self.config: ObjectCentricConfig
        self.vit = ViTEncoder(config)  # its backbone; its own projection and heads stay unused
        self.project = nn.Linear(config.hidden, config.dim)
        self.state_head = nn.Linear(config.hidden, 3 + 1 + 3)  # position, size, colour

    @property
    def n_tokens(self) -> int:
        return OBJECT_CAPACITY

    def pooled(self, batch: Batch) -> Tensor:
        """``(B, N, hidden)``: mask-weighted mean of the patch features of each object."""
        features = self.vit.patch_features(batch[keys.RGB])  # (B, V, g, g, C)
        weights = mask_weights(batch[keys.SEGMENTATION], self.config.patch_size)  # (B,N,V,g,g)
        total = weights.flatten(2).sum(-1, keepdim=True)  # (B, N, 1)
        pooled = torch.einsum("bnvxy,bvxyc->bnc", weights, features)  # (B, N, C)
        return pooled / total.clamp(min=1e-6)  # unseen objects: zero

    def forward(self, batch: Batch) -> Tensor:
        tokens = self.project(self.pooled(batch))  # (B, N, D)
        return tokens * self.token_mask(batch).unsqueeze(-1)

    def token_mask(self, batch: Batch) -> Tensor:
        return batch[keys.OBJECT_MASK].bool()  # (B, N)

    def _state_predictions(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Predicted and true object states ``(B, N, 7)`` and which objects count ``(B, N)``."""
        predicted = self.state_head(self.pooled(batch))  # (B, N, 7)
        seen = mask_weights(batch[keys.SEGMENTATION], self.config.patch_size).flatten(2).sum(-1)
        real = batch[keys.OBJECT_MASK].bool() & (seen > 0)  # (B, N): present and visible
        return predicted, state_targets(batch[keys.OBJECTS].float()), real

    def pretrain_loss(self, batch: Batch) -> Tensor:
        predicted, target, real = self._state_predictions(batch)
        error = (predicted - target).pow(2).mean(-1)  # (B, N)
        return (error * real).sum() / real.sum().clamp(min=1)

    @torch.no_grad()
    def eval_metrics(self, batch: Batch) -> dict[str, float]:
        predicted, target, real = self._state_predictions(batch)
        return state_errors(predicted[real], target[real])


POSITION_SCALE, SIZE_SCALE = 5.0, 20.0  # state targets are scaled to about unit range


def state_targets(objects: Tensor) -> Tensor:
    """``(..., 11)`` object rows -> ``(..., 7)`` regression targets: position relative to the
    workspace centre, size, colour (scaled to about unit range)."""
    centre = torch.tensor(WORKSPACE_CENTRE, device=objects.device)
    return torch.cat(
        [
            (objects[..., keys.OBJECT_POSITION] - centre) * POSITION_SCALE,
            objects[..., keys.OBJECT_SIZE] * SIZE_SCALE,
            objects[..., keys.OBJECT_COLOUR],
        ],
        dim=-1,
    )


def state_errors(predicted: Tensor, target: Tensor) -> dict[str, float]:
    """``(M, 7)`` predicted vs true states -> mean position error (cm), size error (mm), colour
    error (0-1 scale) and colour accuracy: how often the palette colour nearest the predicted
    colour is the cube's (the answer a colour question, q1, needs)."""
    position = (predicted[:, :3] - target[:, :3]).norm(dim=-1) / POSITION_SCALE * 100
    size = (predicted[:, 3] - target[:, 3]).abs() / SIZE_SCALE * 1000
    colour = (predicted[:, 4:] - target[:, 4:]).abs().mean(-1)
    palette = torch.tensor(list(PALETTE.values()), device=predicted.device)  # (C, 3)
    named = torch.cdist(predicted[:, 4:], palette).argmin(-1)  # (M,)
    true = torch.cdist(target[:, 4:], palette).argmin(-1)
    return {
        "position_error_cm": float(position.mean()),
        "size_error_mm": float(size.mean()),
        "colour_error": float(colour.mean()),
        "colour_accuracy": float((named == true).float().mean()),
    }
