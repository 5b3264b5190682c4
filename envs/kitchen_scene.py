"""The kitchen scene: a counter with a drawer unit, a cabinet, a sink, a bowl and everyday objects.

Layout seen from the robot (base at the origin, facing +x, counter top at z = 0)::

      far  x=1.0  [ out-of-reach strip: objects here cannot be picked ]
                  [ cabinet (left) ]   [ sink ]   [ drawer unit (right) ]
                  [ bowl ]         [ loose objects ]
      near x=0.3               [ hand-over zone ]

The drawer slides out toward the robot on a prismatic joint; its handle is a vertical bar the
gripper pinches from above. The cabinet is a cupboard whose door is its top, hinged at the back
(a revolute joint): the gripper is top-down only, so a door it could reach past would leave the
inside reachable with the door shut. The door's handle is a rod on a free pivot at its front edge,
so that the fingers keep their grip while the door turns. Both joints hold their position by
friction (a velocity motor at zero speed with a force limit, PyBullet's way of modelling joint
friction); the robot moves them only by pulling or pushing the handles.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from envs.regions import Region

COUNTER_X = (0.2, 1.05)
COUNTER_Y = (-0.6, 0.6)
COUNTER_RGBA = (0.78, 0.74, 0.66, 1.0)
WOOD_RGBA = (0.55, 0.36, 0.2, 1.0)
METAL_RGBA = (0.7, 0.72, 0.75, 1.0)
HANDLE_RGBA = (0.15, 0.15, 0.15, 1.0)
Shape = tuple[str, list[float], list[float], tuple[float, float, float]]
"""A primitive of a URDF link: box or cylinder, centre, half extents or (radius, length), rpy."""
PLATE = 0.01  # thickness of the furniture's boards, metres

# --- drawer unit (robot's right) ---------------------------------------------------------------
DRAWER_HOUSING_X = (0.52, 0.76)
DRAWER_HOUSING_Y = (-0.60, -0.26)
DRAWER_HEIGHT = 0.14  # top of the housing
DRAWER_TRAVEL = 0.16  # how far the drawer slides out, metres
DRAWER_FLOOR_Z = 0.02  # top of the tray's floor
DRAWER_WALL_HEIGHT = 0.05  # tray walls above its floor: low, so that the hand fits over them
DRAWER_HANDLE_STANDOFF = 0.05  # handle bar in front of the drawer's front panel
DRAWER_HANDLE_Z = (0.04, 0.12)  # the vertical handle bar's extent
DRAWER_OPEN_AT = 0.12  # opening (m) from which the drawer counts as open
DRAWER_CLOSED_BELOW = 0.01  # ... and below which it counts as closed

# --- cabinet (robot's left) --------------------------------------------------------------------
CABINET_X = (0.50, 0.70)
CABINET_Y = (0.16, 0.56)
CABINET_HEIGHT = 0.15  # top of the walls; the door lies on them
CABINET_SHELF_Z = 0.03  # top of the shelf board inside
CABINET_DOOR_LIMIT = 1.45  # rad: the hinge's stop
CABINET_ROD_STANDOFF = 0.05  # handle rod in front of the door's front edge
CABINET_OPEN_AT = 1.05  # rad from which the door counts as open (60 degrees)
CABINET_CLOSED_BELOW = 0.05  # rad below which it counts as closed

# --- sink, bowl, zones ---------------------------------------------------------------------------
SINK_X = (0.58, 0.76)
SINK_Y = (-0.24, 0.14)
SINK_WALL_HEIGHT = 0.04
BOWL_RADIUS = 0.085
BOWL_WALL_HEIGHT = 0.04
BOWL_SEGMENTS = 12
BOWL_RGBA = (0.9, 0.9, 0.85, 1.0)
HANDOVER_ZONE = Region("handover", (0.26, 0.36), (-0.12, 0.12))
LOOSE_AREA = Region("loose", (0.38, 0.52), (-0.20, 0.10))
BOWL_AREA = Region("bowl", (0.30, 0.34), (0.26, 0.34))
OUT_OF_REACH = Region("out_of_reach", (0.92, 1.0), (-0.3, 0.3))
REACH_RADIUS = 0.85  # metres from the base axis beyond which the gripper cannot grasp top-down

JOINT_FRICTION_DRAWER = 6.0  # newtons the drawer's runners resist with
JOINT_FRICTION_DOOR = 0.8  # newton-metres the door's hinge resists with (holds it at any angle)
STUCK_FRICTION_DRAWER = 400.0  # an injected "stuck" drawer
STUCK_FRICTION_DOOR = 40.0


@dataclass(frozen=True)
class ObjectKind:
    """An everyday object: its shape (box, cylinder or sphere) and how the gripper takes it."""

    name: str
    shape: str  # "box" | "cylinder" | "sphere" | "bottle"
    dims: tuple[float, ...]  # box: (x, y, z); cylinder/bottle: (radius, height); sphere: (radius,)
    rgba: tuple[float, float, float, float]
    mass: float
    home: str  # where "put away" puts it: "drawer" or "cabinet"

    @property
    def rgb(self) -> tuple[float, float, float]:
        return (self.rgba[0], self.rgba[1], self.rgba[2])

    @property
    def height(self) -> float:
        if self.shape == "box":
            return self.dims[2]
        if self.shape == "sphere":
            return 2 * self.dims[0]
        return self.dims[1]

    @property
    def footprint_radius(self) -> float:
        """Radius of the circle that covers the object seen from above."""
        if self.shape == "box":
            return float(np.hypot(self.dims[0], self.dims[1]) / 2)
        return self.dims[0]

    @property
    def size(self) -> float:
        """The largest extent, the ``size`` column of the objects observation."""
        if self.shape == "box":
            return max(self.dims)
        return max(2 * self.dims[0], self.height)

    @property
    def grasp_depth(self) -> float:
        """How far below the top the fingertips close (the bottle by its body, not its neck)."""
        return 0.04 if self.shape == "bottle" else min(0.02, self.height / 3)


OBJECT_KINDS: dict[str, ObjectKind] = {
    kind.name: kind
    for kind in (
        ObjectKind("can", "cylinder", (0.032, 0.095), (0.8, 0.1, 0.1, 1.0), 0.15, "cabinet"),
        ObjectKind("apple", "sphere", (0.034,), (0.3, 0.75, 0.15, 1.0), 0.12, "drawer"),
        ObjectKind("sponge", "box", (0.09, 0.055, 0.035), (0.95, 0.85, 0.1, 1.0), 0.04, "drawer"),
        ObjectKind("bottle", "bottle", (0.028, 0.10), (0.2, 0.45, 0.9, 1.0), 0.15, "cabinet"),
        ObjectKind("chips", "box", (0.10, 0.06, 0.045), (1.0, 0.5, 0.0, 1.0), 0.05, "cabinet"),
        ObjectKind("cup", "cylinder", (0.036, 0.075), (0.95, 0.95, 0.95, 1.0), 0.1, "drawer"),
    )
}
"""The everyday objects, distinct in shape and colour; entity names are these kind names."""


@dataclass(frozen=True)
class Fixtures:
    """Body ids of the static and articulated furniture."""

    counter: int
    drawer: int  # multibody: base = housing, link 0 = the sliding tray
    cabinet: int  # multibody: base = walls and shelf, link 0 = door, link 1 = handle rod
    sink: int
    bowl: int

    DRAWER_JOINT = 0
    DOOR_JOINT = 0
    ROD_JOINT = 1


def _box(client: BulletClient, half: list[float], rgba: tuple[float, ...]) -> tuple[int, int]:
    return (
        client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half),
        client.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=rgba),
    )


def _boxes(
    client: BulletClient, boxes: list[tuple[list[float], list[float]]], rgba: tuple[float, ...]
) -> tuple[int, int]:
    """One compound collision and visual shape of boxes given as (centre, half extents)."""
    centres = [centre for centre, _ in boxes]
    halves = [half for _, half in boxes]
    n = len(boxes)
    collision = client.createCollisionShapeArray(
        [pybullet.GEOM_BOX] * n, halfExtents=halves, collisionFramePositions=centres
    )
    visual = client.createVisualShapeArray(
        [pybullet.GEOM_BOX] * n,
        halfExtents=halves,
        visualFramePositions=centres,
        rgbaColors=[rgba] * n,
    )
    return collision, visual


def _hollow(
    x: tuple[float, float], y: tuple[float, float], z: tuple[float, float], open_sides: set[str]
) -> list[tuple[list[float], list[float]]]:
    """Boards of an open box spanning x, y, z (outer faces), leaving out ``open_sides``
    (any of top, bottom, front, back, left, right; front faces the robot)."""
    t = PLATE / 2
    cx, cy, cz = (x[0] + x[1]) / 2, (y[0] + y[1]) / 2, (z[0] + z[1]) / 2
    hx, hy, hz = (x[1] - x[0]) / 2, (y[1] - y[0]) / 2, (z[1] - z[0]) / 2
    boards = {
        "bottom": ([cx, cy, z[0] + t], [hx, hy, t]),
        "top": ([cx, cy, z[1] - t], [hx, hy, t]),
        "front": ([x[0] + t, cy, cz], [t, hy, hz]),
        "back": ([x[1] - t, cy, cz], [t, hy, hz]),
        "right": ([cx, y[0] + t, cz], [hx, t, hz]),
        "left": ([cx, y[1] - t, cz], [hx, t, hz]),
    }
    return [([*c], [*h]) for side, (c, h) in boards.items() if side not in open_sides]


def _relative(
    boards: list[tuple[list[float], list[float]]], origin: list[float]
) -> list[tuple[list[float], list[float]]]:
    return [([c - o for c, o in zip(centre, origin, strict=True)], half) for centre, half in boards]


def build_counter(client: BulletClient) -> int:
    half = [(COUNTER_X[1] - COUNTER_X[0]) / 2, (COUNTER_Y[1] - COUNTER_Y[0]) / 2, 0.02]
    collision, visual = _box(client, half, COUNTER_RGBA)
    counter = client.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=collision,
        baseVisualShapeIndex=visual,
        basePosition=[(COUNTER_X[0] + COUNTER_X[1]) / 2, 0.0, -half[2]],
    )
    # The hand-over zone: a flat mark on the counter, seen but not felt.
    zone = HANDOVER_ZONE
    mark = client.createVisualShape(
        pybullet.GEOM_BOX,
        halfExtents=[(zone.x[1] - zone.x[0]) / 2, (zone.y[1] - zone.y[0]) / 2, 0.0005],
        rgbaColor=(0.35, 0.6, 0.9, 1.0),
    )
    client.createMultiBody(baseVisualShapeIndex=mark, basePosition=[*zone.centre, 0.0005])
    return counter


def _geometry(shape: Shape) -> str:
    kind, centre, size, rpy = shape
    if kind == "box":
        geometry = f'<box size="{size[0] * 2:.4f} {size[1] * 2:.4f} {size[2] * 2:.4f}"/>'
    else:  # cylinder: (radius, length), along its frame's z axis
        geometry = f'<cylinder radius="{size[0]:.4f}" length="{size[1]:.4f}"/>'
    xyz = " ".join(f"{v:.4f}" for v in centre)
    angles = " ".join(f"{v:.4f}" for v in rpy)
    return f'<origin xyz="{xyz}" rpy="{angles}"/><geometry>{geometry}</geometry>'


def _link(
    name: str, shapes: list[tuple[Shape, tuple[float, ...]]], mass: float, com: list[float]
) -> str:
    """A URDF link of several primitive shapes, each with its colour."""
    parts = [f'<link name="{name}">']
    inertia = max(mass, 1e-3) * 0.01
    parts.append(
        f'<inertial><origin xyz="{com[0]:.4f} {com[1]:.4f} {com[2]:.4f}"/><mass value="{mass}"/>'
        f'<inertia ixx="{inertia}" iyy="{inertia}" izz="{inertia}" ixy="0" ixz="0" iyz="0"/>'
        "</inertial>"
    )
    for shape, rgba in shapes:
        colour = " ".join(f"{v:.3f}" for v in rgba)
        parts.append(
            f'<visual>{_geometry(shape)}<material name="c{colour}"><color rgba="{colour}"/>'
            "</material></visual>"
        )
        parts.append(f"<collision>{_geometry(shape)}</collision>")
    parts.append("</link>")
    return "".join(parts)


def _joint(
    name: str,
    kind: str,
    parent: str,
    child: str,
    origin: list[float],
    axis: list[int],
    limits: tuple[float, float],
) -> str:
    xyz = " ".join(f"{v:.4f}" for v in origin)
    return (
        f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
        f'<origin xyz="{xyz}"/><axis xyz="{" ".join(map(str, axis))}"/>'
        f'<limit lower="{limits[0]}" upper="{limits[1]}" effort="1000" velocity="10"/>'
        "</joint>"
    )


def _boxes_of(
    boards: list[tuple[list[float], list[float]]], rgba: tuple[float, ...]
) -> list[tuple[Shape, tuple[float, ...]]]:
    return [(("box", centre, half, (0.0, 0.0, 0.0)), rgba) for centre, half in boards]


def _load(client: BulletClient, name: str, urdf: str, position: list[float]) -> int:
    """Load URDF text (written once to the temp directory under a name hashing it)."""
    text = f'<?xml version="1.0"?><robot name="{name}">{urdf}</robot>'
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"embodied_{name}_{digest}.urdf"
    if not path.exists():
        partial = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.part")
        partial.write_text(text)
        partial.replace(path)  # atomic: concurrent processes never read half a file
    return client.loadURDF(
        str(path),
        basePosition=position,
        useFixedBase=True,
        flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
    )


Boards = list[tuple[list[float], list[float]]]
"""Boxes as (centre, half extents), world coordinates."""


def drawer_housing_boards() -> Boards:
    """The drawer unit's fixed housing: open at the front."""
    return _hollow(DRAWER_HOUSING_X, DRAWER_HOUSING_Y, (0.0, DRAWER_HEIGHT), {"front"})


