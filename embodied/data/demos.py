"""The demonstrations of a dataset (``python -m embodied.generate demos=true``) as training
arrays for the learned skills: every control step of every successful scripted skill call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embodied.data.dataset import MANIFEST
from embodied.data.storage import read_shard
from envs import keys
from envs.cameras import Camera
from envs.plan import SkillCall, parse_step
from policies.learned import (
    MASKS,
    VERBS,
    action_labels,
    demonstration_memory,
    done_labels,
    previous_proprio,
)
from policies.learned_config import SkillPolicyConfig

DEMO_INPUTS = {keys.RGB, keys.SEGMENTATION, keys.PROPRIO}


@dataclass
class DemoArrays:
    """Every step of the kept demonstrations, stacked (N steps)."""

    rgb: np.ndarray
    """(N, V, H, W, 3) uint8."""
    segmentation: np.ndarray
    """(N, V, H, W) int8 segmentation codes."""
    codes: np.ndarray
    """(N, MASKS) int8: the segmentation code of the call's object and target (0: none)."""
    memory: np.ndarray
    """(N, MASKS, 4) float32: where the skill had last located its object and target, as it
    runs (policies.learned.remember)."""
    proprio: np.ndarray
    """(N, PROPRIO_DIM) float32."""
    previous: np.ndarray
    """(N, PROPRIO_DIM) float32: the proprio of the step before, in the same demonstration."""
    verbs: np.ndarray
    """(N,) int64 index into VERBS."""
    actions: np.ndarray
    """(N, ACTION_DIM) float32 labels (policies.learned.action_labels)."""
    done: np.ndarray
    """(N,) float32: 1 on the last steps of a demonstration (policies.learned.DONE_STEPS)."""
    demo: np.ndarray
    """(N,) int64: which demonstration a step belongs to."""

    def __len__(self) -> int:
        return len(self.verbs)

    def masks(self, index: np.ndarray) -> np.ndarray:
        """(B, V, MASKS, H, W) uint8: where the call's object and target are seen."""
        return code_masks(self.segmentation[index], self.codes[index])


def code_masks(segmentation: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(B, V, MASKS, H, W) uint8 from segmentation (B, V, H, W) and the codes (B, MASKS) to
    mask (0: none)."""
    seg = segmentation[:, :, None]  # (B, V, 1, H, W)
    codes = codes[:, None, :, None, None]  # (B, 1, MASKS, 1, 1)
    return ((seg == codes) & (codes > 0)).astype(np.uint8)


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The dataset's manifest; a missing one says how to generate demonstrations."""
    path = Path(root) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: generate demonstrations first (python -m embodied.generate "
            f"demos=true output_dir={root})"
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def dataset_views(root: str | Path) -> tuple[str, list[str], int]:
    """The env id, camera views and image size a dataset was rendered with."""
    env = read_manifest(root)["generator"]["env"]
    return str(env["id"]), list(env["views"]), int(env["image_size"])


def load_demos(root: str | Path, split: str, config: SkillPolicyConfig) -> DemoArrays:
    """The successful demonstrations of ``split`` (calls whose failure the env injected, and
    calls that failed, teach nothing to copy), as arrays."""
    manifest = read_manifest(root)
    if not manifest["generator"].get("demos"):
        raise ValueError(
            f"{root} holds no demonstrations: generate it with demos=true (python -m "
            f"embodied.generate demos=true output_dir=...)"
        )
    fields = (
        "rgb",
        "seg",
        "codes",
        "memory",
        "proprio",
        "previous",
        "verbs",
        "actions",
        "done",
        "demo",
    )
    cameras = [Camera(view, config.image_size) for view in config.views]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fields}
    count = 0
    for shard in manifest["shards"]:
        if shard["split"] != split:
            continue
        for record in read_shard(Path(root) / shard["file"], DEMO_INPUTS, demos=True):
            for demo in record.demos:
                call = parse_step(demo.call)
                steps = len(demo.commands)
                if not isinstance(call, SkillCall) or call.verb not in VERBS:
                    continue
                if not demo.success or demo.injected or steps < 2:
                    continue
                names = record.entities
                codes = [
                    names.index(a) + 1 if a in names else 0 for a in [*call.args, None][:MASKS]
                ]
                proprio = demo.observations[keys.PROPRIO]
                segmentation = demo.observations[keys.SEGMENTATION].astype(np.int8)
                step_codes = np.tile(np.array(codes, np.int8), (steps, 1))
                masks = code_masks(segmentation, step_codes)
                parts["rgb"].append(demo.observations[keys.RGB])
                parts["seg"].append(segmentation)
                parts["codes"].append(step_codes)
                parts["memory"].append(demonstration_memory(masks, cameras))
                parts["proprio"].append(proprio.astype(np.float32))
                parts["previous"].append(previous_proprio(proprio).astype(np.float32))
                parts["verbs"].append(np.full(steps, VERBS.index(call.verb), np.int64))
                parts["actions"].append(action_labels(demo.commands, proprio, config))
                parts["done"].append(done_labels(steps))
                parts["demo"].append(np.full(steps, count, np.int64))
                count += 1
    if not count:
        raise ValueError(f"{root}: split {split!r} holds no successful demonstrations")
    stacked = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    return DemoArrays(
        rgb=stacked["rgb"],
        segmentation=stacked["seg"],
        codes=stacked["codes"],
        memory=stacked["memory"],
        proprio=stacked["proprio"],
        previous=stacked["previous"],
        verbs=stacked["verbs"],
        actions=stacked["actions"],
        done=stacked["done"],
        demo=stacked["demo"],
    )
