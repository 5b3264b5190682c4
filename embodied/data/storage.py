"""Episode records in HDF5 shards: the on-disk layout, one writer and one reader.

A shard is one HDF5 file (h5py), readable without this code::

    shard_00003.h5
      attrs: format, version, split, shard, seeds (int64 array), generator (JSON)
      episodes/seed_000123/                     one group per episode, in seed order
        attrs: seed, split, env, family, kind, instruction, answer, success, progress,
               scene_config, entities (JSON), attempt (JSON, "" unless the robot tried a
               skill before being asked about it)
        frames/<observation key>  (T, ...)      every array of the observation, as the env
                                                gives it (rgb uint8, depth float32 metres,
                                                segmentation int32, objects, proprio, cameras),
                                                gzip-compressed: lossless
        frames/symbolic_state     (T,) str      JSON of the simulator's symbolic state
        frames/target             (T,) str      what the planner should write at this frame:
                                                the next plan step, or the answer
        frames/skill_success      (T,) int8     1 the step's skill succeeded, 0 failed,
                                                -1 nothing ran (done(), an answer)
        frames/skill_reason       (T,) str      why it failed ("" otherwise)
        frames/injected           (T,) str      the failure the env injected ("slip", "stuck")
        frames/control_steps      (T,) int32    env.step calls the skill took
        frames/executed           (T,) str      the step that ran instead of the target ("":
                                                the target ran): generate's mistake_rate
        demos/<k>/                              generate's demos=true: the k-th skill call of
                                                the episode, every control step of it
          attrs: call, success, reason, injected
          <observation key>       (S, ...)      the observation before each of the S - 1
                                                actions, and where it stopped (rgb,
                                                segmentation, proprio, ...), gzip
          command                 (S, 5) float32  the tool target the skill commanded then: x,
                                                y, z (m), yaw (rad), gripper width (m); the
                                                last row is the state it ended in (the stop)

A plan episode has one frame per re-planning step: the observation the planner saw, and the step
it should write; the step history of frame t is what ran before it, ``executed[:t]``, an empty
one standing for its ``target`` (shards written before ``executed`` existed: ``target[:t]``). A
question has one frame: the scene when it is asked. Shards are written under ``<name>.tmp`` and
renamed when complete, so a file with the final name is always whole.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FORMAT = "embodied-episodes"
VERSION = 1
SHARD_SUFFIX = ".h5"
TEMPORARY_SUFFIX = ".tmp"
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
"""Lossless: gzip after byte shuffling (which helps float depth and int segmentation most)."""
NOT_RUN = -1
"""skill_success of a frame whose output ran no skill (done(), an answer)."""
TEXT = h5py.string_dtype(encoding="utf-8")


@dataclass
class Frame:
    """What the planner saw at one step, what it should write, and how the step went."""

    observation: dict[str, np.ndarray]
    symbolic_state: dict[str, Any]
    target: str
    skill_success: int = NOT_RUN
    skill_reason: str = ""
    injected: str = ""
    control_steps: int = 0
    executed: str = ""
    """The step that ran at this frame when it was not ``target`` (a planner's mistake, which
    the target corrects); "" when the target ran."""


@dataclass
class Demo:
    """One scripted skill call, step by step: a behaviour-cloning demonstration."""

    call: str
    success: bool
    reason: str
    injected: str
    observations: dict[str, np.ndarray]
    """Observation key -> (S, ...): what the skill saw before each of its S - 1 actions and,
    last, the state it stopped in."""
    commands: np.ndarray
    """(S, 5) the tool target of each action (x, y, z, yaw, gripper width); the last row holds
    the tool where it stopped."""


@dataclass
class EpisodeRecord:
    """One generated episode: its task, its outcome and its frames."""

    seed: int
    split: str
    env: str
    family: str
    kind: str
    instruction: str
    answer: str
    success: bool
    progress: float
    scene_config: str
    entities: list[str]
    frames: list[Frame] = field(default_factory=list)
    attempt: dict[str, Any] = field(default_factory=dict)
    """For questions asked after the robot tried a skill: the call, its outcome, the injection."""
    demos: list[Demo] = field(default_factory=list)
    """Every skill call of the episode step by step (only when generated with demos=true)."""

    @property
    def group_name(self) -> str:
        return f"seed_{self.seed:06d}"


def shard_name(index: int) -> str:
    return f"shard_{index:05d}{SHARD_SUFFIX}"


def temporary_path(path: Path) -> Path:
    """Where a file is written before it is renamed to ``path``: this host and process only."""
    return path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}{TEMPORARY_SUFFIX}")


def is_abandoned(temporary: Path) -> bool:
    """Whether a temporary file's writer, named in it, is a process of this host that has died
    (a killed run's leftover). Files of other hosts are never judged: their writers may run."""
    parts = temporary.name.split(".")  # shard_00003.h5.<host>.<pid>.tmp
    try:
        host, pid = ".".join(parts[2:-2]), int(parts[-2])
    except (IndexError, ValueError):
        return False
    return host == socket.gethostname() and not _running(pid)


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a killed worker nobody has reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill()
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class ShardWriter:
    """Writes episodes into ``<path>.<host>.<pid>.tmp``; ``close()`` renames it to ``path``.

    Used as a context manager: leaving the block with an error deletes the temporary file, so
    nothing but whole shards ever carries the final name. The host and process in the
    temporary name keep two writers of one shard apart, and tell ``is_abandoned`` whether the
    writer still runs.
    """

    def __init__(self, path: Path, attrs: Mapping[str, Any]) -> None:
        self.path = path
        self.temporary = temporary_path(path)
        self.file = h5py.File(self.temporary, "w")
        self.file.attrs["format"] = FORMAT
        self.file.attrs["version"] = VERSION
        for key, value in attrs.items():
            self.file.attrs[key] = value
        self.episodes = self.file.create_group("episodes")

    def write(self, record: EpisodeRecord) -> None:
        group = self.episodes.create_group(record.group_name)
        for key in ("seed", "split", "env", "family", "kind", "instruction", "answer"):
            group.attrs[key] = getattr(record, key)
        group.attrs["success"] = bool(record.success)
        group.attrs["progress"] = float(record.progress)
        group.attrs["scene_config"] = record.scene_config
        group.attrs["entities"] = json.dumps(record.entities)
        group.attrs["attempt"] = json.dumps(record.attempt) if record.attempt else ""
        frames = group.create_group("frames")
        for key in record.frames[0].observation:
            stacked = np.stack([frame.observation[key] for frame in record.frames])  # (T, ...)
            chunks = (1, *stacked.shape[1:])  # one frame per chunk: a frame reads alone
            frames.create_dataset(key, data=stacked, chunks=chunks, **COMPRESSION)
        texts = {
            "symbolic_state": [json.dumps(f.symbolic_state) for f in record.frames],
            "target": [f.target for f in record.frames],
            "skill_reason": [f.skill_reason for f in record.frames],
            "injected": [f.injected for f in record.frames],
            "executed": [f.executed for f in record.frames],
        }
        for key, values in texts.items():
            frames.create_dataset(key, data=np.array(values, dtype=object), dtype=TEXT)
        frames.create_dataset(
            "skill_success", data=np.array([f.skill_success for f in record.frames], np.int8)
        )
        frames.create_dataset(
            "control_steps", data=np.array([f.control_steps for f in record.frames], np.int32)
        )
        for k, demo in enumerate(record.demos):
            demo_group = group.create_group(f"demos/{k:03d}")
            for key in ("call", "success", "reason", "injected"):
                demo_group.attrs[key] = getattr(demo, key)
            for key, array in {**demo.observations, "command": demo.commands}.items():
                chunks = (1, *array.shape[1:])
                demo_group.create_dataset(key, data=array, chunks=chunks, **COMPRESSION)

    def close(self) -> None:
        self.file.close()
        os.replace(self.temporary, self.path)  # atomic on POSIX: the shard appears whole

    def abort(self) -> None:
        self.file.close()
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, error_type: object, *_: object) -> None:
        if error_type is None:
            self.close()
        else:
            self.abort()


