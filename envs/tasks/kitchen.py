"""Kitchen task families: SayCan-style fetch-and-place, affordance and failure-detection questions.

Planning: ``put_in_drawer`` (open, pick, place, close), ``bring_from_cabinet`` (open, pick, place
in the hand-over zone), ``clear_counter`` (every loose object into the sink or the bowl) and
``put_away`` (two objects to their homes, the drawer or the cabinet, which end closed). Questions:
``affordance`` ("Is it possible to pick the can here?") and ``success_detection`` ("Was
pick(can) successful?", asked after the robot tried, with failures injected half of the time).

Every oracle is closed-loop: it reads the current KitchenState only, so a slipped grasp or a stuck
drawer is simply tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from envs.kitchen_scene import COUNTER, HANDOVER_ZONE, OBJECT_KINDS, STORES, KitchenState
from envs.plan import SkillCall
from envs.tasks.base import PlanTask, QuestionTask, Referral, Task, TaskFamily, pick_one

CAPACITY = {"drawer": 2, "cabinet": 2}
MAX_ON_COUNTER = 4  # loose objects the counter's free area holds with room for the fingers


def _setting_down(state: KitchenState) -> SkillCall:
    """Put whatever is held on the counter (the hand-over zone), to free the gripper."""
    assert state.held is not None
    return SkillCall("place", (state.held, COUNTER))


def _store_step(state: KitchenState, name: str, store: str) -> SkillCall | None:
    """The next step that gets ``name`` into ``store`` (drawer or cabinet); None once it is."""
    obj = state.objects[name]
    if obj.location == store:
        return None
    if state.held == name:
        return SkillCall("place", (name, store)) if state.is_open(store) else _setting_down(state)
    if state.held is not None:
        return _setting_down(state)
    blocked_in = (
        obj.location if obj.location in STORES and not state.is_open(obj.location) else None
    )
    if blocked_in is not None:
        return SkillCall("open", (blocked_in,))
    if not state.is_open(store):
        return SkillCall("open", (store,))
    return SkillCall("pick", (name,))


@dataclass(frozen=True, kw_only=True)
class PutInDrawerTask(PlanTask[KitchenState]):
    """Put the target in the drawer and close it."""

    target: str
    family: str = "put_in_drawer"

    def is_success(self, state: KitchenState) -> bool:
        return state.objects[self.target].location == "drawer" and state.drawer_closed

    def progress(self, state: KitchenState) -> float:
        return (
            float(state.objects[self.target].location == "drawer") + float(self.is_success(state))
        ) / 2

    def oracle_step(self, state: KitchenState) -> SkillCall:
        step = _store_step(state, self.target, "drawer")
        if step is not None:
            return step
        if state.held is not None:
            return _setting_down(state)
        return SkillCall("done") if state.drawer_closed else SkillCall("close", ("drawer",))


@dataclass(frozen=True, kw_only=True)
class BringTask(PlanTask[KitchenState]):
    """Fetch the target from the cabinet and set it down in the hand-over zone."""

    target: str
    family: str = "bring_from_cabinet"

    def is_success(self, state: KitchenState) -> bool:
        obj = state.objects[self.target]
        return obj.location == COUNTER and HANDOVER_ZONE.contains(*obj.position[:2], margin=0.02)

    def oracle_step(self, state: KitchenState) -> SkillCall:
        if self.is_success(state):
            return SkillCall("done")
        if state.held == self.target:
            return SkillCall("place", (self.target, COUNTER))
        if state.held is not None:
            return _setting_down(state)
        location = state.objects[self.target].location
        if location in STORES and not state.is_open(location):
            return SkillCall("open", (location,))
        return SkillCall("pick", (self.target,))


@dataclass(frozen=True, kw_only=True)
class ClearCounterTask(PlanTask[KitchenState]):
    """Every object that was loose on the counter into the sink or the bowl."""

    targets: tuple[str, ...]
    family: str = "clear_counter"

    def _cleared(self, state: KitchenState) -> list[str]:
        return [t for t in self.targets if state.objects[t].location in ("sink", "bowl")]

    def is_success(self, state: KitchenState) -> bool:
        return len(self._cleared(state)) == len(self.targets)

    def progress(self, state: KitchenState) -> float:
        return len(self._cleared(state)) / len(self.targets)

    def oracle_step(self, state: KitchenState) -> SkillCall:
        if state.held is not None:
            if state.held not in self.targets:
                return _setting_down(state)
            rooms = [b for b in ("sink", "bowl") if state.free_spot(state.held, b) is not None]
            if not rooms:  # the family leaves room for every target; stop rather than loop
                return SkillCall("done")
            return SkillCall("place", (state.held, rooms[0]))
        todo = [t for t in self.targets if t not in self._cleared(state)]
        if not todo:
            return SkillCall("done")
        return SkillCall("pick", (todo[0],))


@dataclass(frozen=True, kw_only=True)
class PutAwayTask(PlanTask[KitchenState]):
    """Two objects into their homes (OBJECT_KINDS[...].home), homes closed afterwards."""

    targets: tuple[str, ...]
    family: str = "put_away"

    def _homes(self) -> list[str]:
        return sorted({OBJECT_KINDS[t].home for t in self.targets})

    def _stored(self, state: KitchenState) -> list[str]:
        return [t for t in self.targets if state.objects[t].location == OBJECT_KINDS[t].home]

    def is_success(self, state: KitchenState) -> bool:
        stored = len(self._stored(state)) == len(self.targets)
        return stored and all(state.is_closed(home) for home in self._homes())

    def progress(self, state: KitchenState) -> float:
        """Half for the objects stored, half for the homes closed with them inside."""
        return (len(self._stored(state)) / len(self.targets) + float(self.is_success(state))) / 2

    def oracle_step(self, state: KitchenState) -> SkillCall:
        pending = [t for t in self.targets if t not in self._stored(state)]
        if pending:
            home = OBJECT_KINDS[pending[0]].home
            other = next((h for h in self._homes() if h != home), None)
            needed_elsewhere = any(
                OBJECT_KINDS[t].home == other or state.objects[t].location == other for t in pending
            )
            if other and state.is_open(other) and not needed_elsewhere and state.held is None:
                return SkillCall("close", (other,))  # tidy up before the next container
            step = _store_step(state, pending[0], home)
            assert step is not None
            return step
        if state.held is not None:
            return _setting_down(state)
        for home in self._homes():
            if not state.is_closed(home):
                return SkillCall("close", (home,))
        return SkillCall("done")


@dataclass(frozen=True, kw_only=True)
class AttemptQuestion(QuestionTask):
    """A question about a skill call the robot tries first: "Was pick(can) successful?". The
    answer is read from the state after the attempt (``answer_after``)."""

    attempt: SkillCall
    inject_failure: bool
    """Whether the attempt is made to fail through physics (the family draws it 50/50)."""
    answer: str = ""

    def answer_after(self, state: KitchenState) -> str:
        verb, args = self.attempt.verb, self.attempt.args
        if verb == "pick":
            ok = state.held == args[0]
        elif verb == "open":
            ok = state.is_open(args[0])
        else:
            ok = state.is_closed(args[0])
        return "yes" if ok else "no"


AFFORDANCE_QUESTION = "Is it possible to pick the {x} here?"
SUCCESS_QUESTION = "Was {attempt} successful?"


class KitchenFamily(TaskFamily[KitchenState]):
    """A kitchen family also says where the scene's objects start (``layout``)."""

    wants: ClassVar[dict[str, int]] = {}
    """Least number of objects per starting location (counter, drawer, cabinet, out_of_reach)."""
    max_on_counter: ClassVar[int] = MAX_ON_COUNTER

    def layout(self, rng: np.random.Generator, names: list[str]) -> dict[str, str]:
        """Each object's starting location: the family's wants first, the rest drawn at random
        (60% counter, 20% drawer, 20% cabinet) within each location's capacity."""
        order = [names[i] for i in rng.permutation(len(names))]
        free = {"counter": self.max_on_counter, **CAPACITY, "out_of_reach": 2}
        locations: dict[str, str] = {}
        for where, count in self.wants.items():
            for _ in range(count):
                locations[order[len(locations)]] = where
                free[where] -= 1
        for name in order[len(locations) :]:
            options = [w for w in ("counter", "drawer", "cabinet") if free[w] > 0]
            weights = np.array([{"counter": 0.6}.get(w, 0.2) for w in options])
            where = options[int(rng.choice(len(options), p=weights / weights.sum()))]
            locations[name] = where
            free[where] -= 1
        return locations


