"""Fixed cameras around the workspace: rendering, intrinsics, extrinsics, point-cloud fusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from envs import keys

NEAR, FAR = 0.01, 3.0
FIELD_OF_VIEW_DEG = 45.0


@dataclass(frozen=True)
class CameraPlacement:
    """Where a camera sits and what it looks at, in world coordinates (metres)."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_deg: float = FIELD_OF_VIEW_DEG
    """Vertical (and, square images, horizontal) field of view."""


# The robot stands at the origin facing +x; the table spans x in [0.2, 0.8], y in [-0.4, 0.4].
CAMERA_PLACEMENTS: dict[str, CameraPlacement] = {
    "front": CameraPlacement(eye=(1.2, 0.0, 0.65), target=(0.48, 0.0, 0.0)),
    "left": CameraPlacement(eye=(0.48, 0.85, 0.6), target=(0.48, 0.0, 0.0)),
    "right": CameraPlacement(eye=(0.48, -0.85, 0.6), target=(0.48, 0.0, 0.0)),
    "overhead": CameraPlacement(eye=(0.48, 0.0, 1.0), target=(0.48, 0.0, 0.0), up=(1.0, 0.0, 0.0)),
    "back": CameraPlacement(eye=(-0.25, 0.0, 0.75), target=(0.5, 0.0, 0.0)),
    # The front, left and right views narrowed to the cubes' workspace (x 0.3-0.66, y +-0.27):
    # a 4 cm cube spans ~5 px of a 64 px view instead of ~3.4, about twice the pixels, for
    # encoders that must find the cubes in the pixels (OSRT's slots).
    "front_zoom": CameraPlacement(eye=(1.2, 0.0, 0.65), target=(0.48, 0.0, 0.0), fov_deg=30.0),
    "left_zoom": CameraPlacement(eye=(0.48, 0.85, 0.6), target=(0.48, 0.0, 0.0), fov_deg=30.0),
    "right_zoom": CameraPlacement(eye=(0.48, -0.85, 0.6), target=(0.48, 0.0, 0.0), fov_deg=30.0),
}


class Camera:
    """A pinhole camera rendered with PyBullet's CPU tiny renderer."""

    def __init__(self, name: str, image_size: int) -> None:
        if name not in CAMERA_PLACEMENTS:
            raise ValueError(f"unknown camera view {name!r}; allowed: {sorted(CAMERA_PLACEMENTS)}")
        self.name = name
        self.size = image_size
        placement = CAMERA_PLACEMENTS[name]
        self._view = pybullet.computeViewMatrix(placement.eye, placement.target, placement.up)
        self._projection = pybullet.computeProjectionMatrixFOV(placement.fov_deg, 1.0, NEAR, FAR)
        focal = image_size / 2 / np.tan(np.deg2rad(placement.fov_deg) / 2)
        self.intrinsics = np.array(
            [[focal, 0.0, image_size / 2], [0.0, focal, image_size / 2], [0.0, 0.0, 1.0]],
            dtype=np.float32,
        )
        self.extrinsics = _camera_to_world(placement)

    def render(self, client: BulletClient) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rgb (H, W, 3) uint8, metric depth (H, W) float32, raw body ids (H, W) int32."""
        _, _, rgba, depth_buffer, body_ids = client.getCameraImage(
            self.size,
            self.size,
            viewMatrix=self._view,
            projectionMatrix=self._projection,
            renderer=pybullet.ER_TINY_RENDERER,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(self.size, self.size, 4)[..., :3]
        z_buffer = np.asarray(depth_buffer, dtype=np.float32).reshape(self.size, self.size)
        depth = FAR * NEAR / (FAR - (FAR - NEAR) * z_buffer)  # OpenGL z-buffer -> metres
        segmentation = np.asarray(body_ids, dtype=np.int32).reshape(self.size, self.size)
        return rgb, depth.astype(np.float32), segmentation


def _camera_to_world(placement: CameraPlacement) -> np.ndarray:
    """(4, 4) camera-to-world transform with OpenCV axes: x right, y down, z forward."""
    eye, target, up = (
        np.asarray(v, dtype=np.float64) for v in (placement.eye, placement.target, placement.up)
    )
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose.astype(np.float32)


def fuse_point_cloud(
    observation: dict[str, np.ndarray],
    voxel_size: float,
    num_points: int,
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project every view, crop to bounds, voxel-downsample with open3d, pad to num_points.

    Returns points (P, 6) xyz+rgb, labels (P,) int32 (segmentation codes, the label of the first
    original point in each voxel) and mask (P,) int8. Above num_points, an evenly strided subset is
    kept, so the result is deterministic.
    """
    import open3d  # heavy import, paid only by users of point clouds

    xyz, rgb, labels = [], [], []
    for depth, colour, seg, k, pose in zip(
        observation[keys.DEPTH],
        observation[keys.RGB],
        observation[keys.SEGMENTATION],
        observation[keys.INTRINSICS],
        observation[keys.EXTRINSICS],
        strict=True,
    ):
        height, width = depth.shape
        v, u = np.mgrid[0:height, 0:width]
        camera_points = np.stack(  # (H, W, 3) in the camera frame
            [(u + 0.5 - k[0, 2]) / k[0, 0] * depth, (v + 0.5 - k[1, 2]) / k[1, 1] * depth, depth],
            axis=-1,
        )
        world = camera_points.reshape(-1, 3) @ pose[:3, :3].T + pose[:3, 3]  # (H*W, 3)
        xyz.append(world)
        rgb.append(colour.reshape(-1, 3) / 255.0)
        labels.append(seg.reshape(-1))
    points, colours, point_labels = np.concatenate(xyz), np.concatenate(rgb), np.concatenate(labels)
    low, high = np.asarray(bounds[0]), np.asarray(bounds[1])
    inside = np.all((points >= low) & (points <= high), axis=1)
    points, colours, point_labels = points[inside], colours[inside], point_labels[inside]

    cloud = open3d.geometry.PointCloud()
    cloud.points = open3d.utility.Vector3dVector(points.astype(np.float64))
    cloud.colors = open3d.utility.Vector3dVector(colours.astype(np.float64))
    down, _, traced = cloud.voxel_down_sample_and_trace(voxel_size, low, high)
    first_index = np.array([np.asarray(indices)[0] for indices in traced], dtype=np.int64)
    fused = np.concatenate([np.asarray(down.points), np.asarray(down.colors)], axis=1)  # (n, 6)
    fused_labels = point_labels[first_index] if len(first_index) else np.zeros(0, np.int32)

    if len(fused) > num_points:
        keep = np.linspace(0, len(fused) - 1, num_points).round().astype(np.int64)
        fused, fused_labels = fused[keep], fused_labels[keep]
    out_points = np.zeros((num_points, 6), dtype=np.float32)
    out_labels = np.zeros(num_points, dtype=np.int32)
    out_mask = np.zeros(num_points, dtype=np.int8)
    out_points[: len(fused)] = fused
    out_labels[: len(fused)] = fused_labels
    out_mask[: len(fused)] = 1
    return out_points, out_labels, out_mask
