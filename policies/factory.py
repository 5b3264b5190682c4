"""Make a skill for a parsed plan step: one registry, skills found by verb."""

from __future__ import annotations

from envs.base import ArmEnv
from envs.plan import SkillCall
from policies.base import Skill, SkillFactory
from policies.scripted import Operate, Pick, Place, ScriptedSkill

SKILL_KINDS = ("scripted", "learned")
"""What executes plan steps: the scripted skills, or a learned policy (``policies.learned``)."""

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


def make_skills(kind: str, checkpoint: str | None = None) -> SkillFactory:
    """The skill factory of ``kind``: ``scripted``, or ``learned`` from a policy ``checkpoint``
    (``python -m embodied.train_skills``)."""
    if kind == "scripted":
        return make_skill
    if kind == "learned":
        if checkpoint is None:
            raise ValueError("skills=learned needs skills_checkpoint=<a train_skills final/ dir>")
        from policies.learned import LearnedSkills  # torch, paid only by learned skills

        return LearnedSkills.load(checkpoint)
    raise ValueError(f"skills={kind!r}: allowed {SKILL_KINDS}")
