"""Sensor encoders on real observations: shapes and dtypes, gradients, freezing, exact save/load,
and a few pretraining steps that lower each objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders import ENCODERS, load_encoder, make_encoder
from encoders.region import (
    REGION_MASK,
    REGION_TARGET,
    REGION_VIEW,
    Region,
    region_mask,
    region_text,
    sample_points,
)
from encoders.state import support_relations
from envs import keys

SIZE, VIEWS = 32, 2
SMALL = {"image_size": SIZE, "views": VIEWS, "hidden": 32, "layers": 1, "heads": 2, "dim": 24}
CONFIGS = {
    "state": {"dim": 24, "hidden": 32},
    "state_relations": {"dim": 24, "hidden": 32, "support_relations": True},
    "vit": SMALL,
    "vit_pool": {**SMALL, "reduce": "pool"},
    "vit_tokenlearner": {**SMALL, "reduce": "tokenlearner", "learned_tokens": 3},
    "object_centric": SMALL,
    "region": {**SMALL, "points": 16, "groups": 3, "neighbours": 4},
}
EXPECTED_TOKENS = {
    "state": 8,
    "state_relations": 8,
    "vit": VIEWS * 16,
    "vit_pool": VIEWS * 4,
    "vit_tokenlearner": VIEWS * 3,
    "object_centric": 8,
    "region": 1,
}


ENCODER_OF = {"state_relations": "state", "vit_pool": "vit", "vit_tokenlearner": "vit"}


def build(key: str):
    return make_encoder(ENCODER_OF.get(key, key), **CONFIGS[key])


@pytest.fixture(scope="module")
def batch():
    """Four real tabletop observations, with a region drawn on one object of each."""
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make("embodied/Tabletop-v0", image_size=SIZE, views=["front", "left"])
    observations = [env.reset(seed=seed)[0] for seed in range(4)]
    env.close()
    stacked = {k: torch.from_numpy(np.stack([o[k] for o in observations])) for k in observations[0]}
    masks, views, targets = [], [], []
    for obs in observations:
        seg = obs[keys.SEGMENTATION]  # (V, H, W)
        view = 0
        label = int(np.bincount(seg[view][seg[view] > 0]).argmax())  # the best-seen object
        masks.append(seg[view] == label)
        views.append(view)
        targets.append(label - 1)
    stacked[REGION_MASK] = torch.from_numpy(np.stack(masks))
    stacked[REGION_VIEW] = torch.tensor(views)
    stacked[REGION_TARGET] = torch.tensor(targets)
    return stacked


@pytest.mark.parametrize("key", list(CONFIGS))
def test_tokens_have_the_declared_shape_and_dtype(key, batch):
    encoder = build(key)
    tokens = encoder(batch)
    assert tokens.shape == (4, EXPECTED_TOKENS[key], 24) == (4, encoder.n_tokens, encoder.dim)
    assert tokens.dtype == torch.float32 and torch.isfinite(tokens).all()
    mask = encoder.token_mask(batch)
    assert mask.shape == (4, encoder.n_tokens) and mask.dtype == torch.bool
    if key in (
        "state",
        "state_relations",
        "object_centric",
    ):  # one token per object row: padding is masked, zero
        assert torch.equal(mask, batch[keys.OBJECT_MASK].bool())
        assert (tokens[~mask] == 0).all()


@pytest.mark.parametrize("key", list(CONFIGS))
def test_gradients_flow_and_freezing_stops_them(key, batch):
    encoder = build(key)
    encoder(batch).pow(2).mean().backward()
    used = [n for n, p in encoder.named_parameters() if p.grad is not None and p.grad.any()]
    assert used, "no parameter got a gradient"
    assert any(n.startswith(("vit.backbone", "backbone", "mlp")) for n in used), used
    encoder.zero_grad()
    encoder.freeze()
    assert encoder.frozen and not encoder.training
    assert not encoder.train().training, "a frozen encoder stays in eval mode"
    out = encoder(batch)
    assert not out.requires_grad
    assert all(p.grad is None for p in encoder.parameters())


@pytest.mark.parametrize("key", list(CONFIGS))
def test_save_and_load_are_exact(key, batch, tmp_path):
    encoder = build(key).eval()
    encoder.save(tmp_path)
    loaded = load_encoder(tmp_path).eval()
    assert type(loaded) is type(encoder) and loaded.config == encoder.config
    for (name, a), (_, b) in zip(
        encoder.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    with torch.no_grad():
        kwargs = {"generator": torch.Generator().manual_seed(0)} if key == "region" else {}
        first = encoder(batch, **kwargs)
        kwargs = {"generator": torch.Generator().manual_seed(0)} if key == "region" else {}
        assert torch.equal(first, loaded(batch, **kwargs))


@pytest.mark.parametrize("key", ["vit", "object_centric", "region"])
def test_a_few_pretraining_steps_lower_the_loss(key, batch):
    torch.manual_seed(0)
    encoder = build(key)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = encoder.pretrain_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    metrics = encoder.eval_metrics(batch)
    expected = {
        "vit": {"patch_accuracy", "depth_error_m", "colour_error"},
        "object_centric": {"position_error_cm", "size_error_mm", "colour_error", "colour_accuracy"},
        "region": {"position_error_cm", "size_error_mm", "colour_error", "colour_accuracy"},
    }[key]
    assert set(metrics) == expected and all(np.isfinite(v) for v in metrics.values())


def test_support_relations_read_from_the_rows_match_the_simulators(make_env):
    env = make_env(observe_images=False, num_objects=8)
    stacked = 0
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        rows = torch.from_numpy(obs[keys.OBJECTS]).unsqueeze(0)  # (1, 8, F)
        mask = torch.from_numpy(obs[keys.OBJECT_MASK]).bool().unsqueeze(0)  # (1, 8)
        rests_on = support_relations(rows, mask)[0]  # (8, 8)
        objects = info[keys.SYMBOLIC_STATE]["objects"]
        expected = torch.zeros(8, 8, dtype=torch.bool)
        for name, cube in objects.items():
            if cube["support"] in objects:
                expected[int(name[4:]) - 1, int(cube["support"][4:]) - 1] = True
        assert torch.equal(rests_on, expected), (seed, objects)
        stacked += int(expected.sum())
    assert stacked >= 2, "the scenes compared hold stacks"


def test_support_relations_change_the_state_tokens(batch):
    encoder = build("state_relations").eval()
    rows = batch[keys.OBJECTS].clone()
    rows[0, 1, keys.OBJECT_POSITION] = rows[0, 0, keys.OBJECT_POSITION]  # obj_2 on top of obj_1
    rows[0, 1, 2] += (rows[0, 0, 7] + rows[0, 1, 7]) / 2
    stacked = {**batch, keys.OBJECTS: rows}
    assert support_relations(rows, batch[keys.OBJECT_MASK].bool())[0, 1, 0]
    apart = {**stacked, keys.OBJECTS: rows.clone()}
    apart[keys.OBJECTS][0, 1, 2] += 0.05  # the same rows, obj_2 5 cm higher: resting on nothing
    with torch.no_grad():
        near = encoder(stacked)[0, 0] - encoder(apart)[0, 0]  # obj_1's token: covered or not
    assert near.abs().max() > 1e-3


def test_registry_builds_by_name_and_names_the_allowed():
    assert set(ENCODERS) >= {"state", "vit", "object_centric", "region"}
    with pytest.raises(ValueError, match=r"encoder='sonar': allowed \["):
        make_encoder("sonar")
    with pytest.raises(ValueError, match=r"reduce='max': allowed \['none', 'pool'"):
        make_encoder("vit", reduce="max")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        make_encoder("vit", image_size=60)


def test_vit_refuses_a_different_number_of_views(batch):
    encoder = make_encoder("vit", **{**SMALL, "views": 3})
    with pytest.raises(ValueError, match="built for 3"):
        encoder(batch)


def test_region_kinds_become_masks_text_and_points_inside_them():
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[4:9, 20:30] = True
    mask[9:12, 20:22] = True  # free-form: an L shape
    regions = {
        "point": Region("point", 0, (10, 12)),
        "box": Region("box", 1, (3, 5, 14, 9)),
        "mask": Region("mask", 0, mask=mask),
    }
    assert region_text(regions["point"], SIZE) == "[31, 37] <region>"
    assert region_text(regions["box"], SIZE) == "[9, 15, 43, 28] <region>"
    assert region_text(regions["mask"], SIZE) == "[62, 12, 90, 34] <region>"  # its bounding box
    masks = {kind: region_mask(r, SIZE) for kind, r in regions.items()}
    assert masks["point"][12, 10] and masks["point"].sum() == 13  # a disc of radius 2
    assert masks["box"].sum() == 12 * 5 and masks["box"][5, 3] and masks["box"][9, 14]
    assert np.array_equal(masks["mask"], mask)
    stacked = torch.from_numpy(np.stack(list(masks.values())))
    points = sample_points(stacked, 200, torch.Generator().manual_seed(0))  # (3, 200, 2)
    for index, region_pixels in enumerate(stacked):
        xs, ys = points[index, :, 0].floor().long(), points[index, :, 1].floor().long()
        assert region_pixels[ys, xs].all(), "every sampled point lies in its region"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "circle", "view": 0}, "allowed"),
        ({"kind": "point", "view": 0, "coordinates": (1, 2, 3)}, "needs 2 coordinates"),
        ({"kind": "box", "view": 0, "coordinates": (5, 5, 2, 9)}, "x1 <= x2"),
        ({"kind": "mask", "view": 0, "mask": np.zeros((4, 4), bool)}, "non-empty"),
    ],
)
def test_bad_regions_name_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Region(**kwargs)


def test_region_encoder_handles_all_three_kinds_in_one_batch(batch):
    encoder = make_encoder("region", **CONFIGS["region"])
    masks = np.stack(
        [
            region_mask(Region("point", 0, (16, 16)), SIZE),
            region_mask(Region("box", 0, (2, 2, 12, 20)), SIZE),
            batch[REGION_MASK][2].numpy(),
            region_mask(Region("box", 1, (0, 0, 31, 31)), SIZE),
        ]
    )
    mixed = {**batch, REGION_MASK: torch.from_numpy(masks), REGION_VIEW: torch.tensor([0, 0, 0, 1])}
    assert encoder(mixed).shape == (4, 1, 24)


def test_state_errors_name_the_nearest_palette_colour():
    from encoders.object_centric import state_errors
    from envs.scene import PALETTE

    target = torch.zeros(2, 7)
    target[0, 4:], target[1, 4:] = torch.tensor(PALETTE["red"]), torch.tensor(PALETTE["blue"])
    predicted = target.clone()
    predicted[:, 4:] = torch.tensor(PALETTE["red"]) + 0.05  # both read as (nearly) red
    errors = state_errors(predicted, target)
    assert errors["colour_accuracy"] == 0.5
    assert errors["position_error_cm"] == 0.0 and errors["size_error_mm"] == 0.0
