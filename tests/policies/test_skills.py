"""Scripted skills: cubes move through physics, outcomes are truthful, timeouts are clean."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs import keys
from envs.plan import SkillCall
from envs.regions import REGIONS
from policies.base import run_skill
from policies.factory import make_skill
from policies.scripted import Pick


def call(env, verb, *args, on_step=None):
    sim = env.unwrapped
    obs, info = sim.current_observation(), sim.current_info()
    return run_skill(env, make_skill(sim, SkillCall(verb, args)), obs, info, on_step)


def clear_cubes(env):
    state = env.unwrapped.symbolic_state()
    return [name for name in state.objects if state.is_clear(name)]


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 6])
def test_pick_then_stack_succeeds(make_env, seed):
    env = make_env(observe_images=False)
    env.reset(seed=seed)
    top, base = clear_cubes(env)[:2]
    picked = call(env, "pick", top)
    assert picked.outcome.success, picked.outcome.reason
    assert env.unwrapped.symbolic_state().held == top
    stacked = call(env, "place", top, base)
    assert stacked.outcome.success, stacked.outcome.reason
    state = env.unwrapped.symbolic_state()
    assert state.objects[top].support == base and state.held is None
    assert 0 < picked.outcome.steps < 150 and 0 < stacked.outcome.steps < 150


@pytest.mark.parametrize("region", ["top_left", "bottom_right", "centre", "left", "table"])
def test_place_in_a_region(make_env, region):
    env = make_env(observe_images=False, num_objects=3)
    env.reset(seed=21)
    cube = clear_cubes(env)[0]
    assert call(env, "pick", cube).outcome.success
    placed = call(env, "place", cube, region)
    assert placed.outcome.success, placed.outcome.reason
    x, y, _ = env.unwrapped.object_pose(cube)[0]
    state = env.unwrapped.symbolic_state()
    assert state.objects[cube].support == "table"
    if region != "table":
        assert REGIONS[region].contains(x, y)


def test_cubes_move_only_through_contact_never_teleport(make_env):
    env = make_env(observe_images=False)
    env.reset(seed=4)
    sim = env.unwrapped
    top, base = clear_cubes(env)[:2]
    positions = [sim.object_pose(top)[0]]
    touching = [False]

    def record(_obs, _info):
        positions.append(sim.object_pose(top)[0])
        touching.append(any(sim.robot.touching(sim.bodies[top])))

    assert call(env, "pick", top, on_step=record).outcome.success
    assert call(env, "place", top, base, on_step=record).outcome.success
    # The only constraint in the world is the finger gear: no suction or attachment.
    assert sim.client.getNumConstraints() == 1
    moves = np.linalg.norm(np.diff(np.array(positions), axis=0), axis=1)
    assert moves.max() < 0.03, "a cube jumped further than the arm moves in one step"
    for i in np.flatnonzero(moves > 0.002):
        # A cube moves while the fingers touch it, or just after they let go (it settles).
        assert touching[i] or touching[i + 1] or any(touching[max(0, i - 5) : i + 1])
    assert sum(moves) > 0.1, "the cube travelled"


def test_preconditions_fail_fast_with_a_reason(make_env):
    env = make_env(observe_images=False)
    env.reset(seed=0)
    state = env.unwrapped.symbolic_state()
    blocked = next((n for n in state.objects if not state.is_clear(n)), None)
    free = clear_cubes(env)
    if blocked is not None:
        run = call(env, "pick", blocked)
        assert not run.outcome.success and "blocked" in run.outcome.reason
        assert run.outcome.steps == 0
    run = call(env, "place", free[0], "table")
    assert not run.outcome.success and "not holding" in run.outcome.reason
    run = call(env, "pick", "obj_9")
    assert not run.outcome.success and "no object" in run.outcome.reason
    assert call(env, "pick", free[0]).outcome.success
    run = call(env, "pick", free[1])
    assert not run.outcome.success and "already holds" in run.outcome.reason


def test_place_on_a_covered_cube_fails(make_env):
    env = make_env(observe_images=False, stack_probability=1.0)
    env.reset(seed=1)
    state = env.unwrapped.symbolic_state()
    covered = next(n for n in state.objects if not state.is_clear(n))
    mover = next(n for n in clear_cubes(env) if n not in state.above(covered))
    assert call(env, "pick", mover).outcome.success
    run = call(env, "place", mover, covered)
    assert not run.outcome.success and "covered" in run.outcome.reason


def test_skill_times_out_cleanly(make_env):
    env = make_env(observe_images=False)
    obs, info = env.reset(seed=0)
    sim = env.unwrapped
    skill = Pick(sim, SkillCall("pick", (clear_cubes(env)[0],)), max_steps=5)
    run = run_skill(env, skill, obs, info)
    assert not run.outcome.success and "timeout" in run.outcome.reason
    assert run.outcome.steps == 5 and not run.episode_over
    assert skill.act(obs) is None, "a finished skill stays finished"


def test_episode_time_limit_ends_the_skill(make_env):
    env = gym.make("embodied/Tabletop-v0", observe_images=False, max_episode_steps=10)
    try:
        obs, info = env.reset(seed=0)
        sim = env.unwrapped
        name = clear_cubes(env)[0]
        run = run_skill(env, make_skill(sim, SkillCall("pick", (name,))), obs, info)
        assert run.episode_over and not run.outcome.success
        assert "time limit" in run.outcome.reason and run.outcome.steps == 10
    finally:
        env.close()


def test_make_skill_refuses_verbs_without_a_skill(make_env):
    env = make_env(observe_images=False)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="skills: \\['pick', 'place'\\]"):
        make_skill(env.unwrapped, SkillCall("open", ("drawer",)))


def test_skill_steps_are_reflected_in_observations(make_env):
    env = make_env(observe_images=False)
    env.reset(seed=2)
    name = clear_cubes(env)[0]
    run = call(env, "pick", name)
    row = int(name.split("_")[1]) - 1
    z = run.observation[keys.OBJECTS][row][keys.OBJECT_POSITION][2]
    assert z > 0.06, "the observation shows the cube lifted"
    assert run.observation[keys.PROPRIO][keys.PROPRIO_GRIPPER_WIDTH][0] < 0.06
