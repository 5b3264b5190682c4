"""``vit``: a small vision transformer (transformers' ``ViTModel``) over every camera view, giving
patch tokens, optionally reduced by average pooling or a TokenLearner (Ryoo et al., 2021), as
PaLM-E's ViT and ViT + TL inputs.

Pretraining (``pretrain_loss``) supervises each patch with what the simulator knows about it: the
share of its pixels that show an object, the robot or the background, their mean depth, and the
mean colour of the object pixels in it. That teaches the features where things are, how far, and
what colour, which is what the planning tasks ask about, from the generated data alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import ViTConfig, ViTModel

from encoders.base import Batch, EncoderConfig, SensorEncoder, register
from envs import keys
from envs.cameras import FAR

REDUCTIONS = ("none", "pool", "tokenlearner")


@dataclass
class ViTEncoderConfig(EncoderConfig):
    image_size: int = 64
    """Height and width of each view, pixels (the env's image_size)."""
    patch_size: int = 8
    views: int = 3
    """Camera views per example; every view is encoded separately, tokens concatenated."""
    hidden: int = 128
    """The transformer's width."""
    layers: int = 4
    heads: int = 4
    reduce: str = "none"
    """``none`` (every patch), ``pool`` (2 x 2 average pooling of the patch grid) or
    ``tokenlearner`` (``learned_tokens`` attention-pooled tokens per view)."""
    learned_tokens: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}"
            )
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce={self.reduce!r}: allowed {list(REDUCTIONS)}")
        if self.reduce == "pool" and (self.image_size // self.patch_size) % 2:
            raise ValueError("reduce='pool' needs an even number of patches per side")
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be a multiple of heads={self.heads}")
        self.check_positive("views", "layers", "learned_tokens")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size


class TokenLearner(nn.Module):
    """S learned spatial attention maps over the patch tokens, each giving one token."""

    def __init__(self, width: int, tokens: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, tokens)
        )

    def forward(self, patches: Tensor) -> Tensor:
        weights = self.attention(patches).softmax(dim=1)  # (N, P, S): a distribution over patches
        return torch.einsum("nps,npc->nsc", weights, patches)  # (N, S, C)


def images_to_pixels(rgb: Tensor) -> Tensor:
    """``(B, V, H, W, 3)`` uint8 -> ``(B*V, 3, H, W)`` float in [-1, 1]."""
    b, v, h, w, c = rgb.shape
    pixels = rgb.reshape(b * v, h, w, c).permute(0, 3, 1, 2).float()  # (BV, 3, H, W)
    return pixels / 127.5 - 1.0


