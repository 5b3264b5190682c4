"""Make a skill for a parsed plan step: one registry, skills found by verb."""

from __future__ import annotations

from envs.base import ArmEnv
from envs.plan import SkillCall
from policies.base import Skill
from policies.scripted import Operate, Pick, Place, ScriptedSkill

SCRIPTED_SKILLS: dict[str, type[ScriptedSkill]] = {
    "pick": Pick,
    "place": Place,
    "open": Operate,
    "close": Operate,
}


def make_skill(env: ArmEnv, call: SkillCall) -> Skill:
    """The scripted skill for ``call``; raises ValueError for a verb this env has no skill for."""
    verbs = ["pick", "place", *(["open", "close"] if env.openables else [])]
    if call.verb not in verbs:
        raise ValueError(f"no skill for {call.verb!r} here; skills: {verbs}")
    return SCRIPTED_SKILLS[call.verb](env, call)