OBSERVATION_SKIP = frozenset(
    {
        "symbolic_state",
        "target",
        "skill_reason",
        "injected",
        "skill_success",
        "control_steps",
        "executed",
    }
)
"""Datasets under frames/ that are not observation arrays."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def executed_steps(frames: h5py.Group) -> list[str]:
    """``frames/executed`` of an episode ("" per frame in shards written before it existed)."""
    if "executed" not in frames:
        return [""] * len(frames["target"])
    return [_text(v) for v in frames["executed"][()]]


def ran(targets: list[str], executed: list[str]) -> list[str]:
    """The steps that ran: each frame's executed step, or its target where that ran."""
    return [e or t for t, e in zip(targets, executed, strict=True)]


def read_demos(group: h5py.Group, keys: set[str] | None = None) -> list[Demo]:
    """The demonstrations stored in one episode group (none if it has none); ``keys`` limits
    the observation arrays read."""
    demos = []
    for name in group.get("demos", {}):
        demo = group["demos"][name]
        observations = {
            key: demo[key][()] for key in demo if key != "command" and (keys is None or key in keys)
        }
        demos.append(
            Demo(
                call=_text(demo.attrs["call"]),
                success=bool(demo.attrs["success"]),
                reason=_text(demo.attrs["reason"]),
                injected=_text(demo.attrs["injected"]),
                observations=observations,
                commands=demo["command"][()],
            )
        )
    return demos


