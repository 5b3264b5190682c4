"""``region``: Ferret's hybrid region representation (You et al., 2023). A region of one camera
view, given as a point, a box or a free-form mask, becomes

1. **text**: its quantized coordinates (``region_text``): ``[x, y]`` for a point,
   ``[x1, y1, x2, y2]`` for a box or for a mask's bounding box, on a 0-99 grid, followed by the
   ``<region>`` placeholder that the region's feature token fills; and
2. **a feature token** from a spatial-aware visual sampler: points sampled inside the region read
   the view's ViT patch features by bilinear interpolation; each point's feature and position go
   through an MLP; the points are grouped around a few farthest-point-sampled centres (their k
   nearest neighbours), each group pooled and mixed again, and the groups max-pooled into
   ``n_tokens`` tokens, as Ferret's sampler does with its point-cloud-style stages.

Every kind is turned into a mask first (``region_mask``: a point is a small disc, a box is
filled), so the sampler has one input. Pretraining (``pretrain_loss``): the token of a region
drawn on an object predicts that object's state (position, size, colour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from encoders.base import Batch, SensorEncoder, register
from encoders.object_centric import state_errors, state_targets
from encoders.vit import ViTEncoder, ViTEncoderConfig
from envs import keys

RegionKind = Literal["point", "box", "mask"]
REGION_KINDS: tuple[RegionKind, ...] = ("point", "box", "mask")
COORDINATE_BINS = 100  # Ferret quantizes to 1000 bins of a 336 px image; 100 suit 64 px views
POINT_RADIUS = 2  # pixels: a point region is this disc
REGION_MASK = "region_mask"
"""Batch key: (B, H, W) bool, the region on its view."""
REGION_VIEW = "region_view"
"""Batch key: (B,) int64, which camera view the region is drawn on."""
REGION_TARGET = "region_target"
"""Batch key, pretraining only: (B,) int64, the row of ``objects`` the region refers to."""


@dataclass(frozen=True)
class Region:
    """A region on one view: a point ``(x, y)``, a box ``(x1, y1, x2, y2)`` (pixels, inclusive)
    or a free-form ``mask`` (H, W) bool."""

    kind: RegionKind
    view: int
    coordinates: tuple[int, ...] = ()
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in REGION_KINDS:
            raise ValueError(f"kind={self.kind!r}: allowed {list(REGION_KINDS)}")
        expected = {"point": 2, "box": 4, "mask": 0}[self.kind]
        if len(self.coordinates) != expected:
            raise ValueError(f"a {self.kind} needs {expected} coordinates, got {self.coordinates}")
        if self.kind == "mask" and (self.mask is None or not self.mask.any()):
            raise ValueError("a mask region needs a non-empty (H, W) bool mask")
        if self.kind == "box":
            x1, y1, x2, y2 = self.coordinates
            if x2 < x1 or y2 < y1:
                raise ValueError(f"box {self.coordinates}: needs x1 <= x2 and y1 <= y2")


def region_mask(region: Region, size: int) -> np.ndarray:
    """The region as a ``(size, size)`` bool mask."""
    if region.kind == "mask":
        assert region.mask is not None
        if region.mask.shape != (size, size):
            raise ValueError(f"mask shape {region.mask.shape}: expected {(size, size)}")
        return region.mask.astype(bool)
    ys, xs = np.mgrid[0:size, 0:size]
    if region.kind == "point":
        x, y = region.coordinates
        return bool_array((xs - x) ** 2 + (ys - y) ** 2 <= POINT_RADIUS**2)
    x1, y1, x2, y2 = region.coordinates
    return bool_array((xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2))


def draw_region(
    on_object: np.ndarray, view: int, rng: np.random.Generator, kind: RegionKind | None = None
) -> Region:
    """A region on an object's pixels ``on_object`` (H, W) bool of ``view``: a point on it, its
    bounding box or its mask (``kind``; None draws one, a third each)."""
    if kind is None:
        kind = REGION_KINDS[int(rng.integers(len(REGION_KINDS)))]
    if kind == "point":
        pixels = np.argwhere(on_object)
        y, x = pixels[int(rng.integers(len(pixels)))]
        return Region("point", view, (int(x), int(y)))
    if kind == "box":
        rows, cols = np.nonzero(on_object)
        return Region(
            "box", view, (int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max()))
        )
    return Region("mask", view, mask=on_object.copy())


def bool_array(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=bool)


def quantize(value: float, size: int) -> int:
    """A pixel coordinate in [0, size) -> a bin in [0, COORDINATE_BINS)."""
    return min(COORDINATE_BINS - 1, int(value * COORDINATE_BINS / size))


def region_text(region: Region, size: int) -> str:
    """Ferret's text half: quantized coordinates, then the feature placeholder."""
    coordinates = region.coordinates
    if region.kind == "mask":  # a free-form mask is written as its bounding box
        assert region.mask is not None
        ys, xs = np.nonzero(region.mask)
        coordinates = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    bins = ", ".join(str(quantize(c, size)) for c in coordinates)
    return f"[{bins}] <region>"


