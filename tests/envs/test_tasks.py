"""Task families on hand-made symbolic states: answers, success predicates, oracle steps."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from envs.plan import SkillCall
from envs.scene import ObjectState, SymbolicState
from envs.tasks import (
    TASK_FAMILIES,
    GraspTask,
    QuestionTask,
    StackTask,
    is_feasible,
    normalize_answer,
)
from envs.tasks.base import REFERRALS, Referral, final_answer
from envs.tasks.tamp import (
    FEASIBILITY_QUESTION,
    describe_support,
    feasibility_checks,
    question_checks,
)


def make_state(layout: dict[str, tuple[str, str, float]], held: str | None = None) -> SymbolicState:
    """layout: name -> (colour, support, y position)."""
    objects = {
        name: ObjectState(name, colour, 0.04, (0.5, y, 0.02), 0.0, support)
        for name, (colour, support, y) in layout.items()
    }
    return SymbolicState(objects, held)


# obj_3 (blue) on obj_2 (green) on obj_1 (red); obj_4 (yellow) alone on the left.
TOWER = {
    "obj_1": ("red", "table", 0.0),
    "obj_2": ("green", "obj_1", 0.0),
    "obj_3": ("blue", "obj_2", 0.0),
    "obj_4": ("yellow", "table", 0.2),
}


def test_stack_queries():
    state = make_state(TOWER)
    assert state.above("obj_1") == ["obj_2", "obj_3"]
    assert state.below("obj_3") == ["obj_2", "obj_1"]
    assert state.is_clear("obj_3") and not state.is_clear("obj_1")
    assert state.by_colour("yellow") == ["obj_4"]


def run_oracle(task, state_sequence):
    return [task.oracle_step(state) for state in state_sequence]


def test_grasp_oracle_unstacks_blockers_top_down():
    task = GraspTask(instruction="How to grasp the red object?", target="obj_1")
    assert task.oracle_step(make_state(TOWER)) == SkillCall("pick", ("obj_3",))
    holding_blue = make_state({**TOWER, "obj_3": ("blue", "held", 0.0)}, held="obj_3")
    assert task.oracle_step(holding_blue) == SkillCall("place", ("obj_3", "table"))
    cleared = make_state(
        {**TOWER, "obj_2": ("green", "table", 0.1), "obj_3": ("blue", "table", -0.1)}
    )
    assert task.oracle_step(cleared) == SkillCall("pick", ("obj_1",))
    holding_red = make_state({**TOWER, "obj_1": ("red", "held", 0.0)}, held="obj_1")
    assert task.is_success(holding_red) and not task.is_success(cleared)
    assert task.oracle_step(holding_red) == SkillCall("done")


def test_stack_oracle_clears_target_then_base():
    task = StackTask(instruction="stack red on yellow", target="obj_1", base="obj_4")
    assert task.oracle_step(make_state(TOWER)) == SkillCall("pick", ("obj_3",))
    holding_red = make_state(
        {
            **TOWER,
            "obj_1": ("red", "held", 0.0),
            "obj_2": ("green", "table", 0.1),
            "obj_3": ("blue", "table", -0.1),
        },
        held="obj_1",
    )
    assert task.oracle_step(holding_red) == SkillCall("place", ("obj_1", "obj_4"))
    done = make_state({**TOWER, "obj_1": ("red", "obj_4", 0.2), "obj_2": ("green", "table", 0.1)})
    assert task.is_success(done)
    assert task.oracle_step(done) == SkillCall("done")
    # The base covered: clear it before picking the target.
    covered_base = StackTask(instruction="stack yellow on red", target="obj_4", base="obj_1")
    assert covered_base.oracle_step(make_state(TOWER)) == SkillCall("pick", ("obj_3",))


def sample(family: str, state: SymbolicState, seed: int = 0, referral: Referral = "entity"):
    return TASK_FAMILIES[family].sample(state, np.random.default_rng(seed), referral)


def test_colour_question():
    task = sample("q1", make_state(TOWER))
    assert isinstance(task, QuestionTask)
    name = task.instruction.split()[-1].rstrip("?")
    assert task.answer == TOWER[name][0]


@pytest.mark.parametrize(("y", "side"), [(0.2, "left"), (-0.2, "right"), (0.0, "centre")])
def test_side_question(y, side):
    task = sample("q2", make_state({"obj_1": ("red", "table", y)}))
    assert task is not None and task.answer == side
    assert task.is_correct(side.upper() + ".")


def test_side_question_skips_cubes_on_a_boundary():
    assert sample("q2", make_state({"obj_1": ("red", "table", 0.09)})) is None


def test_below_question_is_true_only_within_a_stack():
    state = make_state(TOWER)
    answers = {}
    for seed in range(60):
        task = sample("q3", state, seed, referral="colour")
        answers[task.instruction] = task.answer
    assert answers["Is the red object below the blue object?"] == "yes"
    assert answers.get("Is the blue object below the red object?", "no") == "no"
    assert answers.get("Is the yellow object below the red object?", "no") == "no"
    assert set(answers.values()) == {"yes", "no"}


def test_feasibility_question_follows_the_symbolic_rules():
    state = make_state(TOWER)
    seen = set()
    for seed in range(80):
        task = sample("q4", state, seed, referral="colour")
        words = task.instruction
        seen.add(task.answer)
        # Grasping the covered red or green cube first is never possible.
        if words.startswith("Is it possible to first grasp the red") or words.startswith(
            "Is it possible to first grasp the green"
        ):
            assert task.answer == "no"
    assert seen == {"yes", "no"}
    # The PaLM-E example: grasp blue, place it on yellow, then grasp yellow -> no.
    assert not is_feasible(state, "obj_3", "obj_4", "obj_4")
    assert is_feasible(state, "obj_3", "obj_4", "obj_3")
    assert is_feasible(state, "obj_3", "obj_4", "obj_2"), "green is clear once blue has moved"
    assert not is_feasible(state, "obj_3", "obj_4", "obj_1")


@pytest.mark.parametrize("family", ["p1", "p2", "q2", "q3", "q4"])
def test_referral_changes_only_how_objects_are_named(family):
    state = make_state(TOWER)
    by_entity, by_colour = (sample(family, state, 3, referral) for referral in REFERRALS)
    # The same task (target, answer), phrased two ways.
    assert by_entity.instruction != by_colour.instruction
    assert replace(by_entity, instruction="") == replace(by_colour, instruction="")
    for name, (colour, _, _) in TOWER.items():
        named = re.search(rf"\b{name}\b", by_entity.instruction) is not None
        assert named == (f"the {colour} object" in by_colour.instruction), (by_entity, by_colour)
    assert "object" not in by_entity.instruction.replace("objects", "")
    assert "obj_" not in by_colour.instruction


def test_answers_are_normalized():
    assert normalize_answer("  Yes. ") == "yes"
    assert QuestionTask(family="q1", instruction="?", answer="red").is_correct("Red!")
    assert not QuestionTask(family="q1", instruction="?", answer="red").is_correct("reddish")


def test_an_answer_after_its_reason_is_the_last_sentence():
    assert final_answer("obj_1 is below obj_2. no") == "no"
    assert final_answer("yes") == "yes"
    question = QuestionTask(family="q4", instruction="?", answer="no")
    assert question.is_correct("obj_1 is below obj_2. no")
    assert not question.is_correct("obj_1 is below obj_2. yes")
    assert not question.is_correct("obj_1 is below obj_2 no"), "no sentence break, no answer"


def test_feasibility_checks_say_what_the_rule_checks():
    state = make_state(TOWER)  # red <- green <- blue; yellow on the table

    def facts(*cubes: str) -> list[str]:
        return [check.fact for check in feasibility_checks(state, *cubes)]

    assert facts("obj_3", "obj_4", "obj_3") == [
        "obj_3 is on top",
        "obj_4 is on top",
        "then obj_3 is on top",
    ]
    assert facts("obj_1", "obj_4", "obj_3") == [
        "obj_1 is below obj_2",
        "obj_4 is on top",
        "then obj_3 is on top",
    ]
    assert facts("obj_3", "obj_4", "obj_4")[-1] == "then obj_4 is below obj_3", (
        "the base is covered by the cube just placed on it"
    )
    assert facts("obj_3", "obj_4", "obj_1")[-1] == "then obj_1 is below obj_2"
    assert facts("obj_3", "obj_4", "obj_2")[-1] == "then obj_2 is on top", "blue has moved away"
    held = make_state(TOWER, held="obj_4")
    assert feasibility_checks(held, "obj_3", "obj_4", "obj_3")[0] == ("obj_4 is grasped", False)

    def feasible(state: SymbolicState, first: str, second: str, third: str) -> bool:
        """PaLM-E's rule, written out apart from the code under test."""
        on = {o.name: o.support for o in state.objects.values()}
        clear = {name: name not in on.values() for name in on}
        return (
            state.held is None
            and clear[first]
            and clear[second]
            and third != second
            and all(top == first for top, below in on.items() if below == third)
        )

    for scene in (state, held, make_state({**TOWER, "obj_4": ("yellow", "obj_3", 0.0)})):
        on = {o.name: o.support for o in scene.objects.values()}
        for first in TOWER:
            for second in TOWER:
                for third in TOWER:
                    if first == second:
                        continue
                    checks = feasibility_checks(scene, first, second, third)
                    rule = feasible(scene, first, second, third)
                    assert (
                        all(c.passed for c in checks)
                        == rule
                        == is_feasible(scene, first, second, third)
                    )
                    # each fact true of the scene now, the last once first is on second
                    now = {**on, first: second}
                    for (fact, passed), scene_then in zip(checks[-3:], (on, on, now), strict=True):
                        said = fact.removeprefix("then ")
                        assert (said != fact) == (scene_then is now), fact
                        cube, _, cover = said.partition(" is below ")
                        if passed:
                            assert said.endswith(" is on top")
                            assert cube not in scene_then.values(), fact
                        else:
                            assert scene_then[cover] == cube, fact