def _each_object(phrasings: tuple[str, ...], state: KitchenState) -> list[str]:
    """Every phrasing (with one object, ``{x}``) about every object of the scene."""
    return [text.format(x=name) for name in state.objects for text in phrasings]


def _loose(state: KitchenState) -> list[str]:
    return [n for n, o in state.objects.items() if o.location == COUNTER and o.reachable]


class PutInDrawerFamily(KitchenFamily):
    name, kind = "put_in_drawer", "plan"
    wants: ClassVar[dict[str, int]] = {"counter": 1}
    phrasings = (
        "Put the {x} in the drawer.",
        "Place the {x} into the drawer and shut it.",
        "Store the {x} in the drawer.",
    )

    def sample(
        self, state: KitchenState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        loose = _loose(state)
        if not loose or len(state.located("drawer")) >= CAPACITY["drawer"]:
            return None
        target = pick_one(rng, loose)
        return PutInDrawerTask(
            instruction=pick_one(rng, list(self.phrasings)).format(x=target), target=target
        )

    def all_instructions(self, state: KitchenState, referral: Referral = "entity") -> list[str]:
        return _each_object(self.phrasings, state)


class BringFamily(KitchenFamily):
    name, kind = "bring_from_cabinet", "plan"
    wants: ClassVar[dict[str, int]] = {"cabinet": 1}
    phrasings = (
        "Bring me the {x} from the cabinet.",
        "Get the {x} out of the cabinet for me.",
        "Fetch the {x} from the cabinet.",
    )

    def sample(
        self, state: KitchenState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        inside = state.located("cabinet")
        if not inside:
            return None
        target = pick_one(rng, inside)
        return BringTask(
            instruction=pick_one(rng, list(self.phrasings)).format(x=target), target=target
        )

    def all_instructions(self, state: KitchenState, referral: Referral = "entity") -> list[str]:
        return _each_object(self.phrasings, state)


class ClearCounterFamily(KitchenFamily):
    name, kind = "clear_counter", "plan"
    wants: ClassVar[dict[str, int]] = {"counter": 2}
    max_on_counter = 3  # what the sink (2-3 objects) and the bowl (1) hold
    phrasings = (
        "Clear the counter.",
        "Put everything on the counter into the sink or the bowl.",
        "Tidy the counter: loose things go in the sink or the bowl.",
    )

    def sample(
        self, state: KitchenState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        loose = _loose(state)
        if len(loose) < 2:
            return None
        return ClearCounterTask(
            instruction=pick_one(rng, list(self.phrasings)), targets=tuple(loose)
        )

    def all_instructions(self, state: KitchenState, referral: Referral = "entity") -> list[str]:
        return list(self.phrasings)


class PutAwayFamily(KitchenFamily):
    name, kind = "put_away", "plan"
    wants: ClassVar[dict[str, int]] = {"counter": 2}
    phrasings = (
        "Put away the {x} and the {y}.",
        "Put the {x} and the {y} where they belong.",
        "Tidy away the {x} and the {y}.",
    )

    def sample(
        self, state: KitchenState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        loose = _loose(state)
        order = [loose[i] for i in rng.permutation(len(loose))]
        for i, first in enumerate(order):
            for second in order[i + 1 :]:
                homes = [OBJECT_KINDS[first].home, OBJECT_KINDS[second].home]
                if all(len(state.located(h)) + homes.count(h) <= CAPACITY[h] for h in set(homes)):
                    text = pick_one(rng, list(self.phrasings)).format(x=first, y=second)
                    return PutAwayTask(instruction=text, targets=(first, second))
        return None

    def all_instructions(self, state: KitchenState, referral: Referral = "entity") -> list[str]:
        return [
            text.format(x=first, y=second)
            for first in state.objects
            for second in state.objects
            if first != second
            for text in self.phrasings
        ]


class AffordanceFamily(KitchenFamily):
    """ "Is it possible to pick the X here?": no when it is in a closed drawer or cabinet or out
    of reach; yes otherwise. Answers are balanced."""

    name, kind = "affordance", "question"
    wants: ClassVar[dict[str, int]] = {"out_of_reach": 1}

    def layout(self, rng: np.random.Generator, names: list[str]) -> dict[str, str]:
        locations = super().layout(rng, names)
        if rng.random() < 0.5:  # half of the scenes keep everything within reach
            for name, where in locations.items():
                if where == "out_of_reach":
                    locations[name] = "counter"
        return locations

    def sample(
        self, state: KitchenState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        pickable = [n for n in state.objects if state.pick_blocker(n) is None]
        blocked = [n for n in state.objects if state.pick_blocker(n) is not None]
        want_yes = rng.random() < 0.5
        pool = pickable if want_yes else blocked
        if not pool:
            return None
        target = pick_one(rng, pool)
        return QuestionTask(
            family=self.name,
            instruction=AFFORDANCE_QUESTION.format(x=target),
            answer="yes" if want_yes else "no",
        )

    def all_instructions(self, state: KitchenState, referral: Referral = "entity") -> list[str]:
        return [AFFORDANCE_QUESTION.format(x=name) for name in state.objects]


class SuccessDetectionFamily(KitchenFamily):
    """ "Was pick(X) successful?" (or open/close of a fixture), asked after the robot tried; half
    of the attempts are made to fail through physics."""

    name, kind = "success_detection", "question"

    def sample(
        self, state: KitchenState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        attempts = [SkillCall("pick", (n,)) for n in _loose(state)]
        attempts += [SkillCall("open", (f,)) for f in STORES if state.is_closed(f)]
        attempts += [SkillCall("close", (f,)) for f in STORES if state.is_open(f)]
        if not attempts:
            return None
        attempt = attempts[int(rng.integers(len(attempts)))]
        return AttemptQuestion(
            family=self.name,
            instruction=SUCCESS_QUESTION.format(attempt=attempt),
            attempt=attempt,
            inject_failure=bool(rng.random() < 0.5),
        )

    def all_instructions(self, state: KitchenState, referral: Referral = "entity") -> list[str]:
        attempts = [SkillCall("pick", (name,)) for name in state.objects]
        attempts += [SkillCall(verb, (store,)) for store in STORES for verb in ("open", "close")]
        return [SUCCESS_QUESTION.format(attempt=attempt) for attempt in attempts]


KITCHEN_FAMILIES: dict[str, KitchenFamily] = {
    family.name: family
    for family in (
        PutInDrawerFamily(),
        BringFamily(),
        ClearCounterFamily(),
        PutAwayFamily(),
        AffordanceFamily(),
        SuccessDetectionFamily(),
    )
}
"""Every kitchen task family by name."""
