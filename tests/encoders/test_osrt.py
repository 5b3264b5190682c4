"""OSRT: camera rays, slot attention, Slot Mixer rendering, novel-view pretraining, FG-ARI."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the environments)
from encoders import load_encoder, make_encoder
from encoders.osrt import (
    SlotAttention,
    adjusted_rand_index,
    appearance,
    camera_rays,
    foreground_ari,
    mean_foreground_ari,
    ray_to_slot,
    seed_tokens,
    slot_frames,
    world_points,
)
from envs import keys
from envs.scene import TABLE_RGBA

SIZE = 32
TINY = {"image_size": SIZE, "views": 3, "width": 32, "encoder_layers": 1, "heads": 2}
TINY |= {"slots": 4, "slot_iterations": 2, "octaves": 2, "target_rays": 64, "dim": 16}
TABLE_RGB = torch.tensor(TABLE_RGBA[:3])


@pytest.fixture(scope="module")
def batch():
    env = gym.make("embodied/Tabletop-v0", image_size=SIZE, views=["front", "left", "right"])
    observations = [env.reset(seed=seed)[0] for seed in range(4)]
    env.close()
    return {k: torch.from_numpy(np.stack([o[k] for o in observations])) for k in observations[0]}


def test_camera_rays_start_at_the_camera_and_hit_what_depth_says(batch):
    origins, directions = camera_rays(
        batch[keys.INTRINSICS].float(), batch[keys.EXTRINSICS].float(), SIZE
    )
    assert origins.shape == directions.shape == (4, 3, SIZE, SIZE, 3)
    assert torch.allclose(directions.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert torch.allclose(origins[:, :, 5, 7], batch[keys.EXTRINSICS][:, :, :3, 3].float())
    # Every pixel on an object: its ray, followed to the depth the camera measured (along the
    # optical axis), lands on that object: beyond its cube's half diagonal from the centre by
    # at most about a pixel's footprint at 32 px (1-2 cm; a wrong ray model misses by tens).
    forward = batch[keys.EXTRINSICS][:, :, :3, 2].float()  # the cameras' +z, world frame
    points = world_points(origins, directions, batch[keys.DEPTH].float(), forward, 3.0)
    excess = []
    for view in range(3):
        seg = batch[keys.SEGMENTATION][0, view]
        for y, x in np.argwhere(seg.numpy() > 0):
            point = points[0, view, y, x]
            row = batch[keys.OBJECTS][0, int(seg[y, x]) - 1].float()
            centre, size = row[keys.OBJECT_POSITION], float(row[keys.OBJECT_SIZE][0])
            excess.append(float((point - centre).norm()) - 0.87 * size)
    assert len(excess) > 20
    assert np.percentile(excess, 90) < 0.01 and max(excess) < 0.02, sorted(excess)[-5:]


def test_slots_render_and_assign_every_pixel(batch):
    encoder = make_encoder("osrt", **TINY)
    tokens = encoder(batch)
    assert tokens.shape == (4, 4, 16) == (4, encoder.n_tokens, encoder.dim)
    rgb, weights = encoder.render(batch, [0, 1], 2)
    assert rgb.shape == (4, SIZE, SIZE, 3) and weights.shape == (4, SIZE, SIZE, 4)
    assert torch.allclose(weights.sum(-1), torch.ones(1), atol=1e-5)
    assert ((rgb >= 0) & (rgb <= 1)).all()


def test_novel_view_pretraining_lowers_the_loss_and_reports_psnr_and_ari(batch):
    torch.manual_seed(0)
    encoder = make_encoder("osrt", **TINY)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=2e-3)
    before = encoder.eval_metrics(batch)
    losses = []
    for step in range(30):
        torch.manual_seed(step)
        loss = encoder.pretrain_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
    after = encoder.eval_metrics(batch)
    assert after["psnr"] > before["psnr"]
    assert -1.0 <= after["fg_ari"] <= 1.0 and -1.0 <= after["slot_fg_ari"] <= 1.0


def test_mean_foreground_ari_skips_scenes_without_objects():
    masks = torch.tensor([[0, 1, 1, 2, 2], [0, 0, 0, 0, 0]])  # the second shows no object
    perfect, merged = torch.tensor([[5, 3, 3, 4, 4]] * 2), torch.tensor([[5, 3, 3, 3, 3]] * 2)
    assert mean_foreground_ari(masks, perfect) == pytest.approx(1.0)
    assert mean_foreground_ari(masks, merged) == pytest.approx(0.0)
    assert mean_foreground_ari(masks[1:], perfect[1:]) == 0.0


def test_slot_frames_are_the_attended_points_mean_and_spread():
    points = torch.tensor([[[0.0, 0, 0], [0.3, 0, 0], [0.0, 0.6, 0]]])  # (1, 3, 3)
    attention = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]])  # (1, 2, 3)
    positions, sizes = slot_frames(attention, points, min_size=0.01)
    assert torch.allclose(positions, torch.tensor([[[0.15, 0, 0], [0.0, 0.6, 0]]]))
    # rms distance per axis: 0.15 along x over three axes; a slot on one point keeps min_size
    assert torch.allclose(sizes, torch.tensor([[[0.15 / 3**0.5], [0.01]]]))


def test_ray_to_slot_measures_across_the_ray_in_slot_sizes_and_along_it_in_metres():
    origins = torch.zeros(1, 2, 3)
    directions = torch.tensor([[[0.0, 0, 1], [1.0, 0, 0]]])  # (1, R=2, 3)
    positions = torch.tensor([[[0.0, 0.1, 2.0]]])  # (1, K=1, 3)
    sizes = torch.tensor([[[0.05]]])
    relative = ray_to_slot(origins, directions, positions, sizes)  # (1, 2, 1, 6)
    assert relative.shape == (1, 2, 1, 6)
    assert torch.allclose(relative[0, 0, 0, :5], torch.tensor([0.0, 2.0, 0, 4.0, 2.0]))
    # the second ray runs along x: the slot lies wholly across it, none of it ahead
    assert torch.allclose(relative[0, 1, 0, :3], torch.tensor([0.0, 2.0, 40.0]))
    assert float(relative[0, 1, 0, 3]) == pytest.approx(1604)
    assert float(relative[0, 1, 0, 4]) == pytest.approx(0.0)
    assert torch.allclose(relative[..., 5], torch.tensor(0.05).log())


@pytest.mark.parametrize("decoder", ["slot_mixer", "broadcast"])
def test_rgbd_slots_have_positions_in_the_scene_and_render(batch, decoder):
    encoder = make_encoder("osrt", **{**TINY, "rgbd": True, "decoder": decoder})
    scene = encoder.scene(batch, [0, 1])
    assert scene.positions is not None and scene.sizes is not None
    assert scene.positions.shape == (4, 4, 3) and scene.sizes.shape == (4, 4, 1)
    # Each position is a mean of points the two views see, clamped at max_depth from a camera.
    cameras = batch[keys.EXTRINSICS][:, :2, :3, 3].float()  # (B, 2, 3)
    reach = (scene.positions.unsqueeze(2) - cameras.unsqueeze(1)).norm(dim=-1).min(-1).values
    assert (reach < 3.0 * 1.5).all()
    rgb, weights = encoder.render(batch, [0, 1], 2)
    assert rgb.shape == (4, SIZE, SIZE, 3) and weights.shape == (4, SIZE, SIZE, 4)
    assert torch.allclose(weights.sum(-1), torch.ones(1), atol=1e-5)
    loss = encoder.pretrain_loss(batch)
    loss.backward()
    relative = encoder.decoder.relative_in if decoder == "broadcast" else encoder.decoder.render
    assert next(relative.parameters()).grad.abs().sum() > 0
    assert encoder.slot_attention.initial.grad.abs().sum() > 0  # straight through (BO-QSA)


def test_slot_teaching_teaches_the_decoder_the_slots_split(batch):
    """The teaching loss moves the decoder's weights toward the slots' shares of the input
    tokens, and enters the pretraining loss only when asked for."""
    torch.manual_seed(0)
    encoder = make_encoder("osrt", **{**TINY, "rgbd": True, "slot_teaching": 1.0})
    optimizer = torch.optim.Adam(encoder.decoder.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        torch.manual_seed(1)  # the same rays each step
        scene = encoder.scene(batch, [0, 1])
        loss = encoder.slot_teaching_loss(batch, [0, 1], scene)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]
    torch.manual_seed(2)
    taught = float(encoder.pretrain_loss(batch))
    encoder.config.slot_teaching = 0.0
    torch.manual_seed(2)
    assert float(encoder.pretrain_loss(batch)) < taught
    with pytest.raises(ValueError, match="slot_teaching=-1"):
        make_encoder("osrt", **{**TINY, "slot_teaching": -1.0})


def test_positional_slot_attention_moves_with_the_scene():
    """Invariant Slot Attention: the slots read their inputs relative to their own frames, so
    moving every point by the same offset moves the slots' positions by it and nothing else."""
    torch.manual_seed(0)
    attention = SlotAttention(16, slots=3, iterations=3, positional=True)
    inputs, points = torch.randn(2, 18, 16), torch.randn(2, 18, 3)  # two views of 3 x 3
    appearances = torch.rand(2, 18, 4)
    shift = torch.tensor([0.5, -1.0, 2.0])
    scene = attention(inputs, points, appearances, 3)
    moved = attention(inputs, points + shift, appearances, 3)
    assert scene.positions is not None and moved.positions is not None
    assert torch.allclose(moved.positions, scene.positions + shift, atol=1e-4)
    assert torch.allclose(moved.slots, scene.slots, atol=1e-4)
    assert torch.allclose(moved.sizes, scene.sizes, atol=1e-4)
    with pytest.raises(ValueError, match="points, appearances and side must be given"):
        attention(inputs)