def drawer_tray_boards() -> tuple[Boards, Boards]:
    """The sliding tray (floor, low walls, front panel) and its handle, with the drawer shut."""
    x, y = DRAWER_HOUSING_X, DRAWER_HOUSING_Y
    centre_y = (y[0] + y[1]) / 2
    gap = 0.004
    tray_x = (x[0] - PLATE, x[1] - PLATE - gap)  # front panel flush with the housing's front
    tray_y = (y[0] + PLATE + gap, y[1] - PLATE - gap)
    tray_z = (DRAWER_FLOOR_Z - PLATE, DRAWER_FLOOR_Z + DRAWER_WALL_HEIGHT)
    tray = _hollow(tray_x, tray_y, tray_z, {"top", "front"})
    tray.append(  # the front panel closes the housing's opening
        (
            [tray_x[0] + PLATE / 2, centre_y, DRAWER_HEIGHT / 2],
            [PLATE / 2, (y[1] - y[0]) / 2 - gap, DRAWER_HEIGHT / 2 - gap],
        )
    )
    bar_x = tray_x[0] - DRAWER_HANDLE_STANDOFF
    z0, z1 = DRAWER_HANDLE_Z
    post_x = (bar_x + tray_x[0]) / 2
    post_half = [DRAWER_HANDLE_STANDOFF / 2, 0.006, 0.006]
    handle = [
        ([bar_x, centre_y, (z0 + z1) / 2], [0.008, 0.008, (z1 - z0) / 2]),  # the bar
        ([post_x, centre_y, z0 + 0.008], post_half),
        ([post_x, centre_y, z1 - 0.008], post_half),
    ]
    return tray, handle


