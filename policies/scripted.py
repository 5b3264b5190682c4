"""Scripted skills: inverse kinematics and joint position control through physics.

Objects move only through contact: the fingers close on an object and friction carries it (no
constraint, no teleport); drawers and doors move only because the fingers pull their handles.
Each skill's ``_body`` is a generator of actions that returns its outcome; preconditions are
checked first so that an impossible call fails fast with a reason.
"""

from __future__ import annotations

from collections.abc import Collection, Generator

import numpy as np

from envs.base import ArmEnv, box_distance
from envs.geometry import rotate_z, wrap_quarter, yaw_of
from envs.plan import SkillCall
from envs.robot import (
    FINGER_OUTER,
    FINGERTIP_BELOW,
    HAND_BOTTOM,
    MAX_GRIPPER_WIDTH,
    hand_footprint,
)
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
CLEARANCE_ABOVE_STACKS = 0.09  # travel height above the highest object or furniture
GRIPPER_STEPS = 8  # control steps to close or open the fingers
MAX_SKILL_STEPS = 400
CORRIDOR_MARGIN = 0.03  # obstacles this close to a travel line set its height
MAX_TRAVEL_HEIGHT = 0.45  # metres: higher, the arm cannot reach far out with the gripper down
DETOUR_X = 0.40  # a travel too high goes round through this x, nearer the robot


COMMAND_DIM = 5  # a tool command: x, y, z (metres), yaw (rad), gripper width (metres)


def tool_action(env: ArmEnv, position: np.ndarray, yaw: float, gripper: float) -> np.ndarray:
    """The env action (7 joint targets, gripper width) that puts the tool at ``position``,
    pointing down, turned to ``yaw``: inverse kinematics."""
    quaternion = np.array(env.client.getQuaternionFromEuler([np.pi, 0.0, yaw]))
    joints = env.robot.inverse_kinematics(position, quaternion)
    return np.append(joints, gripper).astype(np.float32)


MIN_LIFT = 0.03  # metres a picked object must rise to count as picked


def lift_verdict(env: ArmEnv, name: str, start_height: float) -> str:
    """ "" if the gripper holds ``name`` and has lifted it from ``start_height``; else what not:
    how every pick (scripted or learned) is judged."""
    lifted = env.object_pose(name)[0][2] - start_height
    if env.held() != name or lifted < MIN_LIFT:
        return f"grasp of {name} did not hold (lifted {lifted:.3f} m)"
    return ""


class SkillFailure(Exception):
    """Raised inside a script; becomes a failed outcome with this message."""