def test_positional_slots_are_assigned_by_where_and_what_appearance_alone():
    """With points, the inputs' affinities are a mixture's densities: different features change
    the slots' contents, never which inputs they take (so not their positions or
    appearances)."""
    torch.manual_seed(0)
    attention = SlotAttention(16, slots=3, iterations=3, positional=True)
    points, appearances = torch.randn(2, 18, 3), torch.rand(2, 18, 4)
    scene = attention(torch.randn(2, 18, 16), points, appearances, 3)
    other = attention(torch.randn(2, 18, 16), points, appearances, 3)
    assert scene.positions is not None and other.positions is not None
    assert torch.allclose(other.positions, scene.positions)
    assert torch.allclose(other.appearances, scene.appearances)
    assert not torch.allclose(other.slots, scene.slots)


def test_appearance_separates_shading_from_colour():
    red = torch.tensor([0.8, 0.1, 0.1])
    lit, shaded, table = (appearance(c, 0.05, 0.15) for c in (red, red * 0.5, TABLE_RGB))
    assert torch.allclose(lit[:3], shaded[:3], atol=0.2)  # the same chromaticity
    assert (lit[3] - shaded[3]).abs() > 1.0  # a different brightness, in spreads
    assert (shaded[:3] - table[:3]).norm() > 5.0  # far from the table, unlike in plain rgb


