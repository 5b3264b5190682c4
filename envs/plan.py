"""The plan language: one grammar, one parser, one formatter.

A plan is a sequence of skill calls, one per line or separated by ``;``::

    pick(obj_3)
    place(obj_3, obj_1)        # stack obj_3 on obj_1
    place(obj_3, table)        # on a free spot of the table
    place(obj_3, top_left)     # in a named table region (envs.regions)
    place(obj_3, pos_4_2)      # in a table cell: row 4 (far edge), column 2 (envs.regions)
    place(apple, drawer)       # kitchen targets: counter, drawer, cabinet, sink, bowl
    open(drawer) / close(cabinet)
    done()

Grammar (whitespace around tokens is ignored, names are lower case)::

    step   := verb "(" [name ("," name)*] ")"
    name   := [a-z][a-z0-9_]*
    verb   := pick | place | open | close | done     (arity 1, 2, 1, 1, 0)

The parser never raises: any text that is not exactly one well-formed step becomes a ParseFailure
that says why, which the planner counts and handles. Whether a name exists in the current scene is
checked by ``validate_step``, not by the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envs.regions import CELL_NAMES, GRID_COLUMNS, GRID_ROWS, REGION_NAMES

VERB_ARITY: dict[str, int] = {"pick": 1, "place": 2, "open": 1, "close": 1, "done": 0}
TABLE = "table"
PLACE_LOCATIONS: tuple[str, ...] = (TABLE, *REGION_NAMES, *CELL_NAMES)
"""Place targets that are not objects: the table, its regions and its cells."""

_NAME = r"[a-z][a-z0-9_]*"
_STEP = re.compile(rf"^\s*([a-z]+)\s*\(\s*((?:{_NAME})(?:\s*,\s*{_NAME})*)?\s*\)\s*$")
_SEPARATOR = re.compile(r"[;\n]")
MAX_STEP_CHARS = 200


@dataclass(frozen=True)
class SkillCall:
    """One well-formed step, e.g. SkillCall("place", ("obj_3", "obj_1"))."""

    verb: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.verb not in VERB_ARITY:
            raise ValueError(f"unknown verb {self.verb!r}; allowed: {sorted(VERB_ARITY)}")
        if len(self.args) != VERB_ARITY[self.verb]:
            raise ValueError(
                f"{self.verb} takes {VERB_ARITY[self.verb]} argument(s), got {len(self.args)}"
            )
        for arg in self.args:
            if not re.fullmatch(_NAME, arg):
                raise ValueError(f"bad name {arg!r}: names match {_NAME}")

    def __str__(self) -> str:
        return format_step(self)


@dataclass(frozen=True)
class ParseFailure:
    """Text that is not a well-formed step, and why."""

    text: str
    reason: str


def format_step(call: SkillCall) -> str:
    """The canonical text of a step: ``place(obj_3, obj_1)``."""
    return f"{call.verb}({', '.join(call.args)})"


def format_plan(calls: list[SkillCall]) -> str:
    """Steps joined by ``"; "``, the form the planner writes and reads."""
    return "; ".join(format_step(call) for call in calls)


def parse_step(text: str) -> SkillCall | ParseFailure:
    """Parse exactly one step; never raises."""
    if not isinstance(text, str):
        return ParseFailure(repr(text), f"expected text, got {type(text).__name__}")
    if len(text) > MAX_STEP_CHARS:
        return ParseFailure(text, f"longer than {MAX_STEP_CHARS} characters")
    match = _STEP.match(text)
    if match is None:
        return ParseFailure(text, "not of the form verb(name, ...)")
    verb, arg_text = match.group(1), match.group(2)
    if verb not in VERB_ARITY:
        return ParseFailure(text, f"unknown verb {verb!r}; allowed: {sorted(VERB_ARITY)}")
    args = tuple(arg.strip() for arg in arg_text.split(",")) if arg_text else ()
    if len(args) != VERB_ARITY[verb]:
        return ParseFailure(text, f"{verb} takes {VERB_ARITY[verb]} argument(s), got {len(args)}")
    return SkillCall(verb, args)


def parse_plan(text: str) -> list[SkillCall | ParseFailure]:
    """Parse every non-empty ``;``- or newline-separated step; never raises."""
    if not isinstance(text, str):
        return [ParseFailure(repr(text), f"expected text, got {type(text).__name__}")]
    return [parse_step(part) for part in _SEPARATOR.split(text) if part.strip()]


def validate_step(
    call: SkillCall,
    entities: tuple[str, ...],
    places: tuple[str, ...] = PLACE_LOCATIONS,
    openables: tuple[str, ...] = (),
) -> ParseFailure | None:
    """Check a parsed step against the scene: objects that exist, targets that make sense.

    ``places`` are the place targets besides objects (the tabletop's table, regions and cells by
    default); ``openables`` the names open() and close() accept (the kitchen's drawer, cabinet).
    """
    text = format_step(call)
    if call.verb == "pick" and call.args[0] not in entities:
        return ParseFailure(text, f"no object {call.args[0]!r}; objects: {list(entities)}")
    if call.verb == "place":
        obj, target = call.args
        if obj not in entities:
            return ParseFailure(text, f"no object {obj!r}; objects: {list(entities)}")
        if target == obj:
            return ParseFailure(text, "cannot place an object on itself")
        if target not in entities and target not in places:
            named = [p for p in places if p not in CELL_NAMES]
            cells = (
                f" or a cell pos_<row>_<column> "
                f"(row 0-{GRID_ROWS - 1}, column 0-{GRID_COLUMNS - 1})"
                if any(p in CELL_NAMES for p in places)
                else ""
            )
            return ParseFailure(
                text, f"no place target {target!r}; allowed: {[*entities, *named]}{cells}"
            )
    if call.verb in ("open", "close") and call.args[0] not in openables:
        return ParseFailure(
            text, f"nothing to {call.verb} called {call.args[0]!r}: {list(openables)}"
        )
    return None