def cabinet_boards() -> Boards:
    """The cabinet's fixed part: four walls and the shelf (the door is a link)."""
    x, y = CABINET_X, CABINET_Y
    walls = _hollow(x, y, (0.0, CABINET_HEIGHT), {"top", "bottom"})
    shelf = (
        [(x[0] + x[1]) / 2, (y[0] + y[1]) / 2, CABINET_SHELF_Z / 2],
        [(x[1] - x[0]) / 2, (y[1] - y[0]) / 2, CABINET_SHELF_Z / 2],
    )
    return [*walls, shelf]


def sink_boards() -> Boards:
    return _hollow(SINK_X, SINK_Y, (-0.001, SINK_WALL_HEIGHT), {"top", "bottom"})


FURNITURE_FOOTPRINTS = np.array(
    [
        [CABINET_X[0], CABINET_Y[0], CABINET_X[1], CABINET_Y[1], CABINET_HEIGHT],
        [
            DRAWER_HOUSING_X[0] - DRAWER_TRAVEL - DRAWER_HANDLE_STANDOFF,
            DRAWER_HOUSING_Y[0],
            DRAWER_HOUSING_X[1],
            DRAWER_HOUSING_Y[1],
            DRAWER_HEIGHT,
        ],
    ]
)
"""(2, 5) x0, y0, x1, y1, top of the space the cabinet (door shut) and the drawer unit (drawer
and handle pulled all the way out) may take: where no hand can come down beside them."""


