"""Kitchen skills: the drawer and the door move only because the gripper moves their handles;
injected failures happen through physics, are reported, and are undone afterwards."""

from __future__ import annotations

import pytest

from envs.plan import SkillCall
from policies.base import run_skill
from policies.factory import make_skill


def call(env, verb, *args, inject=None):
    sim = env.unwrapped
    skill = make_skill(sim, SkillCall(verb, args))
    return run_skill(env, skill, sim.current_observation(), sim.current_info(), None, inject)


def closed_scene(make_kitchen, seed=0):
    """A kitchen with the drawer and the cabinet shut (most scenes start so)."""
    env = make_kitchen(observe_images=False)
    for candidate in range(seed, seed + 20):
        env.reset(seed=candidate, options={"task": "put_in_drawer"})
        state = env.unwrapped.symbolic_state()
        if state.drawer_closed and state.cabinet_closed:
            return env
    raise AssertionError("no scene with both shut")


def forbid_teleports(monkeypatch, sim):
    """Fail the test if anything sets a joint or a body pose directly."""

    def refuse(*args, **kwargs):
        raise AssertionError("a skill set the simulator's state directly")

    monkeypatch.setattr(sim.client, "resetJointState", refuse)
    monkeypatch.setattr(sim.client, "resetBasePositionAndOrientation", refuse)


@pytest.mark.parametrize("fixture", ["drawer", "cabinet"])
def test_open_and_close_move_the_joint_through_the_handle(make_kitchen, monkeypatch, fixture):
    env = closed_scene(make_kitchen)
    sim = env.unwrapped
    forbid_teleports(monkeypatch, sim)
    opened = call(env, "open", fixture)
    assert opened.outcome.success, opened.outcome.reason
    assert sim.symbolic_state().is_open(fixture)
    again = call(env, "open", fixture)
    assert not again.outcome.success and "already open" in again.outcome.reason
    closed = call(env, "close", fixture)
    assert closed.outcome.success, closed.outcome.reason
    assert sim.symbolic_state().is_closed(fixture)


def test_pick_from_a_closed_drawer_fails_fast(make_kitchen):
    env = make_kitchen(observe_images=False)
    for seed in range(30):
        env.reset(seed=seed)
        state = env.unwrapped.symbolic_state()
        inside = [n for n in state.located("drawer") if state.drawer_closed]
        if inside:
            run = call(env, "pick", inside[0])
            assert not run.outcome.success and run.outcome.steps == 0
            assert run.outcome.reason == f"{inside[0]} is in the closed drawer"
            return
    raise AssertionError("no scene with an object in the closed drawer")


def test_fetch_from_the_cabinet_into_the_sink_and_the_bowl(make_kitchen, monkeypatch):
    env = make_kitchen(observe_images=False)
    env.reset(seed=1, options={"task": "bring_from_cabinet"})
    sim = env.unwrapped
    forbid_teleports(monkeypatch, sim)
    target = sim.task.target
    if not sim.symbolic_state().cabinet_open:
        assert call(env, "open", "cabinet").outcome.success
    for basin in ("sink", "bowl"):
        picked = call(env, "pick", target)
        assert picked.outcome.success, picked.outcome.reason
        placed = call(env, "place", target, basin)
        assert placed.outcome.success, placed.outcome.reason
        assert sim.symbolic_state().objects[target].location == basin


def test_injected_slip_drops_the_object_and_is_undone(make_kitchen):
    env = make_kitchen(observe_images=False)
    env.reset(seed=2, options={"task": "clear_counter"})
    sim = env.unwrapped
    target = sim.task.targets[0]
    slipped = call(env, "pick", target, inject=True)
    assert not slipped.outcome.success and slipped.outcome.injected == "slip"
    assert sim.symbolic_state().held is None
    retried = call(env, "pick", target, inject=False)
    assert retried.outcome.success and retried.outcome.injected == ""


def test_injected_stuck_drawer_does_not_open_then_opens(make_kitchen):
    env = closed_scene(make_kitchen, seed=3)
    sim = env.unwrapped
    stuck = call(env, "open", "drawer", inject=True)
    assert not stuck.outcome.success and stuck.outcome.injected == "stuck"
    assert "did not open" in stuck.outcome.reason and sim.symbolic_state().drawer_closed
    assert call(env, "open", "drawer", inject=False).outcome.success


def test_the_failure_rate_draws_injections(make_kitchen):
    env = make_kitchen(observe_images=False, failure_rate=1.0)
    env.reset(seed=4, options={"task": "clear_counter"})
    run = call(env, "pick", env.unwrapped.task.targets[0])
    assert run.outcome.injected == "slip" and not run.outcome.success
