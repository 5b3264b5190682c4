"""``embodied/Kitchen-v0``: a SayCan-style kitchen counter with a drawer, a cabinet, a sink, a bowl
and everyday objects; fetch-and-place tasks, affordance questions and failure detection."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs import kitchen_scene as ks
from envs.base import (
    ArmEnv,
    ArmEnvConfig,
    Entity,
    FixtureRow,
    GraspGoal,
    HandleMotion,
    PlaceGoal,
    box_distance,
)
from envs.geometry import yaw_of
from envs.kitchen_scene import (
    COUNTER,
    OBJECT_KINDS,
    PLACE_TARGETS,
    STORES,
    Fixtures,
    KitchenObject,
    KitchenState,
    ObjectKind,
)
from envs.plan import SkillCall
from envs.regions import Region
from envs.robot import hand_footprint
from envs.tasks.base import TaskFamily
from envs.tasks.kitchen import KITCHEN_FAMILIES, KitchenFamily

DRAWER_GRASP_Z = 0.085  # fingertips on the drawer's handle bar
DRAWER_PULL_PAST = 0.004  # the handle is moved this far past the joint's end, so it reaches it
DOOR_OPEN_TARGET = 1.3  # rad the opening motion lifts the door to
DOOR_CLOSE_TARGET = -0.03  # rad the closing motion pushes the door to (the hinge stops it at 0)
HANDLE_STEP = 0.006  # metres of handle motion per control step
BASIN_DROP = 0.05  # let go this high over the sink's or bowl's floor: fingers clear its walls
HAND_MARGIN = 0.01  # metres the hand's footprint is grown by when scenes are sampled
ROUND_YAWS = 8  # gripper yaws offered for a round object, spread over a half turn
BASIN_YAWS = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
PLACE_YAWS: dict[str, tuple[float, ...]] = {
    "drawer": (0.0,),
    "cabinet": (0.0,),
    "sink": BASIN_YAWS,
    "bowl": BASIN_YAWS,
}
"""Wrist yaws offered when placing: in the drawer and the cabinet the hand fits one way only (see
grasp_goal); over the sink and the bowl the wrist may turn so the hand clears the furniture."""
OPEN_PROBABILITY = 0.2  # chance that the drawer (or the cabinet) starts open


@dataclass
class KitchenConfig(ArmEnvConfig):
    """Everything that shapes a kitchen episode; validated on construction."""

    num_objects: int | None = None
    """A fixed number of everyday objects (4-6), or None to draw it from 4-6."""
    tasks: list[str] = field(
        default_factory=lambda: ["put_in_drawer", "bring_from_cabinet", "clear_counter", "put_away"]
    )
    """Task families drawn uniformly at reset (``options={"task": ...}`` picks one)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_objects is not None and not 4 <= self.num_objects <= len(OBJECT_KINDS):
            raise ValueError(
                f"num_objects={self.num_objects}: allowed 4..{len(OBJECT_KINDS)} or None"
            )
        if not self.tasks:
            raise ValueError(f"tasks=[]: allowed a non-empty list of {sorted(KITCHEN_FAMILIES)}")
        self.check_tasks(KITCHEN_FAMILIES)


