"""Scripted skills: inverse kinematics and joint position control through physics.

Objects move only through contact: the fingers close on a cube and friction carries it (no
constraint, no teleport). Each skill's ``_body`` is a generator of actions that returns its
outcome; preconditions are checked first so that an impossible call fails fast with a reason.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from envs.plan import SkillCall
from envs.regions import REGIONS, WORKSPACE_X, WORKSPACE_Y, Region
from envs.robot import MAX_GRIPPER_WIDTH
from envs.scene import GRIPPER_CLEARANCE
from envs.tabletop import TabletopEnv
from policies.base import Observation, Skill, SkillOutcome

Script = Generator[np.ndarray, None, SkillOutcome]
Motion = Generator[np.ndarray, None, None]

TRAVEL_SPEED = 0.02  # metres of tool motion per control step in free space
APPROACH_SPEED = 0.008  # ... near contact
REACH_TOLERANCE = 0.01  # metres between the tool and its goal that count as arrived
CLEARANCE_ABOVE_STACKS = 0.09  # travel height above the highest cube top
GRASP_DEPTH = 0.012  # how far below a cube's top face the fingertips close
RELEASE_GAP = 0.004  # gap left under a cube before the fingers open
GRIPPER_STEPS = 8  # control steps to close or open the fingers
MAX_SKILL_STEPS = 400
REGION_MARGIN = 0.01  # metres a placed cube's centre stays inside its region's border


class SkillFailure(Exception):
    """Raised inside a script; becomes a failed outcome with this message."""


class ScriptedSkill(Skill):
    """Shared machinery: motion through IK, gripper commands, step budget."""

    def __init__(self, env: TabletopEnv, call: SkillCall, max_steps: int = MAX_SKILL_STEPS) -> None:
        super().__init__(call)
        self.env = env
        self.max_steps = max_steps
        self.steps = 0
        self._script = self._run()
        self._gripper = MAX_GRIPPER_WIDTH
        self._yaw = float(_yaw_of(env.robot.tool_pose()[1]))

    def act(self, observation: Observation) -> np.ndarray | None:
        if self.outcome is not None:
            return None
        if self.steps >= self.max_steps:
            self.outcome = SkillOutcome(False, f"timeout after {self.steps} steps", self.steps)
            return None
        try:
            action = next(self._script)
        except StopIteration as stop:
            self.outcome = stop.value
            return None
        self.steps += 1
        return action

    def _run(self) -> Script:
        try:
            outcome = yield from self._body()
        except SkillFailure as failure:
            outcome = SkillOutcome(False, str(failure), self.steps)
        return outcome

    def _body(self) -> Script:
        raise NotImplementedError

    def _done(self, success: bool, reason: str = "") -> SkillOutcome:
        return SkillOutcome(success, reason, self.steps)

    # --- motion primitives -------------------------------------------------------------------
    def _action(self, position: np.ndarray) -> np.ndarray:
        quaternion = np.array(self.env.client.getQuaternionFromEuler([np.pi, 0.0, self._yaw]))
        joints = self.env.robot.inverse_kinematics(position, quaternion)
        return np.append(joints, self._gripper).astype(np.float32)

    def _move_to(self, goal: np.ndarray, speed: float = TRAVEL_SPEED, budget: int = 120) -> Motion:
        """Straight line of the tool to ``goal`` at ``speed`` per step, holding the current yaw."""
        commanded = self.env.robot.tool_pose()[0]
        for _ in range(budget):
            offset = goal - commanded
            distance = float(np.linalg.norm(offset))
            commanded = goal if distance <= speed else commanded + offset / distance * speed
            yield self._action(commanded)
            reached = np.linalg.norm(self.env.robot.tool_pose()[0] - goal) < REACH_TOLERANCE
            if distance <= speed and reached:
                return
        tool = np.round(self.env.robot.tool_pose()[0], 3).tolist()
        raise SkillFailure(f"arm could not reach {np.round(goal, 3).tolist()} (tool at {tool})")

    def _set_gripper(self, width: float) -> Motion:
        """Command the finger opening and hold the tool still while it moves."""
        self._gripper = width
        hold = self.env.robot.tool_pose()[0]
        for _ in range(GRIPPER_STEPS):
            yield self._action(hold)

    def _travel(self, goal: np.ndarray) -> Motion:
        """Up to a safe height, then across to above ``goal`` (its height is not used)."""
        safe = self._safe_height()
        tool = self.env.robot.tool_pose()[0]
        if tool[2] < safe - REACH_TOLERANCE:
            yield from self._move_to(np.array([tool[0], tool[1], safe]))
        yield from self._move_to(np.array([goal[0], goal[1], safe]))

    def _safe_height(self) -> float:
        tops = [self.env.object_pose(c.name)[0][2] + c.size / 2 for c in self.env.cubes]
        held = self.env.symbolic_state().held
        hanging = self.env.cube(held).size if held else 0.0
        return max(tops, default=0.0) + CLEARANCE_ABOVE_STACKS + hanging

    def _top(self, name: str) -> float:
        return float(self.env.client.getAABB(self.env.bodies[name])[1][2])


class Pick(ScriptedSkill):
    """pick(obj): open, come down over the cube aligned with its faces, close, lift."""

    def _body(self) -> Script:
        (name,) = self.call.args
        if name not in self.env.bodies:
            return self._done(False, f"no object {name!r} in the scene")
        state = self.env.symbolic_state()
        if state.held is not None:
            return self._done(False, f"the gripper already holds {state.held}")
        if not state.is_clear(name):
            return self._done(False, f"{name} is blocked by {state.above(name)[0]}")

        position, quaternion = self.env.object_pose(name)
        self._yaw = _nearest_face_yaw(_yaw_of(quaternion), self._yaw)
        self._gripper = MAX_GRIPPER_WIDTH
        above = np.array([position[0], position[1], 0.0])
        yield from self._travel(above)
        grasp = np.array([position[0], position[1], self._top(name) - GRASP_DEPTH])
        yield from self._move_to(grasp + [0, 0, 0.04])
        yield from self._move_to(grasp, speed=APPROACH_SPEED)
        yield from self._set_gripper(0.0)
        start_height = self.env.object_pose(name)[0][2]
        yield from self._move_to(np.array([grasp[0], grasp[1], self._safe_height()]))

        lifted = self.env.object_pose(name)[0][2] - start_height
        if self.env.symbolic_state().held != name or lifted < 0.03:
            return self._done(False, f"grasp of {name} did not hold (lifted {lifted:.3f} m)")
        return self._done(True)


class Place(ScriptedSkill):
    """place(obj, target): carry the held cube over the target, lower it, release, retreat."""

    def _body(self) -> Script:
        name, target = self.call.args
        state = self.env.symbolic_state()
        if state.held != name:
            return self._done(False, f"not holding {name} (holding {state.held})")
        if target in self.env.bodies:
            if target == name:
                return self._done(False, "cannot place an object on itself")
            if not state.is_clear(target):
                return self._done(False, f"{target} is covered by {state.above(target)[0]}")
            spot = self.env.object_pose(target)[0][:2]
            bottom = self._top(target)
            target_yaw = _yaw_of(self.env.object_pose(target)[1])
        elif target == "table" or target in REGIONS:
            region = REGIONS.get(target)
            found = self._free_spot(name, region)
            if found is None:
                return self._done(False, f"no free spot on {target}")
            spot, bottom, target_yaw = found, 0.0, 0.0
        else:
            return self._done(False, f"unknown place target {target!r}")

        self._gripper = 0.0  # keep squeezing the held cube
        # Turn the wrist so that the held cube's faces line up with the target's.
        obj_position, obj_quaternion = self.env.object_pose(name)
        turn = _wrap_quarter(target_yaw - _yaw_of(obj_quaternion))
        tool = self.env.robot.tool_pose()[0]
        offset = _rotate_z(obj_position[:2] - tool[:2], turn)  # cube centre relative to the tool
        self._yaw += turn
        hang = tool[2] - (obj_position[2] - self.env.cube(name).size / 2)  # tool above cube bottom
        goal = np.array([spot[0] - offset[0], spot[1] - offset[1], bottom + RELEASE_GAP + hang])
        yield from self._travel(goal)
        yield from self._move_to(goal + [0, 0, 0.04])
        yield from self._move_to(goal, speed=APPROACH_SPEED)
        yield from self._set_gripper(MAX_GRIPPER_WIDTH)
        yield from self._move_to(goal + [0, 0, 0.06], speed=APPROACH_SPEED * 2)

        support = self.env.symbolic_state().objects[name].support
        if target in self.env.bodies:
            return self._done(
                support == target, "" if support == target else f"{name} ended on {support}"
            )
        x, y = self.env.object_pose(name)[0][:2]
        inside = target == "table" or REGIONS[target].contains(x, y)
        if support != "table" or not inside:
            return self._done(
                False, f"{name} ended on {support} at ({x:.3f}, {y:.3f}), not in {target}"
            )
        return self._done(True)

    def _free_spot(self, name: str, region: Region | None) -> np.ndarray | None:
        """The free point of the region (or whole workspace) nearest its centre (or the cube).

        Cube centres stay REGION_MARGIN inside a region, so that a few millimetres of placement
        error do not put the cube over its border, and inside the workspace (where the arm reaches).
        """
        size = self.env.cube(name).size
        if region is None:
            (x_low, x_high), (y_low, y_high) = WORKSPACE_X, WORKSPACE_Y
        else:
            x_low = max(region.x[0] + REGION_MARGIN, WORKSPACE_X[0])
            x_high = min(region.x[1] - REGION_MARGIN, WORKSPACE_X[1])
            y_low = max(region.y[0] + REGION_MARGIN, WORKSPACE_Y[0])
            y_high = min(region.y[1] - REGION_MARGIN, WORKSPACE_Y[1])
        xs = np.arange(x_low, x_high + 1e-9, 0.01)
        ys = np.arange(y_low, y_high + 1e-9, 0.01)
        grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)  # (G, 2)
        if len(grid) == 0:
            return None
        free = np.ones(len(grid), dtype=bool)
        for cube in self.env.cubes:
            if cube.name == name:
                continue
            centre = self.env.object_pose(cube.name)[0][:2]
            needed = (size + cube.size) * np.sqrt(2) / 2 + GRIPPER_CLEARANCE
            free &= np.linalg.norm(grid - centre, axis=1) >= needed
        if not free.any():
            return None
        anchor = np.array(region.centre) if region else self.env.object_pose(name)[0][:2]
        candidates = grid[free]
        return candidates[np.argmin(np.linalg.norm(candidates - anchor, axis=1))]


def _yaw_of(quaternion: np.ndarray) -> float:
    """Rotation about the world z axis of a frame, radians (from the quaternion's x axis)."""
    x, y, z, w = quaternion
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _wrap_quarter(angle: float) -> float:
    """An angle folded into [-pi/4, pi/4): cubes look the same every quarter turn."""
    return float((angle + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def _nearest_face_yaw(cube_yaw: float, current_yaw: float) -> float:
    """The gripper yaw aligned with the cube's faces that is closest to the current yaw."""
    return current_yaw + _wrap_quarter(cube_yaw - current_yaw)


def _rotate_z(vector: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])