@register
class ViTEncoder(SensorEncoder):
    """``rgb (B, V, H, W, 3)`` -> ``(B, V * tokens_per_view, dim)``."""

    name = "vit"
    inputs = (keys.RGB,)
    config_class = ViTEncoderConfig

    def __init__(self, config: ViTEncoderConfig) -> None:
        super().__init__(config)
        self.config: ViTEncoderConfig
        self.backbone = ViTModel(
            ViTConfig(
                image_size=config.image_size,
                patch_size=config.patch_size,
                hidden_size=config.hidden,
                num_hidden_layers=config.layers,
                num_attention_heads=config.heads,
                intermediate_size=4 * config.hidden,
            ),
            add_pooling_layer=False,
        )
        self.token_learner = (
            TokenLearner(config.hidden, config.learned_tokens)
            if config.reduce == "tokenlearner"
            else None
        )
        self.project = nn.Linear(config.hidden, config.dim)
        # Pretraining head per patch: 3 class logits, depth, rgb (see pretrain_loss).
        self.patch_head = nn.Linear(config.hidden, 3 + 1 + 3)

    @property
    def tokens_per_view(self) -> int:
        grid = self.config.grid
        return {
            "none": grid * grid,
            "pool": (grid // 2) ** 2,
            "tokenlearner": self.config.learned_tokens,
        }[self.config.reduce]

    @property
    def n_tokens(self) -> int:
        return self.config.views * self.tokens_per_view

    def patch_features(self, rgb: Tensor) -> Tensor:
        """``(B, V, H, W, 3)`` -> ``(B, V, g, g, hidden)`` patch features (g patches per side)."""
        b, v = rgb.shape[:2]
        if v != self.config.views:
            raise ValueError(f"rgb has {v} views; this encoder was built for {self.config.views}")
        hidden = self.backbone(pixel_values=images_to_pixels(rgb)).last_hidden_state
        patches = hidden[:, 1:]  # (BV, P, C): the patch tokens, without [CLS]
        g = self.config.grid
        return patches.reshape(b, v, g, g, -1)  # (B, V, g, g, C)

    def forward(self, batch: Batch) -> Tensor:
        features = self.patch_features(batch[keys.RGB])  # (B, V, g, g, C)
        b, v, g, _, c = features.shape
        if self.config.reduce == "pool":
            grid = features.reshape(b * v, g, g, c).permute(0, 3, 1, 2)  # (BV, C, g, g)
            pooled = F.avg_pool2d(grid, 2)  # (BV, C, g/2, g/2)
            tokens = pooled.flatten(2).transpose(1, 2)  # (BV, g*g/4, C)
        elif self.token_learner is not None:
            tokens = self.token_learner(features.reshape(b * v, g * g, c))  # (BV, S, C)
        else:
            tokens = features.reshape(b * v, g * g, c)  # (BV, P, C)
        tokens = tokens.reshape(b, v * tokens.shape[1], c)  # (B, V*T, C)
        return self.project(tokens)  # (B, n_tokens, D)

    def pretrain_loss(self, batch: Batch) -> Tensor:
        """Per-patch prediction of what the simulator shows there (see the module docstring)."""
        predicted, targets = self._patch_predictions(batch)
        shares = targets["shares"]  # (B, V, g, g, 3)
        log_probs = predicted[..., :3].log_softmax(-1)
        class_loss = -(shares * log_probs).sum(-1).mean()
        depth_loss = F.mse_loss(predicted[..., 3], targets["depth"])
        on_objects = shares[..., 0] > 0  # (B, V, g, g)
        colour_error = (predicted[..., 4:] - targets["colour"]).pow(2).mean(-1)
        colour_loss = (colour_error * on_objects).sum() / on_objects.sum().clamp(min=1)
        return class_loss + depth_loss + colour_loss

    def _patch_predictions(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        features = self.patch_features(batch[keys.RGB])  # (B, V, g, g, C)
        return self.patch_head(features), patch_targets(batch, self.config.patch_size)

    @torch.no_grad()
    def eval_metrics(self, batch: Batch) -> dict[str, float]:
        """Patch class accuracy (the majority of object / robot / background), mean depth error
        in metres, and mean colour error (0-1 scale) weighted by each patch's object pixels."""
        predicted, targets = self._patch_predictions(batch)
        majority = targets["shares"].argmax(-1)
        accuracy = (predicted[..., :3].argmax(-1) == majority).float().mean()
        depth_error = (predicted[..., 3] - targets["depth"]).abs().mean() * FAR
        object_share = targets["shares"][..., 0]  # weights: how much of a patch is object
        colour_error = (predicted[..., 4:] - targets["colour"]).abs().mean(-1)
        colour_error = (colour_error * object_share).sum() / object_share.sum().clamp(min=1e-6)
        return {
            "patch_accuracy": float(accuracy),
            "depth_error_m": float(depth_error),
            "colour_error": float(colour_error),
        }


def patch_targets(batch: Batch, patch: int) -> dict[str, Tensor]:
    """Per patch: shares of object / robot / background pixels ``(B, V, g, g, 3)``, mean depth
    scaled to [0, 1] ``(B, V, g, g)``, and mean rgb in [0, 1] of its object pixels
    ``(B, V, g, g, 3)`` (zero where it shows no object)."""
    seg = batch[keys.SEGMENTATION]  # (B, V, H, W)
    classes = torch.stack(
        [seg > 0, seg == keys.SEG_ROBOT, seg == keys.SEG_BACKGROUND], dim=-1
    ).float()  # (B, V, H, W, 3)
    objects = classes[..., :1]  # (B, V, H, W, 1)
    rgb = batch[keys.RGB].float() / 255.0  # (B, V, H, W, 3)
    depth = (batch[keys.DEPTH].float() / FAR).unsqueeze(-1)  # (B, V, H, W, 1)

    def pool(x: Tensor) -> Tensor:  # (B, V, H, W, K) -> (B, V, g, g, K): patch means
        b, v, h, w, k = x.shape
        grid = x.reshape(b * v, h, w, k).permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(grid, patch).permute(0, 2, 3, 1)
        return pooled.reshape(b, v, h // patch, w // patch, k)

    object_share = pool(objects)  # (B, V, g, g, 1)
    colour = pool(rgb * objects) / object_share.clamp(min=1e-6)
    return {
        "shares": pool(classes),
        "depth": pool(depth)[..., 0],
        "colour": colour * (object_share > 0),
    }