def test_seed_tokens_give_each_colour_one_seed_and_spread_the_rest_over_the_table():
    # One view of 8 x 8 tokens 1.5 cm apart: a table, a red cube of 3 x 3 tokens and a blue
    # one of 2 x 2 (partly hidden; their top rows lit, the rest in shade) and one token on a
    # cube's edge, of mixed colour.
    rows, columns = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    points = torch.stack([rows, columns, torch.zeros(8, 8)], dim=-1) * 0.015  # (8, 8, 3)
    rgb = TABLE_RGB.expand(8, 8, 3).clone()
    labels = [["table"] * 8 for _ in range(8)]
    red, blue = torch.tensor([0.8, 0.1, 0.1]), torch.tensor([0.1, 0.2, 0.8])
    for colour, name, corner, size in ((red, "red", 1, 3), (blue, "blue", 5, 2)):
        for row in range(corner, corner + size):
            for column in range(corner - 1, corner - 1 + size):
                rgb[row, column] = colour * (1.0 if row == corner else 0.6)
                points[row, column, 2] = 0.02
                labels[row][column] = name
    rgb[1, 5] = (red + TABLE_RGB) / 2
    labels[1][5] = "edge"
    flat = [label for row in labels for label in row]
    appearances = appearance(rgb, 0.05, 0.15).reshape(1, 64, 4)
    seeds = seed_tokens(appearances, points.reshape(1, 64, 3), 5, side=8)
    chosen = [flat[i] for i in seeds[0].tolist()]
    assert sorted(chosen) == ["blue", "red", "table", "table", "table"]
    table_seeds = points.reshape(64, 3)[[i for i in seeds[0].tolist() if flat[i] == "table"]]
    assert torch.pdist(table_seeds).min() > 0.04  # spread over the table, not side by side


