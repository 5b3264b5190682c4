"""What the planner calls the tabletop's cubes: their scene labels, or their colours.

The tabletop labels its cubes obj_1 .. obj_n in the order their colours were drawn. Only a
per-object token shows which cube a label is ("obj_3 is <obj_3>.", the state and
object-centric planners); an image shows no label, so a planner that sees the scene as an
image (ViT, OSRT) cannot ground "obj_3". A colour it can: in the TAMP families (p1, p2,
q1-q4) colours are unique within a scene (one cube per colour; a scene with a colour twice is
refused by name), and PaLM-E's TAMP prompts name blocks by colour ("How to grasp blue
block?"). With ``ModelConfig.entity_names="colour"`` the model reads and writes
``pick(red)`` where the env says ``pick(obj_2)``; training renames each record
(``name_by_colour``), the planner translates both ways (``EntityNames``).

Only labels of the form ``obj_j`` are renamed: the kitchen's objects already have names
("can", "sponge") and pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENTITY_NAMES = ("label", "colour")
"""``ModelConfig.entity_names``: the scene's labels (obj_j), or the cubes' colours."""
ENTITY_LABEL = re.compile(r"\bobj_(\d+)\b")
"""A tabletop entity label in any text of a record (instruction, history, target)."""


def rename(text: str, names: Mapping[str, str]) -> str:
    """``text`` with every ``obj_j`` label that ``names`` maps replaced by its new name."""
    return ENTITY_LABEL.sub(lambda m: names.get(m.group(0), m.group(0)), text)


def rename_record(record: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The record with its entities renamed by ``names`` in every text it holds."""
    return {
        **record,
        "instruction": rename(record["instruction"], names),
        "entities": [names.get(e, e) for e in record["entities"]],
        "history": [rename(step, names) for step in record["history"]],
        "history_reasons": [rename(reason, names) for reason in record["history_reasons"]],
        "target": rename(record["target"], names),
    }


def labelled(entities: list[str]) -> bool:
    """Whether a scene's entities are all ``obj_j`` labels (the tabletop's, not the kitchen's)."""
    return bool(entities) and all(ENTITY_LABEL.fullmatch(e) for e in entities)


def colour_names(colours: Mapping[str, str | None]) -> dict[str, str]:
    """Label -> colour for a scene whose objects have these ``colours``; an error when one has
    none or two share one (the tabletop's long-horizon families sort cubes of a colour):
    names would then not say which cube is meant."""
    named = list(colours.values())
    if None in named or len(set(named)) != len(named):
        raise ValueError(
            f"entity_names='colour' needs one colour per object and no colour twice; "
            f"the scene has {dict(colours)}: name these cubes by label"
        )
    return {label: str(colour) for label, colour in colours.items()}


def name_by_colour(record: dict[str, Any]) -> dict[str, Any]:
    """A training record with each ``obj_j`` named by its cube's colour (read from the
    frame's symbolic state); a record whose entities are not labels is returned as is."""
    if not labelled(record["entities"]):
        return record
    objects = record["symbolic_state"]["objects"]
    return rename_record(
        record, colour_names({e: objects[e]["colour"] for e in record["entities"]})
    )


@dataclass(frozen=True)
class EntityNames:
    """One scene's translation between the env's labels and the names a model uses."""

    names: dict[str, str]
    """Env label -> the model's name (empty: the model uses the labels)."""

    @classmethod
    def of_scene(cls, entity_names: str, entities: Mapping[str, str | None]) -> EntityNames:
        """The translation for a scene whose ``entities`` map each label to its colour (None
        where an object has none), under ``entity_names`` (one of ENTITY_NAMES)."""
        if entity_names not in ENTITY_NAMES:
            raise ValueError(f"entity_names={entity_names!r}: allowed {ENTITY_NAMES}")
        if entity_names == "label" or not labelled(list(entities)):
            return cls({})
        return cls(colour_names(entities))

    def to_model(self, text: str) -> str:
        """Env text (an instruction, a step) in the model's names."""
        return rename(text, self.names)

    def to_env(self, text: str) -> str:
        """Model text (a generated step) in the env's labels; words that name no object of
        the scene are left as they are (the episode then rejects the step by name)."""
        if not self.names:
            return text
        labels = {name: label for label, name in self.names.items()}
        words = re.compile(r"\b(" + "|".join(map(re.escape, labels)) + r")\b")
        return words.sub(lambda m: labels[m.group(0)], text)
