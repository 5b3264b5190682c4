"""``osrt``: Object Scene Representation Transformer (Sajjadi et al., 2022), PaLM-E's best input
at low data. Posed views -> K slots, one token each.

- **Encoder (SRT)**: every pixel of every input view gets its camera ray (origin and direction in
  the world frame, from the views' intrinsics and extrinsics), positionally encoded and stacked
  with its colour; a CNN turns each view into a grid of patch features; a transformer over the
  patches of all views gives the set-latent scene representation.
- **Slot attention** (Locatello et al., 2020) reads K slots out of it (learned initial slots, so
  the same scene always gives the same slots, trained as BO-QSA does: Jia et al., 2023).
- **RGB-D** (``rgbd=True``, beyond OSRT, which reads RGB only): every pixel also gets its world
  point from the depth the camera measured, and the slots attend to the CNN's tokens directly (each
  token carries its point, so no transformer has to relate the views). Each slot is also a Gaussian
  blob in the world and in appearance (chromaticity and brightness): its position, size and
  appearance are the mean and spread of the inputs it attends to, the log density of an input
  under it is the input's affinity to it (an EM step of a mixture; a learned feature match there
  split cubes by their lit faces), and the slots start on one token of each colour in the scene,
  the spare ones spread over the table (``seed_tokens``).
  The decoder sees each ray relative to each slot's position (as Invariant Slot Attention, Biza et
  al., 2023, does in 2D), its alpha falling with the ray's miss distance. A slot then has only to
  say what it looks like, not where it is. Why: with RGB alone, and with positions alone, the slots
  tiled the views by region on CPU budgets (FG-ARI <= 0.5).
- **Slot Mixer decoder** (OSRT's fast decoder): for a query ray, a small transformer attends
  from the ray to the slots, a softmax over slots gives the ray's slot weights, the weighted slot
  mix and the ray render the ray's colour. The weights are the decoder's segmentation: their
  argmax per pixel is compared with the simulator's instance masks (foreground ARI).

Pretraining (``pretrain_loss``) is novel-view synthesis: the scene is encoded from some views and
rays of a view it did not see are rendered. ``eval_metrics`` renders the unseen view whole and
reports PSNR and foreground ARI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from encoders.base import Batch, EncoderConfig, SensorEncoder, register
from encoders.vit import images_to_pixels
from envs import keys

DECODERS = ("slot_mixer", "broadcast")


@dataclass
class OSRTConfig(EncoderConfig):
    image_size: int = 64
    views: int = 3
    """Views per example in the data; pretraining encodes ``views - 1`` and renders the other."""
    width: int = 128
    encoder_layers: int = 3
    heads: int = 4
    slots: int = 6
    """K: at most 5 cubes, plus the table and robot."""
    slot_iterations: int = 3
    octaves: int = 4
    """Frequencies of the ray positional encoding."""
    target_rays: int = 512
    """Rays of the unseen view rendered per example during pretraining."""
    foreground_rays: float = 0.0
    """Share of the target rays drawn on object pixels (cubes cover ~2% of a 64 px view, so
    uniform rays barely see them). The simulator's masks choose only where the loss looks,
    never which slot a pixel belongs to: the decomposition stays unsupervised. 0: uniform."""
    slot_teaching: float = 0.0
    """Weight of a loss that teaches the decoder the slots' own split of the input tokens: at
    ``target_rays`` rays through the input tokens' centres (``foreground_rays`` of them on
    objects), the cross-entropy of the decoder's slot weights against the slots' shares of
    those tokens, held fixed. No mask says which slot a pixel belongs to: the teacher is the
    slots' unsupervised split. Why: with depth the slots split the scene better than the
    decoder that renders them (``slot_fg_ari`` 0.82 against ``fg_ari`` 0.74 on training's
    evaluation batches). 0: off."""
    patch_size: int = 8
    """Pixels per side of the encoder's patch tokens (2, 4 or 8): a cube spans ~4 px in the
    default views, ~6 in the narrowed ones."""
    rgbd: bool = False
    """Read depth too: world points as inputs, slots with positions, the decoder relative to
    them."""
    max_depth: float = 3.0
    """Metres; farther depth readings (the sky) are clamped to it."""
    chroma_spread: float = 0.05
    """With ``rgbd``: the spread of a slot's Gaussian in chromaticity (rgb over its sum)."""
    brightness_spread: float = 0.15
    """With ``rgbd``: the spread of a slot's Gaussian in brightness (mean rgb, 0-1); wider than
    in chromaticity, as a cube's faces differ in light."""
    decoder: str = "slot_mixer"
    """``slot_mixer`` (OSRT's fast decoder: one colour per ray from a mix of slots) or
    ``broadcast`` (OSRT's spatial-broadcast decoder: every slot renders a colour and an alpha
    per ray, mixed by a softmax over the alphas; K times the cost, a stronger push to bind one
    object per slot)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patch_size not in (2, 4, 8):
            raise ValueError(f"patch_size={self.patch_size}: must be 2, 4 or 8")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size={self.image_size}: must be a multiple of patch_size={self.patch_size}"
            )
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder={self.decoder!r}: allowed {DECODERS}")
        for name in ("max_depth", "chroma_spread", "brightness_spread"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be > 0")
        if self.slot_teaching < 0:
            raise ValueError(f"slot_teaching={self.slot_teaching}: must be >= 0")
        if not 0.0 <= self.foreground_rays < 1.0:
            raise ValueError(f"foreground_rays={self.foreground_rays}: must be in [0, 1)")
        if self.views < 2:
            raise ValueError(f"views={self.views}: novel-view pretraining needs >= 2")
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be a multiple of heads={self.heads}")
        self.check_positive("slots", "slot_iterations", "octaves", "target_rays", "encoder_layers")


def camera_rays(intrinsics: Tensor, extrinsics: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Per pixel of each view, the ray's world origin and unit direction, ``(B, V, H, W, 3)``
    each (pixel centres; OpenCV camera axes, camera-to-world extrinsics)."""
    pixels = torch.arange(size, device=intrinsics.device, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(pixels, pixels, indexing="ij")  # (H, W)
    homogeneous = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)  # (H, W, 3)
    in_camera = torch.einsum("bvij,hwj->bvhwi", torch.linalg.inv(intrinsics), homogeneous)
    rotation, origin = extrinsics[..., :3, :3], extrinsics[..., :3, 3]  # (B,V,3,3), (B,V,3)
    directions = F.normalize(torch.einsum("bvij,bvhwj->bvhwi", rotation, in_camera), dim=-1)
    origins = origin[:, :, None, None, :].expand_as(directions)
    return origins, directions


