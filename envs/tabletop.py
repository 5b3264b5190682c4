"""``embodied/Tabletop-v0``: a Panda arm at a table with coloured cubes, PaLM-E's TAMP world."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet
from gymnasium import spaces
from pybullet_utils.bullet_client import BulletClient

from envs import keys
from envs.cameras import CAMERA_PLACEMENTS, FAR, Camera, fuse_point_cloud
from envs.regions import TABLE_HEIGHT, TABLE_X, TABLE_Y
from envs.robot import MAX_GRIPPER_WIDTH, Panda
from envs.scene import (
    CubeSpec,
    SymbolicState,
    build_static_scene,
    read_symbolic_state,
    sample_layout,
    spawn_cubes,
)
from envs.tasks import TASK_FAMILIES, PlanTask, Task

OBJECT_CAPACITY = 8  # rows of the objects observation: the most cubes a scene can hold
WORLD_BOUND = 5.0  # metres: every world-frame coordinate observed lies within +-WORLD_BOUND
MAX_JOINT_SPEED = 10.0  # rad/s: observed joint velocities are clipped to this (Panda max: 2.6)
PHYSICS_HZ = 240
SETTLE_STEPS = 60  # physics steps after spawning so that stacks come to rest


@dataclass
class TabletopConfig:
    """Everything that shapes a tabletop episode; validated on construction."""

    num_objects: int | None = None
    """A fixed number of cubes (3-8), or None to draw it from [min_objects, max_objects]."""
    min_objects: int = 3
    """Fewest cubes when num_objects is None."""
    max_objects: int = 5
    """Most cubes when num_objects is None (training has 3-5; 6 and 8 test generalization)."""
    tasks: list[str] = field(default_factory=lambda: ["p1", "p2", "q1", "q2", "q3", "q4"])
    """Task families drawn uniformly at reset (``options={"task": ...}`` picks one)."""
    views: list[str] = field(default_factory=lambda: ["front", "left", "right"])
    """Camera views observed, by name (envs.cameras.CAMERA_PLACEMENTS)."""
    image_size: int = 64
    """Height and width of every observed view, pixels."""
    observe_images: bool = True
    """Render rgb/depth/segmentation each step; False leaves them out (faster, state-only)."""
    point_cloud: bool = False
    """Add a fused, voxel-downsampled coloured point cloud with per-point labels (open3d)."""
    point_cloud_points: int = 2048
    """Points in the point cloud observation (padded or evenly subsampled)."""
    voxel_size: float = 0.01
    """Voxel edge for the point cloud downsampling, metres."""
    stack_probability: float = 0.5
    """Chance that a scene starts with one or two cubes stacked on others."""
    control_hz: int = 20
    """Control steps per simulated second; an env.step is PHYSICS_HZ / control_hz physics steps."""
    render_size: int = 192
    """Height and width of each view in render() (videos)."""

    def __post_init__(self) -> None:
        if self.num_objects is not None and not 1 <= self.num_objects <= OBJECT_CAPACITY:
            raise ValueError(
                f"num_objects={self.num_objects}: allowed 1..{OBJECT_CAPACITY} or None"
            )
        if not 1 <= self.min_objects <= self.max_objects <= OBJECT_CAPACITY:
            raise ValueError(
                f"min_objects={self.min_objects}, max_objects={self.max_objects}: "
                f"need 1 <= min_objects <= max_objects <= {OBJECT_CAPACITY}"
            )
        unknown = [t for t in self.tasks if t not in TASK_FAMILIES]
        if unknown or not self.tasks:
            raise ValueError(f"tasks={list(self.tasks)}: allowed {sorted(TASK_FAMILIES)}")
        bad_views = [v for v in self.views if v not in CAMERA_PLACEMENTS]
        if bad_views or not self.views:
            raise ValueError(f"views={list(self.views)}: allowed {sorted(CAMERA_PLACEMENTS)}")
        for name in ("image_size", "render_size", "point_cloud_points", "control_hz"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be a positive integer")
        if PHYSICS_HZ % self.control_hz:
            raise ValueError(f"control_hz={self.control_hz}: must divide {PHYSICS_HZ}")
        if not 0.0 <= self.stack_probability <= 1.0:
            raise ValueError(f"stack_probability={self.stack_probability}: must be in [0, 1]")
        if self.voxel_size <= 0:
            raise ValueError(f"voxel_size={self.voxel_size}: must be positive")
        if self.point_cloud and not self.observe_images:
            raise ValueError(
                "point_cloud=True needs observe_images=True (it fuses the depth views)"
            )


class TabletopEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """
    ## Description
    A Franka Panda stands at the near edge of a table (robot base at the origin, facing +x) with
    3-8 cubes of varied sizes (3.5-5 cm) and named colours, some stacked. Each episode carries one
    task from PaLM-E's TAMP families: planning (p1 grasp, p2 stack) or a question (q1-q4), given
    in ``info["instruction"]``. Skills in ``policies/`` turn plan steps into actions.

    ## Action Space
    ``Box(8)``: target angles of the 7 arm joints (rad, clipped to the joint limits) and the target
    gripper width (0-0.08 m). Position-controlled motors track them through physics.

    ## Observation Space
    A Dict, keys in ``envs.keys``: ``rgb``/``depth``/``segmentation`` (V views, configurable), the
    ``objects`` state matrix with its ``object_mask``, ``proprio``, camera ``intrinsics`` and
    ``extrinsics``, and optionally ``point_cloud``/``point_labels``/``point_mask``.

    ## Rewards
    1.0 on steps where the planning task's success predicate holds, else 0.0.

    ## Starting State
    Cubes at random non-overlapping poses in the workspace (50% of scenes with stacks), arm at home.

    ## Episode End
    Terminated only with ``terminate_on_success=True`` once a planning task succeeds (the planner
    otherwise ends the episode with ``done()``); truncated by the registered time limit.

    ## Arguments
    The fields of ``TabletopConfig`` as keyword arguments, plus ``render_mode="rgb_array"`` and
    ``terminate_on_success``.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self, render_mode: str | None = None, terminate_on_success: bool = False, **config: Any
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: allowed None or 'rgb_array'")
        self.config = TabletopConfig(**config)
        self.render_mode = render_mode
        self.terminate_on_success = terminate_on_success
        self.client = BulletClient(connection_mode=pybullet.DIRECT)
        self.cameras = [Camera(view, self.config.image_size) for view in self.config.views]
        self.render_cameras = [Camera(view, self.config.render_size) for view in self.config.views]
        self._intrinsics = np.stack([cam.intrinsics for cam in self.cameras])  # (V, 3, 3)
        self._extrinsics = np.stack([cam.extrinsics for cam in self.cameras])  # (V, 4, 4)
        self.substeps = PHYSICS_HZ // self.config.control_hz

        self.robot: Panda
        self.table: int
        self.cubes: list[CubeSpec] = []
        self.bodies: dict[str, int] = {}
        self.task: Task | None = None
        self._segmentation_lookup = np.zeros(1, dtype=np.int32)
        self._build_world()

        self.action_space = spaces.Box(
            low=np.append(self.robot.limits.lower, 0.0).astype(np.float32),
            high=np.append(self.robot.limits.upper, MAX_GRIPPER_WIDTH).astype(np.float32),
            dtype=np.float32,
        )
        self.observation_space = self._make_observation_space()  # type: ignore[assignment]

    # --- world -----------------------------------------------------------------------------
    def _build_world(self) -> None:
        """Reset the simulation to the robot and the table alone, rebuilt from scratch.

        Rebuilding (rather than removing cubes) makes an episode depend only on its seed.
        """
        self.client.resetSimulation()
        self.client.setTimeStep(1.0 / PHYSICS_HZ)
        self.client.setGravity(0, 0, -9.81)
        self.table = build_static_scene(self.client)
        self.robot = Panda(self.client, base_position=(0.0, 0.0, TABLE_HEIGHT))
        self.robot.reset()
        self.cubes, self.bodies = [], {}

    def _make_observation_space(self) -> spaces.Dict:
        v, s, bound = len(self.config.views), self.config.image_size, WORLD_BOUND
        space: dict[str, spaces.Space[Any]] = {
            keys.OBJECTS: spaces.Box(
                -bound, bound, (OBJECT_CAPACITY, keys.OBJECT_FEATURES), np.float32
            ),
            keys.OBJECT_MASK: spaces.Box(0, 1, (OBJECT_CAPACITY,), np.int8),
            keys.PROPRIO: spaces.Box(
                -MAX_JOINT_SPEED, MAX_JOINT_SPEED, (keys.PROPRIO_DIM,), np.float32
            ),
            keys.INTRINSICS: spaces.Box(0, 10 * s, (v, 3, 3), np.float32),
            keys.EXTRINSICS: spaces.Box(-bound, bound, (v, 4, 4), np.float32),
        }
        if self.config.observe_images:
            space[keys.RGB] = spaces.Box(0, 255, (v, s, s, 3), np.uint8)
            space[keys.DEPTH] = spaces.Box(0, FAR, (v, s, s), np.float32)
            space[keys.SEGMENTATION] = spaces.Box(
                keys.SEG_ROBOT, OBJECT_CAPACITY, (v, s, s), np.int32
            )
        if self.config.point_cloud:
            p = self.config.point_cloud_points
            space[keys.POINT_CLOUD] = spaces.Box(-bound, bound, (p, 6), np.float32)
            space[keys.POINT_LABELS] = spaces.Box(keys.SEG_ROBOT, OBJECT_CAPACITY, (p,), np.int32)
            space[keys.POINT_MASK] = spaces.Box(0, 1, (p,), np.int8)
        return spaces.Dict(space)

    # --- gymnasium API ---------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        family_name = options.get("task")
        if family_name is None:
            family_name = self.config.tasks[int(self.np_random.integers(len(self.config.tasks)))]
        if family_name not in TASK_FAMILIES:
            raise ValueError(f"options['task']={family_name!r}: allowed {sorted(TASK_FAMILIES)}")
        family = TASK_FAMILIES[family_name]
        num_objects = options.get("num_objects", self.config.num_objects)
        if num_objects is not None and not 1 <= int(num_objects) <= OBJECT_CAPACITY:
            raise ValueError(f"options['num_objects']={num_objects}: allowed 1..{OBJECT_CAPACITY}")
        for _ in range(20):  # a scene that admits a task of this family
            if num_objects is None:
                low, high = self.config.min_objects, self.config.max_objects
                count = int(self.np_random.integers(low, high + 1))
            else:
                count = int(num_objects)
            # The family bounds the count: a line needs 4-7 blocks, for example.
            count = min(max(count, family.min_objects), family.max_objects)
            self._build_world()
            colours = family.choose_colours(self.np_random, count)
            self.cubes, placements = sample_layout(
                self.np_random, colours, self.config.stack_probability
            )
            self.bodies = spawn_cubes(self.client, self.cubes, placements)
            for _ in range(SETTLE_STEPS):
                self.client.stepSimulation()
            self.task = family.sample(self.symbolic_state(), self.np_random)
            if self.task is not None:
                break
        else:
            raise RuntimeError(f"no scene admitted a {family_name} task in 20 tries")
        self._segmentation_lookup = self._make_segmentation_lookup()
        return self.current_observation(), self.current_info()

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action shape {action.shape}: expected {self.action_space.shape}")
        self.robot.command(action)
        for _ in range(self.substeps):
            self.client.stepSimulation()
        info = self.current_info()
        reward = float(info[keys.IS_SUCCESS])
        terminated = self.terminate_on_success and info[keys.IS_SUCCESS]
        return self.current_observation(), reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """rgb_array: the configured views side by side at render_size, (S, V*S, 3) uint8."""
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='rgb_array'")
            return None
        return np.concatenate([cam.render(self.client)[0] for cam in self.render_cameras], axis=1)

    def close(self) -> None:
        if self.client is not None and self.client.isConnected():
            self.client.disconnect()

    # --- queries used by skills, tasks and evaluation ----------------------------------------
    def symbolic_state(self) -> SymbolicState:
        left, right = self.robot.finger_contacts()
        touching = {name: (body in left, body in right) for name, body in self.bodies.items()}
        return read_symbolic_state(self.client, self.cubes, self.bodies, touching)

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and quaternion xyzw (4,) of an entity."""
        if name not in self.bodies:
            raise KeyError(f"no object {name!r}; objects: {sorted(self.bodies)}")
        position, quaternion = self.client.getBasePositionAndOrientation(self.bodies[name])
        return np.array(position), np.array(quaternion)

    def cube(self, name: str) -> CubeSpec:
        for cube in self.cubes:
            if cube.name == name:
                return cube
        raise KeyError(f"no object {name!r}; objects: {[c.name for c in self.cubes]}")

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(cube.name for cube in self.cubes)

    # --- observation -----------------------------------------------------------------------
    def _make_segmentation_lookup(self) -> np.ndarray:
        """Raw PyBullet body id (+1, so that -1 'nothing' maps to index 0) -> segmentation code."""
        lookup = np.full(self.client.getNumBodies() + 1, keys.SEG_BACKGROUND, dtype=np.int32)
        lookup[self.robot.body + 1] = keys.SEG_ROBOT
        for index, cube in enumerate(self.cubes):
            lookup[self.bodies[cube.name] + 1] = index + 1
        return lookup

    def current_observation(self) -> dict[str, np.ndarray]:
        """The observation of the current state, without stepping (what step() returns)."""
        objects = np.zeros((OBJECT_CAPACITY, keys.OBJECT_FEATURES), dtype=np.float32)
        mask = np.zeros(OBJECT_CAPACITY, dtype=np.int8)
        for row, cube in enumerate(self.cubes):
            position, quaternion = self.object_pose(cube.name)
            objects[row, keys.OBJECT_POSITION] = np.clip(position, -WORLD_BOUND, WORLD_BOUND)
            objects[row, keys.OBJECT_QUATERNION] = quaternion
            objects[row, keys.OBJECT_SIZE] = cube.size
            objects[row, keys.OBJECT_COLOUR] = cube.rgb
            mask[row] = 1
        joints = self.robot.state()  # (15,) angles, velocities, gripper width
        joints[keys.PROPRIO_JOINT_VELOCITIES] = np.clip(
            joints[keys.PROPRIO_JOINT_VELOCITIES], -MAX_JOINT_SPEED, MAX_JOINT_SPEED
        )
        proprio = np.concatenate([joints, *self.robot.tool_pose()]).astype(np.float32)
        obs: dict[str, np.ndarray] = {
            keys.OBJECTS: objects,
            keys.OBJECT_MASK: mask,
            keys.PROPRIO: proprio,
            keys.INTRINSICS: self._intrinsics.copy(),
            keys.EXTRINSICS: self._extrinsics.copy(),
        }
        if self.config.observe_images:
            rgbs, depths, segs = zip(
                *(cam.render(self.client) for cam in self.cameras), strict=True
            )
            obs[keys.RGB] = np.stack(rgbs)  # (V, H, W, 3)
            obs[keys.DEPTH] = np.stack(depths)  # (V, H, W)
            raw = np.stack(segs)  # (V, H, W) body ids, -1 where nothing was hit
            obs[keys.SEGMENTATION] = self._segmentation_lookup[np.clip(raw, -1, None) + 1]
        if self.config.point_cloud:
            bounds = ((TABLE_X[0], TABLE_Y[0], TABLE_HEIGHT - 0.01), (TABLE_X[1], TABLE_Y[1], 0.5))
            points, labels, point_mask = fuse_point_cloud(
                obs, self.config.voxel_size, self.config.point_cloud_points, bounds
            )
            obs[keys.POINT_CLOUD], obs[keys.POINT_LABELS], obs[keys.POINT_MASK] = (
                points,
                labels,
                point_mask,
            )
        return obs

    def is_success(self, state: SymbolicState | None = None) -> bool:
        """The planning task's success predicate on the current state (False for questions)."""
        state = state or self.symbolic_state()
        return isinstance(self.task, PlanTask) and self.task.is_success(state)

    def current_info(self) -> dict[str, Any]:
        """The info dict of the current state, without stepping (what step() returns)."""
        assert self.task is not None, "reset() sets the task"
        state = self.symbolic_state()
        success = self.is_success(state)
        return {
            keys.INSTRUCTION: self.task.instruction,
            keys.TASK: self.task.family,
            keys.IS_SUCCESS: bool(success),
            keys.ENTITIES: dict(self.bodies),
            keys.SYMBOLIC_STATE: state.to_json(),
        }
