"""Scripted skills: inverse kinematics and joint position control through physics.

Objects move only through contact: the fingers close on a cube and friction carries it (no
constraint, no teleport). Each skill's ``_body`` is a generator of actions that returns its
outcome; preconditions are checked first so that an impossible call fails fast with a reason.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from envs.plan import TABLE, SkillCall
from envs.regions import CELLS, REGIONS, TABLE_HEIGHT
from envs.robot import MAX_GRIPPER_WIDTH
from envs.scene import CELL_TOLERANCE, cell_occupant, free_spot
from envs.tabletop import TabletopEnv
from policies.base import Observation, Skill, SkillOutcome

Script = Generator[np.ndarray, None, SkillOutcome]
Motion = Generator[np.ndarray, None, None]

TRAVEL_SPEED = 0.02  # metres of tool motion per control step in free space
APPROACH_SPEED = 0.008  # ... near contact
REACH_TOLERANCE = 0.008  # metres between the tool and its goal that count as arrived
MAX_CORRECTION = 0.03  # metres the IK target may be shifted to cancel IK error
# Tool yaws (rad) the skills use: near home (0), where IK keeps the arm in its usual posture and
# the last joint inside its limits; every yaw has an equivalent here modulo a half turn.
YAW_RANGE = (-2.0, 2.0)
CLEARANCE_ABOVE_STACKS = 0.09  # travel height above the highest cube top
GRASP_DEPTH = 0.012  # how far below a cube's top face the fingertips close
RELEASE_GAP = 0.004  # gap left under a cube before the fingers open
GRIPPER_STEPS = 8  # control steps to close or open the fingers
MAX_SKILL_STEPS = 400
FINGER_REACH = (
    MAX_GRIPPER_WIDTH / 2 + 0.012
)  # metres from the tool axis to an open finger's outside


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
        """Straight line of the tool to ``goal`` at ``speed`` per step, holding the current yaw.

        Once the line is run out, the remaining error is fed back into the IK target (an integral
        correction), since IK near the edges of the arm's reach is off by a centimetre or so.
        """
        commanded = self.env.robot.tool_pose()[0]
        correction = np.zeros(3)
        for _ in range(budget):
            offset = goal - commanded
            distance = float(np.linalg.norm(offset))
            commanded = goal if distance <= speed else commanded + offset / distance * speed
            yield self._action(commanded + correction)
            error = goal - self.env.robot.tool_pose()[0]
            if distance <= speed:
                if np.linalg.norm(error) < REACH_TOLERANCE:
                    return
                correction = np.clip(correction + 0.5 * error, -MAX_CORRECTION, MAX_CORRECTION)
        tool = np.round(self.env.robot.tool_pose()[0], 3).tolist()
        raise SkillFailure(f"arm could not reach {np.round(goal, 3).tolist()} (tool at {tool})")

    def _set_gripper(self, width: float) -> Motion:
        """Command the finger opening and hold the tool still while it moves."""
        self._gripper = width
        hold = self.env.robot.tool_pose()[0]
        for _ in range(GRIPPER_STEPS):
            yield self._action(hold)

    def _travel(self, goal: np.ndarray, yaw: float) -> Motion:
        """Straight up to a safe height, then across to above ``goal`` (its height is not used)
        while the wrist turns to ``yaw``: it never turns low, among the cubes."""
        safe = self._safe_height()
        tool = self.env.robot.tool_pose()[0]
        if tool[2] < safe - REACH_TOLERANCE:
            yield from self._move_to(np.array([tool[0], tool[1], safe]))
        self._yaw = yaw
        yield from self._move_to(np.array([goal[0], goal[1], safe]))

    def _safe_height(self) -> float:
        """Tool height that clears every cube (but the held one) with the held cube hanging."""
        held = self.env.symbolic_state().held
        tops = [self._top(c.name) for c in self.env.cubes if c.name != held]
        hanging = self.env.cube(held).size if held else 0.0
        return max(tops, default=TABLE_HEIGHT) + CLEARANCE_ABOVE_STACKS + hanging

    def _roomiest_yaw(self, spot: np.ndarray, aligned_yaw: float, exclude: set[str]) -> float:
        """Of the two gripper yaws a quarter turn apart that keep the fingers on a cube's faces,
        the one whose open fingers land furthest from the other cubes. A parallel gripper is the
        same every half turn, so each is taken as the equivalent yaw in YAW_RANGE nearest the
        current one."""
        best_yaw, best_room = aligned_yaw, -np.inf
        for candidate in (aligned_yaw, aligned_yaw + np.pi / 2):
            yaw = self._nearest_reachable_yaw(candidate)
            axis = np.array([np.sin(yaw), -np.cos(yaw)])  # the direction the fingers open along
            fingers = [spot + axis * FINGER_REACH, spot - axis * FINGER_REACH]
            room = min(
                (
                    float(np.linalg.norm(finger - self.env.object_pose(c.name)[0][:2]))
                    - c.size * 0.71  # the half-diagonal of the other cube
                    for c in self.env.cubes
                    if c.name not in exclude
                    for finger in fingers
                ),
                default=np.inf,
            )
            if room > best_room + 1e-6:
                best_yaw, best_room = yaw, room
        return best_yaw

    def _nearest_reachable_yaw(self, yaw: float) -> float:
        """The yaw equal to ``yaw`` modulo a half turn nearest the current one, within YAW_RANGE."""
        options = [yaw + k * np.pi for k in range(-3, 4)]
        options = [y for y in options if YAW_RANGE[0] <= y <= YAW_RANGE[1]]
        return min(options, key=lambda y: abs(y - self._yaw))

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
        aligned = _nearest_face_yaw(_yaw_of(quaternion), self._yaw)
        yaw = self._roomiest_yaw(position[:2], aligned, exclude={name})
        self._gripper = MAX_GRIPPER_WIDTH
        yield from self._travel(position, yaw)
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
    """place(obj, target): carry the held cube over the target, lower it, release, retreat.

    Targets: another cube (stack on it), ``table`` (the free spot nearest the cube), a region (its
    free spot nearest the region's centre) or a cell ``pos_<row>_<column>`` (its centre).
    """

    def _body(self) -> Script:
        name, target = self.call.args
        state = self.env.symbolic_state()
        if state.held != name:
            return self._done(False, f"not holding {name} (holding {state.held})")
        target_yaw = 0.0
        if target in self.env.bodies:
            if target == name:
                return self._done(False, "cannot place an object on itself")
            if not state.is_clear(target):
                return self._done(False, f"{target} is covered by {state.above(target)[0]}")
            spot = self.env.object_pose(target)[0][:2]
            bottom = self._top(target)
            target_yaw = _yaw_of(self.env.object_pose(target)[1])
        elif target in CELLS:
            spot, bottom = np.array(CELLS[target]), TABLE_HEIGHT
            occupant = cell_occupant(state, CELLS[target], state.objects[name].size, ignore=name)
            if occupant is not None:
                return self._done(False, f"{target} is occupied by {occupant}")
        elif target == TABLE or target in REGIONS:
            found = free_spot(state, name, REGIONS.get(target))
            if found is None:
                return self._done(False, f"no free spot on {target}")
            spot, bottom = found, TABLE_HEIGHT
        else:
            return self._done(False, f"unknown place target {target!r}")

        obj_position = self.env.object_pose(name)[0]
        tool = self.env.robot.tool_pose()[0]
        if np.linalg.norm(obj_position - tool) > self.env.cube(name).size:
            return self._done(False, f"{name} is not between the fingers")
        self._gripper = 0.0  # keep squeezing the held cube
        # Turn the wrist so that the held cube's faces line up with the target's, choosing of the
        # two such wrist angles the one whose fingers open furthest from other cubes.
        obj_position, obj_quaternion = self.env.object_pose(name)
        aligned = self._yaw + _wrap_quarter(target_yaw - _yaw_of(obj_quaternion))
        new_yaw = self._roomiest_yaw(spot, aligned, exclude={name})
        tool = self.env.robot.tool_pose()[0]
        # The cube's centre relative to the tool, after the wrist turns.
        offset = _rotate_z(obj_position[:2] - tool[:2], new_yaw - self._yaw)
        hang = tool[2] - (obj_position[2] - self.env.cube(name).size / 2)  # tool above cube bottom
        goal = np.array([spot[0] - offset[0], spot[1] - offset[1], bottom + RELEASE_GAP + hang])
        yield from self._travel(goal, new_yaw)
        yield from self._move_to(goal + [0, 0, 0.04])
        yield from self._move_to(goal, speed=APPROACH_SPEED)
        yield from self._set_gripper(MAX_GRIPPER_WIDTH)
        yield from self._move_to(goal + [0, 0, 0.06], speed=APPROACH_SPEED * 2)
        return self._judge(name, target)

    def _judge(self, name: str, target: str) -> SkillOutcome:
        """Did the cube end where it was meant to, resting and released?"""
        support = self.env.symbolic_state().objects[name].support
        if target in self.env.bodies:
            ok = support == target
            return self._done(ok, "" if ok else f"{name} ended on {support}")
        x, y = self.env.object_pose(name)[0][:2]
        if target in CELLS:
            cx, cy = CELLS[target]
            inside = np.hypot(x - cx, y - cy) <= CELL_TOLERANCE
        else:
            inside = target == TABLE or REGIONS[target].contains(x, y)
        if support != "table" or not inside:
            where = f"{support} at ({x:.3f}, {y:.3f})"
            return self._done(False, f"{name} ended on {where}, not in {target}")
        return self._done(True)


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
