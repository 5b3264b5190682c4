"""``python -m embodied.generate``: oracle episodes as sharded, balanced, resumable training data.

Examples::

    python -m embodied.generate                                  # tabletop TAMP: train + eval
    python -m embodied.generate splits=[train,eval,objects_6,objects_8,unseen_colours]
    python -m embodied.generate env=kitchen env.failure_rate=0.2 episodes=2000
    python -m embodied.generate episodes=96000 plan_only=true   # then, on many machines:
    python -m embodied.generate episodes=96000 shards=0:100     # job 1 of a SLURM array, ...

A run has three stages. (1) **Survey**: every candidate scene of every split is reset (no
rendering) to read its task family and scene configuration. (2) **Plan**: MetaCLIP's curation
over family x scene configuration chooses the scenes (``embodied.data.balance``), which are cut
into shards of ``shard_size`` episodes; ``manifest.json`` records the seeds, families, splits,
the balancing before and after, and the generator config. (3) **Generate**: worker processes
run the oracle on each shard's scenes and write it (``embodied.data.storage``) under a temporary
name, renamed once complete.

Rerunning with the same config resumes: the manifest is reused and shards already on disk are
skipped. A different config in the same ``output_dir`` is refused (nothing is overwritten).
Since the plan depends only on the config, independent jobs given disjoint ``shards=START:END``
slices fill one dataset without overlap (README: "Generating data on many machines").
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

import envs  # noqa: F401  (registers the environments)
from embodied.config import GenerateConfig, register_configs, to_config_or_exit
from embodied.data.balance import entry_counts, imbalance, metaclip_curate, uniformity
from embodied.data.recording import record_episode
from embodied.data.splits import SPLITS
from embodied.data.storage import (
    SHARD_SUFFIX,
    TEMPORARY_SUFFIX,
    ShardWriter,
    is_abandoned,
    shard_name,
    temporary_path,
)
from envs.base import ArmEnv

register_configs()

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "embodied-episodes-manifest"
POOL_GROWTH = 1.5  # the candidate pool grows by this when balancing kept too few scenes
POOL_ROUNDS = 5


class DatasetConflict(ValueError):
    """``output_dir`` holds a dataset made with another config."""


@dataclass(frozen=True)
class Scene:
    """A candidate scene: its seed, the family it is generated for and its configuration
    (read by the survey; "" when balancing is off and there was none)."""

    seed: int
    family: str
    scene_config: str = ""

    @property
    def entry(self) -> str:
        """Its MetaCLIP metadata entry."""
        return f"{self.family} | {self.scene_config}"


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to write one shard."""

    index: int
    split: str
    path: str
    scenes: tuple[Scene, ...]
    options: dict[str, Any]
    generator: str  # the plan-defining config, JSON, stored in the shard's attributes
    max_plan_steps: int
    demos: bool
    demo_noise: float
    mistake_rate: float
    mistake_picks: str


@dataclass(frozen=True)
class ShardStats:
    index: int
    episodes: int
    frames: int
    successes: int
    failed_skills: int
    """Skill calls that failed (the oracle then re-planned)."""
    injected: int
    """Of those, failures the env injected (``failure_rate``, failure-detection attempts)."""
    bytes: int
    seconds: float


# --- the plan --------------------------------------------------------------------------------
def plan_config(config: GenerateConfig) -> dict[str, Any]:
    """The config fields that decide what the dataset holds (not how or where it is made)."""
    return {
        "env": {"id": config.env.id, **config.env.make_kwargs()},
        "tasks": config.family_names,
        "splits": list(config.splits),
        "episodes": config.episodes,
        "eval_episodes": config.eval_episodes,
        "shard_size": config.shard_size,
        "balance": config.balance,
        "balance_threshold": config.balance_threshold,
        "pool_factor": config.pool_factor,
        "seed": config.seed,
        "max_plan_steps": config.max_plan_steps,
        # Named only when on, so that datasets made before the option stay resumable.
        **({"demos": True} if config.demos else {}),
        **({"demo_noise": config.demo_noise} if config.demo_noise else {}),
        **({"mistake_rate": config.mistake_rate} if config.mistake_rate else {}),
        **({"mistake_picks": config.mistake_picks} if config.mistake_picks != "any" else {}),
    }


def candidates(config: GenerateConfig, split_name: str, count: int) -> list[Scene]:
    """The split's first ``count`` candidate scenes: consecutive seeds, families in turn."""
    split = SPLITS[split_name]
    families = split.families(config.family_names)
    return [Scene(split.seed(i), families[i % len(families)]) for i in range(count)]


Survey = Callable[[list[Scene], dict[str, Any]], list[Scene]]
"""Resets candidate scenes (with a split's reset options) and returns them with their configs."""


