"""What every task is: planning tasks (success predicate, closed-loop oracle, progress) and
questions (text and answer), and the families that sample them for a scene."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

import numpy as np

from envs.plan import SkillCall
from envs.scene import PALETTE, SymbolicState

TaskKind = Literal["plan", "question"]
Referral = Literal["entity", "colour"]
"""How instructions name single objects: by entity name ("How to grasp obj_3?"), as PaLM-E's
training data does, or by colour ("How to grasp the green object?"), its out-of-distribution
test."""
REFERRALS: tuple[Referral, ...] = ("entity", "colour")
StateT = TypeVar("StateT")
"""The symbolic state a world's tasks read (tabletop: SymbolicState, kitchen: KitchenState)."""


class Task(ABC):
    """A sampled task: its family, whether it is planned or answered, and its text."""

    family: str
    kind: ClassVar[TaskKind]
    instruction: str


@dataclass(frozen=True, kw_only=True)
class PlanTask(Task, Generic[StateT]):
    """A task the robot carries out. The oracle is closed-loop: it looks only at the current
    state, so it recovers from failed skills and disturbed scenes."""

    instruction: str
    kind: ClassVar[TaskKind] = "plan"

    @abstractmethod
    def is_success(self, state: StateT) -> bool: ...

    @abstractmethod
    def oracle_step(self, state: StateT) -> SkillCall:
        """The next step of a correct plan from ``state``; ``done()`` once the task holds."""

    def progress(self, state: StateT) -> float:
        """Partial progress in [0, 1] (the fraction of blocks in their goal place, ...)."""
        return float(self.is_success(state))


@dataclass(frozen=True, kw_only=True)
class QuestionTask(Task):
    """A question about the scene and its answer."""

    family: str
    instruction: str
    answer: str
    kind: ClassVar[TaskKind] = "question"

    def is_correct(self, text: str) -> bool:
        return normalize_answer(final_answer(text)) == normalize_answer(self.answer)


def normalize_answer(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def final_answer(text: str) -> str:
    """The answer of a reply that may state its reason first ("obj_1 is below obj_2. no",
    ``TrainConfig.question_rationales``): its last sentence."""
    return text.rsplit(". ", 1)[-1]


class TaskFamily(ABC, Generic[StateT]):
    """Samples tasks of one kind. Families also shape the scene: how many cubes it may hold and
    which colours they get (distinct by default, so that "the red object" names one cube)."""

    name: str
    kind: TaskKind
    min_objects: int = 1
    max_objects: int = 8
    refers_to_objects: bool = False
    """Whether its instructions name single objects, so that ``referral`` changes them."""

    def choose_colours(self, rng: np.random.Generator, count: int) -> list[str]:
        """Colour names for ``count`` cubes; distinct unless a family needs repeats."""
        palette = list(PALETTE)
        return [palette[i] for i in rng.choice(len(palette), size=count, replace=False)]

    @abstractmethod
    def sample(
        self, state: StateT, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        """A task for this scene, or None if the scene does not admit one. ``referral`` says how
        the instruction names single objects; families whose instructions name none (or name
        kitchen objects, whose entity names are words) ignore it."""

    def all_instructions(self, state: StateT, referral: Referral = "entity") -> list[str] | None:
        """Every instruction this family can pose about the scene's objects (whatever their
        arrangement), naming them by ``referral``: the sentences a recognizer listening for
        this family's instructions may hear. None: too many to list (the default)."""
        return None


def clear_stack_step(state: SymbolicState, name: str) -> SkillCall | None:
    """pick() the top of whatever stands on ``name``; None when it is clear."""
    above = state.above(name)
    return SkillCall("pick", (above[-1],)) if above else None


def refer(state: SymbolicState, name: str, referral: Referral) -> str:
    """How an instruction names one object: ``obj_3`` or ``the green object``."""
    return name if referral == "entity" else f"the {state.objects[name].colour} object"


def pick_one(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def join_words(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
