"""Long-horizon tabletop tasks in the style of Language-Table and Interactive Language.

Each family has several phrasings, a success predicate on the final symbolic state, a partial-
progress measure (the fraction of blocks in their goal place, as Ravens' rewards do) and a
closed-loop oracle that plans from the current state only, so that it recovers when a skill fails
or a block is knocked over:

- ``sort``:   sort the blocks by colour into named corners (2-4 colours, each on 2+ blocks);
- ``tower``:  build a tower of 3-4 blocks in a given colour order;
- ``line``:   put all blocks in a horizontal or vertical line at a named place (4-7 blocks);
- ``pair``:   move the block closest to a named corner onto the other block of its colour;
- ``gather``: bring the blocks of one side together without disturbing the other side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.plan import TABLE, SkillCall
from envs.regions import CELLS, GRID_COLUMNS, GRID_ROWS, REGIONS, WORKSPACE_X, WORKSPACE_Y
from envs.scene import (
    CELL_TOLERANCE,
    CUBE_SIZE_RANGE,
    PALETTE,
    SymbolicState,
    cell_occupant,
    free_spot,
)
from envs.tasks.base import (
    PlanTask,
    Referral,
    Task,
    TaskFamily,
    clear_stack_step,
    join_words,
    pick_one,
)
from envs.tasks.tamp import StackTask

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
CROWDING_MARGIN = 0.05  # a block this close to a corner takes room that corner's blocks need
UNDISTURBED_TOLERANCE = 0.015  # metres a block "not to be moved" may shift


def _words(region: str) -> str:
    return region.replace("_", " ")


def _in_region(state: SymbolicState, name: str, region: str) -> bool:
    """Whether the block rests in the region: it, or the bottom block of its stack, is inside."""
    obj = state.objects[name]
    if obj.support in ("held", "none"):
        return False
    base = state.objects[(state.below(name) or [name])[-1]]
    return any(REGIONS[region].contains(*o.position[:2]) for o in (obj, base))


def _one_colour_stack(state: SymbolicState, name: str, colour: str) -> bool:
    """Whether ``name`` and every block under it have this colour."""
    return all(state.objects[n].colour == colour for n in [name, *state.below(name)])


def _place_in_region(
    state: SymbolicState, name: str, region: str, stack_on: list[str]
) -> SkillCall:
    """place() the held block in the region; when the region is full, on the lowest clear block
    of ``stack_on`` already there; failing both, in the centre of the table (or anywhere on it),
    out of the way, until the blocks crowding the region have moved."""
    if free_spot(state, name, REGIONS[region]) is not None:
        return SkillCall("place", (name, region))
    bases = [
        b for b in stack_on if b != name and state.is_clear(b) and _in_region(state, b, region)
    ]
    if bases:
        lowest = min(bases, key=lambda b: len(state.below(b)))
        return SkillCall("place", (name, lowest))
    if free_spot(state, name, REGIONS["centre"]) is not None:
        return SkillCall("place", (name, "centre"))
    return SkillCall("place", (name, TABLE))


def _next_pick(state: SymbolicState, todo: list[str]) -> SkillCall:
    """pick() the first clear block still to move, or the top of what covers the first one."""
    clear = [name for name in todo if state.is_clear(name)]
    if clear:
        return SkillCall("pick", (clear[0],))
    step = clear_stack_step(state, todo[0])
    assert step is not None, "a covered block has a clear top above it"
    return step


def _any_colours(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` palette colours drawn independently (repeats likely): the task ignores colour."""
    palette = list(PALETTE)
    return [palette[int(i)] for i in rng.integers(len(palette), size=count)]


def _repeated_colours(rng: np.random.Generator, count: int, groups: int) -> list[str]:
    """``count`` colours drawn from ``groups`` palette colours, each used at least twice."""
    palette = list(PALETTE)
    chosen = [palette[i] for i in rng.choice(len(palette), size=groups, replace=False)]
    colours = [c for c in chosen for _ in range(2)]
    colours += [chosen[int(i)] for i in rng.integers(groups, size=count - len(colours))]
    return [colours[i] for i in rng.permutation(count)]