def fixture_boxes(drawer_opening: float, with_tray: bool = True) -> np.ndarray:
    """(B, 5) x0, y0, x1, y1, top of every board of the fixed furniture and of the drawer where it
    is now (unless ``with_tray`` is False): what a hand must not come down on. The door and the
    bowl are read from the simulator."""
    tray, handle = drawer_tray_boards()
    moved = (
        [([c[0] - drawer_opening, c[1], c[2]], h) for c, h in tray + handle] if with_tray else []
    )
    boards = drawer_housing_boards() + moved + cabinet_boards() + sink_boards()
    return np.array(
        [[c[0] - h[0], c[1] - h[1], c[0] + h[0], c[1] + h[1], c[2] + h[2]] for c, h in boards]
    )


def build_drawer_unit(client: BulletClient) -> int:
    """Housing (fixed) with a tray on a prismatic joint that slides toward the robot."""
    x, y = DRAWER_HOUSING_X, DRAWER_HOUSING_Y
    origin = [x[0], (y[0] + y[1]) / 2, 0.0]  # the front of the housing, at the counter
    tray, handle = drawer_tray_boards()
    urdf = _link(
        "housing", _boxes_of(_relative(drawer_housing_boards(), origin), WOOD_RGBA), 0.0, [0, 0, 0]
    )
    tray_shapes = _boxes_of(_relative(tray, origin), WOOD_RGBA)
    tray_shapes += _boxes_of(_relative(handle, origin), HANDLE_RGBA)
    urdf += _link("tray", tray_shapes, 0.5, [0.1, 0.0, 0.04])
    urdf += _joint(
        "slide", "prismatic", "housing", "tray", [0, 0, 0], [-1, 0, 0], (0.0, DRAWER_TRAVEL)
    )
    return _load(client, "drawer", urdf, origin)