class ScriptedSkill(Skill):
    """Shared machinery: motion through IK, gripper commands, step budget."""

    def __init__(self, env: ArmEnv, call: SkillCall, max_steps: int = MAX_SKILL_STEPS) -> None:
        super().__init__(call)
        self.env = env
        self.max_steps = max_steps
        self.steps = 0
        self._script = self._run()
        self._gripper = MAX_GRIPPER_WIDTH
        self._yaw = float(yaw_of(env.robot.tool_pose()[1]))
        self.command = np.zeros(COMMAND_DIM, dtype=np.float32)
        """The tool target of the last action (x, y, z, yaw, gripper width): what demonstrations
        record, since a learned policy acts in the tool's space (``policies.learned``)."""

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
        self.command = np.array([*position, self._yaw, self._gripper], dtype=np.float32)
        return tool_action(self.env, position, self._yaw, self._gripper)

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
        touching = sorted(
            {
                self.env.body_name(c[2])
                for c in self.env.client.getContactPoints(bodyA=self.env.robot.body)
            }
        )
        against = f", touching {', '.join(touching)}" if touching else ""
        raise SkillFailure(
            f"arm could not reach {np.round(goal, 3).tolist()} (tool at {tool}{against})"
        )

    def _set_gripper(self, width: float) -> Motion:
        """Command the finger opening and hold the tool still while it moves."""
        self._gripper = width
        hold = self.env.robot.tool_pose()[0]
        for _ in range(GRIPPER_STEPS):
            yield self._action(hold)

    def _travel(self, goal: np.ndarray, yaw: float, exclude: Collection[str] = ()) -> Motion:
        """Straight up to a safe height (at least the goal's), then across to above ``goal`` while
        the wrist turns to ``yaw``: it never turns low, among the objects. ``exclude`` names what
        does not count as an obstacle (a moving part the skill will take)."""
        tool = self.env.robot.tool_pose()[0]
        safe = max(self._safe_height(tool, goal, exclude), float(goal[2]))
        stops = [goal]
        if safe > MAX_TRAVEL_HEIGHT:  # over tall furniture, out of reach: go round it instead
            via = np.array([DETOUR_X, (tool[1] + goal[1]) / 2, 0.0])
            legs = [self._safe_height(tool, via, exclude), self._safe_height(via, goal, exclude)]
            if max(*legs, float(goal[2])) < safe:
                stops, safe = [via, goal], max(*legs, float(goal[2]))
        if tool[2] < safe - REACH_TOLERANCE:
            yield from self._move_to(np.array([tool[0], tool[1], safe]))
        self._yaw = yaw
        for stop in stops:
            yield from self._move_to(np.array([stop[0], stop[1], max(safe, tool[2])]))

    def _safe_height(
        self, start: np.ndarray, goal: np.ndarray, exclude: Collection[str] = ()
    ) -> float:
        """Tool height that clears everything near the line from ``start`` to ``goal`` (but the
        held object and ``exclude``), with the held object hanging below the tool."""
        held = self.env.held()
        hanging = 0.0
        exclude = set(exclude)
        if held is not None:
            exclude.add(held)
            bottom = self.env.client.getAABB(self.env.bodies[held])[0][2]
            hanging = max(0.0, float(self.env.robot.tool_pose()[0][2] - bottom))
        top = self.env.corridor_top(start, goal, CORRIDOR_MARGIN, exclude)
        return top + CLEARANCE_ABOVE_STACKS + hanging

    def _fitting_yaw(
        self, spot: np.ndarray, yaws: tuple[float, ...], tool_z: float, exclude: set[str]
    ) -> float:
        """Of the gripper yaws that fit the object (a cube's two face pairs, say), one where the
        hand, lowered until the tool is at ``tool_z``, hits nothing, and of those the one whose
        open fingers land furthest from everything else. A parallel gripper is the same every
        half turn, so each yaw is taken as its equivalent in YAW_RANGE nearest the current one;
        ties go to the smaller turn of the wrist."""
        candidates = sorted(
            (self._nearest_reachable_yaw(yaw) for yaw in yaws), key=lambda y: abs(y - self._yaw)
        )
        boxes = self.env.obstacle_boxes(exclude)  # (B, 5)
        above_hand = boxes[boxes[:, 4] > tool_z + HAND_BOTTOM]
        above_fingertips = boxes[boxes[:, 4] > tool_z - FINGERTIP_BELOW]
        best_yaw, best_score = candidates[0], (False, -np.inf)
        for yaw in candidates:
            axis = np.array([np.sin(yaw), -np.cos(yaw)])  # the direction the fingers open along
            hand = hand_footprint(spot, yaw)
            hand_clear = not bool((box_distance(hand, above_hand) < 0.005).any())
            fingers = np.stack([spot + axis * FINGER_OUTER, spot - axis * FINGER_OUTER])
            room = float(box_distance(fingers, above_fingertips).min(initial=np.inf))
            better_room = room > best_score[1] + 1e-6
            if hand_clear > best_score[0] or (hand_clear == best_score[0] and better_room):
                best_yaw, best_score = yaw, (hand_clear, room)
        return best_yaw

    def _nearest_reachable_yaw(self, yaw: float) -> float:
        """The yaw equal to ``yaw`` modulo a half turn nearest the current one, within YAW_RANGE."""
        options = [yaw + k * np.pi for k in range(-3, 4)]
        options = [y for y in options if YAW_RANGE[0] <= y <= YAW_RANGE[1]]
        return min(options, key=lambda y: abs(y - self._yaw))


class Pick(ScriptedSkill):
    """pick(obj): open, come down over the object at a yaw that fits it, close, lift."""

    def _body(self) -> Script:
        (name,) = self.call.args
        if name not in self.env.bodies:
            return self._done(False, f"no object {name!r} in the scene")
        held = self.env.held()
        if held is not None:
            return self._done(False, f"the gripper already holds {held}")
        blocker = self.env.pick_blocker(name)
        if blocker is not None:
            return self._done(False, blocker)

        grasp = self.env.grasp_goal(name)
        yaw = self._fitting_yaw(grasp.point[:2], grasp.yaws, grasp.point[2], exclude={name})
        self._gripper = MAX_GRIPPER_WIDTH
        yield from self._travel(grasp.point, yaw)
        yield from self._move_to(grasp.point + [0, 0, 0.04])
        yield from self._move_to(grasp.point, speed=APPROACH_SPEED)
        yield from self._set_gripper(0.0)
        start_height = self.env.object_pose(name)[0][2]
        lift = self._safe_height(grasp.point, grasp.point)
        yield from self._move_to(np.array([*grasp.point[:2], lift]))

        problem = lift_verdict(self.env, name, start_height)
        return self._done(not problem, problem)


