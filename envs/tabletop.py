"""``embodied/Tabletop-v0``: a Panda arm at a table with coloured cubes, PaLM-E's TAMP world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.base import (
    OBJECT_CAPACITY,
    ArmEnv,
    ArmEnvConfig,
    Entity,
    GraspGoal,
    PlaceGoal,
)
from envs.geometry import yaw_of
from envs.plan import PLACE_LOCATIONS, TABLE
from envs.regions import CELLS, REGIONS, TABLE_HEIGHT, TABLE_X, TABLE_Y
from envs.scene import (
    CELL_TOLERANCE,
    COLOUR_COMBOS,
    CubeSpec,
    SymbolicState,
    build_static_scene,
    cell_occupant,
    free_spot,
    has_colour_combos,
    read_symbolic_state,
    sample_layout,
    spawn_cubes,
)
from envs.tasks import TABLETOP_FAMILIES, TaskFamily
from envs.tasks.base import REFERRALS, Referral

GRASP_DEPTH = 0.012  # how far below a cube's top face the fingertips close
COLOUR_TRIES = 100  # colour draws per scene before a layout counts as not fitting


@dataclass
class TabletopConfig(ArmEnvConfig):
    """Everything that shapes a tabletop episode; validated on construction."""

    num_objects: int | None = None
    """A fixed number of cubes (1-8), or None to draw it from [min_objects, max_objects]."""
    min_objects: int = 3
    """Fewest cubes when num_objects is None."""
    max_objects: int = 5
    """Most cubes when num_objects is None (training has 3-5; 6 and 8 test generalization)."""
    tasks: list[str] = field(default_factory=lambda: ["p1", "p2", "q1", "q2", "q3", "q4"])
    """Task families drawn uniformly at reset (``options={"task": ...}`` picks one)."""
    stack_probability: float = 0.5
    """Chance that a scene starts with one or two cubes stacked on others."""
    referral: str = "entity"
    """How TAMP instructions name single objects: ``entity`` ("How to grasp obj_3?", the
    training data) or ``colour`` ("How to grasp the green object?", the generalization split)."""
    colour_combos: str = "seen"
    """Which colour combinations scenes hold: ``seen`` (never both colours of a pair in
    envs.scene.HELD_OUT_COLOUR_PAIRS: training and in-distribution evaluation), ``unseen`` (at
    least one such pair: the generalization split) or ``any``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_objects is not None and not 1 <= self.num_objects <= OBJECT_CAPACITY:
            raise ValueError(
                f"num_objects={self.num_objects}: allowed 1..{OBJECT_CAPACITY} or None"
            )
        if not 1 <= self.min_objects <= self.max_objects <= OBJECT_CAPACITY:
            raise ValueError(
                f"min_objects={self.min_objects}, max_objects={self.max_objects}: "
                f"need 1 <= min_objects <= max_objects <= {OBJECT_CAPACITY}"
            )
        if not self.tasks:
            raise ValueError(f"tasks=[]: allowed a non-empty list of {sorted(TABLETOP_FAMILIES)}")
        self.check_tasks(TABLETOP_FAMILIES)
        if self.referral not in REFERRALS:
            raise ValueError(f"referral={self.referral!r}: allowed {list(REFERRALS)}")
        if self.colour_combos not in COLOUR_COMBOS:
            raise ValueError(f"colour_combos={self.colour_combos!r}: allowed {list(COLOUR_COMBOS)}")
        if not 0.0 <= self.stack_probability <= 1.0:
            raise ValueError(f"stack_probability={self.stack_probability}: must be in [0, 1]")


