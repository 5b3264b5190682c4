"""How well a planner reads which cube covers which: the first check of its q4 replies.

    python -m experiments.support_probe --checkpoint runs/study_<variant>/final --scenes 100

PaLM-E's q4 ("Is it possible to first grasp A, then place it on B, and then grasp C?") turns on
whether A is clear. A planner trained with ``question_rationales`` writes that check first:
"obj_2 is on top" or "obj_2 is below obj_4". This asks it of every cube of the q4 scenes of the
``eval`` split (seeds ``EVAL_SEED_START``.., reset as q4 episodes, no physics stepped), with B
and C another cube, and counts how often the first check is the scene's: for cubes another one
covers and for clear cubes, by the number of cubes in the scene. It reads the model's
perception of the support relation apart from the rest of the rule.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  (registers the environments)
from embodied.config import TabletopEnvConfig
from embodied.data.splits import SPLITS
from embodied.palme_planner import PalmEPlanner
from envs.base import ArmEnv
from envs.tasks.base import QuestionTask
from envs.tasks.tamp import FEASIBILITY_QUESTION, question_checks
from experiments.common import RESULTS_DIR, machine, write_results


def probe(checkpoint: str, scenes: int) -> dict[str, Any]:
    """Per scene size: [right, asked] first checks of covered and of clear cubes."""
    planner = PalmEPlanner(checkpoint)
    env = gym.make(TabletopEnvConfig().id, observe_images=False)
    counts: dict[str, dict[int, list[int]]] = {
        "covered": defaultdict(lambda: [0, 0]),
        "clear": defaultdict(lambda: [0, 0]),
    }
    misread: list[str] = []
    for index in range(scenes):
        seed = SPLITS["eval"].seed(index)
        observation, _ = env.reset(seed=seed, options={"task": "q4"})
        sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
        state = sim.symbolic_state()
        names = list(state.objects)
        for cube in names:
            other = next(n for n in names if n != cube)
            question = FEASIBILITY_QUESTION.format(grasp=cube, base=other, then=other)
            checks = question_checks(state, question)
            assert checks is not None
            sim.task = QuestionTask(family="q4", instruction=question, answer="")
            written = planner.answer(sim, observation).split(". ")[0]
            kind = "clear" if checks[0].passed else "covered"
            counts[kind][len(names)][0] += written == checks[0].fact
            counts[kind][len(names)][1] += 1
            if written != checks[0].fact:
                misread.append(f"{seed}: {written!r} (scene: {checks[0].fact!r})")
    env.close()
    return {
        "checkpoint": checkpoint,
        "scenes": scenes,
        "by_objects": {
            kind: {str(n): counts[kind][n] for n in sorted(counts[kind])} for kind in counts
        },
        "misread": misread,
    }


def to_markdown(results: dict[str, Any]) -> str:
    sizes = sorted(
        {n for row in results["rows"] for kind in row["by_objects"].values() for n in kind}
    )
    lines = [
        f"## The support relation as q4's first check reads it (`python -m "
        f"experiments.support_probe`, {results['rows'][0]['scenes']} eval scenes)",
        "",
        "| checkpoint | cubes | " + " | ".join(f"{n} cubes" for n in sizes) + " | all |",
        "|---|---|" + "---|" * (len(sizes) + 1),
    ]
    for row in results["rows"]:
        for kind in ("covered", "clear"):
            cells = row["by_objects"][kind]
            right = sum(r for r, _ in cells.values())
            asked = sum(a for _, a in cells.values())
            per_size = " | ".join(
                f"{cells[n][0]}/{cells[n][1]}" if n in cells else "" for n in sizes
            )
            lines.append(f"| {row['checkpoint']} | {kind} | {per_size} | {right}/{asked} |")
    lines += [
        "",
        "Right first checks / cubes asked: every cube of each scene asked as q4's first cube "
        f'(the check "X is on top" or "X is below Y"). {results["machine"]["cpus"]} CPUs, '
        f"commit {results['machine']['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="repeatable")
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 scenes")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.scenes = 3
    if args.scenes < 1:
        parser.error(f"--scenes {args.scenes}: must be >= 1")
    rows = [probe(checkpoint, args.scenes) for checkpoint in args.checkpoint]
    results = {"rows": rows, "machine": machine()}
    write_results("support_probe", results, to_markdown(results), args.output_dir)


if __name__ == "__main__":
    main()
