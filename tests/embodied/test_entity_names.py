"""The planner's names for the tabletop's cubes: labels, or colours an image shows."""

import pytest

from embodied.config import ModelConfig, TrainConfig
from embodied.entity_names import EntityNames, name_by_colour

STATE = {
    "held": None,
    "objects": {
        "obj_1": {"colour": "red", "support": "table"},
        "obj_2": {"colour": "blue", "support": "obj_1"},
        "obj_3": {"colour": "green", "support": "table"},
    },
}
RECORD = {
    "instruction": "How to stack obj_3 on top of obj_1?",
    "kind": "plan",
    "entities": ["obj_1", "obj_2", "obj_3"],
    "history": ["pick(obj_1)", "pick(obj_2)", "place(obj_2, table)"],
    "history_success": [False, True, True],
    "history_reasons": ["obj_1 is blocked by obj_2", "", ""],
    "target": "pick(obj_3)",
    "symbolic_state": STATE,
}


def test_a_record_named_by_colour_says_the_same_with_the_cubes_colours():
    out = name_by_colour(RECORD)
    assert out["instruction"] == "How to stack green on top of red?"
    assert out["entities"] == ["red", "blue", "green"]
    assert out["history"] == ["pick(red)", "pick(blue)", "place(blue, table)"]
    assert out["history_reasons"] == ["red is blocked by blue", "", ""]
    assert out["target"] == "pick(green)"
    assert out["history_success"] == [False, True, True] and out["symbolic_state"] is STATE
    assert RECORD["target"] == "pick(obj_3)", "the stored record is not changed"
    kitchen = {**RECORD, "entities": ["can", "drawer"], "target": "pick(can)"}
    assert name_by_colour(kitchen) is kitchen, "word-named entities stay"
    objects = {**STATE["objects"], "obj_3": {"colour": "red", "support": "table"}}
    sorting = {**RECORD, "symbolic_state": {**STATE, "objects": objects}}
    with pytest.raises(ValueError, match=r"no colour twice; the scene has .*name these cubes by"):
        name_by_colour(sorting)  # a long-horizon family's scene: two red cubes


def test_the_planner_translation_goes_both_ways_and_leaves_unknown_words():
    names = EntityNames.of_scene("colour", {"obj_1": "red", "obj_2": "blue", "obj_3": "green"})
    assert names.to_model("place(obj_2, obj_1)") == "place(blue, red)"
    assert names.to_env("place(blue, red)") == "place(obj_2, obj_1)"
    assert names.to_env("place(green, table)") == "place(obj_3, table)"
    assert names.to_env("pick(purple)") == "pick(purple)", "the episode rejects it by name"
    assert names.to_env("pick(reddish)") == "pick(reddish)", "whole words only"
    labels = EntityNames.of_scene("label", {"obj_1": "red"})
    assert labels.to_model("pick(obj_1)") == "pick(obj_1)" == labels.to_env("pick(obj_1)")
    kitchen = EntityNames.of_scene("colour", {"can": None, "sponge": None})
    assert kitchen.to_model("pick(can)") == "pick(can)", "the kitchen's names are words already"


def test_colour_names_need_one_colour_per_cube_and_a_known_setting():
    with pytest.raises(ValueError, match=r"no colour twice; the scene has"):
        EntityNames.of_scene("colour", {"obj_1": "red", "obj_2": "red"})
    with pytest.raises(ValueError, match=r"entity_names='shape': allowed \('label', 'colour'\)"):
        EntityNames.of_scene("shape", {"obj_1": "red"})
    with pytest.raises(ValueError, match=r"model\.entity_names='shape': allowed"):
        ModelConfig(entity_names="shape")
    with pytest.raises(ValueError, match=r"needs model\.instruction_sensor=null"):
        ModelConfig(entity_names="colour", instruction_sensor="audio")
    with pytest.raises(ValueError, match=r"relabel_entities=true needs model\.entity_names=label"):
        TrainConfig(relabel_entities=True, model=ModelConfig(entity_names="colour"))