def fourier_features(raw: Tensor, octaves: int) -> Tensor:
    """``(..., C)`` -> ``(..., C * (1 + 2 * octaves))``: the values and their sines and cosines
    at ``octaves`` doubling frequencies."""
    scales = 2.0 ** torch.arange(octaves, device=raw.device) * torch.pi  # (L,)
    angles = raw.unsqueeze(-1) * scales  # (..., C, L)
    return torch.cat([raw.unsqueeze(-1), angles.sin(), angles.cos()], dim=-1).flatten(-2)


def encode_rays(origins: Tensor, directions: Tensor, octaves: int) -> Tensor:
    """``(..., 3)`` origins and directions -> ``(..., 6 * (1 + 2 * octaves))`` features."""
    return fourier_features(torch.cat([origins, directions], dim=-1), octaves)


def world_points(
    origins: Tensor, directions: Tensor, depth: Tensor, forward: Tensor, max_depth: float
) -> Tensor:
    """``(B, V, H, W, 3)`` rays, ``(B, V, H, W)`` depth along each camera's optical axis and
    ``(B, V, 3)`` optical axes -> ``(B, V, H, W, 3)`` the world points the pixels see."""
    along_axis = torch.einsum("bvhwi,bvi->bvhw", directions, forward)  # cos of the off-axis angle
    distance = depth.clamp(max=max_depth) / along_axis  # (B, V, H, W), along each ray
    return origins + distance.unsqueeze(-1) * directions


def slot_frames(
    attention: Tensor, points: Tensor, min_size: float = 0.005
) -> tuple[Tensor, Tensor]:
    """``(B, K, N)`` attention (each slot's weights over the inputs, summing to 1) and ``(B, N,
    3)`` input points -> each slot's position ``(B, K, 3)`` (the weighted mean) and size ``(B,
    K, 1)`` (the weighted root-mean-square distance from it, at least ``min_size`` metres)."""
    positions = torch.einsum("bkn,bni->bki", attention, points)
    spread = points.unsqueeze(1) - positions.unsqueeze(2)  # (B, K, N, 3)
    variance = torch.einsum("bkn,bkn->bk", attention, spread.pow(2).sum(-1)) / 3
    return positions, variance.clamp(min=min_size**2).sqrt().unsqueeze(-1)


def ray_to_slot(origins: Tensor, directions: Tensor, positions: Tensor, sizes: Tensor) -> Tensor:
    """``(B, R, 3)`` rays and ``(B, K, 3)`` slot positions with ``(B, K, 1)`` sizes -> ``(B, R,
    K, 6)``: where each slot lies from each ray, in the slot's size: the offset across the ray
    (3) and its squared length (1), the distance along the ray in metres (1), and the log size
    (1)."""
    to_slot = positions.unsqueeze(1) - origins.unsqueeze(2)  # (B, R, K, 3)
    along = (to_slot * directions.unsqueeze(2)).sum(-1, keepdim=True)  # (B, R, K, 1)
    across = (to_slot - along * directions.unsqueeze(2)) / sizes.unsqueeze(1)  # (B, R, K, 3)
    log_size = sizes.log().unsqueeze(1).expand_as(along)
    miss = across.pow(2).sum(-1, keepdim=True)
    return torch.cat([across, miss, along, log_size], dim=-1)