def test_a_scene_description_says_what_rests_on_every_cube():
    assert describe_support(make_state(TOWER)) == (
        "obj_1 is below obj_2. obj_2 is below obj_3. obj_3 is on top. obj_4 is on top"
    )
    held = make_state({**TOWER, "obj_3": ("blue", "held", 0.0)}, held="obj_3")
    assert describe_support(held) == (
        "obj_3 is grasped. obj_1 is below obj_2. obj_2 is on top. obj_4 is on top"
    ), "the cube in the hand first, and not among the standing ones"
    many = make_state({f"obj_{i}": ("red", "table", 0.1 * i) for i in (10, 2, 1)})
    assert describe_support(many) == "obj_1 is on top. obj_2 is on top. obj_10 is on top"
    checks = [c.fact for c in feasibility_checks(make_state(TOWER), "obj_1", "obj_4", "obj_3")]
    described = describe_support(make_state(TOWER)).split(". ")
    assert checks[:2] == [described[0], described[3]], "the same words as the q4 checks"


def test_question_checks_read_the_question_by_entity_only():
    state = make_state(TOWER)
    asked = FEASIBILITY_QUESTION.format(grasp="obj_1", base="obj_4", then="obj_3")
    assert question_checks(state, asked) == feasibility_checks(state, "obj_1", "obj_4", "obj_3")
    by_colour = FEASIBILITY_QUESTION.format(
        grasp="the red object", base="the yellow object", then="the blue object"
    )
    assert question_checks(state, by_colour) is None
    absent = FEASIBILITY_QUESTION.format(grasp="obj_1", base="obj_7", then="obj_3")
    assert question_checks(state, absent) is None, "obj_7 is not in the scene"
    for seed in range(10):
        sampled = sample("q4", state, seed, referral="entity")
        checks = question_checks(state, sampled.instruction)
        assert checks is not None, sampled.instruction
        assert all(c.passed for c in checks) == (sampled.answer == "yes")


@pytest.mark.parametrize("family", ["p1", "p2", "q1", "q2", "q3", "q4"])
def test_a_family_lists_every_instruction_it_samples(family):
    state = make_state(TOWER)
    for referral in REFERRALS:
        listed = TASK_FAMILIES[family].all_instructions(state, referral)
        assert listed is not None and len(set(listed)) == len(listed)
        sampled = {sample(family, state, seed, referral).instruction for seed in range(200)}
        assert sampled <= set(listed), sampled - set(listed)
        assert len(sampled) > 1
    stacked = TASK_FAMILIES[family].all_instructions(make_state(TOWER), "entity")
    apart = {name: (colour, "table", y) for name, (colour, _, y) in TOWER.items()}
    assert TASK_FAMILIES[family].all_instructions(make_state(apart), "entity") == stacked, (
        "the same objects, however arranged, give the same sentences"
    )


def test_long_horizon_families_do_not_list_their_instructions():
    assert TASK_FAMILIES["sort"].all_instructions(make_state(TOWER)) is None
