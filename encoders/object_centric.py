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

    def pretrain_loss(self, batch: Batch) -> Tensor:
        predicted = self.state_head(self.pooled(batch))  # (B, N, 7)
        objects = batch[keys.OBJECTS].float()
        centre = torch.tensor(WORKSPACE_CENTRE, device=objects.device)
        target = torch.cat(
            [
                (objects[..., keys.OBJECT_POSITION] - centre) * 5.0,  # ~unit scale
                objects[..., keys.OBJECT_SIZE] * 20.0,
                objects[..., keys.OBJECT_COLOUR],
            ],
            dim=-1,
        )  # (B, N, 7)
        seen = mask_weights(batch[keys.SEGMENTATION], self.config.patch_size).flatten(2).sum(-1)
        real = batch[keys.OBJECT_MASK].bool() & (seen > 0)  # (B, N): present and visible
        error = (predicted - target).pow(2).mean(-1)  # (B, N)
        return (error * real).sum() / real.sum().clamp(min=1)