def plan_split(
    config: GenerateConfig, split_name: str, survey: Survey
) -> tuple[list[Scene], dict[str, Any]]:
    """The split's scenes (curated unless ``balance`` is off) with a balancing report."""
    split = SPLITS[split_name]
    wanted = config.episodes if split_name == "train" else config.eval_episodes
    if config.balance:
        chosen, surveyed, threshold = curate_split(config, split_name, wanted, survey)
    else:  # no survey needed: the first candidates, their configurations unknown
        chosen = surveyed = candidates(config, split_name, wanted)
        threshold = None
    before = entry_counts([s.entry for s in surveyed])
    after = entry_counts([s.entry for s in chosen])
    report = {
        "seed_start": split.seed_start,
        "options": dict(split.options),
        "families": split.families(config.family_names),
        "episodes": len(chosen),
        "candidates": len(surveyed),
        "threshold": threshold,
        "before": before,
        "after": after,
        "imbalance_before": round(imbalance(before), 3),
        "imbalance_after": round(imbalance(after), 3),
        "uniformity_before": round(uniformity(before), 4),
        "uniformity_after": round(uniformity(after), 4),
        "top_share_before": round(max(before.values()) / sum(before.values()), 4),
        "top_share_after": round(max(after.values()) / sum(after.values()), 4),
        "families_before": entry_counts([s.family for s in surveyed]),
        "families_after": entry_counts([s.family for s in chosen]),
    }
    return chosen, report


def curate_split(
    config: GenerateConfig, split_name: str, wanted: int, survey: Survey
) -> tuple[list[Scene], list[Scene], int]:
    """Survey ``pool_factor`` candidates per wanted scene and curate them; grow the pool while
    too few are kept. Returns the chosen scenes, the surveyed pool and the threshold used."""
    count = math.ceil(wanted * config.pool_factor)
    options = dict(SPLITS[split_name].options)
    rng_seed = [config.seed, list(SPLITS).index(split_name)]
    surveyed: list[Scene] = []
    for _ in range(POOL_ROUNDS):
        surveyed += survey(candidates(config, split_name, count)[len(surveyed) :], options)
        curation = metaclip_curate(
            [s.entry for s in surveyed], config.balance_threshold, np.random.default_rng(rng_seed)
        )
        if len(curation.kept) >= wanted:
            return [surveyed[i] for i in curation.kept[:wanted]], surveyed, curation.threshold
        count = math.ceil(count * POOL_GROWTH)
    raise RuntimeError(
        f"split {split_name}: balancing kept {len(curation.kept)} of {len(surveyed)} candidate "
        f"scenes, fewer than the {wanted} wanted: raise balance_threshold "
        f"(now {curation.threshold}) or pool_factor"
    )


def make_manifest(config: GenerateConfig, survey: Survey) -> dict[str, Any]:
    """The whole dataset's plan: splits with their balancing reports, and the shards."""
    splits: dict[str, Any] = {}
    shards: list[dict[str, Any]] = []
    for split_name in config.splits:
        chosen, splits[split_name] = plan_split(config, split_name, survey)
        for start in range(0, len(chosen), config.shard_size):
            part = chosen[start : start + config.shard_size]
            index = len(shards)
            shards.append(
                {
                    "index": index,
                    "split": split_name,
                    "file": f"{split_name}/{shard_name(index)}",
                    "seeds": [s.seed for s in part],
                    "families": [s.family for s in part],
                    "scene_configs": [s.scene_config for s in part],
                }
            )
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "generator": plan_config(config),
        "splits": splits,
        "shards": shards,
    }


def load_or_plan(
    config: GenerateConfig,
    output_dir: Path,
    survey: Survey,
) -> dict[str, Any]:
    """The manifest on disk if it was made by this config; a new plan if there is none.

    Raises ValueError, naming the fields that differ, when ``output_dir`` holds a dataset made
    with another config: nothing there is touched.
    """
    path = output_dir / MANIFEST
    wanted = json.loads(json.dumps(plan_config(config)))  # as JSON would give it back
    if path.exists():
        manifest: dict[str, Any] = json.loads(path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise DatasetConflict(f"{path} is not a {MANIFEST_FORMAT}; choose another output_dir")
        differences = _differences(manifest["generator"], wanted)
        if differences:
            raise DatasetConflict(
                f"{output_dir} holds a dataset generated with another config ("
                + "; ".join(differences)
                + "): rerun with that config to resume it, or choose another output_dir"
            )
        return manifest
    manifest = make_manifest(config, survey)
    _write_atomically(path, json.dumps(manifest, indent=1))
    return manifest


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} on disk, {b!r} now")
    return found


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    temporary.write_text(text)
    os.replace(temporary, path)