def build_cabinet(client: BulletClient) -> int:
    """Walls and shelf (fixed), the door on top hinged at the back, a pivoting handle rod."""
    x, y = CABINET_X, CABINET_Y
    hinge = [x[1], (y[0] + y[1]) / 2, CABINET_HEIGHT]
    walls = cabinet_boards()
    depth = x[1] - x[0]
    door = [([-depth / 2, 0.0, PLATE / 2], [depth / 2, (y[1] - y[0]) / 2, PLATE / 2])]
    rod: Shape = ("cylinder", [0.0, 0.0, 0.0], [0.009, 0.14], (np.pi / 2, 0.0, 0.0))
    urdf = _link("walls", _boxes_of(_relative(walls, hinge), WOOD_RGBA), 0.0, [0, 0, 0])
    urdf += _link("door", _boxes_of(door, METAL_RGBA), 0.4, [-depth / 2, 0.0, 0.0])
    urdf += _link("rod", [(rod, HANDLE_RGBA)], 0.03, [0, 0, 0])
    urdf += _joint(
        "hinge", "revolute", "walls", "door", [0, 0, 0], [0, 1, 0], (0.0, CABINET_DOOR_LIMIT)
    )
    urdf += _joint(
        "pivot",
        "revolute",
        "door",
        "rod",
        [-depth - CABINET_ROD_STANDOFF, 0.0, PLATE / 2],
        [0, 1, 0],
        (-np.pi, np.pi),
    )
    return _load(client, "cabinet", urdf, hinge)


def build_sink(client: BulletClient) -> int:
    collision, visual = _boxes(client, sink_boards(), METAL_RGBA)
    return client.createMultiBody(
        baseMass=0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual
    )


