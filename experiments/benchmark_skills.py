"""Learned skills against the scripted ones: per-skill success and end-to-end task success, the
oracle planning, on the same fixed evaluation seeds, in physics.

    python -m experiments.benchmark_skills --checkpoint runs/skills/final
    python -m experiments.benchmark_skills --checkpoint runs/skills/final --episodes 50

The oracle writes every plan (re-planning after a failed step), so a difference between the two
rows is the skills' alone. Per skill: the share of its calls that did what they name (judged
from the simulator state); end to end: p1, p2 and the long-horizon tower family. Targets
(issue 9): learned pick >= 90%, place >= 85%.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from embodied.config import EvaluateConfig, TabletopEnvConfig
from embodied.evaluate import evaluate
from experiments.common import RESULTS_DIR, machine, success_summary, write_results

FAMILIES = ["p1", "p2", "tower"]


def call_outcomes(
    episodes: list[dict[str, Any]],
) -> tuple[dict[str, list[bool]], dict[str, list[bool]]]:
    """Per verb, the outcome of every skill call of the episodes (``eval_info.json``'s), and of
    the calls from a clean start: the first call of an episode, or one after a successful call.
    A failed call leaves the world in a state the retries keep failing from (an object knocked
    over, the arm stuck low), so the first figure counts those retries again and again."""
    calls: dict[str, list[bool]] = defaultdict(list)
    clean: dict[str, list[bool]] = defaultdict(list)
    for episode in episodes:
        previous_succeeded = True
        for step in episode["steps"]:
            if step["success"] is None:  # done(), or a step that was never run
                continue
            verb, success = step["text"].split("(")[0], bool(step["success"])
            calls[verb].append(success)
            if previous_succeeded:
                clean[verb].append(success)
            previous_succeeded = success
    return calls, clean


def run(skills: str, checkpoint: str | None, args: argparse.Namespace) -> dict[str, Any]:
    info = evaluate(
        EvaluateConfig(
            env=TabletopEnvConfig(observe_images=False),  # a learned skill renders its views
            planner="oracle",
            skills=skills,
            skills_checkpoint=checkpoint,
            tasks=args.families,
            episodes=args.episodes,
            workers=args.workers,
            output_dir=str(Path(args.run_dir) / f"evaluation_{skills}"),
        )
    )
    calls, clean = call_outcomes(info["episodes"])
    table = info["summary"]["eval"]
    return {
        "skills": skills,
        "checkpoint": checkpoint,
        "per_skill": {verb: success_summary(sum(o), len(o)) for verb, o in sorted(calls.items())},
        "per_skill_clean_start": {
            verb: success_summary(sum(o), len(o)) for verb, o in sorted(clean.items())
        },
        "per_family": {f: row["rate"] for f, row in table["families"].items()},
        "ci95": {f: row["ci95"] for f, row in table["families"].items()},
        "control_steps": sum(e["control_steps"] for e in info["episodes"]),
        "wall_s": info["wall_time_s"],
    }


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Learned vs scripted skills (`python -m experiments.benchmark_skills`)",
        "",
        "| skills | pick | place | pick, clean start | place, clean start | "
        + " | ".join(results["families"])
        + " | wall s |",
        "|---|---|---|---|---|" + "---|" * len(results["families"]) + "---|",
    ]
    for row in results["rows"]:
        skills = [
            (f"{s['success_rate']:.3f} ({s['calls']} calls)" if (s := row[column].get(v)) else "-")
            for column in ("per_skill", "per_skill_clean_start")
            for v in ("pick", "place")
        ]
        families = [
            f"{row['per_family'][f]:.3f} [{row['ci95'][f][0]:.2f}, {row['ci95'][f][1]:.2f}]"
            for f in results["families"]
        ]
        lines.append(
            f"| {row['skills']} | " + " | ".join(skills + families) + f" | {row['wall_s']} |"
        )
    training = results.get("training") or {}
    lines += [
        "",
        f"The oracle plans; {results['episodes']} episodes per family on the evaluation seeds "
        f"(100000+), {results['workers']} workers. Per skill: calls "
        "that did what they name; clean start: only the calls that follow a successful call "
        "(or come first), since a failed call leaves a state that the retries keep failing "
        "from (the oracle re-plans, up to its step cap). Policy training: "
        f"{json.dumps(training) if training else 'not recorded'}. "
        f"{results['machine']['cpus']} CPUs, commit {results['machine']['commit']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train_skills final/ directory")
    parser.add_argument("--episodes", type=int, default=20, help="per family")
    parser.add_argument("--families", nargs="+", default=FAMILIES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--run-dir", default="runs/benchmark_skills")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    metrics = Path(args.checkpoint).parent / "metrics.jsonl"
    training = json.loads(metrics.read_text().splitlines()[-1]) if metrics.exists() else None
    results = {
        "episodes": args.episodes,
        "families": args.families,
        "workers": args.workers,
        "training": training,
        "machine": machine(),
        "rows": [run("scripted", None, args), run("learned", args.checkpoint, args)],
    }
    write_results("benchmark_skills", results, to_markdown(results), args.output_dir)


if __name__ == "__main__":
    main()
