"""What every world of the stack shares: a Panda, fixed cameras, one observation contract, the
Gymnasium API, task families and injected skill failures.

A world (``TabletopEnv``, ``KitchenEnv``) subclasses ``ArmEnv`` and fills in its static
furniture, how a scene is sampled for a task family, its symbolic state, and the geometry skills
ask about (where to grasp an object, where a place target is free, whether it is reachable, how a
handle moves): the abstract methods below.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import pybullet
from gymnasium import spaces
from pybullet_utils.bullet_client import BulletClient

from envs import keys
from envs.cameras import CAMERA_PLACEMENTS, FAR, Camera, fuse_point_cloud
from envs.plan import SkillCall
from envs.robot import FINGER_FRICTION, FINGER_LINKS, MAX_GRIPPER_WIDTH, Panda
from envs.tasks.base import REFERRALS, PlanTask, Referral, Task, TaskFamily

OBJECT_CAPACITY = 8  # rows of the objects observation: the most objects a scene can hold
WORLD_BOUND = 5.0  # metres: every world-frame coordinate observed lies within +-WORLD_BOUND
MAX_JOINT_SPEED = 10.0  # rad/s: observed joint velocities are clipped to this (Panda max: 2.6)
PHYSICS_HZ = 240
SETTLE_STEPS = 60  # physics steps after spawning so that stacks come to rest
SCENE_TRIES = 20  # scenes sampled before giving up on a task family
SLIP_FRICTION = 0.0  # finger friction during an injected slipping grasp


class Entity(Protocol):
    """What the observation needs to know of an object: its name, size and colour."""

    @property
    def name(self) -> str: ...
    @property
    def size(self) -> float: ...
    @property
    def rgb(self) -> tuple[float, float, float]: ...


@dataclass(frozen=True)
class FixtureRow:
    """A piece of furniture with a moving part, shown in the objects observation after the
    objects (the kitchen's drawer and cabinet): the planner sees whether it is open from where
    its handle is and how its moving part is turned."""

    name: str
    body: int
    """The furniture's body id (its pixels are labelled with this row's segmentation code)."""
    position: np.ndarray
    """(3,) the handle's centre, world frame, metres."""
    quaternion: np.ndarray
    """(4,) xyzw of the moving part (drawer tray, door)."""
    size: float
    """Largest extent of the moving part, metres."""
    rgb: tuple[float, float, float]