# --- sort -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SortTask(PlanTask[SymbolicState]):
    corner_of: tuple[tuple[str, str], ...]  # (colour, corner region) pairs
    family: str = "sort"

    def _goal(self, state: SymbolicState, name: str) -> str:
        return dict(self.corner_of)[state.objects[name].colour]

    def _sorted(self, state: SymbolicState) -> list[str]:
        return [n for n in state.objects if _in_region(state, n, self._goal(state, n))]

    def progress(self, state: SymbolicState) -> float:
        return len(self._sorted(state)) / len(state.objects)

    def is_success(self, state: SymbolicState) -> bool:
        return state.held is None and len(self._sorted(state)) == len(state.objects)

    def oracle_step(self, state: SymbolicState) -> SkillCall:
        if state.held is not None:
            colour = state.objects[state.held].colour
            # Stack only on stacks of this colour alone: never back on a block still to move.
            pure = [b for b in state.by_colour(colour) if _one_colour_stack(state, b, colour)]
            return _place_in_region(state, state.held, self._goal(state, state.held), pure)
        done = set(self._sorted(state))
        todo = [n for n in state.objects if n not in done]
        if not todo:
            return SkillCall("done")

        # Blocks whose corner has room now go first, and among them those in or crowding a
        # corner, to make room there; a block whose corner is full waits for the crowd to move.
        def priority(name: str) -> tuple[bool, bool]:
            position = state.objects[name].position[:2]
            crowding = any(
                REGIONS[c].contains(*position, margin=CROWDING_MARGIN) for _, c in self.corner_of
            )
            return (not self._has_room(state, name), not crowding)

        return _next_pick(state, sorted(todo, key=priority))

    def _has_room(self, state: SymbolicState, name: str) -> bool:
        """Whether the block's corner has a free spot for it or a clear block of its colour."""
        corner = self._goal(state, name)
        if free_spot(state, name, REGIONS[corner]) is not None:
            return True
        colour = state.objects[name].colour
        return any(
            b != name
            and state.is_clear(b)
            and _in_region(state, b, corner)
            and _one_colour_stack(state, b, colour)
            for b in state.by_colour(colour)
        )


