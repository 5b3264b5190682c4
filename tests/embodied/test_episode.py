"""Closed-loop episodes: every oracle succeeds on fixed seeds; bad planner output is handled."""

from __future__ import annotations

import pytest

from embodied.episode import EVAL_SEED_START, run_episode
from embodied.planners import OraclePlanner, Planner, make_planner
from envs import keys

ORACLE_SEEDS = range(EVAL_SEED_START, EVAL_SEED_START + 8)


@pytest.mark.parametrize("family", ["p1", "p2"])
def test_oracle_plans_succeed_on_fixed_seeds(make_env, family):
    env = make_env(observe_images=False, tasks=[family])
    results = [run_episode(env, OraclePlanner(), seed) for seed in ORACLE_SEEDS]
    failed = [
        (r.seed, r.plan, [s.reason for s in r.steps if s.reason]) for r in results if not r.success
    ]
    assert failed == []
    for result in results:
        assert result.steps[-1].text == "done()"
        assert all(step.success for step in result.steps[:-1])
        assert result.parse_failures == 0


@pytest.mark.parametrize("family", ["q1", "q2", "q3", "q4"])
def test_oracle_answers_are_correct_on_fixed_seeds(make_env, family):
    env = make_env(observe_images=False, tasks=[family])
    for seed in ORACLE_SEEDS:
        result = run_episode(env, OraclePlanner(), seed)
        assert result.success and result.answer == result.expected_answer
        assert result.kind == "question" and result.control_steps == 0


def test_p1_needs_unstacking_sometimes(make_env):
    env = make_env(observe_images=False, tasks=["p1"], stack_probability=1.0)
    lengths = [len(run_episode(env, OraclePlanner(), seed).steps) for seed in ORACLE_SEEDS]
    assert max(lengths) >= 4, "some p1 episodes unstack a blocker first (pick, place, pick, done)"


class ScriptedTextPlanner(Planner):
    """Replays fixed text, as a language model might write it."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)

    def next_step(self, env, observation, history, outcomes=None, reasons=None):
        return self.texts.pop(0) if self.texts else "done()"

    def answer(self, env, observation):
        return "no idea"


def test_malformed_steps_are_counted_and_the_episode_goes_on(make_env):
    env = make_env(observe_images=False, tasks=["p1"])
    env.reset(seed=EVAL_SEED_START)
    planner = ScriptedTextPlanner(["grab the cube", "pick(obj_42)", "done()"])
    result = run_episode(env, planner, EVAL_SEED_START)
    assert result.parse_failures == 2
    assert "not of the form" in result.steps[0].parse_error
    assert "no object 'obj_42'" in result.steps[1].parse_error
    assert result.steps[-1].text == "done()" and not result.success


def test_too_many_parse_failures_stop_the_episode(make_env):
    env = make_env(observe_images=False, tasks=["p2"])
    result = run_episode(
        env, ScriptedTextPlanner(["??"] * 10), EVAL_SEED_START, max_parse_failures=3
    )
    assert result.parse_failures == 4 and not result.success


def test_step_budget_ends_the_episode(make_env):
    env = make_env(observe_images=False, tasks=["p2"])
    env.reset(seed=EVAL_SEED_START)
    name = env.unwrapped.entities[0]
    planner = ScriptedTextPlanner([f"pick({name})", f"place({name}, table)"] * 5)
    result = run_episode(env, planner, EVAL_SEED_START, max_plan_steps=3)
    assert len(result.steps) == 3


def test_wrong_answer_is_a_failure(make_env):
    env = make_env(observe_images=False, tasks=["q1"])
    result = run_episode(env, ScriptedTextPlanner([]), EVAL_SEED_START)
    assert not result.success and result.answer == "no idea"


def test_success_is_the_final_state_predicate(make_env):
    env = make_env(observe_images=False, tasks=["p1"])
    result = run_episode(env, OraclePlanner(), EVAL_SEED_START)
    assert result.success == env.unwrapped.current_info()[keys.IS_SUCCESS]


def test_make_planner_names_the_allowed_planners():
    with pytest.raises(ValueError, match=r"allowed \('oracle', 'palme'\)"):
        make_planner("gpt")