def build_bowl(client: BulletClient, x: float, y: float) -> int:
    """A bowl from primitives: a base disc and a ring of BOWL_SEGMENTS wall boards."""
    shapes = [pybullet.GEOM_CYLINDER] + [pybullet.GEOM_BOX] * BOWL_SEGMENTS
    radii = [BOWL_RADIUS] + [0.0] * BOWL_SEGMENTS
    lengths = [0.008] + [0.0] * BOWL_SEGMENTS
    wall = [0.006, BOWL_RADIUS * np.tan(np.pi / BOWL_SEGMENTS) + 0.002, BOWL_WALL_HEIGHT / 2]
    halves = [[0.0, 0.0, 0.0]] + [wall] * BOWL_SEGMENTS
    angles = 2 * np.pi * np.arange(BOWL_SEGMENTS) / BOWL_SEGMENTS
    frames = [[0.0, 0.0, 0.004]] + [
        [BOWL_RADIUS * np.cos(a), BOWL_RADIUS * np.sin(a), BOWL_WALL_HEIGHT / 2] for a in angles
    ]
    orientations = [[0.0, 0.0, 0.0, 1.0]] + [
        list(client.getQuaternionFromEuler([0, 0, a])) for a in angles
    ]
    geometry = {"radii": radii, "halfExtents": halves, "lengths": lengths}
    collision = client.createCollisionShapeArray(
        shapes, **geometry, collisionFramePositions=frames, collisionFrameOrientations=orientations
    )
    visual = client.createVisualShapeArray(
        shapes,
        **geometry,
        visualFramePositions=frames,
        visualFrameOrientations=orientations,
        rgbaColors=[BOWL_RGBA] * len(shapes),
    )
    bowl = client.createMultiBody(
        baseMass=0,  # static: it stays put (a resting compound body costs ~50 contact points)
        baseCollisionShapeIndex=collision,
        baseVisualShapeIndex=visual,
        basePosition=[x, y, 0.0005],
    )
    client.changeDynamics(bowl, -1, lateralFriction=1.0)
    return bowl


def spawn_object(client: BulletClient, kind: ObjectKind, position: list[float], yaw: float) -> int:
    """Create the object with its bottom at position[2]."""
    if kind.shape == "box":
        half = [d / 2 for d in kind.dims]
        collision, visual = _box(client, half, kind.rgba)
    elif kind.shape == "sphere":
        collision = client.createCollisionShape(pybullet.GEOM_SPHERE, radius=kind.dims[0])
        visual = client.createVisualShape(
            pybullet.GEOM_SPHERE, radius=kind.dims[0], rgbaColor=kind.rgba
        )
    elif kind.shape == "cylinder":
        radius, height = kind.dims
        collision = client.createCollisionShape(
            pybullet.GEOM_CYLINDER, radius=radius, height=height
        )
        visual = client.createVisualShape(
            pybullet.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=kind.rgba
        )
    else:  # bottle: a body and a narrow neck, centred on the whole height
        radius, height = kind.dims
        body_h, neck_h = height * 0.65, height * 0.35
        shapes = [pybullet.GEOM_CYLINDER] * 2
        radii, lengths = [radius, radius * 0.45], [body_h, neck_h]
        frames = [[0, 0, body_h / 2 - height / 2], [0, 0, body_h + neck_h / 2 - height / 2]]
        collision = client.createCollisionShapeArray(
            shapes, radii=radii, lengths=lengths, collisionFramePositions=frames
        )
        visual = client.createVisualShapeArray(
            shapes,
            radii=radii,
            lengths=lengths,
            visualFramePositions=frames,
            rgbaColors=[kind.rgba] * 2,
        )
    body = client.createMultiBody(
        baseMass=kind.mass,
        baseCollisionShapeIndex=collision,
        baseVisualShapeIndex=visual,
        basePosition=[position[0], position[1], position[2] + kind.height / 2 + 0.0005],
        baseOrientation=client.getQuaternionFromEuler([0, 0, yaw]),
    )
    client.changeDynamics(
        body,
        -1,
        lateralFriction=1.0,
        spinningFriction=0.002,
        rollingFriction=0.002 if kind.shape == "sphere" else 0.0001,
    )
    return body


def hold_joint(client: BulletClient, body: int, joint: int, friction: float) -> None:
    """Joint friction: a velocity motor at zero speed that pushes back with at most ``friction``."""
    client.setJointMotorControl2(
        body, joint, pybullet.VELOCITY_CONTROL, targetVelocity=0.0, force=friction
    )


def build_fixtures(client: BulletClient, bowl_xy: tuple[float, float]) -> Fixtures:
    fixtures = Fixtures(
        counter=build_counter(client),
        drawer=build_drawer_unit(client),
        cabinet=build_cabinet(client),
        sink=build_sink(client),
        bowl=build_bowl(client, *bowl_xy),
    )
    hold_joint(client, fixtures.drawer, Fixtures.DRAWER_JOINT, JOINT_FRICTION_DRAWER)
    hold_joint(client, fixtures.cabinet, Fixtures.DOOR_JOINT, JOINT_FRICTION_DOOR)
    hold_joint(client, fixtures.cabinet, Fixtures.ROD_JOINT, 0.005)  # the rod pivots freely
    for body in (fixtures.counter, fixtures.drawer, fixtures.cabinet, fixtures.sink):
        for link in range(-1, client.getNumJoints(body)):
            client.changeDynamics(body, link, lateralFriction=1.0)
    return fixtures