class Place(ScriptedSkill):
    """place(obj, target): carry the held object over the target, lower it, release, retreat.

    The world says where the target is free (``env.place_goal``) and whether the object ended
    there (``env.place_verdict``): a cube, the table, a region or a cell on the tabletop; the
    counter, drawer, cabinet, sink or bowl in the kitchen.
    """

    def _body(self) -> Script:
        name, target = self.call.args
        held = self.env.held()
        if held != name:
            return self._done(False, f"not holding {name} (holding {held})")
        if target == name:
            return self._done(False, "cannot place an object on itself")
        goal = self.env.place_goal(name, target)
        if isinstance(goal, str):
            return self._done(False, goal)

        obj_position, obj_quaternion = self.env.object_pose(name)
        tool = self.env.robot.tool_pose()[0]
        if np.linalg.norm(obj_position - tool) > self.env.entity_spec(name).size:
            return self._done(False, f"{name} is not between the fingers")
        self._gripper = 0.0  # keep squeezing the held object
        if goal.gripper_yaws is not None:
            yaws = goal.gripper_yaws
        elif goal.align_yaw is not None:
            # Turn the wrist so that the held cube's faces line up with the target's: two such
            # wrist angles, a quarter turn apart.
            aligned = self._yaw + wrap_quarter(goal.align_yaw - yaw_of(obj_quaternion))
            yaws = (aligned, aligned + np.pi / 2)
        else:
            yaws = (self._yaw,)
        bottom = self.env.client.getAABB(self.env.bodies[name])[0][2]
        hang = tool[2] - bottom  # tool above the object's bottom
        release_z = goal.surface + goal.drop + hang
        new_yaw = self._fitting_yaw(goal.spot, yaws, release_z, exclude={name})
        # The object's centre relative to the tool, after the wrist turns.
        offset = rotate_z(obj_position[:2] - tool[:2], new_yaw - self._yaw)
        goal_tool = np.array([goal.spot[0] - offset[0], goal.spot[1] - offset[1], release_z])
        yield from self._travel(goal_tool, new_yaw)
        yield from self._move_to(goal_tool + [0, 0, 0.04])
        yield from self._move_to(goal_tool, speed=APPROACH_SPEED)
        yield from self._set_gripper(MAX_GRIPPER_WIDTH)
        yield from self._move_to(goal_tool + [0, 0, 0.06], speed=APPROACH_SPEED * 2)
        problem = self.env.place_verdict(name, target)
        return self._done(not problem, problem)


HANDLE_OPENING = (
    0.05  # finger opening around a handle: wide enough, narrow enough to miss its mount
)
HANDLE_SETTLE_STEPS = 6  # control steps the tool holds the end of a handle path


class Operate(ScriptedSkill):
    """open(fixture) / close(fixture): pinch the handle from above, move it along the path the
    joint allows (a line for the drawer, an arc for the door), let go, lift off.

    The joint moves only because the fingers pull or push its handle; a stuck joint makes the
    handle slip out of the fingers and the skill reports that the fixture did not move.
    """

    def _body(self) -> Script:
        (fixture,) = self.call.args
        opening = self.call.verb == "open"
        held = self.env.held()
        if held is not None:
            return self._done(False, f"the gripper holds {held}")
        motion = self.env.handle_motion(fixture, opening)
        if isinstance(motion, str):
            return self._done(False, motion)
        self._gripper = HANDLE_OPENING
        above_handle = motion.grasp + [0, 0, 0.06]
        yield from self._travel(above_handle, motion.yaw, exclude={motion.part})
        yield from self._move_to(above_handle)
        yield from self._move_to(motion.grasp, speed=APPROACH_SPEED)
        yield from self._set_gripper(0.0)
        for waypoint in motion.path:
            yield self._action(waypoint)
        for _ in range(HANDLE_SETTLE_STEPS):
            yield self._action(motion.path[-1])
        yield from self._set_gripper(HANDLE_OPENING)
        release = self.env.robot.tool_pose()[0]
        for offset in motion.retreat:
            yield from self._move_to(release + offset, speed=APPROACH_SPEED * 2)
        problem = self.env.fixture_verdict(fixture, opening)
        return self._done(not problem, problem)