@dataclass
class ArmEnvConfig:
    """Sensing, control and failure injection: the settings every world shares."""

    tasks: list[str] = field(default_factory=list)
    """Task families drawn uniformly at reset (``options={"task": ...}`` picks one); each world
    sets its default."""
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
    control_hz: int = 20
    """Control steps per simulated second; an env.step is PHYSICS_HZ / control_hz physics steps."""
    render_size: int = 192
    """Height and width of each view in render() (videos)."""
    failure_rate: float = 0.0
    """Chance that a pick (both worlds) or an open or close (kitchen) is made to fail through
    physics: a grasp that slips, a drawer or door that sticks. The injected failure is reported
    with the skill's outcome."""

    def __post_init__(self) -> None:
        bad_views = [v for v in self.views if v not in CAMERA_PLACEMENTS]
        if bad_views or not self.views:
            raise ValueError(f"views={list(self.views)}: allowed {sorted(CAMERA_PLACEMENTS)}")
        for name in ("image_size", "render_size", "point_cloud_points", "control_hz"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be a positive integer")
        if PHYSICS_HZ % self.control_hz:
            raise ValueError(f"control_hz={self.control_hz}: must divide {PHYSICS_HZ}")
        if self.voxel_size <= 0:
            raise ValueError(f"voxel_size={self.voxel_size}: must be positive")
        if self.point_cloud and not self.observe_images:
            raise ValueError(
                "point_cloud=True needs observe_images=True (it fuses the depth views)"
            )
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate={self.failure_rate}: must be in [0, 1]")

    def check_tasks(self, families: Mapping[str, TaskFamily[Any]]) -> None:
        unknown = [t for t in self.tasks if t not in families]
        if unknown:
            raise ValueError(f"tasks={list(self.tasks)}: allowed {sorted(families)}")


@dataclass(frozen=True)
class PlaceGoal:
    """Where a held object goes: the spot (x, y) its centre is put over and the height of the
    surface it is put on. ``align_yaw``: a yaw the held cube's faces should line up with (modulo a
    quarter turn); ``gripper_yaws``: the gripper yaws that fit the spot (a narrow cabinet, say).
    With neither, the wrist keeps its yaw."""

    spot: np.ndarray
    surface: float
    align_yaw: float | None = None
    gripper_yaws: tuple[float, ...] | None = None
    drop: float = 0.004
    """Height above the surface at which the object's bottom is let go: a few millimetres when
    setting it down, more when dropping it into a basin, so the fingers stay above its walls."""


def box_distance(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(P, B) planar distance from each point (P, 2) to each box (B, >=4: x0, y0, x1, y1);
    negative inside a box (minus the distance to its nearest side)."""
    x, y = points[:, None, 0], points[:, None, 1]  # (P, 1)
    x0, y0, x1, y1 = (boxes[None, :, i] for i in range(4))  # (1, B)
    dx = np.maximum(np.maximum(x0 - x, x - x1), 0.0)
    dy = np.maximum(np.maximum(y0 - y, y - y1), 0.0)
    outside = np.hypot(dx, dy)
    inside = -np.minimum(np.minimum(x - x0, x1 - x), np.minimum(y - y0, y1 - y))
    return np.where((dx > 0) | (dy > 0), outside, inside)


@dataclass(frozen=True)
class GraspGoal:
    """Where the fingertips close on an object and the gripper yaws that fit it."""

    point: np.ndarray
    yaws: tuple[float, ...]


@dataclass(frozen=True)
class HandleMotion:
    """How a skill opens or closes a fixture: pinch the handle at ``grasp`` with the fingers
    opening across it (``yaw``), move the tool through ``path`` (one waypoint per step), let go
    and move off through ``retreat`` (offsets from where the tool let go)."""

    grasp: np.ndarray
    yaw: float
    path: list[np.ndarray]
    retreat: list[np.ndarray]
    part: str
    """The moving part ("tray" or "door"): not an obstacle on the way to its own handle."""


class ArmEnv(gym.Env[dict[str, np.ndarray], np.ndarray], metaclass=ABCMeta):
    """A Panda (base at the origin, facing +x) in a world a subclass builds. See the subclasses'
    docstrings for the action and observation spaces, which this class defines for all."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (gymnasium API)
    families: Mapping[str, TaskFamily[Any]]
    """The task families of this world, by name."""
    point_cloud_bounds: tuple[tuple[float, float, float], tuple[float, float, float]]

    def __init__(
        self,
        config: ArmEnvConfig,
        render_mode: str | None = None,
        terminate_on_success: bool = False,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: allowed None or 'rgb_array'")
        config.check_tasks(self.families)
        self.config = config
        self.tasks = list(config.tasks)
        self.render_mode = render_mode
        self.terminate_on_success = terminate_on_success
        self.client = BulletClient(connection_mode=pybullet.DIRECT)
        self.cameras = [Camera(view, config.image_size) for view in config.views]
        self.render_cameras = [Camera(view, config.render_size) for view in config.views]
        self._intrinsics = np.stack([cam.intrinsics for cam in self.cameras])  # (V, 3, 3)
        self._extrinsics = np.stack([cam.extrinsics for cam in self.cameras])  # (V, 4, 4)
        self.substeps = PHYSICS_HZ // config.control_hz

        self.robot: Panda
        self.bodies: dict[str, int] = {}
        """Entity name -> body id."""
        self.task: Task | None = None
        self.injected_failure = ""
        """The failure injected into the skill call in progress ("" if none)."""
        self._segmentation_lookup = np.zeros(1, dtype=np.int32)
        self._build_world()

        self.action_space = spaces.Box(
            low=np.append(self.robot.limits.lower, 0.0).astype(np.float32),
            high=np.append(self.robot.limits.upper, MAX_GRIPPER_WIDTH).astype(np.float32),
            dtype=np.float32,
        )
        self.observation_space = self._make_observation_space()  # type: ignore[assignment]

    # --- what a world fills in ---------------------------------------------------------------
    @abstractmethod
    def _build_static(self) -> None:
        """Create the furniture that every scene of this world has."""

    def _referral(self, options: dict[str, Any]) -> Referral:
        """How this episode's instruction names single objects (worlds with colour-named
        objects choose; the kitchen's entity names are already words)."""
        return "entity"

    @abstractmethod
    def _populate(self, family: TaskFamily[Any], options: dict[str, Any]) -> bool:
        """Create this scene's objects (and fill ``self.bodies``) for a task of ``family``;
        False if the sampled layout did not fit (reset then samples another)."""

    @abstractmethod
    def entity_specs(self) -> Sequence[Entity]:
        """The objects of the scene, in the order of ``self.bodies``."""

    def fixture_rows(self) -> list[FixtureRow]:
        """The furniture the objects observation shows after the objects (none by default)."""
        return []

    @abstractmethod
    def symbolic_state(self) -> Any:
        """The state tasks and oracles reason about (read from the simulator)."""

    @abstractmethod
    def scene_config(self) -> str:
        """The scene's configuration in a few words ("4 objects, 1 stacked"): the metadata that
        data balancing groups scenes by, together with the task family."""

    @abstractmethod
    def pick_blocker(self, name: str) -> str | None:
        """Why ``name`` cannot be picked now ("blocked by obj_2", "in the closed drawer")."""

    @abstractmethod
    def grasp_goal(self, name: str) -> GraspGoal:
        """Where and at which yaws the gripper takes ``name``."""

    @abstractmethod
    def place_goal(self, name: str, target: str) -> PlaceGoal | str:
        """Where ``name`` goes for ``place(name, target)``, or why it cannot go there."""

    @abstractmethod
    def place_verdict(self, name: str, target: str) -> str:
        """ "" if ``name`` now rests in ``target``, else what went wrong."""

    def held(self) -> str | None:
        """The object the gripper holds, if any (every world's symbolic state says)."""
        return self.symbolic_state().held

    @property
    @abstractmethod
    def place_targets(self) -> tuple[str, ...]:
        """Names ``place(obj, <name>)`` accepts besides objects."""

    @property
    def openables(self) -> tuple[str, ...]:
        """Names ``open(<name>)`` and ``close(<name>)`` accept."""
        return ()

    def handle_motion(self, fixture: str, opening: bool) -> HandleMotion | str:
        """The grasp and tool path that open or close ``fixture``, or why there is none."""
        return f"nothing to open or close called {fixture!r}: {list(self.openables)}"

    def fixture_verdict(self, fixture: str, opening: bool) -> str:
        """ "" if ``fixture`` is now open (``opening``) or closed, else what is wrong."""
        return f"nothing to open or close called {fixture!r}"

    def entity_spec(self, name: str) -> Entity:
        for spec in self.entity_specs():
            if spec.name == name:
                return spec
        raise KeyError(f"no object {name!r}; objects: {list(self.bodies)}")

    def obstacle_boxes(self, exclude: Collection[str] = ()) -> np.ndarray:
        """(B, 5) x0, y0, x1, y1, top of everything a hand could hit: the objects and the
        furniture, but the objects or moving furniture parts named in ``exclude``."""
        boxes = [
            [low[0], low[1], high[0], high[1], high[2]]
            for name, body in self.bodies.items()
            if name not in exclude
            for low, high in [self.client.getAABB(body)]
        ]
        return np.concatenate([np.array(boxes).reshape(-1, 5), self._fixture_boxes(exclude)])

    def _fixture_boxes(self, exclude: Collection[str]) -> np.ndarray:
        """(B, 5) boxes of the furniture (x0, y0, x1, y1, top); none besides the table here."""
        return np.zeros((0, 5))

    def corridor_top(
        self, start: np.ndarray, goal: np.ndarray, margin: float, exclude: Collection[str] = ()
    ) -> float:
        """The highest obstacle within ``margin`` of the straight line from ``start`` to ``goal``
        (x, y), but the objects in ``exclude``; 0 (the table or counter) when none is."""
        boxes = self.obstacle_boxes(exclude)
        if not len(boxes):
            return 0.0
        steps = max(2, int(np.linalg.norm(goal[:2] - start[:2]) / 0.01) + 1)
        points = np.linspace(start[:2], goal[:2], steps)  # (P, 2)
        gap = box_distance(points, boxes)  # (P, B)
        near = (gap < margin).any(axis=0)
        return float(max(boxes[near, 4].max(initial=0.0), 0.0))

    def body_name(self, body: int) -> str:
        """A readable name for a body id (an object's name, a fixture's, or the id)."""
        names = {b: n for n, b in self.bodies.items()}
        return names.get(body, f"body {body}")

    # --- world -------------------------------------------------------------------------------
    def _build_world(self) -> None:
        """Reset the simulation to the robot and the furniture alone, rebuilt from scratch.

        Rebuilding (rather than removing objects) makes an episode depend only on its seed.
        """
        self.client.resetSimulation()
        self.client.setTimeStep(1.0 / PHYSICS_HZ)
        self.client.setGravity(0, 0, -9.81)
        self._build_static()
        self.robot = Panda(self.client, base_position=(0.0, 0.0, 0.0))
        self.robot.reset()
        self.bodies = {}

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

    # --- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        family_name = options.get("task")
        if family_name is None:
            family_name = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        if family_name not in self.families:
            raise ValueError(f"options['task']={family_name!r}: allowed {sorted(self.families)}")
        family = self.families[family_name]
        for _ in range(SCENE_TRIES):  # a scene that admits a task of this family
            self._build_world()
            if not self._populate(family, options):
                self.task = None
                continue
            for _ in range(SETTLE_STEPS):
                self.client.stepSimulation()
            self.task = family.sample(
                self.symbolic_state(), self.np_random, self._referral(options)
            )
            if self.task is not None:
                break
        else:
            raise RuntimeError(f"no scene admitted a {family_name} task in {SCENE_TRIES} tries")
        self.injected_failure = ""
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

    # --- skill failures ----------------------------------------------------------------------
    def begin_skill(self, call: SkillCall, inject: bool | None = None) -> str:
        """Called as a skill starts: with probability ``failure_rate`` (or when ``inject`` is
        True; never when it is False) make it fail through physics. Returns the injected failure
        ("" for none)."""
        self.injected_failure = ""
        failure = self._failure_for(call)
        if inject is None:
            inject = (
                bool(self.config.failure_rate)
                and self.np_random.random() < self.config.failure_rate
            )
        if failure and inject:
            self.injected_failure = failure
            self._inject(failure, call)
        return self.injected_failure

    def end_skill(self) -> None:
        """Called as a skill ends: undo the injected failure."""
        if self.injected_failure:
            self._restore(self.injected_failure)
        self.injected_failure = ""

    def _failure_for(self, call: SkillCall) -> str:
        """The failure a call of this verb can suffer: a pick's grasp slips."""
        return "slip" if call.verb == "pick" else ""

    def _inject(self, failure: str, call: SkillCall) -> None:
        if failure == "slip":  # frictionless fingers: the object slides out as it is lifted
            for link in FINGER_LINKS:
                self.client.changeDynamics(self.robot.body, link, lateralFriction=SLIP_FRICTION)

    def _restore(self, failure: str) -> None:
        if failure == "slip":
            for link in FINGER_LINKS:
                self.client.changeDynamics(self.robot.body, link, lateralFriction=FINGER_FRICTION)

    # --- queries -----------------------------------------------------------------------------
    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and quaternion xyzw (4,) of an entity."""
        if name not in self.bodies:
            raise KeyError(f"no object {name!r}; objects: {sorted(self.bodies)}")
        position, quaternion = self.client.getBasePositionAndOrientation(self.bodies[name])
        return np.array(position), np.array(quaternion)

    @property
    def entities(self) -> tuple[str, ...]:
        """Object names in the order of the objects observation's rows (obj_j is row j-1): the
        names skill calls take as objects."""
        return tuple(spec.name for spec in self.entity_specs())

    @property
    def observed_names(self) -> tuple[str, ...]:
        """The name of every row of the objects observation (obj_j is row j-1): the entities,
        then the furniture of ``fixture_rows`` (what the planner's entity prefix names)."""
        return self.entities + tuple(row.name for row in self.fixture_rows())

    def all_instructions(self) -> list[str] | None:
        """Every instruction the env's task families (``tasks``) can pose about the current
        scene's objects, naming them each way (``REFERRALS``): what a recognizer listening
        for this env's instructions may hear. None when a family cannot list its own."""
        state = self.symbolic_state()
        sentences: dict[str, None] = {}  # ordered, without repeats
        for name in self.tasks:
            for referral in REFERRALS:
                listed = self.families[name].all_instructions(state, referral)
                if listed is None:
                    return None
                sentences.update(dict.fromkeys(listed))
        return list(sentences)

    def is_success(self, state: Any = None) -> bool:
        """The planning task's success predicate on the current state (False for questions)."""
        state = state if state is not None else self.symbolic_state()
        return isinstance(self.task, PlanTask) and self.task.is_success(state)

    # --- observation -------------------------------------------------------------------------
    def _make_segmentation_lookup(self) -> np.ndarray:
        """Raw PyBullet body id (+1, so that -1 'nothing' maps to index 0) -> segmentation code."""
        lookup = np.full(self.client.getNumBodies() + 1, keys.SEG_BACKGROUND, dtype=np.int32)
        lookup[self.robot.body + 1] = keys.SEG_ROBOT
        bodies = [self.bodies[spec.name] for spec in self.entity_specs()]
        bodies += [row.body for row in self.fixture_rows()]
        for index, body in enumerate(bodies):
            lookup[body + 1] = index + 1
        return lookup

    def current_observation(self, images: bool | None = None) -> dict[str, np.ndarray]:
        """The observation of the current state, without stepping (what step() returns).

        ``images`` overrides ``config.observe_images`` for this call: data generation runs the
        skills without rendering and renders the views only where the planner looks."""
        images = self.config.observe_images if images is None else images
        objects = np.zeros((OBJECT_CAPACITY, keys.OBJECT_FEATURES), dtype=np.float32)
        mask = np.zeros(OBJECT_CAPACITY, dtype=np.int8)
        for row, spec in enumerate(self.entity_specs()):
            position, quaternion = self.object_pose(spec.name)
            objects[row, keys.OBJECT_POSITION] = np.clip(position, -WORLD_BOUND, WORLD_BOUND)
            objects[row, keys.OBJECT_QUATERNION] = quaternion
            objects[row, keys.OBJECT_SIZE] = spec.size
            objects[row, keys.OBJECT_COLOUR] = spec.rgb
            mask[row] = 1
        first = len(self.entity_specs())
        for row, fixture in enumerate(self.fixture_rows(), start=first):
            objects[row, keys.OBJECT_POSITION] = fixture.position
            objects[row, keys.OBJECT_QUATERNION] = fixture.quaternion
            objects[row, keys.OBJECT_SIZE] = fixture.size
            objects[row, keys.OBJECT_COLOUR] = fixture.rgb
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
        if images:
            obs[keys.RGB], obs[keys.DEPTH], obs[keys.SEGMENTATION] = self.render_views(self.cameras)
        if images and self.config.point_cloud:
            points, labels, point_mask = fuse_point_cloud(
                obs, self.config.voxel_size, self.config.point_cloud_points, self.point_cloud_bounds
            )
            obs[keys.POINT_CLOUD], obs[keys.POINT_LABELS], obs[keys.POINT_MASK] = (
                points,
                labels,
                point_mask,
            )
        return obs

    def render_views(self, cameras: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rgb (V, H, W, 3) uint8, depth (V, H, W) float32 and segmentation codes (V, H, W)
        int32 (``keys.SEGMENTATION``) of the current state from ``cameras`` (the env's own, or
        a policy's)."""
        rgbs, depths, segs = zip(*(cam.render(self.client) for cam in cameras), strict=True)
        raw = np.stack(segs)  # (V, H, W) body ids, -1 where nothing was hit
        codes = self._segmentation_lookup[np.clip(raw, -1, None) + 1]
        return np.stack(rgbs), np.stack(depths), codes

    def current_info(self) -> dict[str, Any]:
        """The info dict of the current state, without stepping (what step() returns)."""
        assert self.task is not None, "reset() sets the task"
        state = self.symbolic_state()
        return {
            keys.INSTRUCTION: self.task.instruction,
            keys.TASK: self.task.family,
            keys.IS_SUCCESS: bool(self.is_success(state)),
            keys.ENTITIES: dict(self.bodies),
            keys.SYMBOLIC_STATE: state.to_json(),
        }