class SortFamily(TaskFamily[SymbolicState]):
    name, kind = "sort", "plan"
    min_objects = 4

    def choose_colours(self, rng: np.random.Generator, count: int) -> list[str]:
        groups = int(rng.integers(2, min(4, count // 2) + 1))
        return _repeated_colours(rng, count, groups)

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        colours = sorted({o.colour for o in state.objects.values()})
        if len(colours) > len(CORNERS):
            return None
        corners = [CORNERS[i] for i in rng.permutation(len(CORNERS))[: len(colours)]]
        pairs = tuple(zip(colours, corners, strict=True))
        templates = [
            "Sort the blocks by colour into the corners: {}.",
            "Put {}.",
            "Move each block to the corner of its colour: {}.",
        ]
        choice = int(rng.integers(len(templates)))
        parts = [
            [f"{c} in the {_words(k)}" for c, k in pairs],
            [f"the {c} blocks in the {_words(k)} corner" for c, k in pairs],
            [f"{c} to the {_words(k)}" for c, k in pairs],
        ][choice]
        return SortTask(instruction=templates[choice].format(join_words(parts)), corner_of=pairs)


# --- tower ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TowerTask(PlanTask[SymbolicState]):
    order: tuple[str, ...]  # block names, bottom to top
    family: str = "tower"

    def _built(self, state: SymbolicState) -> int:
        """How many blocks of the order already stand correctly, from the bottom."""
        if state.objects[self.order[0]].support != "table":
            return 0
        built = 1
        while (
            built < len(self.order)
            and state.objects[self.order[built]].support == self.order[built - 1]
        ):
            built += 1
        return built

    def progress(self, state: SymbolicState) -> float:
        return self._built(state) / len(self.order)

    def is_success(self, state: SymbolicState) -> bool:
        top = self.order[-1]
        return state.held is None and self._built(state) == len(self.order) and state.is_clear(top)

    def oracle_step(self, state: SymbolicState) -> SkillCall:
        built = self._built(state)
        if state.held is not None:
            held = state.held
            if built < len(self.order) and held == self.order[built]:
                if built == 0:
                    return SkillCall("place", (held, TABLE))
                if state.is_clear(self.order[built - 1]):
                    return SkillCall("place", (held, self.order[built - 1]))
            return SkillCall("place", (held, TABLE))
        if built == len(self.order):
            return clear_stack_step(state, self.order[-1]) or SkillCall("done")
        if built > 0 and (step := clear_stack_step(state, self.order[built - 1])):
            return step  # something that does not belong sits on the tower
        return clear_stack_step(state, self.order[built]) or SkillCall("pick", (self.order[built],))


class TowerFamily(TaskFamily[SymbolicState]):
    name, kind = "tower", "plan"
    min_objects = 4

    def choose_colours(self, rng: np.random.Generator, count: int) -> list[str]:
        """3-4 blocks of colours seen once (the tower), the rest of other, possibly shared ones."""
        palette = [list(PALETTE)[i] for i in rng.permutation(len(PALETTE))]
        height = int(rng.integers(3, min(4, count) + 1))
        tower, others = palette[:height], palette[height:]
        rest = [others[int(i)] for i in rng.integers(len(others), size=count - height)]
        return [(tower + rest)[i] for i in rng.permutation(count)]

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        colours = [o.colour for o in state.objects.values()]
        unique = [n for n, o in state.objects.items() if colours.count(o.colour) == 1]
        if len(unique) < 3:
            return None
        height = min(len(unique), int(rng.integers(3, 5)))
        order = tuple(unique[i] for i in rng.permutation(len(unique))[:height])
        names = [state.objects[n].colour for n in order]
        templates = [
            "Build a tower with the {} block at the bottom, then {}, with the {} block on top.",
            "Stack the {} blocks into a tower in this order from the bottom: {}.",
            "Make a tower: {} from bottom to top.",
        ]
        choice = int(rng.integers(len(templates)))
        if choice == 0:
            middle = join_words([f"the {c} block" for c in names[1:-1]])
            text = templates[0].format(names[0], middle, names[-1])
        elif choice == 1:
            text = templates[1].format(join_words(names), ", ".join(names))
        else:
            text = templates[2].format(", then ".join(names))
        return TowerTask(instruction=text, order=order)


# --- line -------------------------------------------------------------------------------------
LINE_ROWS = {"bottom": 0, "centre": GRID_ROWS // 2, "top": GRID_ROWS - 1}
LINE_COLUMNS = {"right": 0, "centre": GRID_COLUMNS // 2, "left": GRID_COLUMNS - 1}


def line_cells(orientation: str, place: str, count: int) -> tuple[str, ...]:
    """The ``count`` cells of a centred line: horizontal along a row, vertical along a column."""
    if orientation == "horizontal":
        start = (GRID_COLUMNS - count) // 2
        return tuple(f"pos_{LINE_ROWS[place]}_{c}" for c in range(start, start + count))
    start = (GRID_ROWS - count) // 2
    return tuple(f"pos_{r}_{LINE_COLUMNS[place]}" for r in range(start, start + count))


@dataclass(frozen=True, kw_only=True)
class LineTask(PlanTask[SymbolicState]):
    cells: tuple[str, ...]
    family: str = "line"

    def _filled(self, state: SymbolicState) -> dict[str, str]:
        """cell -> the block resting on the table at its centre."""
        filled = {}
        for cell in self.cells:
            cx, cy = CELLS[cell]
            for obj in state.objects.values():
                near = np.hypot(obj.position[0] - cx, obj.position[1] - cy) <= CELL_TOLERANCE
                if obj.support == "table" and near:
                    filled[cell] = obj.name
        return filled

    def progress(self, state: SymbolicState) -> float:
        return len(self._filled(state)) / len(self.cells)

    def is_success(self, state: SymbolicState) -> bool:
        return state.held is None and len(self._filled(state)) == len(self.cells)

    def oracle_step(self, state: SymbolicState) -> SkillCall:
        filled = self._filled(state)
        empty = [c for c in self.cells if c not in filled]
        if state.held is not None:
            size = state.objects[state.held].size
            for cell in empty:
                if cell_occupant(state, CELLS[cell], size, ignore=state.held) is None:
                    return SkillCall("place", (state.held, cell))
            return SkillCall("place", (state.held, TABLE))
        if not empty:
            return SkillCall("done")
        todo = [n for n in state.objects if n not in filled.values()]
        # First clear away blocks that sit where an empty cell of the line must go.
        largest = CUBE_SIZE_RANGE[1]
        in_the_way = [
            occupant
            for cell in empty
            if (occupant := cell_occupant(state, CELLS[cell], largest)) in todo
        ]
        return _next_pick(state, in_the_way + [n for n in todo if n not in in_the_way])


class LineFamily(TaskFamily[SymbolicState]):
    name, kind = "line", "plan"
    min_objects, max_objects = 4, GRID_COLUMNS

    def choose_colours(self, rng: np.random.Generator, count: int) -> list[str]:
        return _any_colours(rng, count)

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        count = len(state.objects)
        orientations = ["horizontal"] + (["vertical"] if count <= GRID_ROWS else [])
        orientation = pick_one(rng, orientations)
        if orientation == "horizontal":
            place = pick_one(rng, list(LINE_ROWS))
            where = {"top": "at the top of the table", "bottom": "at the bottom of the table"}
            text = where.get(place, "across the centre of the table")
        else:
            place = pick_one(rng, list(LINE_COLUMNS))
            where = {"left": "on the left side", "right": "on the right side"}
            text = where.get(place, "down the centre of the table")
        templates = [
            f"Put all the blocks in a {orientation} line {text}.",
            f"Line up all the blocks {orientation}ly {text}.",
            f"Arrange the blocks in a {orientation} line {text}.",
        ]
        return LineTask(
            instruction=pick_one(rng, templates), cells=line_cells(orientation, place, count)
        )


# --- pair -------------------------------------------------------------------------------------
CORNER_POINTS = {
    "top_left": (WORKSPACE_X[1], WORKSPACE_Y[1]),
    "top_right": (WORKSPACE_X[1], WORKSPACE_Y[0]),
    "bottom_left": (WORKSPACE_X[0], WORKSPACE_Y[1]),
    "bottom_right": (WORKSPACE_X[0], WORKSPACE_Y[0]),
}
CLOSEST_MARGIN = 0.02  # the closest block must be this much closer than the runner-up


class PairFamily(TaskFamily[SymbolicState]):
    name, kind = "pair", "plan"
    min_objects = 4

    def choose_colours(self, rng: np.random.Generator, count: int) -> list[str]:
        """Colours in pairs (one block alone when the count is odd)."""
        palette = [list(PALETTE)[i] for i in rng.permutation(len(PALETTE))]
        colours = [palette[i // 2] for i in range(count - count % 2)]
        colours += palette[count // 2 : count // 2 + count % 2]
        return [colours[i] for i in rng.permutation(count)]

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        for corner in (CORNERS[i] for i in rng.permutation(len(CORNERS))):
            point = np.array(CORNER_POINTS[corner])
            names = sorted(
                state.objects,
                key=lambda n: float(
                    np.linalg.norm(np.array(state.objects[n].position[:2]) - point)
                ),
            )
            distance = [
                float(np.linalg.norm(np.array(state.objects[n].position[:2]) - point))
                for n in names[:2]
            ]
            mover = names[0]
            twins = [n for n in state.by_colour(state.objects[mover].colour) if n != mover]
            if distance[1] - distance[0] < CLOSEST_MARGIN or len(twins) != 1:
                continue
            if state.objects[mover].support == twins[0]:
                continue
            where = _words(corner)
            templates = [
                f"Move the block closest to the {where} corner onto the other block of the "
                "same colour.",
                f"Take the block nearest the {where} corner and stack it on the other block of "
                "its colour.",
                f"Put the block that is closest to the {where} corner on top of its twin of the "
                "same colour.",
            ]
            return StackTask(
                instruction=pick_one(rng, templates), target=mover, base=twins[0], family="pair"
            )
        return None


# --- gather -----------------------------------------------------------------------------------
MIDLINE_MARGIN = 0.02  # blocks this close to the line between the sides make a scene ambiguous
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}


def _side_of(position: tuple[float, float, float], side: str) -> bool:
    x_mid, y_mid = sum(WORKSPACE_X) / 2, sum(WORKSPACE_Y) / 2
    return {
        "left": position[1] > y_mid,
        "right": position[1] < y_mid,
        "top": position[0] > x_mid,
        "bottom": position[0] < x_mid,
    }[side]


@dataclass(frozen=True, kw_only=True)
class GatherTask(PlanTask[SymbolicState]):
    side: str
    group: tuple[str, ...]  # the blocks to gather in REGIONS[side]
    keep: tuple[tuple[str, float, float], ...]  # blocks not to disturb, with where they started
    family: str = "gather"

    def _gathered(self, state: SymbolicState) -> list[str]:
        return [n for n in self.group if _in_region(state, n, self.side)]

    def _undisturbed(self, state: SymbolicState) -> bool:
        return all(
            np.hypot(state.objects[n].position[0] - x, state.objects[n].position[1] - y)
            <= UNDISTURBED_TOLERANCE
            for n, x, y in self.keep
        )

    def progress(self, state: SymbolicState) -> float:
        return len(self._gathered(state)) / len(self.group)

    def is_success(self, state: SymbolicState) -> bool:
        gathered = len(self._gathered(state)) == len(self.group)
        return state.held is None and gathered and self._undisturbed(state)

    def oracle_step(self, state: SymbolicState) -> SkillCall:
        if state.held is not None:
            return _place_in_region(state, state.held, self.side, list(self.group))
        gathered = set(self._gathered(state))
        todo = [n for n in self.group if n not in gathered]
        return _next_pick(state, todo) if todo else SkillCall("done")


class GatherFamily(TaskFamily[SymbolicState]):
    name, kind = "gather", "plan"
    min_objects = 4

    def choose_colours(self, rng: np.random.Generator, count: int) -> list[str]:
        return _any_colours(rng, count)

    def sample(
        self, state: SymbolicState, rng: np.random.Generator, referral: Referral = "entity"
    ) -> Task | None:
        x_mid, y_mid = sum(WORKSPACE_X) / 2, sum(WORKSPACE_Y) / 2
        for side in (list(OPPOSITE)[i] for i in rng.permutation(len(OPPOSITE))):
            along = 1 if side in ("left", "right") else 0
            middle = y_mid if along else x_mid
            if any(
                abs(o.position[along] - middle) < MIDLINE_MARGIN for o in state.objects.values()
            ):
                continue
            group = tuple(n for n, o in state.objects.items() if _side_of(o.position, side))
            keep = tuple(
                (n, o.position[0], o.position[1])
                for n, o in state.objects.items()
                if n not in group
            )
            outside = [n for n in group if not _in_region(state, n, side)]
            if len(group) < 2 or len(outside) < 2 or not keep:
                continue
            other = OPPOSITE[side]
            templates = [
                f"Gather all the blocks on the {side} side together without disturbing the "
                f"{other} side.",
                f"Bring the blocks on the {side} together, and leave the blocks on the {other} "
                "where they are.",
                f"Group the {side} blocks in one place; do not move any block on the {other}.",
            ]
            return GatherTask(
                instruction=pick_one(rng, templates), side=side, group=group, keep=keep
            )
        return None


LONG_HORIZON_FAMILIES: dict[str, TaskFamily[SymbolicState]] = {
    family.name: family
    for family in (SortFamily(), TowerFamily(), LineFamily(), PairFamily(), GatherFamily())
}
"""The long-horizon families by name."""
