"""A PyTorch Dataset over generated shards: one example per frame, ready to train on.

An example is what the planner sees and what it should write at one step::

    {
      "observation": {"rgb": (V, H, W, 3) uint8, "depth": (V, H, W) float32, "objects": ...},
      "instruction": "How to grasp obj_3?",      # the task's instruction or question
      "history": ["pick(obj_1)", ...],            # the steps that ran before (plans)
      "history_success": [True, ...],             # how each of those went
      "history_reasons": ["", ...],               # why a failed one failed ("" otherwise)
      "target": "place(obj_1, table)",            # the next step, or the answer
      "family": "p1", "kind": "plan", "split": "train", "seed": 12, "frame": 1,
      "entities": ["obj_1", ...],                 # obj_j is row j-1 of "objects"
      "symbolic_state": {"held": None, "objects": {...}},  # the simulator's, at this frame
    }

``collate_examples`` batches them: observation arrays stacked into tensors, texts kept as lists.

Safe with several DataLoader workers: the index is built once from the manifest and the shards'
small datasets, and every process opens its own read-only HDF5 handles on first use (an h5py
handle must not cross a fork).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from embodied.data.storage import OBSERVATION_SKIP, check_format, executed_steps, ran

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FrameIndex:
    """Where one example lives: shard file, episode group, frame."""

    shard: int  # position in EpisodeDataset.shards
    episode: str
    frame: int


class EpisodeDataset(Dataset[dict[str, Any]]):
    """Every frame of one split of a generated dataset.

    ``families`` keeps only those task families; ``keys`` reads only those observation arrays
    (e.g. ``{"objects", "object_mask"}`` for a state-only model: images are then never
    decompressed); ``successful_only`` drops the frames of episodes the oracle did not finish.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        families: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        successful_only: bool = False,
    ) -> None:
        self.root = Path(root)
        manifest_path = self.root / MANIFEST
        if not manifest_path.exists():
            raise FileNotFoundError(
                f"{manifest_path} not found: generate a dataset there first "
                f"(python -m embodied.generate output_dir={self.root})"
            )
        manifest = json.loads(manifest_path.read_text())
        if split not in manifest["splits"]:
            raise ValueError(f"split={split!r}: {self.root} holds {list(manifest['splits'])}")
        self.split = split
        self.keys = set(keys) if keys is not None else None
        shards = [s for s in manifest["shards"] if s["split"] == split]
        missing = [s["file"] for s in shards if not (self.root / s["file"]).exists()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} shard(s) of split {split!r} are not generated yet (first: "
                f"{missing[0]}); rerun python -m embodied.generate with the same config"
            )
        self.shards = [self.root / s["file"] for s in shards]
        self.index: list[FrameIndex] = []
        for position, path in enumerate(self.shards):
            with h5py.File(path, "r") as file:
                check_format(file, path)
                for name, group in file["episodes"].items():
                    if families is not None and group.attrs["family"] not in families:
                        continue
                    if successful_only and not group.attrs["success"]:
                        continue
                    frames = len(group["frames"]["target"])
                    self.index += [FrameIndex(position, name, t) for t in range(frames)]
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index)

    def _file(self, shard: int) -> h5py.File:
        if os.getpid() != self._pid:  # a DataLoader worker: its own handles, never the parent's
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(self.shards[shard], "r")
        return self._files[shard]

    def __getitem__(self, item: int) -> dict[str, Any]:
        where = self.index[item]
        group = self._file(where.shard)["episodes"][where.episode]
        frames, t = group["frames"], where.frame
        observation = {
            key: torch.from_numpy(np.asarray(frames[key][t]))
            for key in frames
            if key not in OBSERVATION_SKIP and (self.keys is None or key in self.keys)
        }
        targets = [_text(v) for v in frames["target"][: t + 1]]
        history = ran(targets[:t], executed_steps(frames)[:t])
        attrs = group.attrs
        return {
            "observation": observation,
            "instruction": _text(attrs["instruction"]),
            "history": history,
            "history_success": [bool(s == 1) for s in frames["skill_success"][:t]],
            "history_reasons": [
                _text(reason) if success == 0 else ""
                for success, reason in zip(
                    frames["skill_success"][:t], frames["skill_reason"][:t], strict=True
                )
            ],
            "target": targets[t],
            "family": _text(attrs["family"]),
            "kind": _text(attrs["kind"]),
            "split": _text(attrs["split"]),
            "seed": int(attrs["seed"]),
            "frame": t,
            "entities": json.loads(_text(attrs["entities"])),
            "symbolic_state": json.loads(_text(frames["symbolic_state"][t])),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}  # open handles stay with the process that opened them
        return state

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files = {}


def collate_examples(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch: observation arrays stacked to (B, ...) tensors, every other field a list."""
    batch: dict[str, Any] = {
        "observation": {
            key: torch.stack([e["observation"][key] for e in examples])
            for key in examples[0]["observation"]
        }
    }
    for key in examples[0]:
        if key != "observation":
            batch[key] = [e[key] for e in examples]
    return batch


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
