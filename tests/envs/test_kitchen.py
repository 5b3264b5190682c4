"""The kitchen env: Gymnasium API, determinism, the furniture's joints, scenes and config checks."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pybullet
import pytest
from gymnasium.utils.env_checker import check_env

from envs import keys
from envs.base import OBJECT_CAPACITY
from envs.kitchen import KitchenConfig
from envs.kitchen_scene import OBJECT_KINDS, Fixtures
from envs.tasks import KITCHEN_FAMILIES

EXPECTED_WARNING = "we recommend using a symmetric and normalized space"


def test_check_env_passes_without_unexpected_warnings(make_kitchen):
    env = make_kitchen(render_mode="rgb_array", point_cloud=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert [str(w.message) for w in caught if EXPECTED_WARNING not in str(w.message)] == []


def test_observation_follows_the_tabletop_contract(make_kitchen):
    env = make_kitchen(views=["front", "overhead"], image_size=48)
    obs, info = env.reset(seed=5)
    assert env.observation_space.contains(obs)
    assert obs[keys.RGB].shape == (2, 48, 48, 3)
    assert obs[keys.OBJECTS].shape == (OBJECT_CAPACITY, keys.OBJECT_FEATURES)
    names = env.unwrapped.entities
    assert env.unwrapped.observed_names == (*names, "drawer", "cabinet")
    assert 4 <= len(names) <= 6 and int(obs[keys.OBJECT_MASK].sum()) == len(names) + 2
    assert set(names) <= set(OBJECT_KINDS) and set(info[keys.ENTITIES]) == set(names)
    for row, name in enumerate(names):  # row j-1 is the j-th entity; colour and size match it
        features, kind = obs[keys.OBJECTS][row], OBJECT_KINDS[name]
        np.testing.assert_allclose(features[keys.OBJECT_COLOUR], kind.rgb)
        assert features[keys.OBJECT_SIZE][0] == pytest.approx(kind.size)
    labels = set(np.unique(obs[keys.SEGMENTATION]).tolist())
    assert labels <= {keys.SEG_ROBOT, keys.SEG_BACKGROUND, *range(1, len(names) + 3)}
    assert len(labels - {keys.SEG_ROBOT, keys.SEG_BACKGROUND}) >= 2, "objects are seen"
    assert {len(names) + 1, len(names) + 2} <= labels, "the drawer and the cabinet are seen"


def test_fixture_rows_show_how_far_the_drawer_and_door_are_open(make_kitchen):
    env = make_kitchen(observe_images=False)
    env.reset(seed=0)
    sim = env.unwrapped
    n = len(sim.entities)
    sim.client.resetJointState(sim.fixtures.drawer, Fixtures.DRAWER_JOINT, 0.0)
    sim.client.resetJointState(sim.fixtures.cabinet, Fixtures.DOOR_JOINT, 0.0)
    closed = sim.current_observation()[keys.OBJECTS][n : n + 2]  # (2, F) drawer, cabinet
    sim.client.resetJointState(sim.fixtures.drawer, Fixtures.DRAWER_JOINT, 0.1)
    sim.client.resetJointState(sim.fixtures.cabinet, Fixtures.DOOR_JOINT, 1.2)
    opened = sim.current_observation()[keys.OBJECTS][n : n + 2]
    drawer_moved = closed[0, keys.OBJECT_POSITION] - opened[0, keys.OBJECT_POSITION]
    np.testing.assert_allclose(drawer_moved, [0.1, 0.0, 0.0], atol=1e-5)  # toward the robot
    assert opened[1, 2] - closed[1, 2] > 0.15, "the door's rod rises as the door opens"
    door_turn = 2 * np.arccos(abs(np.dot(closed[1, keys.OBJECT_QUATERNION], opened[1, 3:7])))
    assert door_turn == pytest.approx(1.2, abs=1e-4)


def test_objects_are_distinct_in_shape_and_colour():
    shapes = {(kind.shape, kind.dims) for kind in OBJECT_KINDS.values()}
    colours = {kind.rgba for kind in OBJECT_KINDS.values()}
    assert len(shapes) == len(colours) == len(OBJECT_KINDS) == 6


def test_furniture_has_a_prismatic_drawer_and_a_revolute_door(make_kitchen):
    env = make_kitchen(observe_images=False)
    env.reset(seed=0)
    sim = env.unwrapped
    drawer = sim.client.getJointInfo(sim.fixtures.drawer, Fixtures.DRAWER_JOINT)
    door = sim.client.getJointInfo(sim.fixtures.cabinet, Fixtures.DOOR_JOINT)
    assert drawer[2] == pybullet.JOINT_PRISMATIC and door[2] == pybullet.JOINT_REVOLUTE
    # Left alone, both hold still (joint friction), whatever their state.
    before = sim.symbolic_state()
    for _ in range(40):
        env.step(np.append(sim.robot.state()[:7], 0.08).astype(np.float32))
    after = sim.symbolic_state()
    assert abs(after.drawer_opening - before.drawer_opening) < 1e-3
    assert abs(after.door_angle - before.door_angle) < 1e-2


def test_same_seed_gives_the_same_episode(make_kitchen):
    first, second = make_kitchen(image_size=32), make_kitchen(image_size=32)
    second.reset(seed=99)  # a different history must not matter
    actions = (
        np.random.default_rng(0)
        .uniform(first.action_space.low, first.action_space.high, size=(5, 8))
        .astype(np.float32)
    )
    traces = []
    for env in (first, second):
        obs, info = env.reset(seed=7)
        trace = [obs[keys.RGB].copy(), obs[keys.OBJECTS].copy(), info[keys.INSTRUCTION]]
        for action in actions:
            obs, *_ = env.step(action)
            trace += [obs[keys.PROPRIO].copy(), obs[keys.OBJECTS].copy()]
        traces.append(trace)
    for a, b in zip(*traces, strict=True):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


def test_scenes_put_objects_inside_the_closed_drawer_and_cabinet(make_kitchen):
    env = make_kitchen(observe_images=False)
    seen = set()
    for seed in range(12):
        env.reset(seed=seed)
        state = env.unwrapped.symbolic_state()
        for name, obj in state.objects.items():
            assert obj.location != "none", f"seed {seed}: {name} starts nowhere"
            if obj.location in ("drawer", "cabinet") and state.is_closed(obj.location):
                seen.add(obj.location)
                assert state.pick_blocker(name) == f"{name} is in the closed {obj.location}"
    assert seen == {"drawer", "cabinet"}


def test_every_family_samples_a_task(make_kitchen):
    env = make_kitchen(observe_images=False)
    for family in KITCHEN_FAMILIES:
        _, info = env.reset(seed=3, options={"task": family})
        assert info[keys.TASK] == family and info[keys.INSTRUCTION]


def test_every_family_lists_every_instruction_it_samples(make_kitchen):
    env = make_kitchen(observe_images=False)
    asked: dict[str, int] = dict.fromkeys(KITCHEN_FAMILIES, 0)
    for seed in range(4):
        env.reset(seed=seed)
        state = env.unwrapped.symbolic_state()
        for name, family in KITCHEN_FAMILIES.items():
            listed = family.all_instructions(state)
            assert listed is not None and len(set(listed)) == len(listed), name
            rngs = (np.random.default_rng(draw) for draw in range(50))
            sampled = {task.instruction for rng in rngs if (task := family.sample(state, rng))}
            assert sampled <= set(listed), (name, sampled - set(listed))
            asked[name] += len(sampled)
    assert all(asked.values()), asked
    sentences = env.unwrapped.all_instructions()
    assert sentences is not None and env.unwrapped.task.instruction in sentences


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_objects", 3, "allowed 4..6"),
        ("tasks", ["p1"], "allowed ['affordance'"),
        ("failure_rate", 1.5, "must be in [0, 1]"),
        ("views", ["ceiling"], "allowed ['back'"),
    ],
)
def test_bad_config_names_the_allowed_values(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        KitchenConfig(**{field: value})


def test_bad_task_option_names_the_allowed_families(make_kitchen):
    env = make_kitchen(observe_images=False)
    with pytest.raises(ValueError, match="allowed \\['affordance'"):
        env.reset(seed=0, options={"task": "p1"})
