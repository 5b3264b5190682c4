"""The Franka Panda arm: loading with cheap visuals, joint control, inverse kinematics, state."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 10)
TOOL_LINK = 11  # panda_grasptarget: between the fingertips
FINGER_LINKS = (9, 10)
MAX_GRIPPER_WIDTH = 0.08
# A comfortable pose above the table, the arm's start and its IK rest pose.
HOME_JOINTS = np.array([0.0, -0.35, 0.0, -2.2, 0.0, 1.85, np.pi / 4], dtype=np.float64)
ARM_FORCES = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
GRIP_FORCE = 80.0  # newtons per finger when closing or holding
RELEASE_FORCE = (
    170.0  # newtons per finger when opening (as panda-gym): frees a cube wedged by friction
)
FINGER_FRICTION = 1.5
# The hand around the tool point, gripper down (measured from the collision meshes, fingers open):
HAND_HALF_LENGTH = 0.11  # metres: the hand's half extent along the fingers' axis
HAND_HALF_WIDTH = 0.04  # ... across it
HAND_BOTTOM = 0.033  # the hand's underside above the tool point
FINGER_OUTER = 0.072  # the outer face of an open finger from the tool axis
FINGERTIP_BELOW = 0.012  # fingertips below the tool point


def hand_footprint(spot: np.ndarray, yaw: float, grow: float = 0.0) -> np.ndarray:
    """(27, 2) points covering the hand's footprint seen from above, grown by ``grow`` metres,
    with the tool over ``spot`` (x, y) and the fingers opening along (sin yaw, -cos yaw)."""
    axis = np.array([np.sin(yaw), -np.cos(yaw)])
    normal = np.array([np.cos(yaw), np.sin(yaw)])
    along, across = np.linspace(-1, 1, 9), np.array([-1.0, 0.0, 1.0])
    points = (
        spot
        + along[:, None, None] * axis * (HAND_HALF_LENGTH + grow)
        + across[None, :, None] * normal * (HAND_HALF_WIDTH + grow)
    )
    return points.reshape(-1, 2)


def cheap_panda_urdf() -> Path:
    """Write (once) a copy of pybullet_data's Panda whose visual meshes are its collision meshes.

    The stock visual meshes (~10 MB) make the tiny renderer ~8x slower (DESIGN.md); the collision
    meshes look like a Panda at 64-96 px. The copy lives in the temp directory under a name that
    hashes its content, so concurrent processes agree on it and a stale copy is never reused.
    """
    data = Path(pybullet_data.getDataPath()) / "franka_panda"
    text = (data / "panda.urdf").read_text()
    text = text.replace("package://meshes/visual/", f"{data}/meshes/collision/")
    text = text.replace("package://meshes/collision/", f"{data}/meshes/collision/")
    text = text.replace(".dae", ".obj")
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"embodied_panda_{digest}.urdf"
    if not path.exists():
        partial = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.part")
        partial.write_text(text)
        partial.replace(path)  # atomic: readers never see half a file
    return path


def finger_force(client: BulletClient, body: int, half_width: float) -> float:
    """Motor force for a finger target: stronger when opening than when gripping.

    A cube squeezed at GRIP_FORCE can wedge against the fingers' convex collision hulls so that
    friction holds them shut at the same force; the Panda hand releases harder than it grips.
    """
    current = client.getJointState(body, FINGER_JOINTS[0])[0]
    return RELEASE_FORCE if half_width > current + 1e-4 else GRIP_FORCE


@dataclass(frozen=True)
class JointLimits:
    lower: np.ndarray  # (7,) radians
    upper: np.ndarray  # (7,) radians
    max_speed: np.ndarray  # (7,) rad/s, from the URDF


class Panda:
    """A Panda with a parallel gripper, driven by joint position targets through physics."""

    def __init__(self, client: BulletClient, base_position: tuple[float, float, float]) -> None:
        self.client = client
        self.body = client.loadURDF(
            str(cheap_panda_urdf()),
            basePosition=base_position,
            useFixedBase=True,
            flags=pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT,
        )
        infos = [client.getJointInfo(self.body, j) for j in ARM_JOINTS]
        self.limits = JointLimits(
            lower=np.array([info[8] for info in infos]),
            upper=np.array([info[9] for info in infos]),
            max_speed=np.array([info[11] for info in infos]),
        )
        # Fingers move symmetrically: a gear constraint couples them (pybullet's panda example),
        # so that a grasp centres the cube between them.
        gear = client.createConstraint(
            self.body, 9, self.body, 10, pybullet.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0]
        )
        client.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50)
        for link in FINGER_LINKS:
            client.changeDynamics(
                self.body, link, lateralFriction=FINGER_FRICTION, spinningFriction=0.003
            )

    def reset(self) -> None:
        """Put the arm at HOME_JOINTS with the gripper open, at rest."""
        for joint, angle in zip(ARM_JOINTS, HOME_JOINTS, strict=True):
            self.client.resetJointState(self.body, joint, float(angle), 0.0)
        for joint in FINGER_JOINTS:
            self.client.resetJointState(self.body, joint, MAX_GRIPPER_WIDTH / 2, 0.0)
        self.command(np.concatenate([HOME_JOINTS, [MAX_GRIPPER_WIDTH]]))

    def command(self, action: np.ndarray) -> None:
        """Set position targets: action = 7 arm joint angles (rad) + gripper width (m)."""
        arm = np.clip(action[:7], self.limits.lower, self.limits.upper)
        for joint, target, force, speed in zip(
            ARM_JOINTS, arm, ARM_FORCES, self.limits.max_speed, strict=True
        ):
            self.client.setJointMotorControl2(
                self.body,
                joint,
                pybullet.POSITION_CONTROL,
                targetPosition=float(target),
                force=float(force),
                maxVelocity=float(speed),
            )
        half_width = float(np.clip(action[7], 0.0, MAX_GRIPPER_WIDTH)) / 2
        self.client.setJointMotorControlArray(
            self.body,
            FINGER_JOINTS,
            pybullet.POSITION_CONTROL,
            targetPositions=[half_width, half_width],
            forces=[finger_force(self.client, self.body, half_width)] * 2,
        )

    def tool_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and quaternion xyzw (4,) of the point between the fingertips."""
        state = self.client.getLinkState(self.body, TOOL_LINK, computeForwardKinematics=True)
        return np.array(state[4]), np.array(state[5])

    def inverse_kinematics(self, position: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
        """(7,) joint angles that put the tool at the pose, near HOME_JOINTS in the null space."""
        lower, upper = self.limits.lower, self.limits.upper
        solution = self.client.calculateInverseKinematics(
            self.body,
            TOOL_LINK,
            position.tolist(),
            quaternion.tolist(),
            lowerLimits=lower.tolist() + [0.0, 0.0],
            upperLimits=upper.tolist() + [0.04, 0.04],
            jointRanges=(upper - lower).tolist() + [0.04, 0.04],
            restPoses=HOME_JOINTS.tolist() + [0.02, 0.02],
            maxNumIterations=50,
            residualThreshold=1e-5,
        )
        return np.clip(np.array(solution[:7]), lower, upper)

    def touching(self, body: int) -> tuple[bool, bool]:
        """Whether the left and the right finger are in contact with the body."""
        left, right = self.finger_contacts()
        return (body in left, body in right)

    def finger_contacts(self) -> tuple[set[int], set[int]]:
        """The bodies the left and the right finger touch (one contact query for both)."""
        left: set[int] = set()
        right: set[int] = set()
        for contact in self.client.getContactPoints(bodyA=self.body):
            if contact[3] == FINGER_LINKS[0]:
                left.add(contact[2])
            elif contact[3] == FINGER_LINKS[1]:
                right.add(contact[2])
        return left, right

    def state(self) -> np.ndarray:
        """(15,) arm joint angles (7), arm joint velocities (7), gripper width (1): one query."""
        states = self.client.getJointStates(self.body, ARM_JOINTS + FINGER_JOINTS)
        positions = [s[0] for s in states]
        velocities = [s[1] for s in states[:7]]
        return np.array(positions[:7] + velocities + [positions[7] + positions[8]])