def read_episode(
    group: h5py.Group, keys: set[str] | None = None, demos: bool = False
) -> EpisodeRecord:
    """The record stored in one episode group; ``keys`` limits the observation arrays read,
    ``demos`` reads the demonstrations too."""
    attrs = group.attrs
    frames_group = group["frames"]
    observation_keys = [
        k for k in frames_group if k not in OBSERVATION_SKIP and (keys is None or k in keys)
    ]
    arrays = {key: frames_group[key][()] for key in observation_keys}
    texts = {
        key: [_text(v) for v in frames_group[key][()]]
        for key in ("symbolic_state", "target", "skill_reason", "injected")
    }
    texts["executed"] = executed_steps(frames_group)
    success = frames_group["skill_success"][()]
    steps = frames_group["control_steps"][()]
    frames = [
        Frame(
            observation={key: arrays[key][t] for key in observation_keys},
            symbolic_state=json.loads(texts["symbolic_state"][t]),
            target=texts["target"][t],
            skill_success=int(success[t]),
            skill_reason=texts["skill_reason"][t],
            injected=texts["injected"][t],
            control_steps=int(steps[t]),
            executed=texts["executed"][t],
        )
        for t in range(len(texts["target"]))
    ]
    attempt = _text(attrs["attempt"])
    return EpisodeRecord(
        seed=int(attrs["seed"]),
        split=_text(attrs["split"]),
        env=_text(attrs["env"]),
        family=_text(attrs["family"]),
        kind=_text(attrs["kind"]),
        instruction=_text(attrs["instruction"]),
        answer=_text(attrs["answer"]),
        success=bool(attrs["success"]),
        progress=float(attrs["progress"]),
        scene_config=_text(attrs["scene_config"]),
        entities=json.loads(_text(attrs["entities"])),
        frames=frames,
        attempt=json.loads(attempt) if attempt else {},
        demos=read_demos(group, keys) if demos else [],
    )


def read_shard(
    path: Path, keys: set[str] | None = None, demos: bool = False
) -> Iterator[EpisodeRecord]:
    """Every episode of a shard, in seed order."""
    with h5py.File(path, "r") as file:
        check_format(file, path)
        for name in file["episodes"]:
            yield read_episode(file["episodes"][name], keys, demos)


def check_format(file: h5py.File, path: Path) -> None:
    if _text(file.attrs.get("format", "")) != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT} shard (attrs['format'] is missing or differs)")
    if int(file.attrs["version"]) != VERSION:
        version = file.attrs["version"]
        raise ValueError(f"{path}: format version {version}, this code reads {VERSION}")