@dataclass
class RegionConfig(ViTEncoderConfig):
    """The backbone's settings plus the sampler's."""

    points: int = 32
    """Points sampled inside the region."""
    groups: int = 4
    """Farthest-point-sampled centres, each pooling its nearest neighbours."""
    neighbours: int = 8
    tokens: int = 1
    """Tokens per region."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.groups <= self.points or not 1 <= self.neighbours <= self.points:
            raise ValueError(
                f"groups={self.groups}, neighbours={self.neighbours}: need 1..points={self.points}"
            )
        if self.tokens < 1:
            raise ValueError(f"tokens={self.tokens}: must be >= 1")


def sample_points(mask: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """``(B, H, W)`` bool -> ``(B, count, 2)`` pixel-centre (x, y) points inside each mask,
    drawn uniformly with replacement (Ferret samples its points the same way)."""
    b, h, w = mask.shape
    flat = mask.reshape(b, h * w).float()  # (B, HW)
    if (flat.sum(-1) == 0).any():
        raise ValueError("an empty region: every region needs at least one pixel")
    index = torch.multinomial(flat, count, replacement=True, generator=generator)  # (B, count)
    ys, xs = index // w, index % w
    return torch.stack([xs, ys], dim=-1).float() + 0.5  # (B, count, 2)


def farthest_points(points: Tensor, count: int) -> Tensor:
    """``(B, P, 2)`` -> ``(B, count)`` indices of a farthest-point sample (starts at point 0)."""
    b, p, _ = points.shape
    chosen = torch.zeros(b, count, dtype=torch.long, device=points.device)
    distance = torch.full((b, p), float("inf"), device=points.device)
    current = torch.zeros(b, dtype=torch.long, device=points.device)
    for i in range(count):
        chosen[:, i] = current
        centre = points[torch.arange(b), current].unsqueeze(1)  # (B, 1, 2)
        distance = torch.minimum(distance, (points - centre).pow(2).sum(-1))  # (B, P)
        current = distance.argmax(-1)
    return chosen


@register
class RegionEncoder(SensorEncoder):
    """``rgb``, ``region_mask``, ``region_view`` -> ``(B, tokens, dim)``."""

    name = "region"
    inputs = (keys.RGB, REGION_MASK, REGION_VIEW)
    config_class = RegionConfig

    def __init__(self, config: RegionConfig) -> None:
        super().__init__(config)
        self.config: RegionConfig
        self.vit = ViTEncoder(config)
        width = config.hidden
        self.point_mlp = nn.Sequential(nn.Linear(width + 2, width), nn.GELU())
        self.group_mlp = nn.Sequential(nn.Linear(2 * width, width), nn.GELU())
        self.out = nn.Linear(width, config.tokens * config.dim)
        self.state_head = nn.Linear(config.tokens * config.dim, 3 + 1 + 3)

    @property
    def n_tokens(self) -> int:
        return self.config.tokens

    def backbone_parts(self) -> list[nn.Module]:
        """The ViT whose patch features the sampler reads."""
        return [self.vit]

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> Tensor:
        features = self.vit.patch_features(batch[keys.RGB])  # (B, V, g, g, C)
        b = features.shape[0]
        view = features[torch.arange(b), batch[REGION_VIEW]]  # (B, g, g, C)
        mask = batch[REGION_MASK].bool()  # (B, H, W)
        size = mask.shape[-1]
        points = sample_points(mask, self.config.points, generator)  # (B, P, 2) pixels
        grid = points / size * 2 - 1  # (B, P, 2) in [-1, 1], x then y as grid_sample wants
        sampled = F.grid_sample(
            view.permute(0, 3, 1, 2), grid.unsqueeze(1), align_corners=False
        )  # (B, C, 1, P)
        point_features = sampled[:, :, 0].transpose(1, 2)  # (B, P, C)
        x = self.point_mlp(torch.cat([point_features, grid], dim=-1))  # (B, P, C)
        centres = farthest_points(points, self.config.groups)  # (B, G)
        centre_xy = points.gather(1, centres.unsqueeze(-1).expand(-1, -1, 2))  # (B, G, 2)
        distances = torch.cdist(centre_xy, points)  # (B, G, P)
        near = distances.topk(self.config.neighbours, largest=False).indices  # (B, G, K)
        c = x.shape[-1]
        grouped = x.gather(1, near.reshape(b, -1, 1).expand(-1, -1, c)).reshape(
            b, self.config.groups, self.config.neighbours, c
        )  # (B, G, K, C)
        centre_features = x.gather(1, centres.unsqueeze(-1).expand(-1, -1, c))  # (B, G, C)
        pooled = grouped.max(dim=2).values  # (B, G, C)
        groups = self.group_mlp(torch.cat([pooled, centre_features], dim=-1))  # (B, G, C)
        region = groups.max(dim=1).values  # (B, C)
        return self.out(region).reshape(b, self.config.tokens, self.config.dim)  # (B, T, D)

    def _state_predictions(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The referred object's predicted and true state, ``(B, 7)`` each."""
        tokens = self(batch).flatten(1)  # (B, T*D)
        b = tokens.shape[0]
        referred = batch[keys.OBJECTS][torch.arange(b), batch[REGION_TARGET]].float()  # (B, 11)
        return self.state_head(tokens), state_targets(referred)

    def pretrain_loss(self, batch: Batch) -> Tensor:
        """The region's token predicts the state of the object it is drawn on."""
        predicted, target = self._state_predictions(batch)
        return F.mse_loss(predicted, target)

    @torch.no_grad()
    def eval_metrics(self, batch: Batch) -> dict[str, float]:
        return state_errors(*self._state_predictions(batch))
