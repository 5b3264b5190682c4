"""The tabletop scene: table, coloured cubes, layout sampling and the symbolic state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from envs.regions import TABLE_HEIGHT, TABLE_X, TABLE_Y, WORKSPACE_X, WORKSPACE_Y, Region

PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1),
    "green": (0.1, 0.65, 0.2),
    "blue": (0.1, 0.25, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "orange": (1.0, 0.5, 0.0),
    "purple": (0.55, 0.2, 0.75),
    "pink": (1.0, 0.5, 0.75),
    "cyan": (0.1, 0.8, 0.85),
    "white": (0.95, 0.95, 0.95),
    "brown": (0.5, 0.3, 0.1),
}
"""The named colours cubes are drawn from."""
HELD_OUT_COLOUR_PAIRS: tuple[tuple[str, str], ...] = (("red", "blue"), ("green", "yellow"))
"""Colour combinations kept out of training scenes: a "seen" scene never holds both colours of
a pair, an "unseen" one (the generalization split) holds both colours of at least one."""
ColourCombos = Literal["seen", "unseen", "any"]
COLOUR_COMBOS: tuple[ColourCombos, ...] = ("seen", "unseen", "any")
TABLE_RGBA = (0.42, 0.4, 0.38, 1.0)
CUBE_SIZE_RANGE = (0.035, 0.05)  # edge length, metres: fits the Panda's 8 cm gripper
CUBE_MASS = 0.08  # kg
CUBE_FRICTION = 1.0
MAX_STACK_HEIGHT = 3
GRIPPER_CLEARANCE = 0.035  # free space kept between cubes so that fingers fit between them
CELL_GAP = 0.01  # least gap between a cube put in a table cell and its neighbours
CELL_TOLERANCE = 0.02  # metres from a cell's centre within which a cube is in the cell
REGION_MARGIN = 0.01  # metres a placed cube's centre stays inside its region's border
SUPPORT_TOLERANCE = 0.012  # metres between a bottom face and the top it rests on
SUPPORT_OVERHANG = 0.005  # metres a resting cube's centre may lie beyond its support's half edge


@dataclass(frozen=True)
class CubeSpec:
    """What a cube is: its entity name, colour and edge length."""

    name: str
    colour: str
    size: float

    @property
    def rgb(self) -> tuple[float, float, float]:
        return PALETTE[self.colour]


@dataclass(frozen=True)
class Placement:
    """Where a cube starts: on the table at (x, y) with a yaw, or on top of another cube."""

    x: float
    y: float
    yaw: float
    on: str | None = None  # the name of the cube below, or None for the table


def has_colour_combos(colours: list[str], combos: ColourCombos) -> bool:
    """Whether a scene with these cube colours belongs to ``combos`` (HELD_OUT_COLOUR_PAIRS)."""
    held_out = any(a in colours and b in colours for a, b in HELD_OUT_COLOUR_PAIRS)
    return combos == "any" or held_out == (combos == "unseen")


def sample_layout(
    rng: np.random.Generator, colours: list[str], stack_probability: float
) -> tuple[list[CubeSpec], dict[str, Placement]]:
    """One cube per colour given, random sizes, non-overlapping on the table, some stacked.

    With probability ``stack_probability`` the scene has one or two cubes stacked on others (stacks
    at most MAX_STACK_HEIGHT high). Cubes on the table are placed one after another at random
    free points. Raises RuntimeError if no layout fits after many tries, which does not happen
    for up to 8 cubes in the workspace (a test samples 8-cube scenes without stacks).
    """
    unknown = sorted(set(colours) - set(PALETTE))
    if unknown:
        raise ValueError(f"colours {unknown} are not in the palette {sorted(PALETTE)}")
    num_objects = len(colours)
    sizes = rng.uniform(*CUBE_SIZE_RANGE, size=num_objects)
    cubes = [
        CubeSpec(f"obj_{i + 1}", colour, round(float(size), 4))
        for i, (colour, size) in enumerate(zip(colours, sizes, strict=True))
    ]
    num_stacked = 0
    if num_objects >= 2 and rng.random() < stack_probability:
        num_stacked = int(rng.integers(1, min(2, num_objects - 1) + 1))
    order = rng.permutation(num_objects)
    on_table = [cubes[i] for i in order[: num_objects - num_stacked]]
    stacked = [cubes[i] for i in order[num_objects - num_stacked :]]

    placements: dict[str, Placement] = {}
    for _ in range(50):  # sequential placement, each cube tried at many random free points
        placements.clear()
        for cube in on_table:
            for _ in range(200):
                x, y = (float(rng.uniform(*WORKSPACE_X)), float(rng.uniform(*WORKSPACE_Y)))
                if _footprint_free(cube, x, y, cubes, placements):
                    placements[cube.name] = Placement(
                        x, y, float(rng.uniform(-np.pi / 4, np.pi / 4))
                    )
                    break
            else:
                break  # this cube found no room: start the layout again
        if len(placements) == len(on_table):
            break
    else:
        raise RuntimeError(f"could not place {len(on_table)} cubes without overlap")

    heights = {cube.name: 1 for cube in on_table}
    tops = {cube.name: cube.name for cube in on_table}  # bottom cube -> current top of its stack
    for cube in stacked:
        bases = [name for name, height in heights.items() if height < MAX_STACK_HEIGHT]
        base = bases[int(rng.integers(len(bases)))]
        below = placements[tops[base]]
        jitter = rng.uniform(-0.003, 0.003, size=2)
        placements[cube.name] = Placement(
            below.x + float(jitter[0]),
            below.y + float(jitter[1]),
            float(rng.uniform(-np.pi / 4, np.pi / 4)),
            on=tops[base],
        )
        heights[base] += 1
        tops[base] = cube.name
    return cubes, placements


def _footprint_free(
    cube: CubeSpec, x: float, y: float, cubes: list[CubeSpec], placements: dict[str, Placement]
) -> bool:
    """Whether the cube at (x, y) keeps room for a finger to every cube placed so far."""
    sizes = {c.name: c.size for c in cubes}
    for name, other in placements.items():
        # circumscribed circles plus room for a finger
        min_distance = (cube.size + sizes[name]) * np.sqrt(2) / 2 + GRIPPER_CLEARANCE
        if np.hypot(x - other.x, y - other.y) < min_distance:
            return False
    return True


def build_static_scene(client: BulletClient) -> int:
    """The table: a fixed box whose top is at TABLE_HEIGHT; returns its body id."""
    half = [(TABLE_X[1] - TABLE_X[0]) / 2, (TABLE_Y[1] - TABLE_Y[0]) / 2, 0.02]
    centre = [(TABLE_X[0] + TABLE_X[1]) / 2, 0.0, TABLE_HEIGHT - half[2]]
    table = client.createMultiBody(
        baseMass=0,
        baseCollisionShapeIndex=client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half),
        baseVisualShapeIndex=client.createVisualShape(
            pybullet.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_RGBA
        ),
        basePosition=centre,
    )
    client.changeDynamics(table, -1, lateralFriction=CUBE_FRICTION)
    return table


def spawn_cubes(
    client: BulletClient, cubes: list[CubeSpec], placements: dict[str, Placement]
) -> dict[str, int]:
    """Create each cube at rest where its placement says; returns name -> body id."""
    bodies: dict[str, int] = {}
    tops: dict[str, float] = {}
    for cube in _bottom_up(cubes, placements):
        placement = placements[cube.name]
        bottom = TABLE_HEIGHT if placement.on is None else tops[placement.on]
        half = [cube.size / 2] * 3
        body = client.createMultiBody(
            baseMass=CUBE_MASS,
            baseCollisionShapeIndex=client.createCollisionShape(
                pybullet.GEOM_BOX, halfExtents=half
            ),
            baseVisualShapeIndex=client.createVisualShape(
                pybullet.GEOM_BOX, halfExtents=half, rgbaColor=[*cube.rgb, 1.0]
            ),
            basePosition=[placement.x, placement.y, bottom + cube.size / 2 + 0.0005],
            baseOrientation=client.getQuaternionFromEuler([0, 0, placement.yaw]),
        )
        client.changeDynamics(
            body, -1, lateralFriction=CUBE_FRICTION, spinningFriction=0.001, rollingFriction=0.0001
        )
        bodies[cube.name] = body
        tops[cube.name] = bottom + cube.size
    return bodies


def _bottom_up(cubes: list[CubeSpec], placements: dict[str, Placement]) -> list[CubeSpec]:
    """Cubes ordered so that each comes after the cube it stands on."""
    ordered: list[CubeSpec] = []
    done: set[str | None] = {None}
    remaining = list(cubes)
    while remaining:
        ready = [c for c in remaining if placements[c.name].on in done]
        ordered += ready
        done |= {c.name for c in ready}
        remaining = [c for c in remaining if c not in ready]
    return ordered


@dataclass(frozen=True)
class ObjectState:
    """One cube as the tasks see it."""

    name: str
    colour: str
    size: float
    position: tuple[float, float, float]
    yaw: float
    support: str  # "table", "obj_k" (resting on it), "held" (in the gripper) or "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "colour": self.colour,
            "size": self.size,
            "position": [round(v, 4) for v in self.position],
            "yaw": round(self.yaw, 4),
            "support": self.support,
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> ObjectState:
        position = data["position"]
        return cls(
            name,
            data["colour"],
            data["size"],
            (position[0], position[1], position[2]),
            data["yaw"],
            data["support"],
        )


@dataclass(frozen=True)
class SymbolicState:
    """Colours, sizes, poses and the support relation of every cube, plus what the gripper holds."""

    objects: dict[str, ObjectState]
    held: str | None = None

    def above(self, name: str) -> list[str]:
        """The cubes stacked on ``name``, from the one directly on it to the top of the stack."""
        chain: list[str] = []
        current = name
        while True:
            on_top = [o.name for o in self.objects.values() if o.support == current]
            if not on_top:
                return chain
            current = on_top[0]
            chain.append(current)

    def below(self, name: str) -> list[str]:
        """The cubes under ``name``, from the one it rests on down to the table."""
        chain: list[str] = []
        current = self.objects[name].support
        while current in self.objects and current not in chain:
            chain.append(current)
            current = self.objects[current].support
        return chain

    def is_clear(self, name: str) -> bool:
        return not any(o.support == name for o in self.objects.values())

    def by_colour(self, colour: str) -> list[str]:
        return [o.name for o in self.objects.values() if o.colour == colour]

    def to_json(self) -> dict[str, Any]:
        return {"held": self.held, "objects": {n: o.to_json() for n, o in self.objects.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SymbolicState:
        """The state ``to_json`` wrote (as the datasets store it per frame)."""
        objects = {n: ObjectState.from_json(n, o) for n, o in data["objects"].items()}
        return cls(objects, data["held"])


def read_symbolic_state(
    client: BulletClient,
    cubes: list[CubeSpec],
    bodies: dict[str, int],
    fingers_touching: dict[str, tuple[bool, bool]],
) -> SymbolicState:
    """Derive the support relation from the simulator: bounding boxes plus the finger contacts.

    A cube gripped by both fingers and off every support is "held"; a cube whose bottom is within
    SUPPORT_TOLERANCE of a top surface and whose centre lies over it rests on it.
    """
    boxes = {name: client.getAABB(body) for name, body in bodies.items()}
    poses = {name: client.getBasePositionAndOrientation(body) for name, body in bodies.items()}
    objects: dict[str, ObjectState] = {}
    held = None
    for cube in cubes:
        position, orientation = poses[cube.name]
        bottom = boxes[cube.name][0][2]
        support = "none"
        if abs(bottom - TABLE_HEIGHT) < SUPPORT_TOLERANCE and _over_table(position):
            support = "table"
        for other in cubes:
            if other.name == cube.name:
                continue
            top = boxes[other.name][1][2]
            other_position = poses[other.name][0]
            horizontal = np.hypot(position[0] - other_position[0], position[1] - other_position[1])
            if (
                abs(bottom - top) < SUPPORT_TOLERANCE
                and horizontal < other.size / 2 + SUPPORT_OVERHANG
            ):
                support = other.name
        if all(fingers_touching[cube.name]) and support == "none":
            support = "held"
            held = cube.name
        yaw = client.getEulerFromQuaternion(orientation)[2]
        objects[cube.name] = ObjectState(
            cube.name,
            cube.colour,
            cube.size,
            (float(position[0]), float(position[1]), float(position[2])),
            float(yaw),
            support,
        )
    return SymbolicState(objects, held)


def _over_table(position: tuple[float, float, float]) -> bool:
    return TABLE_X[0] <= position[0] <= TABLE_X[1] and TABLE_Y[0] <= position[1] <= TABLE_Y[1]


def free_spot(state: SymbolicState, name: str, region: Region | None) -> np.ndarray | None:
    """Where cube ``name`` can be put down: the free point of the region nearest its centre, or,
    without a region, the free point of the workspace nearest the cube. None if nothing is free.

    A point is free when every other cube is far enough for the fingers to fit between them
    (GRIPPER_CLEARANCE). Centres stay REGION_MARGIN inside a region, so that a few millimetres of
    placement error do not put the cube over its border.
    """
    size = state.objects[name].size
    if region is None:
        (x_low, x_high), (y_low, y_high) = WORKSPACE_X, WORKSPACE_Y
        anchor = np.array(state.objects[name].position[:2])
    else:
        x_low, x_high = region.x[0] + REGION_MARGIN, region.x[1] - REGION_MARGIN
        y_low, y_high = region.y[0] + REGION_MARGIN, region.y[1] - REGION_MARGIN
        anchor = np.array(region.centre)
    xs = np.arange(x_low, x_high + 1e-9, 0.01)
    ys = np.arange(y_low, y_high + 1e-9, 0.01)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)  # (G, 2)
    free = np.ones(len(grid), dtype=bool)
    for other in state.objects.values():
        if other.name == name:
            continue
        needed = (size + other.size) * np.sqrt(2) / 2 + GRIPPER_CLEARANCE
        free &= np.linalg.norm(grid - np.array(other.position[:2]), axis=1) >= needed
    if not free.any():
        return None
    candidates = grid[free]
    return candidates[np.argmin(np.linalg.norm(candidates - anchor, axis=1))]


def cell_occupant(
    state: SymbolicState, spot: tuple[float, float], size: float, ignore: str | None = None
) -> str | None:
    """The cube (other than ``ignore``) too close to ``spot`` for a cube of ``size`` to go there.

    Cubes put in cells are turned square to the table, so the faces of neighbours in adjacent
    cells stay CELL_GAP apart.
    """
    for other in state.objects.values():
        if other.name == ignore:
            continue
        distance = np.hypot(other.position[0] - spot[0], other.position[1] - spot[1])
        if distance < (size + other.size) / 2 + CELL_GAP:
            return other.name
    return None
