"""Make a skill for a parsed plan step: one registry, skills found by verb and skill type."""

from __future__ import annotations

from envs.plan import SkillCall
from envs.tabletop import TabletopEnv
from policies.base import Skill
from policies.scripted import Pick, Place, ScriptedSkill

SCRIPTED_SKILLS: dict[str, type[ScriptedSkill]] = {"pick": Pick, "place": Place}


def make_skill(env: TabletopEnv, call: SkillCall) -> Skill:
    """The scripted skill for ``call``; raises ValueError for a verb this env has no skill for."""
    if call.verb not in SCRIPTED_SKILLS:
        raise ValueError(f"no skill for {call.verb!r} here; skills: {sorted(SCRIPTED_SKILLS)}")
    return SCRIPTED_SKILLS[call.verb](env, call)
