"""Data generation: storage round trips, determinism, resume after a kill, splits, balancing,
shard slices and the PyTorch dataset."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from embodied.config import GenerateConfig, KitchenEnvConfig, TabletopEnvConfig
from embodied.data.balance import imbalance, median_threshold, metaclip_curate, uniformity
from embodied.data.dataset import EpisodeDataset, collate_examples
from embodied.data.recording import record_episode
from embodied.data.splits import SPLIT_SEEDS, SPLITS
from embodied.data.storage import (
    NOT_RUN,
    TEMPORARY_SUFFIX,
    EpisodeRecord,
    ShardWriter,
    is_abandoned,
    read_shard,
)
from embodied.generate import MANIFEST, DatasetConflict, generate
from embodied.planners import MistakenOraclePlanner
from envs import keys
from envs.scene import HELD_OUT_COLOUR_PAIRS

ROOT = Path(__file__).resolve().parents[2]
TEXT_OUT = {"capture_output": True, "text": True, "check": True}
SMALL_TABLETOP = {"image_size": 32, "views": ["front", "left"]}


def small_config(tmp_path: Path, **overrides) -> GenerateConfig:
    fields = {
        "env": TabletopEnvConfig(**SMALL_TABLETOP),
        "tasks": ["p1", "q1", "q3"],
        "episodes": 8,
        "eval_episodes": 4,
        "shard_size": 3,
        "workers": 1,
        "output_dir": str(tmp_path / "data"),
        "progress": False,
    }
    return GenerateConfig(**{**fields, **overrides})


def assert_same_records(a: EpisodeRecord, b: EpisodeRecord) -> None:
    assert (a.seed, a.family, a.instruction, a.answer, a.success, a.scene_config) == (
        b.seed,
        b.family,
        b.instruction,
        b.answer,
        b.success,
        b.scene_config,
    )
    assert (a.entities, a.attempt, a.split, a.env, a.kind) == (
        b.entities,
        b.attempt,
        b.split,
        b.env,
        b.kind,
    )
    assert len(a.frames) == len(b.frames)
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert fa.observation.keys() == fb.observation.keys()
        for key in fa.observation:
            x, y = fa.observation[key], fb.observation[key]
            assert x.dtype == y.dtype and x.shape == y.shape, key
            assert np.array_equal(x, y), key  # bit-exact: lossless storage
        assert (fa.target, fa.skill_success, fa.skill_reason, fa.injected, fa.control_steps) == (
            fb.target,
            fb.skill_success,
            fb.skill_reason,
            fb.injected,
            fb.control_steps,
        )
        assert fa.executed == fb.executed
        assert fa.symbolic_state == fb.symbolic_state


def read_all(root: Path) -> dict[int, EpisodeRecord]:
    manifest = json.loads((root / MANIFEST).read_text())
    records = {}
    for shard in manifest["shards"]:
        for record in read_shard(root / shard["file"]):
            records[record.seed] = record
    return records


def test_written_episodes_read_back_identical(make_env, make_kitchen, tmp_path):
    tabletop = make_env(observe_images=False, **SMALL_TABLETOP)
    kitchen = make_kitchen(observe_images=False, image_size=32, failure_rate=0.5)
    records = [
        record_episode(tabletop, 3, "p2", "train", {}),
        record_episode(tabletop, 4, "q4", "train", {}),
        record_episode(kitchen, 13, "put_in_drawer", "train", {}, max_plan_steps=8),
        record_episode(kitchen, 12, "success_detection", "train", {}),
    ]
    path = tmp_path / "shard.h5"
    with ShardWriter(path, {"split": "train"}) as writer:
        for record in records:
            writer.write(record)
    assert not list(tmp_path.glob(f"*{TEMPORARY_SUFFIX}"))
    read = list(read_shard(path))
    assert [r.seed for r in read] == [3, 4, 12, 13], "in seed order"
    for original, stored in zip(records, [read[0], read[1], read[3], read[2]], strict=True):
        assert_same_records(original, stored)
    plan = read[0]
    assert plan.frames[-1].target == "done()" and plan.frames[-1].skill_success == NOT_RUN
    assert all(f.executed == "" for r in read for f in r.frames), "the oracle ran its targets"
    assert plan.frames[0].observation[keys.RGB].shape == (2, 32, 32, 3)
    assert plan.frames[0].observation[keys.DEPTH].dtype == np.float32
    question, kitchen_plan = read[2], read[3]
    assert all(f.skill_success in (0, 1) for f in kitchen_plan.frames[:-1])
    # The kitchen's skill outcomes are recorded, failures and their injected causes included.
    failed = [f for f in kitchen_plan.frames if f.skill_success == 0]
    assert failed and all(f.skill_reason for f in failed)
    assert "stuck" in {f.injected for f in failed}, "seed 13 has a drawer stuck, then opened"
    assert kitchen_plan.success and kitchen_plan.frames[-1].target == "done()"
    assert question.kind == "question" and len(question.frames) == 1
    assert question.attempt["call"] in question.instruction
    assert question.answer == ("yes" if question.attempt["success"] else "no")


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "shard.h5"
    with pytest.raises(RuntimeError), ShardWriter(path, {}):
        raise RuntimeError("a worker died mid-shard")
    assert list(tmp_path.iterdir()) == []


def test_only_temporaries_of_dead_local_writers_count_as_abandoned(tmp_path):
    writer = ShardWriter(tmp_path / "shard_00000.h5", {})
    assert not is_abandoned(writer.temporary), "its writer (this process) runs"
    writer.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **TEXT_OUT)
    pid = int(dead.stdout)
    here, there = socket.gethostname(), "another-host.example"
    assert is_abandoned(tmp_path / f"shard_00001.h5.{here}.{pid}{TEMPORARY_SUFFIX}")
    assert not is_abandoned(tmp_path / f"shard_00001.h5.{there}.{pid}{TEMPORARY_SUFFIX}")


def test_generated_data_is_the_oracle_rerun_on_the_same_seeds(make_env, tmp_path):
    config = small_config(tmp_path, splits=["train", "colour_referral"])
    summary = generate(config)
    assert summary["episodes"] == 12 and summary["success_rate"] == 1.0
    env = make_env(observe_images=False, **SMALL_TABLETOP)
    records = read_all(Path(config.output_dir))
    for record in records.values():
        options = dict(SPLITS[record.split].options)
        again = record_episode(env, record.seed, record.family, record.split, options)
        assert_same_records(record, again)
    referred = [r for r in records.values() if r.split == "colour_referral"]
    assert {r.family for r in referred} <= {"p1", "q3"}, "q1 names no object: not in the split"
    assert all("obj_" not in r.instruction and " object" in r.instruction for r in referred)
    trained = [r for r in records.values() if r.split == "train" and r.family != "q1"]
    assert all("obj_" in r.instruction for r in trained)


def test_shard_slices_fill_one_dataset_without_overlap(tmp_path):
    whole = small_config(tmp_path / "whole", tasks=["q1", "q3"])
    generate(whole)
    parts = small_config(tmp_path / "parts", tasks=["q1", "q3"])
    first = generate(GenerateConfig(**{**vars(parts), "shards": "0:2"}))
    second = generate(GenerateConfig(**{**vars(parts), "shards": "2:"}))
    assert first["shards"] == 2 and second["shards"] == 3  # 8 train + 4 eval in shards of 3
    again = generate(parts)
    assert again["shards"] == 0, "every shard was already on disk"
    a, b = read_all(Path(whole.output_dir)), read_all(Path(parts.output_dir))
    assert sorted(a) == sorted(b)
    for seed in a:
        assert_same_records(a[seed], b[seed])


def test_another_config_in_the_same_directory_is_refused(tmp_path):
    config = small_config(tmp_path, plan_only=True)
    generate(config)
    manifest = (Path(config.output_dir) / MANIFEST).read_text()
    with pytest.raises(DatasetConflict, match=r"episodes: 8 on disk, 9 now"):
        generate(GenerateConfig(**{**vars(config), "episodes": 9}))
    assert (Path(config.output_dir) / MANIFEST).read_text() == manifest


def run_generate(*overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "embodied.generate", *overrides],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )


def test_a_killed_run_resumes_without_redoing_or_corrupting_shards(tmp_path):
    output = tmp_path / "data"
    overrides = [
        f"output_dir={output}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        "env.image_size=32",
        "env.views=[front]",
        "tasks=[p1,p2]",
        "splits=[train]",
        "episodes=12",
        "shard_size=2",
        "workers=2",
        "progress=false",
    ]
    process = run_generate(*overrides)
    shards = output / "train"
    deadline = time.monotonic() + 120
    while not list(shards.glob("*.h5")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()  # reaps it and closes its pipe
    done = {p.name: p.stat() for p in shards.glob("*.h5")}
    assert 1 <= len(done) < 6, f"the kill should land mid-run; done: {sorted(done)}"
    for path in shards.glob("*.h5"):  # every file with a final name is whole
        assert len(list(read_shard(path))) == 2

    resumed = run_generate(*overrides)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"{len(done)} already done, {6 - len(done)} to generate" in out
    assert sorted(p.name for p in shards.glob("*.h5")) == [f"shard_{i:05d}.h5" for i in range(6)]
    assert not list(output.rglob(f"*{TEMPORARY_SUFFIX}")), "the killed run's partial files are gone"
    for name, stat in done.items():  # finished shards were not written again
        after = (shards / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert len(read_all(output)) == 12


def test_splits_are_disjoint_fixed_and_shaped_as_named(tmp_path):
    ranges = sorted((s.seed_start, s.seed_start + SPLIT_SEEDS) for s in SPLITS.values())
    assert all(end <= start for (_, end), (start, _) in pairwise(ranges))
    assert SPLITS["train"].seed_start == 0 and SPLITS["eval"].seed_start == 100_000
    config = small_config(
        tmp_path,
        splits=["train", "eval", "objects_6", "objects_8", "unseen_colours", "colour_referral"],
        tasks=["q1", "q3"],
    )
    generate(config)
    manifest = json.loads((Path(config.output_dir) / MANIFEST).read_text())
    seeds_by_split: dict[str, set[int]] = {}
    for shard in manifest["shards"]:
        seeds_by_split.setdefault(shard["split"], set()).update(shard["seeds"])
    names = list(seeds_by_split)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not seeds_by_split[a] & seeds_by_split[b], (a, b)
    records = read_all(Path(config.output_dir))
    for record in records.values():
        state = record.frames[0].symbolic_state["objects"]
        colours = {o["colour"] for o in state.values()}
        unseen = any(set(pair) <= colours for pair in HELD_OUT_COLOUR_PAIRS)
        assert unseen == (record.split == "unseen_colours"), (record.split, colours)
        if record.split in ("objects_6", "objects_8"):
            assert len(state) == int(record.split[-1])
        else:
            assert 3 <= len(state) <= 5
    # Fixed: planning again gives the same seeds.
    again = small_config(tmp_path / "again", splits=config.splits, tasks=["q1", "q3"])
    generate(GenerateConfig(**{**vars(again), "plan_only": True}))
    replanned = json.loads((Path(again.output_dir) / MANIFEST).read_text())
    assert replanned["shards"] == manifest["shards"]


def test_metaclip_caps_head_entries_and_keeps_the_tail():
    entries = ["head"] * 1000 + ["middle"] * 100 + ["tail"] * 10
    curation = metaclip_curate(entries, 100, np.random.default_rng(0))
    kept = Counter(entries[i] for i in curation.kept)
    assert kept["middle"] == 100 and kept["tail"] == 10  # count <= t: kept whole
    assert 70 <= kept["head"] <= 130  # about t of 1000 (binomial(1000, 0.1), 3 sigma ~ 28)
    assert curation.before == {"head": 1000, "middle": 100, "tail": 10}
    assert median_threshold(entries) == 100
    assert imbalance(dict(kept)) < imbalance(curation.before)
    assert uniformity(dict(kept)) > uniformity(curation.before)
    assert uniformity({"a": 5, "b": 5, "c": 5}) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="balance_threshold=0"):
        metaclip_curate(entries, 0, np.random.default_rng(0))


def test_the_manifest_reports_the_balancing(tmp_path):
    config = small_config(tmp_path, episodes=60, tasks=["q1", "q2", "q3"], plan_only=True)
    generate(config)
    split = json.loads((Path(config.output_dir) / MANIFEST).read_text())["splits"]["train"]
    assert sum(split["after"].values()) == split["episodes"] == 60
    assert sum(split["before"].values()) == split["candidates"] >= 90
    t = split["threshold"]
    assert t == median_threshold([e for e, c in split["before"].items() for _ in range(c)])
    assert split["uniformity_before"] == round(uniformity(split["before"]), 4)
    assert split["uniformity_after"] == round(uniformity(split["after"]), 4)
    assert split["uniformity_after"] > split["uniformity_before"], "balancing evens entries out"
    for entry, count in split["after"].items():
        assert count <= split["before"][entry]
        assert entry.split(" | ")[0] in ("q1", "q2", "q3")


def test_dataset_yields_training_examples_with_several_loader_workers(tmp_path):
    config = small_config(tmp_path)
    generate(config)
    dataset = EpisodeDataset(config.output_dir, "train")
    records = read_all(Path(config.output_dir))
    assert len(dataset) == sum(len(r.frames) for r in records.values() if r.split == "train")
    example = dataset[1]
    record = records[example["seed"]]
    frame = record.frames[example["frame"]]
    assert example["target"] == frame.target and example["instruction"] == record.instruction
    assert example["history"] == [f.target for f in record.frames[: example["frame"]]]
    assert np.array_equal(example["observation"][keys.RGB].numpy(), frame.observation[keys.RGB])

    def batches(workers: int) -> list[dict]:
        loader = DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate_examples)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert [b["target"] for b in serial] == [b["target"] for b in parallel]
    for a, b in zip(serial, parallel, strict=True):
        for key in a["observation"]:
            assert np.array_equal(a["observation"][key].numpy(), b["observation"][key].numpy())
    assert serial[0]["observation"][keys.RGB].shape == (4, 2, 32, 32, 3)

    state_only = EpisodeDataset(config.output_dir, "eval", keys=["objects", "object_mask"])
    assert set(state_only[0]["observation"]) == {"objects", "object_mask"}
    questions = EpisodeDataset(config.output_dir, "train", families=["q1"])
    assert {questions[i]["family"] for i in range(len(questions))} == {"q1"}


def test_dataset_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m embodied.generate"):
        EpisodeDataset(tmp_path, "train")
    config = small_config(tmp_path, plan_only=True)
    generate(config)
    with pytest.raises(ValueError, match=r"holds \['train', 'eval'\]"):
        EpisodeDataset(config.output_dir, "objects_6")
    with pytest.raises(FileNotFoundError, match="not generated yet"):
        EpisodeDataset(config.output_dir, "train")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"splits": ["test"]}, r"allowed \['train', 'eval', 'objects_6'"),
        ({"tasks": ["p9"]}, r"tasks=\['p9'\]: allowed"),
        ({"shards": "5:2"}, r"shards='5:2': expected START:END"),
        ({"shards": "x"}, r"shards='x'"),
        ({"splits": ["colour_referral"], "tasks": ["q1"]}, "name single objects"),
        ({"workers": 0}, "workers=0: must be >= 1"),
        ({"mistake_rate": 1.0}, r"mistake_rate=1.0: must be in \[0, 1\)"),
        ({"mistake_rate": 0.1, "mistake_picks": "covered"}, r"allowed \('any', 'blocked'\)"),
        ({"mistake_picks": "blocked"}, "only used with mistake_rate > 0"),
        ({"env": KitchenEnvConfig(), "tasks": None, "splits": ["objects_8"]}, r"allowed \['train'"),
    ],
)
def test_bad_generate_config_names_the_field(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        small_config(tmp_path, **overrides)


def test_generate_command_line_refuses_bad_overrides(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "embodied.generate", "splits=[nope]", f"output_dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "allowed ['train', 'eval'" in run.stderr


def test_worker_envs_render_only_where_the_planner_looks(make_env):
    env = make_env(observe_images=False, **SMALL_TABLETOP)
    observation, _ = env.reset(seed=0)
    assert keys.RGB not in observation
    sim = env.unwrapped
    assert sim.current_observation(images=True)[keys.RGB].shape == (2, 32, 32, 3)
    assert keys.RGB not in sim.current_observation()


def test_kitchen_data_records_skill_failures_and_their_injected_causes(tmp_path):
    config = small_config(
        tmp_path,
        env=KitchenEnvConfig(image_size=32, views=["front"]),
        tasks=["success_detection"],
        splits=["train"],
        episodes=6,
    )
    summary = generate(config)
    attempts = [r.attempt for r in read_all(Path(config.output_dir)).values()]
    assert len(attempts) == 6 and all(a["call"] for a in attempts)
    failed = [a for a in attempts if not a["success"]]
    assert summary["failed_skills"] == len(failed) >= 1
    assert summary["injected_failures"] == sum(bool(a["injected"]) for a in failed) >= 1


def test_mistaken_picks_aimed_at_blocked_objects_take_a_covered_cube(make_env):
    env = make_env(observe_images=False, stack_probability=1.0, **SMALL_TABLETOP)
    aimed = MistakenOraclePlanner(0.999, seed=0, picks="blocked")
    anywhere = MistakenOraclePlanner(0.999, seed=0)
    scenes_with_a_stack, unaimed_clear_picks = 0, 0
    for seed in range(8):
        observation, _ = env.reset(seed=seed, options={"task": "p1"})
        sim = env.unwrapped
        blocked = {f"pick({e})" for e in sim.entities if sim.pick_blocker(e) is not None}
        if not blocked:
            continue
        scenes_with_a_stack += 1
        assert aimed.next_step(sim, observation, []) in blocked
        unaimed_clear_picks += anywhere.next_step(sim, observation, []) not in blocked
    assert scenes_with_a_stack >= 4
    assert unaimed_clear_picks >= 1, "unaimed, a mistaken pick may take a clear cube"
    with pytest.raises(ValueError, match=r"picks='covered': allowed \('any', 'blocked'\)"):
        MistakenOraclePlanner(0.1, seed=0, picks="covered")


def test_oracle_mistakes_run_in_physics_and_the_frames_keep_the_right_step(tmp_path):
    config = small_config(
        tmp_path,
        env=TabletopEnvConfig(**{**SMALL_TABLETOP, "stack_probability": 1.0}),
        tasks=["p1", "p2"],
        splits=["train"],
        mistake_rate=0.4,
    )
    summary = generate(config)
    records = read_all(Path(config.output_dir)).values()
    assert (
        json.loads((Path(config.output_dir) / MANIFEST).read_text())["generator"]["mistake_rate"]
        == 0.4
    )
    mistaken = [(r, t) for r in records for t, f in enumerate(r.frames) if f.executed]
    assert len(mistaken) >= 3, "about 40% of the pick and place steps"
    for record, t in mistaken:
        frame = record.frames[t]
        assert frame.executed != frame.target and frame.target != "done()"
        assert frame.executed.split("(")[0] in ("pick", "place")
    blocked = [
        record.frames[t] for record, t in mistaken if "blocked" in record.frames[t].skill_reason
    ]
    assert blocked and all(f.skill_success == 0 for f in blocked), "a covered cube's pick fails"
    assert summary["success_rate"] >= 0.75, "the oracle finds its way back from its mistakes"
    dataset = EpisodeDataset(config.output_dir, "train")
    examples = [dataset[i] for i in range(len(dataset))]
    for record, t in mistaken:
        if t + 1 < len(record.frames):
            later = next(e for e in examples if e["seed"] == record.seed and e["frame"] == t + 1)
            assert later["history"][t] == record.frames[t].executed, "the history is what ran"
            assert later["history_success"][t] == bool(record.frames[t].skill_success == 1)
            failed = record.frames[t].skill_success == 0
            assert later["history_reasons"][t] == (record.frames[t].skill_reason if failed else "")