def joint_position(client: BulletClient, body: int, joint: int) -> float:
    return float(client.getJointState(body, joint)[0])


# --- where things go ---------------------------------------------------------------------------
COUNTER = "counter"
STORES = ("drawer", "cabinet")
"""Where things are put away; they open and close (``open(drawer)``)."""
CONTAINERS = (*STORES, "sink", "bowl")
PLACE_TARGETS = (COUNTER, *CONTAINERS)
"""What ``place(obj, <target>)`` accepts in the kitchen; ``counter`` is its hand-over zone."""
DRAWER_SLOTS_OPEN = ((0.445, -0.50), (0.445, -0.355))
"""(x, y) of the two places for objects in the drawer when it is fully open. The hand is 20 cm
wide along its fingers, which open along y in the drawer: the slots are far enough apart that the
hand over one clears an object in the other."""
CABINET_SLOTS = ((0.565, 0.285), (0.565, 0.435))
"""(x, y) of the two places on the cabinet's shelf: the hand over one fits between the walls and
clears an object in the other."""
SLOT_RADIUS = 0.05  # an object whose centre is this close to a slot occupies it
FINGER_CLEARANCE = 0.035  # free space kept between objects on the counter
BASIN_CLEARANCE = 0.01  # ... in the sink, where objects are dropped from above (fingers stay high)
LEVEL_TOLERANCE = 0.015  # metres between an object's bottom and the surface it rests on


@dataclass(frozen=True)
class KitchenObject:
    """One everyday object as the tasks see it."""

    name: str
    position: tuple[float, float, float]
    yaw: float
    location: str  # counter | drawer | cabinet | sink | bowl | held | none (fallen, wedged)
    footprint_radius: float

    @property
    def reachable(self) -> bool:
        return float(np.hypot(self.position[0], self.position[1])) <= REACH_RADIUS

    def to_json(self) -> dict[str, Any]:
        return {
            "position": [round(v, 4) for v in self.position],
            "yaw": round(self.yaw, 4),
            "location": self.location,
        }


@dataclass(frozen=True)
class KitchenState:
    """Where every object is, what the gripper holds, how far the drawer and the door are open."""

    objects: dict[str, KitchenObject]
    held: str | None
    drawer_opening: float  # metres the drawer is pulled out
    door_angle: float  # radians the cabinet's door is lifted
    bowl_position: tuple[float, float]

    @property
    def drawer_open(self) -> bool:
        return self.drawer_opening >= DRAWER_OPEN_AT

    @property
    def drawer_closed(self) -> bool:
        return self.drawer_opening <= DRAWER_CLOSED_BELOW

    @property
    def cabinet_open(self) -> bool:
        return self.door_angle >= CABINET_OPEN_AT

    @property
    def cabinet_closed(self) -> bool:
        return self.door_angle <= CABINET_CLOSED_BELOW

    def is_open(self, fixture: str) -> bool:
        return self.drawer_open if fixture == "drawer" else self.cabinet_open

    def is_closed(self, fixture: str) -> bool:
        return self.drawer_closed if fixture == "drawer" else self.cabinet_closed

    def located(self, location: str) -> list[str]:
        return [o.name for o in self.objects.values() if o.location == location]

    def pick_blocker(self, name: str) -> str | None:
        """Why ``name`` cannot be picked in this state, or None."""
        obj = self.objects[name]
        if obj.location in ("drawer", "cabinet") and not self.is_open(obj.location):
            return f"{name} is in the closed {obj.location}"
        if not obj.reachable:
            return f"{name} is out of reach"
        return None

    def free_spot(self, name: str, target: str) -> tuple[float, float] | None:
        """Where ``name`` can go in ``target`` (drawer, cabinet, sink, bowl or the counter's
        hand-over zone), or None when there is no room."""
        others = [o for o in self.objects.values() if o.name != name and o.location != "held"]
        radius = self.objects[name].footprint_radius
        if target in ("drawer", "cabinet"):
            slots = drawer_slots(self.drawer_opening) if target == "drawer" else CABINET_SLOTS
            for slot in slots:
                if all(
                    np.hypot(o.position[0] - slot[0], o.position[1] - slot[1]) > SLOT_RADIUS
                    for o in others
                ):
                    return slot
            return None
        if target == "bowl":
            bx, by = self.bowl_position
            inside = [
                o for o in others if np.hypot(o.position[0] - bx, o.position[1] - by) < BOWL_RADIUS
            ]
            return None if inside else self.bowl_position
        if target == "sink":  # packed from one corner, so that three objects fit
            area = _sink_interior(radius)
            corner = (area.x[0], area.y[0])
            return _free_point(area, radius, others, BASIN_CLEARANCE, corner)
        return _free_point(HANDOVER_ZONE, radius, others, FINGER_CLEARANCE, HANDOVER_ZONE.centre)

    def to_json(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "drawer_opening": round(self.drawer_opening, 4),
            "door_angle": round(self.door_angle, 4),
            "bowl_position": [round(v, 4) for v in self.bowl_position],
            "objects": {n: o.to_json() for n, o in self.objects.items()},
        }


