"""Copy the result tables in experiments/results/ into the README (between its result markers)
and gather the PaLM-E studies into RESULTS.md.

python -m experiments.update_readme
"""

from __future__ import annotations

import re
from pathlib import Path

from experiments.common import RESULTS_DIR

README = Path(__file__).resolve().parents[1] / "README.md"
RESULTS = README.with_name("RESULTS.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"
SECTIONS = (
    (
        "benchmark_env",
        "python -m experiments.benchmark_env",
        "skills run on state-only observations",
    ),
    ("oracle_success", "python -m experiments.oracle_success", "state-only observations"),
    (
        "oracle_success_8_objects",
        "python -m experiments.oracle_success --num-objects 8 --episodes 50 "
        "--families p1 p2 sort tower pair gather",
        "the 8-cube generalization scenes",
    ),
    (
        "benchmark_kitchen",
        "python -m experiments.benchmark_kitchen",
        "skills run on state-only observations, no injected failures",
    ),
    (
        "oracle_success_kitchen",
        "python -m experiments.oracle_success --env kitchen",
        "state-only observations",
    ),
    (
        "oracle_success_kitchen_failure_rate_0.2",
        "python -m experiments.oracle_success --env kitchen --failure-rate 0.2 "
        "--families put_in_drawer bring_from_cabinet clear_counter put_away",
        "each pick, open and close fails with probability 0.2; the oracle re-plans from the state",
    ),
    (
        "benchmark_generate",
        "python -m experiments.benchmark_generate",
        "each world's default families, train split, balancing on",
    ),
    (
        "pretrain_encoders",
        "python -m experiments.pretrain_encoders --collect (after the training runs it names)",
        "RGB only (osrt: 400 of its 1500 default steps; osrt_broadcast: 2000), the slots tile "
        "the views by region; with depth (rgbd: slots that are blobs in the world and in "
        "appearance, seeded on one dense token per colour) they separate the cubes: "
        "osrt_rgbd_slot_mixer, OSRT's Slot Mixer decoder taught the slots' split, FG-ARI 0.81 "
        "on 160 held-out scenes (`--eval-batches 10`; target 0.8), PSNR 20.4, in 29 "
        "minutes; osrt_rgbd (broadcast decoder) was trained before that seeding, with 5 "
        "iterations, and is not rerun",
    ),
    (
        "osrt_views",
        "python -m experiments.osrt_views",
        "OSRT's slots against the cubes' size in pixels: the same scenes through the default and "
        "the narrowed views",
    ),
    (
        "default_planner",
        "python -m experiments.train_default_planner",
        "the shipped checkpoint, closed loop in physics",
    ),
    (
        "default_planner_kitchen",
        "python -m experiments.train_default_planner --env kitchen",
        "the shipped kitchen checkpoint, closed loop in physics, skill failures injected",
    ),
    (
        "benchmark_planner",
        "python -m experiments.benchmark_planner",
        "the shipped checkpoint",
    ),
    (
        "benchmark_skills",
        "python -m experiments.benchmark_skills "
        "--checkpoint runs/skills_v13_scaled_occlusion/final",
        "learned vs scripted skills under the oracle's plans; the policy trained in 1264 s by "
        "`python -m embodied.train_skills data=data/tabletop_demos` at today's defaults on the "
        "README's demonstrations (views front, left, right; demo_noise=0.02)",
    ),
)


def results_block() -> str:
    parts = []
    for name, command, remark in SECTIONS:
        path = RESULTS_DIR / f"{name}.md"
        if path.exists():
            table = path.read_text().strip().replace("\n## ", "\n### ")
            table = re.sub(r"^## ", "### ", table)
            parts.append(f"`{command}` ({remark}):\n\n{table}")
    return "\n\n".join(parts)


STUDIES = (
    ("default_planner", "python -m experiments.train_default_planner", "the shipped planner"),
    (
        "default_planner_kitchen",
        "python -m experiments.train_default_planner --env kitchen",
        "the shipped kitchen planner: failure detection driving recovery, affordance F1",
    ),
    (
        "study_decoding",
        "python -m experiments.palme_studies --study decoding",
        "PaLM-E: free; beyond it: constrained to valid skill calls",
    ),
    (
        "study_entity_referrals",
        "python -m experiments.palme_studies --study entity_referrals",
        "PaLM-E Table 7's entity referrals, and generalization to 6 and 8 objects, unseen colour "
        "pairs and objects named by colour",
    ),
    (
        "study_frozen_lm",
        "python -m experiments.palme_studies --study frozen_lm",
        "PaLM-E Fig. 4: frozen vs finetuned LM",
    ),
    (
        "study_instruction_sensors",
        "python -m experiments.palme_studies --study instruction_sensors",
        "the design card beyond PaLM-E: instructions read, spoken (SALMONN-style audio tokens) "
        "and objects pointed at (Ferret's regions), on the same tasks",
    ),
    (
        "study_question_resampling",
        "python -m experiments.palme_studies --study question_resampling --episodes 50",
        "beyond PaLM-E, for q4 (feasibility), the family furthest below its target: every "
        "training question asked anew from its frame's symbolic state "
        "(state_resampled_questions), or each answer trained after the checks of the rule, "
        "'obj_1 is on top. obj_4 is on top. then obj_4 is below obj_1. no' "
        "(state_question_rationales); "
        "the latter on the blocked-pick corpus, the planner also told why a step failed "
        "(state_failure_reasons_question_rationales); the same with a quarter more examples "
        "per batch, any frame asked which cube rests on which, 'obj_1 is below obj_4. obj_4 "
        "is on top' (state_failure_reasons_question_rationales_scene_descriptions)",
    ),
    (
        "study_failure_recovery",
        "python -m experiments.palme_studies --study failure_recovery",
        "beyond PaLM-E: the same planner trained on a corpus whose skills fail a tenth of the "
        "time, so that its histories hold failed steps and the oracle's recoveries, and on one "
        "whose oracle gets a tenth of its steps wrong on purpose (each frame labelled with the "
        "right step), for p2 (blocked picks never recovered from); state_failure_reasons also "
        'shows the planner why a step failed (model.failure_reasons: "pick(obj_2) [failed: '
        'obj_2 is blocked by obj_4]")',
    ),
    (
        "study_representations",
        "python -m experiments.palme_studies --study representations",
        "PaLM-E Table 1: input representations at about 1% and the full data budget; "
        "state_context_full adds two transformer layers over the state tokens, so that each "
        "object's token can carry what rests on it (it did not lift p2 or q4)",
    ),
)


def studies_block() -> str:
    """The studies' tables and plots, for RESULTS.md (its prose around them is written by hand)."""
    parts = []
    for name, command, remark in STUDIES:
        path = RESULTS_DIR / f"{name}.md"
        if not path.exists():
            parts.append(f"### `{command}`\n\nNot run yet ({remark}).")
            continue
        table = re.sub(r"^## .*\n", "", path.read_text().strip()).strip()
        table = table.replace("\n### ", "\n#### ")
        table = re.sub(r"^### ", "#### ", table)
        section = f"### `{command}`\n\n{remark[0].upper()}{remark[1:]}.\n\n{table}"
        if (RESULTS_DIR / f"{name}.png").exists():
            section += f"\n\n![{name}](experiments/results/{name}.png)"
        parts.append(section)
    return "\n\n".join(parts)


def fill(path: Path, block: str) -> None:
    """Replace what lies between ``path``'s result markers with ``block``."""
    text = path.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{block}\n{END}{tail}")
    print(f"updated {path}")


def main() -> None:
    fill(README, results_block())
    fill(RESULTS, studies_block())


if __name__ == "__main__":
    main()