class KitchenEnv(ArmEnv):
    """
    ## Description
    A Franka Panda at a kitchen counter (robot base at the origin, facing +x). On the counter: a
    drawer unit whose drawer slides out on a prismatic joint, a cabinet whose top door turns on a
    revolute hinge (with a shelf inside), a sink, a bowl, and 4-6 everyday objects built from
    primitives (can, apple, sponge, bottle, chips, cup), some inside the drawer or the cabinet and,
    in affordance scenes, some out of the arm's reach. Entity names are the object names
    (``pick(apple)``, ``place(apple, drawer)``, ``open(cabinet)``).

    ## Action Space
    ``Box(8)``: target angles of the 7 arm joints (rad) and the target gripper width (0-0.08 m),
    as in ``embodied/Tabletop-v0``.

    ## Observation Space
    The tabletop's contract (``envs.keys``): views, ``objects`` (one row per object: position,
    quaternion, largest extent, colour) with ``object_mask``, ``proprio``, cameras, optional point
    cloud. After the objects' rows come two rows of furniture (``observed_names`` ends with
    "drawer", "cabinet"): the drawer's handle position and tray orientation, the cabinet door's
    rod position and door orientation, so state tokens show what is open; segmentation labels
    the drawer unit and the cabinet with those rows' codes.

    ## Rewards
    1.0 on steps where the planning task's success predicate holds, else 0.0.

    ## Episode End
    Terminated only with ``terminate_on_success=True`` once a planning task succeeds; truncated by
    the registered time limit.

    ## Arguments
    The fields of ``KitchenConfig`` (including ``failure_rate``: skill calls made to fail through
    physics, a grasp that slips or a drawer or door that sticks), ``render_mode="rgb_array"`` and
    ``terminate_on_success``.

    ## Version History
    * v0: initial release.
    """

    families = KITCHEN_FAMILIES
    point_cloud_bounds = (
        (ks.COUNTER_X[0], ks.COUNTER_Y[0], -0.01),
        (ks.COUNTER_X[1], ks.COUNTER_Y[1], 0.6),
    )

    def __init__(
        self, render_mode: str | None = None, terminate_on_success: bool = False, **config: Any
    ) -> None:
        self.kinds: list[ObjectKind] = []
        self.fixtures: Fixtures
        self._stuck = ""  # the fixture an injected "stuck" failure holds
        super().__init__(KitchenConfig(**config), render_mode, terminate_on_success)
        self.config: KitchenConfig

    # --- the world ---------------------------------------------------------------------------
    def _build_static(self) -> None:
        self.fixtures = ks.build_fixtures(self.client, ks.BOWL_AREA.centre)
        self.kinds = []

    def _populate(self, family: TaskFamily[Any], options: dict[str, Any]) -> bool:
        rng = self.np_random
        count = options.get("num_objects", self.config.num_objects)
        if count is None:
            count = int(rng.integers(4, len(OBJECT_KINDS) + 1))
        if not 4 <= int(count) <= len(OBJECT_KINDS):
            raise ValueError(f"options['num_objects']={count}: allowed 4..{len(OBJECT_KINDS)}")
        assert isinstance(family, KitchenFamily)
        names = [
            list(OBJECT_KINDS)[i] for i in rng.choice(len(OBJECT_KINDS), int(count), replace=False)
        ]
        self.kinds = [OBJECT_KINDS[name] for name in names]
        locations = family.layout(rng, names)

        bowl = (float(rng.uniform(*ks.BOWL_AREA.x)), float(rng.uniform(*ks.BOWL_AREA.y)))
        self.client.resetBasePositionAndOrientation(
            self.fixtures.bowl, [*bowl, 0.0005], [0, 0, 0, 1]
        )
        opening = ks.DRAWER_TRAVEL if rng.random() < OPEN_PROBABILITY else 0.0
        door = DOOR_OPEN_TARGET if rng.random() < OPEN_PROBABILITY else 0.0
        self.client.resetJointState(self.fixtures.drawer, Fixtures.DRAWER_JOINT, opening)
        self.client.resetJointState(self.fixtures.cabinet, Fixtures.DOOR_JOINT, door)

        placed: list[tuple[float, float, float]] = [(*bowl, ks.BOWL_RADIUS + 0.01)]  # x, y, radius
        drawer_slots = list(ks.drawer_slots(opening))
        cabinet_slots = list(ks.CABINET_SLOTS)
        self.bodies = {}
        for kind in self.kinds:
            where = locations[kind.name]
            yaw = float(rng.uniform(-np.pi / 2, np.pi / 2))
            if where in STORES:  # boxes lie with their short side along y: see grasp_goal
                slots = drawer_slots if where == "drawer" else cabinet_slots
                x, y = slots.pop(int(rng.integers(len(slots))))
                z = ks.DRAWER_FLOOR_Z if where == "drawer" else ks.CABINET_SHELF_Z
                yaw = float(rng.uniform(-0.1, 0.1))
            else:
                area = ks.OUT_OF_REACH if where == "out_of_reach" else ks.LOOSE_AREA
                found = _free_position(rng, area, kind.footprint_radius, placed)
                if found is None:
                    return False
                (x, y), z = found, 0.0
                if kind.shape == "box":
                    yaw = _graspable_yaw(rng, x, y)
            placed.append((x, y, kind.footprint_radius))
            self.bodies[kind.name] = ks.spawn_object(self.client, kind, [x, y, z], yaw)
        return True

    def entity_specs(self) -> Sequence[Entity]:
        return self.kinds

    def fixture_rows(self) -> list[FixtureRow]:
        """The drawer (its handle bar, the tray's orientation) and the cabinet (its door's rod,
        the door's orientation): where the handles are says how far each is open."""
        f = self.fixtures
        tray = self.client.getLinkState(f.drawer, Fixtures.DRAWER_JOINT)
        door = self.client.getLinkState(f.cabinet, Fixtures.DOOR_JOINT)
        rod = self.client.getLinkState(f.cabinet, Fixtures.ROD_JOINT)
        return [
            FixtureRow(
                "drawer",
                f.drawer,
                self._drawer_handle(),
                np.array(tray[5]),
                ks.DRAWER_HOUSING_Y[1] - ks.DRAWER_HOUSING_Y[0],
                ks.WOOD_RGBA[:3],
            ),
            FixtureRow(
                "cabinet",
                f.cabinet,
                np.array(rod[0]),
                np.array(door[5]),
                ks.CABINET_Y[1] - ks.CABINET_Y[0],
                ks.METAL_RGBA[:3],
            ),
        ]

    def _drawer_handle(self) -> np.ndarray:
        """(3,) where the fingertips take the drawer's handle bar, world frame."""
        tray = np.array(self.client.getLinkState(self.fixtures.drawer, Fixtures.DRAWER_JOINT)[4])
        return tray + [-ks.PLATE - ks.DRAWER_HANDLE_STANDOFF, 0.0, DRAWER_GRASP_Z]

    def scene_config(self) -> str:
        """How many objects, how many inside the drawer or cabinet, and which of those is open."""
        state = self.symbolic_state()
        inside = sum(o.location in STORES for o in state.objects.values())
        opened = [store for store in STORES if state.is_open(store)]
        return f"{len(state.objects)} objects, {inside} stored, open: {'+'.join(opened) or 'none'}"

    def symbolic_state(self) -> KitchenState:
        left, right = self.robot.finger_contacts()
        opening = ks.joint_position(self.client, self.fixtures.drawer, Fixtures.DRAWER_JOINT)
        door = ks.joint_position(self.client, self.fixtures.cabinet, Fixtures.DOOR_JOINT)
        bowl_position = self.client.getBasePositionAndOrientation(self.fixtures.bowl)[0]
        bowl = (float(bowl_position[0]), float(bowl_position[1]))
        objects: dict[str, KitchenObject] = {}
        held = None
        for kind in self.kinds:
            body = self.bodies[kind.name]
            position, quaternion = self.client.getBasePositionAndOrientation(body)
            bottom = self.client.getAABB(body)[0][2]
            location = ks.locate(position, bottom, opening, bowl)
            if body in left and body in right and location == "none":
                location, held = "held", kind.name
            objects[kind.name] = KitchenObject(
                kind.name,
                (float(position[0]), float(position[1]), float(position[2])),
                yaw_of(np.array(quaternion)),
                location,
                kind.footprint_radius,
            )
        return KitchenState(objects, held, opening, door, bowl)

    def _fixture_boxes(self, exclude: Collection[str]) -> np.ndarray:
        """The furniture's boards (the drawer's where it is now) and the door, its rod and the
        bowl as the simulator has them; ``exclude`` may name "door" (door and rod) or "tray"
        (the drawer and its handle), the part a skill is about to take by its handle."""
        opening = ks.joint_position(self.client, self.fixtures.drawer, Fixtures.DRAWER_JOINT)
        moving = [self.client.getAABB(self.fixtures.bowl)]  # placed anew in every scene
        if "door" not in exclude:
            moving.append(self.client.getAABB(self.fixtures.cabinet, Fixtures.DOOR_JOINT))
            moving.append(self.client.getAABB(self.fixtures.cabinet, Fixtures.ROD_JOINT))
        boxes = [[low[0], low[1], high[0], high[1], high[2]] for low, high in moving]
        return np.concatenate([ks.fixture_boxes(opening, "tray" not in exclude), np.array(boxes)])

    def body_name(self, body: int) -> str:
        f = self.fixtures
        names = {f.counter: "counter", f.drawer: "drawer", f.cabinet: "cabinet", f.sink: "sink"}
        return names.get(body, "bowl" if body == f.bowl else super().body_name(body))

    # --- geometry the skills ask about ---------------------------------------------------------
    @property
    def place_targets(self) -> tuple[str, ...]:
        return PLACE_TARGETS

    @property
    def openables(self) -> tuple[str, ...]:
        return STORES

    def pick_blocker(self, name: str) -> str | None:
        return self.symbolic_state().pick_blocker(name)

    def grasp_goal(self, name: str) -> GraspGoal:
        """Fingers across a box's short side; any side of a round object. In the drawer and on
        the cabinet's shelf the fingers open along y: the hand is 20 cm wide along the fingers,
        and only that way does it fit between the drawer's front panel and the housing, or
        between the cabinet's walls."""
        kind = OBJECT_KINDS[name]
        position, quaternion = self.object_pose(name)
        top = self.client.getAABB(self.bodies[name])[1][2]
        point = np.array([position[0], position[1], top - kind.grasp_depth])
        yaw = yaw_of(quaternion)
        if self.symbolic_state().objects[name].location in STORES:
            return GraspGoal(point, (0.0,))
        if kind.shape == "box":
            return GraspGoal(point, (yaw,))
        return GraspGoal(point, tuple(yaw + k * np.pi / ROUND_YAWS for k in range(ROUND_YAWS)))

    def place_goal(self, name: str, target: str) -> PlaceGoal | str:
        if target not in PLACE_TARGETS:
            return f"cannot place on {target!r} in the kitchen; targets: {list(PLACE_TARGETS)}"
        state = self.symbolic_state()
        if target in STORES and not state.is_open(target):
            return f"the {target} is not open"
        spot = state.free_spot(name, target)
        if spot is None:
            return f"no room in the {target}" if target != COUNTER else "no room on the counter"
        surface = {
            "drawer": ks.DRAWER_FLOOR_Z,
            "cabinet": ks.CABINET_SHELF_Z,
            "bowl": self.client.getAABB(self.fixtures.bowl)[0][2] + 0.008,
        }.get(target, 0.0)
        gripper_yaws = PLACE_YAWS.get(target)
        drop = BASIN_DROP if target in ("sink", "bowl") else PlaceGoal.drop
        return PlaceGoal(np.array(spot), surface, gripper_yaws=gripper_yaws, drop=drop)

    def place_verdict(self, name: str, target: str) -> str:
        location = self.symbolic_state().objects[name].location
        return "" if location == target else f"{name} ended in {location}, not in {target}"

    def handle_motion(self, fixture: str, opening: bool) -> HandleMotion | str:
        """The grasp and tool path that open or close ``fixture``, or why there is none."""
        if fixture not in STORES:
            return f"nothing to open or close called {fixture!r}: {list(STORES)}"
        state = self.symbolic_state()
        if opening and state.is_open(fixture):
            return f"the {fixture} is already open"
        if not opening and state.is_closed(fixture):
            return f"the {fixture} is already closed"
        if fixture == "drawer":
            bar = self._drawer_handle()
            goal = ks.DRAWER_TRAVEL + DRAWER_PULL_PAST if opening else -DRAWER_PULL_PAST
            distance = goal - state.drawer_opening  # + is toward the robot, -x
            steps = max(1, int(np.ceil(abs(distance) / HANDLE_STEP)))
            path = [bar + [-distance * k / steps, 0.0, 0.0] for k in range(1, steps + 1)]
            return HandleMotion(bar, 0.0, path, [np.array([0.0, 0.0, 0.08])], "tray")
        hinge = np.array(
            [
                ks.CABINET_X[1],
                (ks.CABINET_Y[0] + ks.CABINET_Y[1]) / 2,
                ks.CABINET_HEIGHT + ks.PLATE / 2,
            ]
        )
        radius = ks.CABINET_X[1] - ks.CABINET_X[0] + ks.CABINET_ROD_STANDOFF
        start = state.door_angle
        goal = DOOR_OPEN_TARGET if opening else DOOR_CLOSE_TARGET
        steps = max(1, int(np.ceil(abs(goal - start) * radius / HANDLE_STEP)))
        angles = np.linspace(start, goal, steps + 1)
        path = [hinge + radius * np.array([-np.cos(a), 0.0, np.sin(a)]) for a in angles]
        # Off the raised rod: up clear of it, then toward the robot (higher is out of reach).
        retreat = [np.array([0.0, 0.0, 0.03]), np.array([-0.12, 0.0, 0.03])]
        if not opening:
            retreat = [np.array([0.0, 0.0, 0.08])]
        return HandleMotion(path[0], np.pi / 2, path[1:], retreat, "door")

    def fixture_verdict(self, fixture: str, opening: bool) -> str:
        state = self.symbolic_state()
        done = state.is_open(fixture) if opening else state.is_closed(fixture)
        if done:
            return ""
        position = (
            f"{state.drawer_opening:.3f} m out"
            if fixture == "drawer"
            else f"at {state.door_angle:.2f} rad"
        )
        return f"the {fixture} did not {'open' if opening else 'close'} ({position})"

    # --- injected failures ---------------------------------------------------------------------
    def _failure_for(self, call: SkillCall) -> str:
        if call.verb in ("open", "close") and call.args[0] in STORES:
            return "stuck"
        return super()._failure_for(call)

    def _inject(self, failure: str, call: SkillCall) -> None:
        if failure == "stuck":
            self._stuck = call.args[0]
            self._hold(call.args[0], stuck=True)
        else:
            super()._inject(failure, call)

    def _restore(self, failure: str) -> None:
        if failure == "stuck":
            self._hold(self._stuck, stuck=False)
        else:
            super()._restore(failure)

    def _hold(self, fixture: str, stuck: bool) -> None:
        if fixture == "drawer":
            friction = ks.STUCK_FRICTION_DRAWER if stuck else ks.JOINT_FRICTION_DRAWER
            ks.hold_joint(self.client, self.fixtures.drawer, Fixtures.DRAWER_JOINT, friction)
        else:
            friction = ks.STUCK_FRICTION_DOOR if stuck else ks.JOINT_FRICTION_DOOR
            ks.hold_joint(self.client, self.fixtures.cabinet, Fixtures.DOOR_JOINT, friction)


def _graspable_yaw(rng: np.random.Generator, x: float, y: float) -> float:
    """A yaw for a box at (x, y) at which the hand, taking it across its short side, fits beside
    the furniture (the hand is 22 cm long along the fingers, 8 cm across)."""
    for _ in range(50):
        yaw = float(rng.uniform(-np.pi / 2, np.pi / 2))  # the fingers close across the short side
        hand = hand_footprint(np.array([x, y]), yaw, grow=HAND_MARGIN)
        if (box_distance(hand, ks.FURNITURE_FOOTPRINTS) > 0.01).all():
            return yaw
    return np.pi / 2  # fingers along x: clear of the cabinet and drawer unit to the sides


def _free_position(
    rng: np.random.Generator,
    area: Region,
    radius: float,
    placed: list[tuple[float, float, float]],
) -> tuple[float, float] | None:
    """A random point of ``area`` that keeps finger room to everything placed so far."""
    for _ in range(200):
        x, y = float(rng.uniform(*area.x)), float(rng.uniform(*area.y))
        if all(
            np.hypot(x - px, y - py) >= radius + pr + ks.FINGER_CLEARANCE for px, py, pr in placed
        ):
            return x, y
    return None