def drawer_slots(opening: float) -> tuple[tuple[float, float], ...]:
    """The drawer's slots where the drawer is now (they move with it)."""
    shift = DRAWER_TRAVEL - opening
    return tuple((x + shift, y) for x, y in DRAWER_SLOTS_OPEN)


def _sink_interior(radius: float) -> Region:
    margin = PLATE + radius + 0.005
    return Region(
        "sink", (SINK_X[0] + margin, SINK_X[1] - margin), (SINK_Y[0] + margin, SINK_Y[1] - margin)
    )


def _free_point(
    area: Region,
    radius: float,
    others: list[KitchenObject],
    clearance: float,
    anchor: tuple[float, float],
) -> tuple[float, float] | None:
    """The point of ``area`` nearest ``anchor`` that keeps ``clearance`` to every other object."""
    xs = np.arange(area.x[0], area.x[1] + 1e-9, 0.01)
    ys = np.arange(area.y[0], area.y[1] + 1e-9, 0.01)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)  # (G, 2)
    free = np.ones(len(grid), dtype=bool)
    for other in others:
        needed = radius + other.footprint_radius + clearance
        free &= np.linalg.norm(grid - np.array(other.position[:2]), axis=1) >= needed
    if not free.any():
        return None
    candidates = grid[free]
    best = candidates[np.argmin(np.linalg.norm(candidates - np.array(anchor), axis=1))]
    return (float(best[0]), float(best[1]))


def locate(
    position: tuple[float, float, float],
    bottom: float,
    drawer_opening: float,
    bowl_position: tuple[float, float],
) -> str:
    """Where an object resting with its centre at ``position`` and its bottom at ``bottom`` is."""
    x, y, _ = position
    shift = DRAWER_TRAVEL - drawer_opening  # tray x offset from its fully open place
    tray_x = (
        DRAWER_HOUSING_X[0] - DRAWER_TRAVEL + shift,
        DRAWER_HOUSING_X[1] - DRAWER_TRAVEL + shift,
    )
    if tray_x[0] <= x <= tray_x[1] and DRAWER_HOUSING_Y[0] <= y <= DRAWER_HOUSING_Y[1]:
        return "drawer" if abs(bottom - DRAWER_FLOOR_Z) < LEVEL_TOLERANCE else "none"
    if CABINET_X[0] <= x <= CABINET_X[1] and CABINET_Y[0] <= y <= CABINET_Y[1]:
        return "cabinet" if abs(bottom - CABINET_SHELF_Z) < LEVEL_TOLERANCE else "none"
    if SINK_X[0] <= x <= SINK_X[1] and SINK_Y[0] <= y <= SINK_Y[1]:
        return "sink" if abs(bottom) < LEVEL_TOLERANCE else "none"
    if np.hypot(x - bowl_position[0], y - bowl_position[1]) < BOWL_RADIUS:
        return "bowl" if bottom < BOWL_WALL_HEIGHT else "none"
    on_counter = COUNTER_X[0] <= x <= COUNTER_X[1] and COUNTER_Y[0] <= y <= COUNTER_Y[1]
    return COUNTER if on_counter and abs(bottom) < LEVEL_TOLERANCE else "none"
