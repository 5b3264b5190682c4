"""``python -m embodied.evaluate``: executed success rates of a planner on fixed seeds.

Examples::

    python -m embodied.evaluate                                  # the shipped planner, eval split
    python -m embodied.evaluate splits=[eval,objects_6,objects_8] episodes=50 workers=2
    python -m embodied.evaluate checkpoint=runs/planner_vit/final decoding=constrained videos=3
    python -m embodied.evaluate planner=oracle env=kitchen env.failure_rate=0.2

Every episode runs closed loop in physics (plan a step, run its skill, re-plan from the new
observation). Episode i of a split always uses that split's seed i and reset options
(``embodied.data.splits``), with the task families taking turns, so two runs, or two
checkpoints, meet the same scenes. Episodes are spread over ``workers`` processes.

Per split and task family: success rate (for questions: answer accuracy) with its 95% Wilson
interval, mean progress, mean plan length (skill calls run), re-plans (a planner call after a
failed skill), parse failures per planner output, and for yes/no questions (kitchen affordance
and failure detection, tabletop q3/q4) the macro-F1 of the answers. Written to ``output_dir``:
``eval_info.json`` (config, summary, every episode), ``eval.md`` (the table), ``eval.png``
(success per family with its interval) and ``videos/`` (the first ``videos`` episodes of every
split).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import torch
from matplotlib.figure import Figure
from omegaconf import DictConfig

import envs  # noqa: F401  (registers the environments)
from embodied.config import EvaluateConfig, register_configs, to_config_or_exit
from embodied.data.splits import SPLITS
from embodied.episode import run_episode
from embodied.planners import Planner, make_planner
from embodied.statistics import YES_NO, macro_f1, rate_summary
from embodied.video import VideoRecorder
from envs.tasks.base import final_answer, normalize_answer
from policies.factory import make_skills

register_configs()

EVAL_INFO = "eval_info.json"
TABLE = "eval.md"
PLOT = "eval.png"


@dataclass(frozen=True)
class Job:
    """One evaluation episode: which split, family and seed, and where its video goes."""

    index: int
    split: str
    family: str
    seed: int
    video: str | None


def jobs(config: EvaluateConfig) -> list[Job]:
    """Every episode of the evaluation, split by split, families in turn."""
    out: list[Job] = []
    for split_name in config.splits:
        split = SPLITS[split_name]
        families = split.families(config.family_names)
        first = config.first_episode * len(families)
        for i in range(first, first + config.episodes * len(families)):
            video = None
            if i - first < config.videos:
                video = str(Path(config.output_dir) / "videos" / f"{split_name}_{i:03d}.mp4")
            out.append(Job(len(out), split_name, families[i % len(families)], split.seed(i), video))
    return out


class Evaluator:
    """One env and one planner, running jobs (in this process or in a pool worker)."""

    def __init__(self, config: EvaluateConfig) -> None:
        env_kwargs = config.env.make_kwargs()
        env_kwargs["tasks"] = config.family_names
        render = "rgb_array" if config.videos else None
        self.env = gym.make(config.env.id, render_mode=render, **env_kwargs)
        self.planner: Planner = make_planner(
            config.planner,
            config.planner_checkpoint,
            decoding=config.decoding,
            failure_detection=config.failure_detection,
            recognizer=config.recognizer,
            recognition=config.recognition,
        )
        self.skills = make_skills(config.skills, config.skills_checkpoint)
        self.config = config

    def run(self, job: Job) -> dict[str, Any]:
        recorder = None
        if job.video is not None:
            recorder = VideoRecorder(Path(job.video), self.config.video_every)
        planning_before = planning_seconds(self.planner)
        result = run_episode(
            self.env,
            self.planner,
            job.seed,
            job.family,
            max_plan_steps=self.config.max_plan_steps,
            observer=recorder,
            options=dict(SPLITS[job.split].options),
            skills=self.skills,
        )
        planning = planning_seconds(self.planner) - planning_before
        heard = getattr(self.planner, "heard", lambda instruction: None)(result.instruction)
        return {
            **asdict(job),
            **result.to_json(),
            **({"heard": heard} if heard is not None else {}),
            "planning_s": round(planning, 4),
        }

    def close(self) -> None:
        self.env.close()


def planning_seconds(planner: Planner) -> float:
    """The seconds the planner has spent planning so far: the learned planner times its calls
    (``stats``); a planner that does not counts 0."""
    stats = getattr(planner, "stats", None)
    return float(stats.seconds) if stats is not None else 0.0


_WORKER: Evaluator | None = None


def _start_worker(config: EvaluateConfig) -> None:
    global _WORKER
    torch.set_num_threads(1)  # one core per worker process
    _WORKER = Evaluator(config)


def _run_in_worker(job: Job) -> dict[str, Any]:
    assert _WORKER is not None, "worker not started"
    return _WORKER.run(job)


def run_jobs(config: EvaluateConfig, todo: list[Job]) -> Iterator[dict[str, Any]]:
    """The episodes' records, in completion order."""
    if config.workers == 1:
        evaluator = Evaluator(config)
        try:
            yield from (evaluator.run(job) for job in todo)
        finally:
            evaluator.close()
        return
    context = multiprocessing.get_context("spawn")  # fresh processes: no forked sim or torch
    with context.Pool(config.workers, _start_worker, (config,)) as pool:
        yield from pool.imap_unordered(_run_in_worker, todo)


def replans(episode: dict[str, Any]) -> int:
    """Planner calls made after a failed skill: the closed loop's recoveries."""
    steps = episode["steps"]
    return sum(step["success"] is False for step in steps[:-1])