def test_adjusted_rand_index():
    a = np.array([1, 1, 2, 2, 3, 3])
    assert adjusted_rand_index(a, a) == pytest.approx(1.0)
    assert adjusted_rand_index(a, np.array([7, 7, 5, 5, 9, 9])) == pytest.approx(1.0)  # relabelled
    assert adjusted_rand_index(a, np.array([1, 2, 1, 2, 1, 2])) < 0.0  # worse than chance
    rng = np.random.default_rng(0)
    random_scores = [adjusted_rand_index(rng.integers(4, size=400), rng.integers(4, size=400))]
    assert abs(random_scores[0]) < 0.05
    seg = np.array([[0, 0, 1], [2, 2, 1]])
    assignment = np.array([[5, 6, 3], [4, 4, 3]])  # background ignored: 1 -> 3, 2 -> 4
    assert foreground_ari(seg, assignment) == pytest.approx(1.0)


def test_osrt_saves_and_loads_exactly(batch, tmp_path):
    encoder = make_encoder("osrt", **TINY).eval()
    encoder.save(tmp_path)
    loaded = load_encoder(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(encoder(batch), loaded(batch))


@pytest.mark.parametrize("decoder", ["slot_mixer", "broadcast"])
def test_both_decoders_render_with_slot_weights_that_sum_to_one(batch, decoder):
    encoder = make_encoder("osrt", **{**TINY, "decoder": decoder, "patch_size": 4})
    rgb, weights = encoder.render(batch, [0, 1], 2)
    assert rgb.shape == (4, SIZE, SIZE, 3) and weights.shape == (4, SIZE, SIZE, 4)
    assert torch.allclose(weights.sum(-1), torch.ones(1), atol=1e-5)
    assert encoder(batch).shape == (4, 4, 16)


@pytest.mark.parametrize("share", [0.0, 0.5, 0.9])
def test_target_rays_land_on_objects_at_the_configured_share(batch, share):
    encoder = make_encoder("osrt", **{**TINY, "foreground_rays": share, "target_rays": 4000})
    segmentation = batch[keys.SEGMENTATION][:, 0].reshape(4, -1)  # (B, H*W)
    torch.manual_seed(0)
    pixels = encoder._target_pixels(segmentation)  # (B, T)
    on_objects = float((segmentation.gather(1, pixels) > 0).float().mean())
    uniform = float((segmentation > 0).float().mean())
    expected = uniform if share == 0.0 else share
    assert on_objects == pytest.approx(expected, abs=0.03), (on_objects, uniform)


def test_bad_osrt_options_name_the_field():
    with pytest.raises(ValueError, match="decoder='nerf': allowed"):
        make_encoder("osrt", **{**TINY, "decoder": "nerf"})
    with pytest.raises(ValueError, match=r"foreground_rays=1\.0: must be in \[0, 1\)"):
        make_encoder("osrt", **{**TINY, "foreground_rays": 1.0})
    with pytest.raises(ValueError, match="patch_size=16: must be 2, 4 or 8"):
        make_encoder("osrt", **{**TINY, "patch_size": 16})
