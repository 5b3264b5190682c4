"""PaLM-E's TAMP task families: planning tasks p1 (grasp), p2 (stack) and questions q1-q4.

A family samples a task for a scene. A planning task has an instruction, a success predicate on the
symbolic state and a closed-loop oracle: given the current state it returns the next skill call,
so it recovers from failed skills and disturbed scenes. A question has the question text and its
answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from envs.plan import TABLE, SkillCall
from envs.regions import WORKSPACE_Y
from envs.scene import SymbolicState
from envs.tasks.base import (
    PlanTask,
    QuestionTask,
    Referral,
    Task,
    TaskFamily,
    clear_stack_step,
    pick_one,
    refer,
)


@dataclass(frozen=True, kw_only=True)
class GraspTask(PlanTask[SymbolicState]):
    """p1: grasp the target, unstacking whatever stands on it first."""

    target: str
    family: str = "p1"

    def is_success(self, state: SymbolicState) -> bool:
        return state.held == self.target

    def oracle_step(self, state: SymbolicState) -> SkillCall:
        if state.held == self.target:
            return SkillCall("done")
        if state.held is not None:
            return SkillCall("place", (state.held, TABLE))
        return clear_stack_step(state, self.target) or SkillCall("pick", (self.target,))


@dataclass(frozen=True, kw_only=True)
class StackTask(PlanTask[SymbolicState]):
    """p2: put the target on top of the base, clearing both first."""

    target: str
    base: str
    family: str = "p2"

    def is_success(self, state: SymbolicState) -> bool:
        return state.objects[self.target].support == self.base and state.held != self.target

    def oracle_step(self, state: SymbolicState) -> SkillCall:
        if self.is_success(state):
            return SkillCall("done")
        if state.held == self.target and state.is_clear(self.base):
            return SkillCall("place", (self.target, self.base))
        if state.held is not None:
            return SkillCall("place", (state.held, TABLE))
        return (
            clear_stack_step(state, self.target)
            or clear_stack_step(state, self.base)
            or SkillCall("pick", (self.target,))
        )


class GraspFamily(TaskFamily[SymbolicState]):
    name, kind = "p1", "plan"
    refers_to_objects = True

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        names = list(state.objects)
        blocked = [n for n in names if not state.is_clear(n)]
        # Half of the tasks need unstacking whenever the scene has a blocked cube.
        pool = blocked if blocked and rng.random() < 0.5 else names
        target = pick_one(rng, pool)
        return GraspTask(
            instruction=f"How to grasp {refer(state, target, referral)}?", target=target
        )

    def all_instructions(self, state: SymbolicState, referral: Referral = "entity") -> list[str]:
        return [f"How to grasp {refer(state, n, referral)}?" for n in state.objects]


class StackFamily(TaskFamily[SymbolicState]):
    name, kind = "p2", "plan"
    refers_to_objects = True
    min_objects = 2

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        names = list(state.objects)
        pairs = [(a, b) for a in names for b in names if a != b and state.objects[a].support != b]
        if not pairs:
            return None
        target, base = pairs[int(rng.integers(len(pairs)))]
        x, y = refer(state, target, referral), refer(state, base, referral)
        return StackTask(
            instruction=f"How to stack {x} on top of {y}?",
            target=target,
            base=base,
        )

    def all_instructions(self, state: SymbolicState, referral: Referral = "entity") -> list[str]:
        named = {n: refer(state, n, referral) for n in state.objects}
        return [
            f"How to stack {x} on top of {y}?"
            for x in named.values()
            for y in named.values()
            if x != y
        ]


class ColourQuestion(TaskFamily[SymbolicState]):
    """q1: What colour is obj_j? (always by entity name: asked by colour it would answer itself)"""

    name, kind = "q1", "question"

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        target = pick_one(rng, list(state.objects))
        colour = state.objects[target].colour
        return QuestionTask(family="q1", instruction=f"What colour is {target}?", answer=colour)

    def all_instructions(self, state: SymbolicState, referral: Referral = "entity") -> list[str]:
        return [f"What colour is {n}?" for n in state.objects]  # by name, whatever the referral


SIDE_MARGIN = 0.015  # metres: cubes this close to a side boundary are not asked about


class SideQuestion(TaskFamily[SymbolicState]):
    """q2: Is the X object left, right or centre of the table? (from the robot's point of view)"""

    name, kind = "q2", "question"
    refers_to_objects = True

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        third = (WORKSPACE_Y[1] - WORKSPACE_Y[0]) / 3
        right_edge, left_edge = WORKSPACE_Y[0] + third, WORKSPACE_Y[1] - third
        candidates = [
            o
            for o in state.objects.values()
            if min(abs(o.position[1] - right_edge), abs(o.position[1] - left_edge)) > SIDE_MARGIN
        ]
        if not candidates:
            return None
        obj = candidates[int(rng.integers(len(candidates)))]
        y = obj.position[1]
        side = "left" if y > left_edge else "right" if y < right_edge else "centre"
        question = f"Is {refer(state, obj.name, referral)} left, right or centre of the table?"
        return QuestionTask(family="q2", instruction=question, answer=side)

    def all_instructions(self, state: SymbolicState, referral: Referral = "entity") -> list[str]:
        return [
            f"Is {refer(state, n, referral)} left, right or centre of the table?"
            for n in state.objects
        ]


class BelowQuestion(TaskFamily[SymbolicState]):
    """q3: Is the X object below the Y object?"""

    name, kind = "q3", "question"
    refers_to_objects = True
    min_objects = 2

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        names = list(state.objects)
        true_pairs = [(a, b) for b in names for a in state.below(b)]
        false_pairs = [(a, b) for a in names for b in names if a != b and (a, b) not in true_pairs]
        pool = true_pairs if true_pairs and rng.random() < 0.5 else false_pairs
        lower, upper = pool[int(rng.integers(len(pool)))]
        question = f"Is {refer(state, lower, referral)} below {refer(state, upper, referral)}?"
        return QuestionTask(
            family="q3",
            instruction=question,
            answer="yes" if (lower, upper) in true_pairs else "no",
        )

    def all_instructions(self, state: SymbolicState, referral: Referral = "entity") -> list[str]:
        named = [refer(state, n, referral) for n in state.objects]
        return [f"Is {x} below {y}?" for x in named for y in named if x != y]


class FeasibilityQuestion(TaskFamily[SymbolicState]):
    """q4: Is it possible to first grasp A, then place it on B, and then grasp C?"""

    name, kind = "q4", "question"
    refers_to_objects = True
    min_objects = 2

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        names = list(state.objects)
        if len(names) < 2:
            return None
        want_yes = rng.random() < 0.5
        for _ in range(50):  # rejection sampling towards a balanced answer
            a, b = rng.choice(len(names), size=2, replace=False)
            c = int(rng.integers(len(names)))
            first, second, third = names[a], names[b], names[c]
            feasible = is_feasible(state, first, second, third)
            if feasible == want_yes:
                break
        grasp, base, then = (refer(state, n, referral) for n in (first, second, third))
        question = FEASIBILITY_QUESTION.format(grasp=grasp, base=base, then=then)
        return QuestionTask(family="q4", instruction=question, answer="yes" if feasible else "no")

    def all_instructions(self, state: SymbolicState, referral: Referral = "entity") -> list[str]:
        named = [refer(state, n, referral) for n in state.objects]
        return [
            FEASIBILITY_QUESTION.format(grasp=a, base=b, then=c)
            for a in named
            for b in named
            if a != b
            for c in named
        ]


FEASIBILITY_QUESTION = (
    "Is it possible to first grasp {grasp}, then place it on {base}, and then grasp {then}?"
)
_FEASIBILITY_ENTITIES = re.compile(  # the question with its three cubes named obj_j
    re.escape(FEASIBILITY_QUESTION.format(grasp="@", base="@", then="@")).replace("@", r"(obj_\d+)")
)


class Check(NamedTuple):
    """One fact PaLM-E's q4 rule checks: "obj_1 is on top" (clear), "obj_4 is below obj_2",
    "then obj_4 is below obj_1" (after the place the question names)."""

    fact: str
    passed: bool


def is_feasible(state: SymbolicState, first: str, second: str, third: str) -> bool:
    """Symbolic check: a grasp needs a clear cube and an empty hand; a place needs a clear base;
    the last grasp needs its cube clear once the first cube stands on the base."""
    return all(check.passed for check in feasibility_checks(state, first, second, third))


def feasibility_checks(state: SymbolicState, first: str, second: str, third: str) -> list[Check]:
    """What "grasp ``first``, place it on ``second``, grasp ``third``" needs, in order: the
    hand empty (checked aloud only when it is not: "obj_4 is grasped"), ``first`` and
    ``second`` clear now, and ``third`` clear once ``first`` stands on ``second`` (said as
    what will be: "then obj_4 is below obj_1"). In words the planner's tokenizer holds whole,
    so that the longest checks fit a reply (``embodied.decoding.MAX_REPLY_TOKENS``)."""
    checks = [] if state.held is None else [Check(f"{state.held} is grasped", False)]
    checks += [_clearance(cube, _on_top(state, cube)) for cube in (first, second)]
    # After first is on second, second is covered; third must be clear then, and the only cube
    # that may have stood on it is first, which has moved away.
    cover = first if third == second else _on_top(state, third, moved=first)
    return [*checks, _clearance(third, cover, then=True)]


def _on_top(state: SymbolicState, cube: str, moved: str | None = None) -> str | None:
    """The cube resting on ``cube`` (``moved`` aside), if any."""
    on_top = [o.name for o in state.objects.values() if o.support == cube and o.name != moved]
    return on_top[0] if on_top else None


def _clearance(cube: str, cover: str | None, then: bool = False) -> Check:
    when = "then " if then else ""
    if cover is None:
        return Check(f"{when}{cube} is on top", True)
    return Check(f"{when}{cube} is below {cover}", False)


def question_checks(state: SymbolicState, question: str) -> list[Check] | None:
    """``feasibility_checks`` of a q4 question that names its cubes by entity ("Is it possible
    to first grasp obj_1, then place it on obj_4, and then grasp obj_5?"); None when
    ``question`` is not such a question."""
    match = _FEASIBILITY_ENTITIES.fullmatch(question)
    if match is None or not all(name in state.objects for name in match.groups()):
        return None
    return feasibility_checks(state, *match.groups())


SUPPORT_QUESTION = "What is on top of each object?"
"""The question a scene description answers (``describe_support``); not one of PaLM-E's
families: training asks it of any frame when ``TrainConfig.scene_descriptions`` is on."""


def describe_support(state: SymbolicState) -> str:
    """Which cube rests on which, as the q4 checks say it, one sentence per cube in label order
    after the one in the hand: "obj_5 is grasped. obj_1 is below obj_4. obj_2 is on top.
    obj_4 is on top"."""
    facts = [] if state.held is None else [f"{state.held} is grasped"]
    standing = sorted((n for n in state.objects if n != state.held), key=_label_order)
    facts += [_clearance(cube, _on_top(state, cube)).fact for cube in standing]
    return ". ".join(facts)


def _label_order(name: str) -> tuple[int, str]:
    """obj_2 before obj_10; names without a number after the numbered ones."""
    number = name.rpartition("_")[2]
    return (int(number), name) if number.isdigit() else (1 << 30, name)


TAMP_FAMILIES: dict[str, TaskFamily[SymbolicState]] = {
    family.name: family
    for family in (
        GraspFamily(),
        StackFamily(),
        ColourQuestion(),
        SideQuestion(),
        BelowQuestion(),
        FeasibilityQuestion(),
    )
}
"""PaLM-E's TAMP families by name."""
