"""Small planar geometry shared by worlds and skills: yaws of frames and their symmetries."""

from __future__ import annotations

import numpy as np


def yaw_of(quaternion: np.ndarray) -> float:
    """Rotation about the world z axis of a frame, radians (from the quaternion's x axis)."""
    x, y, z, w = quaternion
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def wrap_quarter(angle: float) -> float:
    """An angle folded into [-pi/4, pi/4): cubes look the same every quarter turn."""
    return float((angle + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def rotate_z(vector: np.ndarray, angle: float) -> np.ndarray:
    """A 2-D vector turned by ``angle`` about the z axis."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])
