"""The plan language: parse/format round trips, typed failures, and fuzzing that it never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.plan import (
    VERB_ARITY,
    ParseFailure,
    SkillCall,
    format_plan,
    format_step,
    parse_plan,
    parse_step,
    validate_step,
)
from envs.regions import REGION_NAMES

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("pick(obj_3)", SkillCall("pick", ("obj_3",))),
        ("place(obj_3, obj_1)", SkillCall("place", ("obj_3", "obj_1"))),
        ("place(obj_3, table)", SkillCall("place", ("obj_3", "table"))),
        ("place(obj_3, top_left)", SkillCall("place", ("obj_3", "top_left"))),
        ("  place( obj_3 ,obj_1 ) ", SkillCall("place", ("obj_3", "obj_1"))),
        ("open(drawer)", SkillCall("open", ("drawer",))),
        ("done()", SkillCall("done")),
        ("done( )", SkillCall("done")),
    ],
)
def test_parses_well_formed_steps(text, call):
    assert parse_step(text) == call


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not of the form"),
        ("pick obj_3", "not of the form"),
        ("pick(obj_3", "not of the form"),
        ("fly(obj_3)", "unknown verb"),
        ("pick(obj_3, obj_1)", "takes 1 argument"),
        ("place(obj_3)", "takes 2 argument"),
        ("done(obj_1)", "takes 0 argument"),
        ("pick(Obj_3)", "not of the form"),
        ("pick(obj_3); place(obj_3, table)", "not of the form"),
        ("x" * 500, "longer than"),
    ],
)
def test_malformed_text_is_a_typed_failure(text, reason):
    result = parse_step(text)
    assert isinstance(result, ParseFailure)
    assert reason in result.reason
    assert result.text == text


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_fuzz_parse_never_raises(text):
    result = parse_step(text)
    assert isinstance(result, (SkillCall, ParseFailure))
    if isinstance(result, SkillCall):
        assert parse_step(format_step(result)) == result
    for item in parse_plan(text):
        assert isinstance(item, (SkillCall, ParseFailure))


@given(st.sampled_from(sorted(VERB_ARITY)), st.lists(NAMES, min_size=0, max_size=3))
def test_fuzz_round_trip_of_well_formed_calls(verb, names):
    if len(names) != VERB_ARITY[verb]:
        assert isinstance(parse_step(f"{verb}({', '.join(names)})"), ParseFailure)
        return
    call = SkillCall(verb, tuple(names))
    assert parse_step(format_step(call)) == call


def test_non_text_input_is_a_failure_not_a_crash():
    assert isinstance(parse_step(None), ParseFailure)  # type: ignore[arg-type]
    assert isinstance(parse_plan(b"pick(obj_1)")[0], ParseFailure)  # type: ignore[arg-type]


def test_plan_round_trip():
    calls = [
        SkillCall("pick", ("obj_2",)),
        SkillCall("place", ("obj_2", "obj_1")),
        SkillCall("done"),
    ]
    text = format_plan(calls)
    assert text == "pick(obj_2); place(obj_2, obj_1); done()"
    assert parse_plan(text) == calls
    assert parse_plan("pick(obj_2)\nplace(obj_2, table)\n\n") == [
        SkillCall("pick", ("obj_2",)),
        SkillCall("place", ("obj_2", "table")),
    ]


def test_skill_call_refuses_bad_construction():
    with pytest.raises(ValueError, match="unknown verb"):
        SkillCall("jump", ())
    with pytest.raises(ValueError, match="takes 1"):
        SkillCall("pick", ())
    with pytest.raises(ValueError, match="bad name"):
        SkillCall("pick", ("Obj 1",))


def test_validate_against_the_scene():
    entities = ("obj_1", "obj_2")
    assert validate_step(SkillCall("pick", ("obj_1",)), entities) is None
    assert validate_step(SkillCall("place", ("obj_1", "obj_2")), entities) is None
    for region in ("table", *REGION_NAMES):
        assert validate_step(SkillCall("place", ("obj_1", region)), entities) is None
    failure = validate_step(SkillCall("pick", ("obj_9",)), entities)
    assert failure is not None and "no object 'obj_9'" in failure.reason
    failure = validate_step(SkillCall("place", ("obj_1", "obj_1")), entities)
    assert failure is not None and "itself" in failure.reason
    failure = validate_step(SkillCall("place", ("obj_1", "moon")), entities)
    assert failure is not None and "top_left" in failure.reason
    failure = validate_step(SkillCall("open", ("drawer",)), entities)
    assert failure is not None