@dataclass
class Scene:
    """What slot attention reads out of a scene: ``(B, K, W)`` slots and, when the inputs have
    world points (``rgbd``), each slot's position ``(B, K, 3)`` and size ``(B, K, 1)`` in
    metres: the mean and spread of the points it attends to."""

    slots: Tensor
    positions: Tensor | None = None
    sizes: Tensor | None = None
    appearances: Tensor | None = None
    """``(B, K, C)`` each slot's mean appearance (``appearance``), with positions."""
    shares: Tensor | None = None
    """``(B, K, N)`` each input's split between the slots in the last iteration (summing to 1
    over K): the slots' own segmentation of their inputs."""


class SlotAttention(nn.Module):
    """K slots compete for the input features over a few iterations (Locatello et al.).

    With input points (``positional``) each slot is also a blob in the world: a position and a
    size, re-estimated every iteration from the points it attends to (as Invariant Slot
    Attention's, Biza et al., 2023, in 3D), and an appearance; an input's affinity to a slot is
    the log density of its point and appearance under the slot's Gaussians, an EM step of a mixture
    (as the Slot Mixture Module's, Kirilenko et al., 2023), and the learned features only fill
    the slots. A learned feature match in the affinity split the cubes by their lit faces: on
    160 held-out scenes the slots' own segmentation of their inputs (``slot_fg_ari``) was 0.44
    for a model trained with it (measured by a one-off diagnostic before this change) and 0.70
    for one trained without (``experiments.pretrain_encoders --encoders osrt_rgbd``)."""

    def __init__(self, width: int, slots: int, iterations: int, positional: bool = False) -> None:
        super().__init__()
        self.iterations = iterations
        self.initial = nn.Parameter(torch.randn(slots, width) * width**-0.5)
        self.norm_inputs = nn.LayerNorm(width)
        self.positional = positional
        if not positional:  # the feature match: query and key
            self.norm_slots = nn.LayerNorm(width)
            self.query = nn.Linear(width, width, bias=False)
            self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width, bias=False)
        self.update = nn.GRUCell(width, width)
        self.mlp = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )
        if positional:
            self.seed = nn.Linear(width, width)  # initial slots from the tokens they start on
            self.initial_log_sizes = nn.Parameter(torch.full((slots, 1), math.log(0.03)))

    def forward(
        self,
        inputs: Tensor,
        points: Tensor | None = None,
        appearances: Tensor | None = None,
        side: int | None = None,
    ) -> Scene:
        """``(B, N, W)`` inputs (and with ``positional`` their ``(B, N, 3)`` world points,
        ``(B, N, C)`` appearances in units of their spread (see ``appearance``) and the side of
        the views' token grids they lie on, row-major, view after view) -> the scene's slots
        (and their positions, sizes and appearances).

        BO-QSA's training of learned initial slots (Jia et al., 2023): the iterations before
        the last run without gradient, and the last starts from their result with the initial
        slots' gradient passed straight through (learned initial slots trained through every
        iteration tend to settle into slots that ignore the scene)."""
        given = [x is not None for x in (points, appearances, side)]
        if given != [self.positional] * 3:
            raise ValueError(
                f"positional={self.positional} slot attention: points, appearances and side "
                f"must be {'given' if self.positional else 'None'}"
            )
        b = inputs.shape[0]
        inputs = self.norm_inputs(inputs)
        k = None if self.positional else self.key(inputs)  # (B, N, W)
        v = self.value(inputs)  # (B, N, W)
        initial = Scene(self.initial.expand(b, -1, -1))  # (B, K, W)
        if points is not None and appearances is not None and side is not None:
            start = seed_tokens(appearances, points, self.initial.shape[0], side)  # (B, K)
            initial.slots = initial.slots + self.seed(_take(inputs, start))
            initial.positions, initial.appearances = _take(points, start), _take(appearances, start)
            initial.sizes = self.initial_log_sizes.exp().expand(b, -1, -1)  # (B, K, 1)
        scene = initial
        with torch.no_grad():
            for _ in range(self.iterations - 1):
                scene = self._iterate(scene, k, v, points, appearances)
        return self._iterate(_straight_through(scene, initial), k, v, points, appearances)

    def _iterate(
        self,
        scene: Scene,
        k: Tensor | None,
        v: Tensor,
        points: Tensor | None,
        appearances: Tensor | None,
    ) -> Scene:
        b, _, w = v.shape
        if points is not None and appearances is not None:
            assert scene.positions is not None and scene.sizes is not None
            assert scene.appearances is not None
            # Each slot is a Gaussian blob in the world and in appearance: the log density of every
            # input under it (an EM step of a mixture).
            offsets = points.unsqueeze(1) - scene.positions.unsqueeze(2)  # (B, K, N, 3)
            distance = offsets.pow(2).sum(-1) / scene.sizes.pow(2)  # (B, K, N), in sizes
            shades = appearances.unsqueeze(1) - scene.appearances.unsqueeze(2)  # (B, K, N, C)
            shade = shades.pow(2).sum(-1)  # (B, K, N), appearances come in spread units
            logits = -0.5 * (distance + shade) - 3 * scene.sizes.log()
        else:
            assert k is not None
            q = self.query(self.norm_slots(scene.slots))  # (B, K, W)
            logits = torch.einsum("bkw,bnw->bkn", q, k) * w**-0.5
        shares = logits.softmax(dim=1)  # (B, K, N): slots compete for each input
        floored = shares + 1e-8  # (B, K, N): no slot's mean divides by zero
        attention = floored / floored.sum(-1, keepdim=True)  # mean per slot
        updates = torch.einsum("bkn,bnw->bkw", attention, v)
        slots = self.update(updates.reshape(-1, w), scene.slots.reshape(-1, w)).reshape(b, -1, w)
        slots = slots + self.mlp(slots)
        if points is None or appearances is None:
            return Scene(slots, shares=shares)
        positions, sizes = slot_frames(attention, points)
        slot_appearances = torch.einsum("bkn,bni->bki", attention, appearances)
        return Scene(slots, positions, sizes, slot_appearances, shares)