def summarize(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per split: every family's row and the split's overall row."""
    by_split: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for episode in episodes:
        by_split[episode["split"]][episode["family"]].append(episode)
    return {
        split: {
            "families": {f: outcome_row(rows) for f, rows in sorted(families.items())},
            "overall": outcome_row([e for rows in families.values() for e in rows]),
        }
        for split, families in by_split.items()
    }


def outcome_row(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row over episode records (``EpisodeResult.to_json()`` with ``planning_s``):
    success rate with its 95% interval, mean progress; for plans the executed plan length,
    re-plans and parse-failure rate; for yes/no questions the macro F1."""
    n = len(episodes)
    plans = [e for e in episodes if e["kind"] == "plan"]
    outputs = sum(len(e["steps"]) for e in plans)
    row: dict[str, Any] = {
        **rate_summary(sum(e["success"] for e in episodes), n),
        "mean_progress": round(sum(e["progress"] for e in episodes) / n, 4),
        "mean_plan_length": None,
        "mean_replans": None,
        "parse_failure_rate": None,
        "f1": None,
        "planning_s": round(sum(e["planning_s"] for e in episodes), 3),
    }
    if plans:
        ran = [sum(s["success"] is not None for s in e["steps"]) for e in plans]
        row["mean_plan_length"] = round(sum(ran) / len(plans), 3)
        row["mean_replans"] = round(sum(replans(e) for e in plans) / len(plans), 3)
        failures = sum(e["parse_failures"] for e in plans)
        row["parse_failure_rate"] = round(failures / outputs, 4) if outputs else 0.0
    questions = [e for e in episodes if e["kind"] == "question"]
    if questions and all(e["expected_answer"] in YES_NO for e in questions):
        answers = [normalize_answer(final_answer(str(e["answer"]))) for e in questions]
        row["f1"] = round(macro_f1([e["expected_answer"] for e in questions], answers), 4)
    return row


def to_markdown(summary: dict[str, Any], title: str) -> str:
    lines = [f"## {title}", ""]
    for split, table in summary.items():
        lines += [
            f"### split `{split}`",
            "",
            "| family | episodes | success | 95% CI | progress | plan length | re-plans "
            "| parse failures | yes/no F1 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rows = [*table["families"].items(), ("**all**", table["overall"])]
        for family, row in rows:
            low, high = row["ci95"]
            cells = [
                family,
                str(row["trials"]),
                f"**{row['rate']:.3f}**",
                f"[{low:.2f}, {high:.2f}]",
                f"{row['mean_progress']:.2f}",
                _maybe(row["mean_plan_length"], ".2f"),
                _maybe(row["mean_replans"], ".2f"),
                _maybe(row["parse_failure_rate"], ".3f"),
                _maybe(row["f1"], ".3f"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _maybe(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    """Grouped bars: success per family, one colour per split, 95% intervals as error bars."""
    families = sorted({f for table in summary.values() for f in table["families"]})
    width = 0.8 / len(summary)
    figure = Figure(figsize=(max(6.0, 0.9 * len(families) + 2), 3.6))  # no GUI backend needed
    axes = figure.subplots()
    for k, (split, table) in enumerate(summary.items()):
        xs, rates, below, above = [], [], [], []
        for i, family in enumerate(families):
            row = table["families"].get(family)
            if row is None:
                continue
            xs.append(i + (k - (len(summary) - 1) / 2) * width)
            rates.append(row["rate"])
            below.append(row["rate"] - row["ci95"][0])
            above.append(row["ci95"][1] - row["rate"])
        axes.bar(xs, rates, width, yerr=[below, above], capsize=3, label=split)
    axes.set_xticks(range(len(families)), families)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("success (95% CI)")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Run the evaluation; returns (and writes) eval_info."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    todo = jobs(config)
    planner = "the oracle" if config.planner == "oracle" else config.planner_checkpoint
    if config.planner == "palme":
        planner += f" ({config.decoding} decoding, failure detection: {config.failure_detection})"
    if config.skills == "learned":
        planner += f", learned skills {config.skills_checkpoint}"
    title = f"{planner} on {config.env.id}"
    if config.first_episode:  # not the split's first seeds: say so where the numbers are
        title += f", from each family's episode {config.first_episode} of the split"
    print(f"evaluating {title}: {len(todo)} episodes, {config.workers} worker(s)", flush=True)
    started = time.perf_counter()
    episodes: list[dict[str, Any]] = []
    for episode in run_jobs(config, todo):
        episodes.append(episode)
        verdict = "SUCCESS" if episode["success"] else "FAILURE"
        print(
            f"[{len(episodes)}/{len(todo)}] {episode['split']} seed={episode['seed']} "
            f"{episode['family']}: {episode['instruction']} | {verdict}",
            flush=True,
        )
    episodes.sort(key=lambda e: e["index"])
    summary = summarize(episodes)
    info = {
        "config": {k: v for k, v in asdict(config).items() if k != "defaults"},
        "planner_checkpoint": config.planner_checkpoint if config.planner == "palme" else None,
        "summary": summary,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "videos": [e["video"] for e in episodes if e["video"] is not None],
        "episodes": episodes,
    }
    (output_dir / EVAL_INFO).write_text(json.dumps(info, indent=2))
    markdown = to_markdown(summary, title)
    (output_dir / TABLE).write_text(markdown + "\n")
    plot(summary, output_dir / PLOT, title)
    print(markdown)
    print(f"{info['wall_time_s']} s; wrote {output_dir / EVAL_INFO}, {TABLE}, {PLOT}", flush=True)
    return info


@hydra.main(version_base="1.3", config_path=None, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    config = to_config_or_exit(cfg)
    evaluate(config)


if __name__ == "__main__":
    main()