class TabletopEnv(ArmEnv):
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

    families = TABLETOP_FAMILIES
    point_cloud_bounds = (
        (TABLE_X[0], TABLE_Y[0], TABLE_HEIGHT - 0.01),
        (TABLE_X[1], TABLE_Y[1], 0.5),
    )

    def __init__(
        self, render_mode: str | None = None, terminate_on_success: bool = False, **config: Any
    ) -> None:
        self.cubes: list[CubeSpec] = []
        self.table = -1
        super().__init__(TabletopConfig(**config), render_mode, terminate_on_success)
        self.config: TabletopConfig

    # --- the world ---------------------------------------------------------------------------
    def _build_static(self) -> None:
        self.table = build_static_scene(self.client)
        self.cubes = []

    def _populate(self, family: TaskFamily[Any], options: dict[str, Any]) -> bool:
        num_objects = options.get("num_objects", self.config.num_objects)
        if num_objects is not None and not 1 <= int(num_objects) <= OBJECT_CAPACITY:
            raise ValueError(f"options['num_objects']={num_objects}: allowed 1..{OBJECT_CAPACITY}")
        if num_objects is None:
            low, high = self.config.min_objects, self.config.max_objects
            count = int(self.np_random.integers(low, high + 1))
        else:
            count = int(num_objects)
        # The family bounds the count: a line needs 4-7 blocks, for example.
        count = min(max(count, family.min_objects), family.max_objects)
        combos = options.get("colour_combos", self.config.colour_combos)
        if combos not in COLOUR_COMBOS:
            raise ValueError(f"options['colour_combos']={combos!r}: allowed {list(COLOUR_COMBOS)}")
        for _ in range(COLOUR_TRIES):
            colours = family.choose_colours(self.np_random, count)
            if has_colour_combos(colours, combos):
                break
        else:
            return False  # e.g. an "unseen" scene of one cube: reset samples another scene
        self.cubes, placements = sample_layout(
            self.np_random, colours, self.config.stack_probability
        )
        self.bodies = spawn_cubes(self.client, self.cubes, placements)
        return True

    def _referral(self, options: dict[str, Any]) -> Referral:
        referral = options.get("referral", self.config.referral)
        if referral not in REFERRALS:
            raise ValueError(f"options['referral']={referral!r}: allowed {list(REFERRALS)}")
        return referral

    def entity_specs(self) -> Sequence[Entity]:
        return self.cubes

    def cube(self, name: str) -> CubeSpec:
        for cube in self.cubes:
            if cube.name == name:
                return cube
        raise KeyError(f"no object {name!r}; objects: {[c.name for c in self.cubes]}")

    def symbolic_state(self) -> SymbolicState:
        left, right = self.robot.finger_contacts()
        touching = {name: (body in left, body in right) for name, body in self.bodies.items()}
        return read_symbolic_state(self.client, self.cubes, self.bodies, touching)

    def scene_config(self) -> str:
        """How many cubes, and how many of them rest on another cube."""
        state = self.symbolic_state()
        stacked = sum(o.support in state.objects for o in state.objects.values())
        return f"{len(state.objects)} objects, {stacked} stacked"

    # --- geometry the skills ask about ---------------------------------------------------------
    @property
    def place_targets(self) -> tuple[str, ...]:
        return PLACE_LOCATIONS

    def pick_blocker(self, name: str) -> str | None:
        state = self.symbolic_state()
        if not state.is_clear(name):
            return f"{name} is blocked by {state.above(name)[0]}"
        return None

    def grasp_goal(self, name: str) -> GraspGoal:
        """Fingers on two opposite faces, GRASP_DEPTH below the top face."""
        position, quaternion = self.object_pose(name)
        top = self.client.getAABB(self.bodies[name])[1][2]
        yaw = yaw_of(quaternion)
        return GraspGoal(
            np.array([position[0], position[1], top - GRASP_DEPTH]), (yaw, yaw + np.pi / 2)
        )

    def place_goal(self, name: str, target: str) -> PlaceGoal | str:
        """On a cube (faces lined up with it), a cell's centre, or the free spot of the table
        (nearest the cube) or of a region (nearest its centre)."""
        state = self.symbolic_state()
        if target in self.bodies:
            if not state.is_clear(target):
                return f"{target} is covered by {state.above(target)[0]}"
            position, quaternion = self.object_pose(target)
            top = self.client.getAABB(self.bodies[target])[1][2]
            return PlaceGoal(position[:2], top, align_yaw=yaw_of(quaternion))
        if target in CELLS:
            occupant = cell_occupant(state, CELLS[target], state.objects[name].size, ignore=name)
            if occupant is not None:
                return f"{target} is occupied by {occupant}"
            return PlaceGoal(np.array(CELLS[target]), TABLE_HEIGHT, align_yaw=0.0)
        if target == TABLE or target in REGIONS:
            found = free_spot(state, name, REGIONS.get(target))
            if found is None:
                return f"no free spot on {target}"
            return PlaceGoal(found, TABLE_HEIGHT, align_yaw=0.0)
        return f"unknown place target {target!r}"

    def place_verdict(self, name: str, target: str) -> str:
        support = self.symbolic_state().objects[name].support
        if target in self.bodies:
            return "" if support == target else f"{name} ended on {support}"
        x, y = self.object_pose(name)[0][:2]
        if target in CELLS:
            cx, cy = CELLS[target]
            inside = np.hypot(x - cx, y - cy) <= CELL_TOLERANCE
        else:
            inside = target == TABLE or REGIONS[target].contains(x, y)
        if support != "table" or not inside:
            return f"{name} ended on {support} at ({x:.3f}, {y:.3f}), not in {target}"
        return ""