def appearance(rgb: Tensor, chroma_spread: float, brightness_spread: float) -> Tensor:
    """``(..., 3)`` rgb in [0, 1] -> ``(..., 4)``: chromaticity (rgb over its sum, 3) in units of
    ``chroma_spread`` and brightness (the mean, 1) in units of ``brightness_spread``. Light
    scales a face's rgb, not its chromaticity: a cube's lit and shaded faces differ in
    brightness, two cubes (and a cube and the table) in chromaticity. In plain rgb a shaded
    purple face was nearer the table than the same cube's lit face."""
    total = rgb.sum(-1, keepdim=True) + 1e-3
    return torch.cat([rgb / total / chroma_spread, total / 3 / brightness_spread], dim=-1)


SEED_SEPARATION = 2.0
"""Spreads of appearance between seeds chosen by appearance: past it a token is a new colour."""
SEED_RADIUS = 0.03
"""Metres within which a seed's neighbours lie: under a cube's edge (3.5-5 cm)."""
SEED_NEIGHBOURS = 3
"""Neighbours a token needs to be a seed: tokens of its view within ``SEED_WINDOW`` tokens on
the grid, ``SEED_RADIUS`` in the world and one spread in chromaticity."""
SEED_WINDOW = 1
"""Tokens each side of a token on its view's grid where its neighbours are looked for: a cube
spans 2-3 tokens of 2 px in the narrowed views, fewer where another hides it. A 5 x 5 window
and more than 4 neighbours alike in brightness too (a cube's lit and shaded faces apart) left
26% of held-out cubes without a seed-able token; this 3 x 3 window in chromaticity alone, 10%
(slots' ``slot_fg_ari`` 0.81 -> 0.88 on 64 held-out scenes, a one-off diagnostic)."""


def neighbour_counts(appearances: Tensor, points: Tensor, side: int) -> Tensor:
    """``(B, N, C)`` appearances and ``(B, N, 3)`` points of tokens on views' ``side x side``
    grids (row-major, view after view) -> ``(B, N)``: how many tokens of the same view within
    ``SEED_WINDOW`` on the grid are within ``SEED_RADIUS`` in the world and one spread in
    chromaticity (the token itself among them). Brightness is left out: a cube's lit and shaded
    faces are one object, while a token straddling an edge mixes chromaticities. Local windows:
    all N x N pairs cost a second a batch here."""
    b, n, _ = points.shape
    views, span = n // (side * side), 2 * SEED_WINDOW + 1

    def around(values: Tensor) -> Tensor:  # (B, N, C) -> (B, N, C, span^2)
        c = values.shape[-1]
        grid = values.reshape(b * views, side, side, c).permute(0, 3, 1, 2)
        windows = F.unfold(grid, span, padding=SEED_WINDOW)  # (B*views, C*span^2, side^2)
        windows = windows.reshape(b, views, c, span * span, side * side)
        return windows.permute(0, 1, 4, 2, 3).reshape(b, n, c, span * span)

    inside = around(torch.ones_like(points[..., :1]))[:, :, 0] > 0  # (B, N, span^2): not padding
    chroma = appearances[..., :3]  # (B, N, 3): chromaticity, in spreads (see ``appearance``)
    tint = (around(chroma) - chroma.unsqueeze(-1)).pow(2).sum(2)  # (B, N, span^2)
    gap = (around(points) - points.unsqueeze(-1)).pow(2).sum(2)  # (B, N, span^2)
    return (inside & (tint < 1.0) & (gap < SEED_RADIUS**2)).sum(-1)


