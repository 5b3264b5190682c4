"""Observation and info keys: the one place their names are spelled.

Every package reads observations through these constants, never through string literals, so a
renamed key is a one-line change (LeRobot's ``utils/constants.py`` does the same).
"""

from __future__ import annotations

# --- observation dict keys -------------------------------------------------------------------
RGB = "rgb"
"""(V, H, W, 3) uint8: one colour image per camera view."""
DEPTH = "depth"
"""(V, H, W) float32: metric depth along each camera's optical axis, in metres."""
SEGMENTATION = "segmentation"
"""(V, H, W) int32: ``j`` where the object of row j-1 of OBJECTS is seen (obj_j; in the kitchen
also the drawer unit and the cabinet, whose rows follow the objects'), SEG_BACKGROUND elsewhere,
SEG_ROBOT on the arm."""
OBJECTS = "objects"
"""(max_objects, OBJECT_FEATURES) float32: row j-1 describes obj_j (``ArmEnv.observed_names``
names every row: the kitchen's fixtures follow its objects); absent rows are zero."""
OBJECT_MASK = "object_mask"
"""(max_objects,) int8: 1 where the row of OBJECTS is a real object (or kitchen fixture), 0 for
padding."""
PROPRIO = "proprio"
"""(PROPRIO_DIM,) float32: arm joint positions and velocities, gripper width, tool pose."""
INTRINSICS = "intrinsics"
"""(V, 3, 3) float32: pinhole matrix K of each view, in pixels."""
EXTRINSICS = "extrinsics"
"""(V, 4, 4) float32: camera-to-world pose of each view, OpenCV axes (x right, y down, z ahead)."""
POINT_CLOUD = "point_cloud"
"""(P, 6) float32, optional: fused, voxel-downsampled xyz (metres) and rgb (0..1) of all views."""
POINT_LABELS = "point_labels"
"""(P,) int32, optional: the segmentation label of each point (same codes as SEGMENTATION)."""
POINT_MASK = "point_mask"
"""(P,) int8, optional: 1 for real points, 0 for padding."""

# --- segmentation codes ----------------------------------------------------------------------
SEG_BACKGROUND = 0
SEG_ROBOT = -1

# --- per-object feature layout (columns of OBJECTS) ------------------------------------------
OBJECT_POSITION = slice(0, 3)  # x, y, z of the centre, metres, world frame
OBJECT_QUATERNION = slice(3, 7)  # x, y, z, w
OBJECT_SIZE = slice(7, 8)  # cube edge length, metres
OBJECT_COLOUR = slice(8, 11)  # r, g, b in 0..1
OBJECT_FEATURES = 11

# --- proprio layout --------------------------------------------------------------------------
PROPRIO_JOINT_POSITIONS = slice(0, 7)
PROPRIO_JOINT_VELOCITIES = slice(7, 14)
PROPRIO_GRIPPER_WIDTH = slice(14, 15)
PROPRIO_TOOL_POSITION = slice(15, 18)
PROPRIO_TOOL_QUATERNION = slice(18, 22)
PROPRIO_DIM = 22

# --- info dict keys --------------------------------------------------------------------------
INSTRUCTION = "instruction"
"""str: the instruction or question of the episode."""
TASK = "task"
"""str: the task family, e.g. ``"p2"``."""
IS_SUCCESS = "is_success"
"""bool: the task's success predicate on the current simulator state (False for questions)."""
ENTITIES = "entities"
"""dict[str, int]: entity name (``obj_j``) -> PyBullet body id."""
SYMBOLIC_STATE = "symbolic_state"
"""dict: JSON-ready symbolic state (per object: colour, size, position, what it rests on)."""