# --- the workers -----------------------------------------------------------------------------
class Worker:
    """One env, kept for every job this process runs."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], report: Callable[[int], None]):
        # Skills run without rendering; record_episode renders the views where the planner looks.
        self.images = bool(env_kwargs.get("observe_images", True))
        self.env = gym.make(env_id, **{**env_kwargs, "observe_images": False})
        self.report = report
        self.parent = os.getppid()

    def survey(self, scenes: list[Scene], options: dict[str, Any]) -> list[Scene]:
        sim: ArmEnv = self.env.unwrapped  # type: ignore[assignment]
        found = []
        for scene in scenes:
            self.env.reset(seed=scene.seed, options={**options, "task": scene.family})
            found.append(Scene(scene.seed, scene.family, sim.scene_config()))
            self.report(1)
        return found

    def generate(self, job: ShardJob) -> ShardStats:
        started = time.perf_counter()
        path = Path(job.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        attrs = {
            "split": job.split,
            "shard": job.index,
            "seeds": np.array([s.seed for s in job.scenes], dtype=np.int64),
            "generator": job.generator,
        }
        frames = successes = failed_skills = injected = 0
        with ShardWriter(path, attrs) as writer:
            for scene in job.scenes:
                if os.getppid() != self.parent:  # the run was killed: leave no half shard
                    raise SystemExit("generate: the parent process is gone")
                record = record_episode(
                    self.env,
                    scene.seed,
                    scene.family,
                    job.split,
                    job.options,
                    self.images,
                    job.max_plan_steps,
                    job.demos,
                    job.demo_noise,
                    job.mistake_rate,
                    job.mistake_picks,
                )
                if scene.scene_config and record.scene_config != scene.scene_config:
                    raise RuntimeError(
                        f"seed {scene.seed}: the scene is {record.scene_config!r}, the survey saw "
                        f"{scene.scene_config!r}: reset is not deterministic"
                    )
                writer.write(record)
                frames += len(record.frames)
                successes += record.success
                outcomes = [(f.skill_success, f.injected) for f in record.frames]
                if record.attempt:  # a failure-detection question's attempt
                    outcomes.append((int(record.attempt["success"]), record.attempt["injected"]))
                failed_skills += sum(success == 0 for success, _ in outcomes)
                injected += sum(success == 0 and bool(cause) for success, cause in outcomes)
                self.report(1)
        seconds = time.perf_counter() - started
        size = path.stat().st_size
        return ShardStats(
            job.index, len(job.scenes), frames, successes, failed_skills, injected, size, seconds
        )

    def close(self) -> None:
        self.env.close()


_worker: Worker | None = None  # the worker of a pool process


def _start_worker(env_id: str, env_kwargs: dict[str, Any], queue: Any) -> None:
    global _worker
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker = Worker(env_id, env_kwargs, queue.put)


def _pool_survey(args: tuple[list[Scene], dict[str, Any]]) -> list[Scene]:
    assert _worker is not None
    return _worker.survey(*args)


def _pool_generate(job: ShardJob) -> ShardStats:
    assert _worker is not None
    return _worker.generate(job)


class Workers:
    """``workers`` processes (spawned: no simulator or file handle is shared), or this process
    alone when ``workers`` is 1. Progress arrives on a queue that a thread turns into the bar."""

    def __init__(self, config: GenerateConfig) -> None:
        self.count = config.workers
        self.bar = tqdm(total=0, unit="scene", disable=not config.progress, file=sys.stderr)
        env_kwargs = config.env.make_kwargs()
        if self.count == 1:
            self.local: Worker | None = Worker(config.env.id, env_kwargs, self.bar.update)
            return
        self.local = None
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        self.pool = context.Pool(
            self.count, initializer=_start_worker, initargs=(config.env.id, env_kwargs, self.queue)
        )
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def _listen(self) -> None:
        for count in iter(self.queue.get, None):
            self.bar.update(count)

    def start_stage(self, description: str, total: int) -> None:
        self.bar.reset(total=total)
        self.bar.set_description(description)

    def survey(self, scenes: list[Scene], options: dict[str, Any]) -> list[Scene]:
        self.start_stage("survey", len(scenes))
        if self.local is not None:
            return self.local.survey(scenes, options)
        chunk = max(1, math.ceil(len(scenes) / (4 * self.count)))
        parts = [(scenes[i : i + chunk], options) for i in range(0, len(scenes), chunk)]
        return [s for part in self.pool.imap(_pool_survey, parts) for s in part]

    def generate(self, jobs: list[ShardJob]) -> Iterator[ShardStats]:
        self.start_stage("generate", sum(len(job.scenes) for job in jobs))
        if self.local is not None:
            yield from (self.local.generate(job) for job in jobs)
            return
        # Largest shards first, so that no process waits alone at the end.
        jobs = sorted(jobs, key=lambda job: -len(job.scenes))
        yield from self.pool.imap_unordered(_pool_generate, jobs)

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
        else:
            self.pool.close()
            self.pool.join()
            self.queue.put(None)
            self.listener.join()
        self.bar.close()


# --- the run ---------------------------------------------------------------------------------
def remove_abandoned_shards(output_dir: Path) -> list[Path]:
    """Delete temporary shard files that no live writer holds: a killed run's leftovers."""
    removed = []
    for path in sorted(output_dir.glob(f"*/shard_*{SHARD_SUFFIX}.*{TEMPORARY_SUFFIX}")):
        if is_abandoned(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def generate(config: GenerateConfig) -> dict[str, Any]:
    """Plan (or resume) the dataset and write the shards this run is given; returns a summary."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_abandoned_shards(output_dir)
    if removed:
        print(f"removed {len(removed)} unfinished shard file(s) of a killed run", flush=True)
    started = time.perf_counter()
    workers = Workers(config)
    try:
        manifest = load_or_plan(config, output_dir, workers.survey)
        planned = time.perf_counter()
        print_balance(manifest)
        chosen = manifest["shards"][config.shard_range()]
        pending = [s for s in chosen if not (output_dir / s["file"]).exists()]
        print(
            f"{output_dir}: {len(manifest['shards'])} shards planned, {len(chosen)} in this run's "
            f"range, {len(chosen) - len(pending)} already done, {len(pending)} to generate"
            + (" (plan_only: stopping here)" if config.plan_only else ""),
            flush=True,
        )
        stats: list[ShardStats] = []
        if not config.plan_only and pending:
            generator = json.dumps(manifest["generator"])
            jobs = [
                ShardJob(
                    s["index"],
                    s["split"],
                    str(output_dir / s["file"]),
                    tuple(
                        Scene(*scene)
                        for scene in zip(s["seeds"], s["families"], s["scene_configs"], strict=True)
                    ),
                    dict(SPLITS[s["split"]].options),
                    generator,
                    config.max_plan_steps,
                    config.demos,
                    config.demo_noise,
                    config.mistake_rate,
                    config.mistake_picks,
                )
                for s in pending
            ]
            stats = list(workers.generate(jobs))
    finally:
        workers.close()
    finished = time.perf_counter()
    summary = summarize(stats, planning_s=planned - started, generating_s=finished - planned)
    summary["output_dir"] = str(output_dir)
    if stats:
        print(
            f"generated {summary['episodes']} episodes ({summary['frames']} frames, "
            f"{summary['success_rate']:.3f} oracle success, {summary['failed_skills']} failed "
            f"skill calls of which {summary['injected_failures']} injected) in "
            f"{summary['generating_s']} s: "
            f"{summary['scenes_per_s']} scenes/s with {config.workers} worker(s); "
            f"{summary['bytes'] / 1e6:.1f} MB, {summary['bytes_per_1000_episodes'] / 1e6:.1f} MB "
            f"per 1000 episodes",
            flush=True,
        )
    return summary


def summarize(stats: list[ShardStats], planning_s: float, generating_s: float) -> dict[str, Any]:
    episodes = sum(s.episodes for s in stats)
    size = sum(s.bytes for s in stats)
    return {
        "shards": len(stats),
        "episodes": episodes,
        "frames": sum(s.frames for s in stats),
        "success_rate": sum(s.successes for s in stats) / episodes if episodes else 0.0,
        "failed_skills": sum(s.failed_skills for s in stats),
        "injected_failures": sum(s.injected for s in stats),
        "bytes": size,
        "bytes_per_1000_episodes": round(1000 * size / episodes) if episodes else 0,
        "planning_s": round(planning_s, 2),
        "generating_s": round(generating_s, 2),
        "scenes_per_s": round(episodes / generating_s, 2) if episodes else 0.0,
        "per_shard": [asdict(s) for s in sorted(stats, key=lambda s: s.index)],
    }


def print_balance(manifest: dict[str, Any], top: int = 8) -> None:
    """The balancing report: entries before and after curation, largest first."""
    for name, split in manifest["splits"].items():
        print(
            f"split {name}: {split['episodes']} episodes from {split['candidates']} candidates "
            f"(t={split['threshold']}); entries {len(split['before'])} -> {len(split['after'])}; "
            f"uniformity {split['uniformity_before']} -> {split['uniformity_after']}, largest "
            f"entry's share {split['top_share_before']} -> {split['top_share_after']}, "
            f"max/min count {split['imbalance_before']} -> {split['imbalance_after']}",
            flush=True,
        )
        for entry, count in list(split["before"].items())[:top]:
            print(f"    {entry:<45} {count:>6} -> {split['after'].get(entry, 0):>6}")


@hydra.main(version_base="1.3", config_path=None, config_name="generate")
def main(cfg: DictConfig) -> None:
    config = to_config_or_exit(cfg)
    try:
        generate(config)
    except DatasetConflict as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