@torch.no_grad()
def seed_tokens(appearances: Tensor, points: Tensor, count: int, side: int) -> Tensor:
    """``(B, N, C)`` appearances (in spread units) and ``(B, N, 3)`` world points of tokens on
    ``side x side`` grids -> ``(B, count)`` indices of the tokens the slots start on.

    Only tokens with more than ``SEED_NEIGHBOURS`` neighbours (``neighbour_counts``) are seeds:
    a token straddling a cube's edge mixes colours and has few. First farthest-point sampling
    in appearance, while some seed-able token is more than ``SEED_SEPARATION`` from every seed:
    each colour in the scene gets one seed, and a cube's shaded face none of its own; then
    farthest-point sampling in the world: the spare slots spread over the table, away from the
    objects already seeded. Seeds chosen by appearance alone (farthest points, boundary tokens
    among them) left 10% of cubes without a slot and gave 46% two or more; the slots'
    segmentation of the tokens (``slot_fg_ari``) was 0.71, from these seeds 0.78-0.83 with the
    same model (one-off diagnostics on 64-96 scenes). What still goes unseeded: white cubes,
    within a spread of the table's grey, and cubes mostly hidden (``SEED_WINDOW``)."""
    seedable = neighbour_counts(appearances, points, side) > SEED_NEIGHBOURS  # (B, N)
    seedable |= ~seedable.any(-1, keepdim=True)  # a scene without any: all tokens are
    excluded = torch.tensor(-torch.inf, device=points.device)
    to_appearance = (appearances - appearances.mean(1, keepdim=True)).pow(2).sum(-1)  # (B, N)
    to_point = torch.full_like(to_appearance, torch.inf)
    chosen = []
    for _ in range(count):
        farthest = torch.where(seedable, to_appearance, excluded).max(-1).values  # (B,)
        by_appearance = (farthest > SEED_SEPARATION**2).unsqueeze(-1)  # (B, 1)
        distance = torch.where(by_appearance, to_appearance, to_point)
        index = torch.where(seedable, distance, excluded).argmax(-1)  # (B,)
        chosen.append(index)
        seed_appearance = _take(appearances, index.unsqueeze(-1))  # (B, 1, C)
        seed_point = _take(points, index.unsqueeze(-1))  # (B, 1, 3)
        to_appearance = torch.minimum(to_appearance, (appearances - seed_appearance).pow(2).sum(-1))
        to_point = torch.minimum(to_point, (points - seed_point).pow(2).sum(-1))
    return torch.stack(chosen, dim=1)


def _take(values: Tensor, index: Tensor) -> Tensor:
    """``(B, N, C)`` values at ``(B, K)`` indices -> ``(B, K, C)``."""
    return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


def _straight_through(scene: Scene, initial: Scene) -> Scene:
    """``scene``'s values with ``initial``'s gradient (BO-QSA)."""

    def through(value: Tensor, start: Tensor) -> Tensor:
        return value.detach() + start - start.detach()

    slots = through(scene.slots, initial.slots)
    if scene.positions is None or scene.sizes is None or scene.appearances is None:
        return Scene(slots)
    assert initial.positions is not None and initial.sizes is not None
    assert initial.appearances is not None
    return Scene(
        slots,
        through(scene.positions, initial.positions),
        through(scene.sizes, initial.sizes),
        through(scene.appearances, initial.appearances),
    )


