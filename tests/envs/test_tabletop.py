"""The tabletop env: Gymnasium API, observation contract, determinism, scenes and config checks."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs import keys
from envs.regions import TABLE_HEIGHT, WORKSPACE_X, WORKSPACE_Y
from envs.scene import (
    CUBE_SIZE_RANGE,
    GRIPPER_CLEARANCE,
    HELD_OUT_COLOUR_PAIRS,
    PALETTE,
    sample_layout,
)
from envs.tabletop import OBJECT_CAPACITY, TabletopConfig

# Actions are joint angles in radians by design (not rescaled to [-1, 1]): the one expected warning.
EXPECTED_WARNING = "we recommend using a symmetric and normalized space"


def test_check_env_passes_without_unexpected_warnings(make_env):
    env = make_env(render_mode="rgb_array", point_cloud=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert [str(w.message) for w in caught if EXPECTED_WARNING not in str(w.message)] == []


def test_observation_contract(make_env):
    env = make_env(views=["front", "overhead"], image_size=48)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs[keys.RGB].shape == (2, 48, 48, 3) and obs[keys.RGB].dtype == np.uint8
    assert obs[keys.DEPTH].shape == (2, 48, 48) and obs[keys.DEPTH].dtype == np.float32
    assert obs[keys.SEGMENTATION].dtype == np.int32
    assert obs[keys.OBJECTS].shape == (OBJECT_CAPACITY, keys.OBJECT_FEATURES)
    assert obs[keys.PROPRIO].shape == (keys.PROPRIO_DIM,)
    assert obs[keys.INTRINSICS].shape == (2, 3, 3) and obs[keys.EXTRINSICS].shape == (2, 4, 4)
    n = int(obs[keys.OBJECT_MASK].sum())
    assert n == len(info[keys.ENTITIES]) and 3 <= n <= 5
    assert not obs[keys.OBJECTS][n:].any(), "padding rows must be zero"
    # Depth is metric: the table seen straight down from the overhead camera is 1 m away.
    table = obs[keys.DEPTH][1][obs[keys.SEGMENTATION][1] == keys.SEG_BACKGROUND]
    assert abs(float(np.median(table)) - 1.0) < 0.01


def test_object_rows_match_the_scene(make_env):
    env = make_env()
    obs, info = env.reset(seed=11)
    state = info[keys.SYMBOLIC_STATE]["objects"]
    for row, name in enumerate(sorted(info[keys.ENTITIES], key=lambda s: int(s.split("_")[1]))):
        features = obs[keys.OBJECTS][row]
        np.testing.assert_allclose(
            features[keys.OBJECT_POSITION], state[name]["position"], atol=1e-3
        )
        assert CUBE_SIZE_RANGE[0] <= features[keys.OBJECT_SIZE][0] <= CUBE_SIZE_RANGE[1]
        np.testing.assert_allclose(features[keys.OBJECT_COLOUR], PALETTE[state[name]["colour"]])


def test_segmentation_labels_objects_robot_and_background(make_env):
    env = make_env(views=["overhead"], image_size=96)
    obs, info = env.reset(seed=5)
    labels = set(np.unique(obs[keys.SEGMENTATION]).tolist())
    n = len(info[keys.ENTITIES])
    assert keys.SEG_BACKGROUND in labels and keys.SEG_ROBOT in labels
    assert labels - {keys.SEG_BACKGROUND, keys.SEG_ROBOT} <= set(range(1, n + 1))
    # Each object's pixels have that object's colour.
    for j in labels - {keys.SEG_BACKGROUND, keys.SEG_ROBOT}:
        pixels = obs[keys.RGB][0][obs[keys.SEGMENTATION][0] == j].astype(float) / 255
        expected = obs[keys.OBJECTS][j - 1][keys.OBJECT_COLOUR]
        assert np.abs(pixels.max(axis=0) - expected).max() < 0.25


def test_point_cloud_is_fused_labelled_and_in_bounds(make_env):
    env = make_env(point_cloud=True, point_cloud_points=1024)
    obs, info = env.reset(seed=2)
    points, labels, mask = obs[keys.POINT_CLOUD], obs[keys.POINT_LABELS], obs[keys.POINT_MASK]
    assert points.shape == (1024, 6) and labels.shape == (1024,) and mask.shape == (1024,)
    real = mask.astype(bool)
    assert real.sum() > 300
    assert np.all(points[real, 2] >= TABLE_HEIGHT - 0.011)
    object_labels = set(labels[real].tolist()) - {keys.SEG_BACKGROUND, keys.SEG_ROBOT}
    assert object_labels == set(range(1, len(info[keys.ENTITIES]) + 1))
    # Points labelled obj_j lie at obj_j's position.
    for j in object_labels:
        centre = obs[keys.OBJECTS][j - 1][keys.OBJECT_POSITION]
        distance = np.linalg.norm(points[real & (labels == j), :3] - centre, axis=1)
        assert distance.max() < 0.05


def test_same_seed_same_observations_and_trajectory(make_env):
    first, second = make_env(), make_env()
    rng = np.random.default_rng(0)
    actions = [first.action_space.sample() for _ in range(10)]
    del rng
    obs_a, info_a = first.reset(seed=42)
    second.reset(seed=7)  # a different history before the same seed
    obs_b, info_b = second.reset(seed=42)
    assert info_a[keys.INSTRUCTION] == info_b[keys.INSTRUCTION]
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key], err_msg=key)
    for action in actions:
        step_a, step_b = first.step(action), second.step(action)
        for key in step_a[0]:
            np.testing.assert_array_equal(step_a[0][key], step_b[0][key], err_msg=key)
        assert step_a[1:4] == step_b[1:4]


def test_different_seeds_give_different_scenes(make_env):
    env = make_env(observe_images=False)
    scenes = {env.reset(seed=s)[0][keys.OBJECTS].tobytes() for s in range(5)}
    assert len(scenes) == 5


def test_scenes_are_non_overlapping_inside_the_workspace_and_some_stacked(make_env):
    env = make_env(observe_images=False, num_objects=8)
    stacked = 0
    for seed in range(15):
        _, info = env.reset(seed=seed)
        objects = info[keys.SYMBOLIC_STATE]["objects"]
        assert len(objects) == 8
        assert {o["support"] for o in objects.values()} <= {"table", *objects}, objects
        stacked += any(o["support"] != "table" for o in objects.values())
        on_table = [o for o in objects.values() if o["support"] == "table"]
        for i, a in enumerate(on_table):
            x, y = a["position"][:2]
            assert WORKSPACE_X[0] - 0.01 <= x <= WORKSPACE_X[1] + 0.01
            assert WORKSPACE_Y[0] - 0.01 <= y <= WORKSPACE_Y[1] + 0.01
            for b in on_table[i + 1 :]:
                gap = np.hypot(x - b["position"][0], y - b["position"][1])
                assert gap > (a["size"] + b["size"]) / 2
    assert 3 <= stacked <= 12, "about half the scenes start with stacks"


def test_object_count_follows_config(make_env):
    env = make_env(observe_images=False, min_objects=3, max_objects=5)
    counts = {len(env.reset(seed=s)[1][keys.ENTITIES]) for s in range(20)}
    assert counts == {3, 4, 5}
    _, info = env.reset(seed=0, options={"num_objects": 6})
    assert len(info[keys.ENTITIES]) == 6


def test_render_tiles_the_views(make_env):
    env = make_env(render_mode="rgb_array", views=["front", "left"], render_size=80)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (80, 160, 3) and frame.dtype == np.uint8
    assert frame.std() > 10, "the frame shows a scene, not a flat colour"


def test_task_option_picks_the_family(make_env):
    env = make_env(observe_images=False)
    for family in ("p1", "p2", "q1", "q2", "q3", "q4"):
        _, info = env.reset(seed=1, options={"task": family})
        assert info[keys.TASK] == family and info[keys.INSTRUCTION]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_objects", 9, "allowed 1..8"),
        ("tasks", ["p9"], "allowed"),
        ("views", ["ceiling"], "allowed"),
        ("image_size", 0, "positive"),
        ("control_hz", 7, "must divide 240"),
        ("stack_probability", 1.5, r"\[0, 1\]"),
        ("referral", "name", r"allowed \['entity', 'colour'\]"),
        ("colour_combos", "new", r"allowed \['seen', 'unseen', 'any'\]"),
    ],
)
def test_bad_config_names_the_field_and_the_allowed_values(field, value, message):
    with pytest.raises(ValueError, match=message) as error:
        TabletopConfig(**{field: value})
    assert field in str(error.value)


def test_bad_action_shape_and_step_before_reset(make_env):
    env = make_env(observe_images=False)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.zeros(8, dtype=np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="expected"):
        env.unwrapped.step(np.zeros(5, dtype=np.float32))


def test_bad_reset_options_name_the_allowed_values(make_env):
    env = make_env(observe_images=False)
    with pytest.raises(ValueError, match=r"allowed \['gather'"):
        env.reset(seed=0, options={"task": "p9"})
    with pytest.raises(ValueError, match=r"allowed 1..8"):
        env.reset(seed=0, options={"num_objects": 12})
    with pytest.raises(ValueError, match=r"referral.*allowed \['entity', 'colour'\]"):
        env.reset(seed=0, options={"referral": "name"})
    with pytest.raises(ValueError, match=r"colour_combos.*allowed \['seen'"):
        env.reset(seed=0, options={"colour_combos": "new"})


@pytest.mark.parametrize("combos", ["seen", "unseen"])
def test_colour_combinations_split_on_the_held_out_pairs(make_env, combos):
    env = make_env(observe_images=False, colour_combos=combos, tasks=["p1", "q1", "sort", "line"])
    for seed in range(30):
        _, info = env.reset(seed=seed)
        colours = {o["colour"] for o in info[keys.SYMBOLIC_STATE]["objects"].values()}
        held_out = [pair for pair in HELD_OUT_COLOUR_PAIRS if set(pair) <= colours]
        assert bool(held_out) == (combos == "unseen"), (seed, info[keys.TASK], colours)


def test_referral_option_names_objects_by_entity_or_colour(make_env):
    env = make_env(observe_images=False)
    _, by_entity = env.reset(seed=4, options={"task": "p2"})
    _, by_colour = env.reset(seed=4, options={"task": "p2", "referral": "colour"})
    assert re.fullmatch(r"How to stack obj_\d on top of obj_\d\?", by_entity[keys.INSTRUCTION])
    by_colour_pattern = r"How to stack the \w+ object on top of the \w+ object\?"
    assert re.fullmatch(by_colour_pattern, by_colour[keys.INSTRUCTION])


def test_eight_cubes_without_stacks_always_fit():
    for seed in range(200):
        cubes, placements = sample_layout(np.random.default_rng(seed), ["red"] * 8, 0.0)
        assert len(placements) == 8 and all(p.on is None for p in placements.values())
        for i, a in enumerate(cubes):
            for b in cubes[i + 1 :]:
                pa, pb = placements[a.name], placements[b.name]
                needed = (a.size + b.size) * np.sqrt(2) / 2 + GRIPPER_CLEARANCE
                assert np.hypot(pa.x - pb.x, pa.y - pb.y) >= needed


def test_narrowed_views_project_each_cube_where_it_is_drawn_and_larger(make_env):
    wide = make_env(views=["front", "left", "right"])
    zoom = make_env(views=["front_zoom", "left_zoom", "right_zoom"])
    hits, seen, wide_pixels, zoom_pixels = 0, 0, 0, 0
    for seed in range(3):
        wide_obs, _ = wide.reset(seed=seed)
        obs, info = zoom.reset(seed=seed)
        wide_pixels += int((wide_obs[keys.SEGMENTATION] > 0).sum())
        zoom_pixels += int((obs[keys.SEGMENTATION] > 0).sum())
        size = obs[keys.RGB].shape[1]
        for view in range(3):  # each cube's centre, projected by the view's calibration
            world_to_camera = np.linalg.inv(obs[keys.EXTRINSICS][view])
            for j in range(1, len(info[keys.ENTITIES]) + 1):
                centre = np.append(obs[keys.OBJECTS][j - 1][keys.OBJECT_POSITION], 1.0)
                u, v, w = obs[keys.INTRINSICS][view] @ (world_to_camera @ centre)[:3]
                x, y = int(u / w), int(v / w)
                assert 0 <= x < size and 0 <= y < size, "the narrowed views see every cube"
                near = obs[keys.SEGMENTATION][view][max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
                hits += int(j in near)
                seen += 1
    assert hits >= 0.8 * seen, f"{hits} of {seen} projected centres land on their cube"
    assert zoom_pixels > 1.8 * wide_pixels