def relative_inputs(relative: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, R, K, 6)`` ``ray_to_slot`` -> what a decoder reads of it, ``(B, R, K, 6)``: bounded
    (a far slot's offset is hundreds of its sizes), and ``(B, R, K)`` an alpha prior: each slot a
    Gaussian blob across the ray, its weight falling with the squared miss distance."""
    across, miss, rest = relative[..., :3], relative[..., 3:4], relative[..., 4:]
    bounded = torch.cat([across / (1 + miss).sqrt(), (-0.5 * miss).exp(), rest], dim=-1)
    return bounded, -0.5 * miss.squeeze(-1)


class SlotMixerDecoder(nn.Module):
    """Rays attend to the slots; a softmax over slots mixes them; an MLP renders the colour.
    With slot positions (``rgbd``) the slot weights also read where each slot lies from the ray,
    and the render where the ray meets the slots it mixes."""

    def __init__(self, ray_width: int, width: int, heads: int, relative: bool) -> None:
        super().__init__()
        self.embed = nn.Linear(ray_width, width)
        self.attend = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU())
        self.out = nn.Linear(2 * width, width)
        self.slot_keys = nn.Linear(width, width, bias=False)
        features = BroadcastDecoder.RELATIVE
        self.relative_logit = (
            nn.Sequential(nn.Linear(features, width // 4), nn.GELU(), nn.Linear(width // 4, 1))
            if relative
            else None
        )
        self.render = nn.Sequential(
            nn.Linear(ray_width + width + (features if relative else 0), 2 * width),
            nn.GELU(),
            nn.Linear(2 * width, width),
            nn.GELU(),
            nn.Linear(width, 3),
        )

    def forward(
        self, rays: Tensor, slots: Tensor, relative: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(B, R, ray_width)`` rays, ``(B, K, W)`` slots and (with positions) ``(B, R, K, 6)``
        ``ray_to_slot`` -> ``(B, R, 3)`` rgb in [0, 1] and ``(B, R, K)`` slot weights."""
        q = self.embed(rays)  # (B, R, W)
        attended, _ = self.attend(q, slots, slots)
        q = q + attended
        q = q + self.out(self.mlp(q))  # (B, R, W)
        logits = torch.einsum("brw,bkw->brk", q, self.slot_keys(slots)) * q.shape[-1] ** -0.5
        inputs = [rays]
        if self.relative_logit is not None:
            if relative is None:
                raise ValueError("this decoder renders relative to slot positions: pass them")
            bounded, prior = relative_inputs(relative)  # (B, R, K, 6), (B, R, K)
            logits = logits + self.relative_logit(bounded).squeeze(-1) + prior
        weights = logits.softmax(-1)  # (B, R, K)
        inputs.append(torch.einsum("brk,bkw->brw", weights, slots))  # (B, R, W)
        if self.relative_logit is not None:
            inputs.append(torch.einsum("brk,brkf->brf", weights, bounded))  # (B, R, 6)
        rgb = torch.sigmoid(self.render(torch.cat(inputs, dim=-1)))  # (B, R, 3)
        return rgb, weights


class BroadcastDecoder(nn.Module):
    """Every slot renders every ray: an MLP of (ray, slot) gives a colour and an alpha logit;
    a softmax over the slots' alphas mixes the colours and is the segmentation. With slot
    positions (``rgbd``) the MLP also reads where the slot lies from the ray (``ray_to_slot``)."""

    RELATIVE = 6
    """Features of ``ray_to_slot``."""

    def __init__(self, ray_width: int, width: int, relative: bool) -> None:
        super().__init__()
        hidden = 2 * width
        self.ray_in = nn.Linear(ray_width, hidden)
        self.slot_in = nn.Linear(width, hidden, bias=False)
        self.relative_in = nn.Linear(self.RELATIVE, hidden) if relative else None
        self.mlp = nn.Sequential(
            nn.GELU(), nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, 4)
        )

    def forward(
        self, rays: Tensor, slots: Tensor, relative: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(B, R, ray_width)`` rays, ``(B, K, W)`` slots and (with positions) ``(B, R, K, 6)``
        ``ray_to_slot`` -> ``(B, R, 3)`` rgb in [0, 1] and ``(B, R, K)`` slot weights."""
        # The first layer of MLP([ray, slot]) split in two: each part computed once.
        hidden = self.ray_in(rays).unsqueeze(2) + self.slot_in(slots).unsqueeze(1)  # (B,R,K,H)
        alpha_prior = torch.zeros_like(hidden[..., 0])  # (B, R, K)
        if self.relative_in is not None:
            if relative is None:
                raise ValueError("this decoder renders relative to slot positions: pass them")
            bounded, alpha_prior = relative_inputs(relative)
            hidden = hidden + self.relative_in(bounded)
        out = self.mlp(hidden)  # (B, R, K, 4)
        weights = (out[..., 3] + alpha_prior).softmax(-1)  # (B, R, K)
        rgb = torch.einsum("brk,brkc->brc", weights, torch.sigmoid(out[..., :3]))  # (B, R, 3)
        return rgb, weights


@register
class OSRTEncoder(SensorEncoder):
    """Posed views (``rgb``, ``intrinsics``, ``extrinsics``; ``depth`` with ``rgbd``) ->
    ``(B, slots, dim)``."""

    name = "osrt"
    inputs = (keys.RGB, keys.DEPTH, keys.INTRINSICS, keys.EXTRINSICS)
    config_class = OSRTConfig

    def __init__(self, config: OSRTConfig) -> None:
        super().__init__(config)
        self.config: OSRTConfig
        w = config.width
        ray_width = 6 * (1 + 2 * config.octaves)
        point_width = 3 * (1 + 2 * config.octaves) if config.rgbd else 0
        strides = {2: (2, 1, 1), 4: (2, 2, 1), 8: (2, 2, 2)}[config.patch_size]
        self.cnn = nn.Sequential(  # (3 + rays + points) x S x S -> W x S/p x S/p
            nn.Conv2d(3 + ray_width + point_width, 64, 1),  # per pixel: the costly resolution
            nn.GELU(),
            nn.Conv2d(64, 96, 3, stride=strides[0], padding=1),
            nn.GELU(),
            nn.Conv2d(96, 128, 3, stride=strides[1], padding=1),
            nn.GELU(),
            nn.Conv2d(128, w, 3, stride=strides[2], padding=1),
        )
        layer = nn.TransformerEncoderLayer(
            w, config.heads, 2 * w, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = (
            None
            if config.rgbd  # the tokens carry world points: see ``scene``
            else nn.TransformerEncoder(layer, config.encoder_layers, enable_nested_tensor=False)
        )
        self.slot_attention = SlotAttention(
            w, config.slots, config.slot_iterations, positional=config.rgbd
        )
        self.decoder: nn.Module = (
            SlotMixerDecoder(ray_width, w, config.heads, relative=config.rgbd)
            if config.decoder == "slot_mixer"
            else BroadcastDecoder(ray_width, w, relative=config.rgbd)
        )
        self.project = nn.Linear(w, config.dim)

    @property
    def n_tokens(self) -> int:
        return self.config.slots

    def _camera_rays(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(B, V, H, W, 3)`` origins and directions of every pixel's ray."""
        return camera_rays(
            batch[keys.INTRINSICS].float(), batch[keys.EXTRINSICS].float(), self.config.image_size
        )

    def scene(self, batch: Batch, views: list[int] | None = None) -> Scene:
        """The slots (and with ``rgbd`` their positions) of the scene seen from ``views`` (all
        when None)."""
        rgb = batch[keys.RGB]
        views = list(range(rgb.shape[1])) if views is None else views
        origins, directions = (x[:, views] for x in self._camera_rays(batch))
        rays = encode_rays(origins, directions, self.config.octaves)  # (B, v, H, W, R)
        b = rays.shape[0]
        features = [images_to_pixels(rgb[:, views]), self._channels(rays)]  # (Bv, C, H, W)
        points = None
        if self.config.rgbd:
            forward = batch[keys.EXTRINSICS][:, views, :3, 2].float()  # optical axes (B, v, 3)
            depth = batch[keys.DEPTH][:, views].float()
            points = world_points(origins, directions, depth, forward, self.config.max_depth)
            features.append(self._channels(fourier_features(points, self.config.octaves)))
        grid = self.cnn(torch.cat(features, dim=1))  # (Bv, W, h/p, w/p)
        tokens = grid.flatten(2).transpose(1, 2).reshape(b, -1, grid.shape[1])  # (B, v*P, W)
        if points is None:
            assert self.transformer is not None
            return self.slot_attention(self.transformer(tokens))
        # Each token's point: the mean of its patch's pixels' points. With every token in the
        # world frame the slots read the CNN's tokens directly: the transformer, which relates
        # the views, would cost N^2 at the fine patches positions need.
        patch = self.config.patch_size
        token_points, token_colours = (
            F.avg_pool2d(per_pixel, patch).flatten(2).transpose(1, 2).reshape(b, -1, 3)
            for per_pixel in (self._channels(points), features[0] * 0.5 + 0.5)
        )  # (B, v*P, 3) each
        appearances = appearance(
            token_colours, self.config.chroma_spread, self.config.brightness_spread
        )  # (B, v*P, 4)
        side = self.config.image_size // patch
        return self.slot_attention(tokens, token_points, appearances, side)

    @staticmethod
    def _channels(per_pixel: Tensor) -> Tensor:
        """``(B, V, H, W, C)`` -> ``(B*V, C, H, W)``."""
        b, v, h, w, c = per_pixel.shape
        return per_pixel.reshape(b * v, h, w, c).permute(0, 3, 1, 2)

    def forward(self, batch: Batch) -> Tensor:
        return self.project(self.scene(batch).slots)  # (B, K, D)

    def decode(self, scene: Scene, origins: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, R, 3)`` rays rendered from ``scene``: ``(B, R, 3)`` rgb and ``(B, R, K)`` slot
        weights."""
        rays = encode_rays(origins, directions, self.config.octaves)
        if scene.positions is None or scene.sizes is None:
            return self.decoder(rays, scene.slots)
        relative = ray_to_slot(origins, directions, scene.positions, scene.sizes)
        return self.decoder(rays, scene.slots, relative)

    def render(self, batch: Batch, input_views: list[int], view: int) -> tuple[Tensor, Tensor]:
        """The whole of ``view`` rendered from the slots of ``input_views``: ``(B, H, W, 3)``
        rgb and ``(B, H, W, K)`` slot weights."""
        return self.render_scene(self.scene(batch, input_views), batch, view)

    def render_scene(self, scene: Scene, batch: Batch, view: int) -> tuple[Tensor, Tensor]:
        """``render`` from a scene already encoded."""
        origins, directions = (x[:, view] for x in self._camera_rays(batch))  # (B, H, W, 3)
        b, h, w, _ = origins.shape
        rgb, weights = self.decode(scene, origins.reshape(b, -1, 3), directions.reshape(b, -1, 3))
        return rgb.reshape(b, h, w, 3), weights.reshape(b, h, w, -1)

    def _target_pixels(self, segmentation: Tensor) -> Tensor:
        """``(B, H*W)`` segmentation of the held-back view -> ``(B, T)`` pixel indices, a
        ``foreground_rays`` share of them on objects (uniform where a view shows none)."""
        share, rays = self.config.foreground_rays, self.config.target_rays
        if share == 0:
            return torch.randint(segmentation.shape[1], (len(segmentation), rays))
        foreground = (segmentation > keys.SEG_BACKGROUND).float()  # (B, H*W)
        count = foreground.sum(-1, keepdim=True)  # (B, 1)
        background = segmentation.shape[1] - count
        boost = torch.where(count > 0, share * background / ((1 - share) * count), 1.0)
        weights = 1.0 + foreground * (boost - 1.0)  # (B, H*W)
        return torch.multinomial(weights, rays, replacement=True)

    def pretrain_loss(self, batch: Batch) -> Tensor:
        """Encode all views but one (drawn at random: every view takes its turn), render
        ``target_rays`` rays of the held-back view (``foreground_rays`` of them on objects), MSE
        on colour; plus ``slot_teaching`` times ``slot_teaching_loss``."""
        v = batch[keys.RGB].shape[1]
        held_back = int(torch.randint(v, (1,)))
        inputs = [i for i in range(v) if i != held_back]
        scene = self.scene(batch, inputs)
        origins, directions = (x[:, held_back].flatten(1, 2) for x in self._camera_rays(batch))
        b, pixels, _ = origins.shape  # (B, H*W, 3)
        pick = self._target_pixels(batch[keys.SEGMENTATION][:, held_back].reshape(b, pixels))
        truth = batch[keys.RGB][:, held_back].reshape(b, pixels, 3).float() / 255.0
        rgb, _ = self.decode(scene, _take(origins, pick), _take(directions, pick))
        loss = F.mse_loss(rgb, _take(truth, pick))
        if self.config.slot_teaching > 0:
            loss = loss + self.config.slot_teaching * self.slot_teaching_loss(batch, inputs, scene)
        return loss

    def _at_token_centres(self, per_pixel: Tensor, views: list[int]) -> Tensor:
        """``(B, V, H, W, ...)`` -> ``(B, len(views), H/p, W/p, ...)``: the values at the centre
        pixel of each patch token of ``views``."""
        patch = self.config.patch_size
        return per_pixel[:, views, patch // 2 :: patch, patch // 2 :: patch]

    def slot_teaching_loss(self, batch: Batch, inputs: list[int], scene: Scene) -> Tensor:
        """The cross-entropy of the decoder's slot weights at rays through the centres of
        ``target_rays`` input tokens against the slots' shares of those tokens (the
        ``slot_teaching`` config field says why)."""
        assert scene.shares is not None
        origins, directions = (
            self._at_token_centres(x, inputs).flatten(1, 3) for x in self._camera_rays(batch)
        )  # (B, N, 3) each, in the tokens' order
        at_tokens = self._at_token_centres(batch[keys.SEGMENTATION], inputs).flatten(1)
        pick = self._target_pixels(at_tokens)  # (B, T) token indices
        _, weights = self.decode(scene, _take(origins, pick), _take(directions, pick))
        slots = scene.shares.shape[1]
        shares = scene.shares.detach().gather(2, pick.unsqueeze(1).expand(-1, slots, -1))
        return -(shares.transpose(1, 2) * weights.clamp(min=1e-8).log()).sum(-1).mean()

    @torch.no_grad()
    def eval_metrics(self, batch: Batch) -> dict[str, float]:
        """PSNR of the last view rendered from the others; the foreground ARI of the decoder's
        slot assignment on it against the simulator's instance masks (``fg_ari``), and of the
        slots' own assignment of the input views' tokens (``slot_fg_ari``: each token against
        the mask at its patch's centre), which says whether a miss is the slots' or the
        decoder's."""
        v = batch[keys.RGB].shape[1]
        inputs = list(range(v - 1))
        scene = self.scene(batch, inputs)
        rgb, weights = self.render_scene(scene, batch, v - 1)
        truth = batch[keys.RGB][:, v - 1].float() / 255.0
        mse = F.mse_loss(rgb, truth, reduction="none").flatten(1).mean(-1)  # (B,)
        psnr = (-10 * torch.log10(mse.clamp(min=1e-10))).mean()
        assert scene.shares is not None
        at_tokens = self._at_token_centres(batch[keys.SEGMENTATION], inputs)  # (B, v-1, h/p, w/p)
        return {
            "psnr": float(psnr),
            "fg_ari": mean_foreground_ari(batch[keys.SEGMENTATION][:, v - 1], weights.argmax(-1)),
            "slot_fg_ari": mean_foreground_ari(at_tokens.flatten(1), scene.shares.argmax(1)),
        }


def adjusted_rand_index(true: np.ndarray, predicted: np.ndarray) -> float:
    """ARI of two labelings of the same items (1 identical partitions, ~0 chance)."""
    _, true_ids = np.unique(true, return_inverse=True)
    _, predicted_ids = np.unique(predicted, return_inverse=True)
    table = np.zeros((true_ids.max() + 1, predicted_ids.max() + 1))
    np.add.at(table, (true_ids, predicted_ids), 1)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, rows, columns = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    total = pairs(np.array([table.sum()]))
    expected = rows * columns / total if total else 0.0
    maximum = (rows + columns) / 2
    if maximum == expected:  # one cluster on both sides, or a single item
        return 1.0
    return (index - expected) / (maximum - expected)


def foreground_ari(segmentation: np.ndarray, assignment: np.ndarray) -> float:
    """ARI over the pixels that show an object (segmentation > 0), as OSRT and SAVi report."""
    foreground = segmentation > 0
    return adjusted_rand_index(segmentation[foreground], assignment[foreground])


def mean_foreground_ari(segmentation: Tensor, assignment: Tensor) -> float:
    """Mean ``foreground_ari`` over a batch of ``(B, ...)`` masks and assignments of the same
    shape, skipping examples that show no object (0 when none does)."""
    scores = [
        foreground_ari(s.numpy(), a.numpy())
        for s, a in zip(segmentation, assignment, strict=True)
        if (s > 0).any()
    ]
    return float(np.mean(scores)) if scores else 0.0
