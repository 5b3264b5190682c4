"""The table and its named regions, from the robot's point of view (the robot faces +x).

"top" is the far edge of the table (large x), "left" is the robot's left (large y). The workspace
is cut into a 3 x 3 grid of regions: ``top_left top top_right / left centre right / bottom_left
bottom bottom_right``, and into a finer 5 x 7 grid of cells ``pos_<row>_<column>``.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE_HEIGHT = 0.0  # z of the table top, metres
TABLE_X = (0.2, 0.8)  # the table top's extent
TABLE_Y = (-0.4, 0.4)
WORKSPACE_X = (0.3, 0.66)  # where cubes are spawned and placed: reachable with the gripper down
WORKSPACE_Y = (-0.27, 0.27)


@dataclass(frozen=True)
class Region:
    """An axis-aligned rectangle of the workspace, metres."""

    name: str
    x: tuple[float, float]
    y: tuple[float, float]

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x[0] + self.x[1]) / 2, (self.y[0] + self.y[1]) / 2)

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether (x, y) lies in the rectangle grown by ``margin`` on every side."""
        x_in = self.x[0] - margin <= x <= self.x[1] + margin
        return x_in and self.y[0] - margin <= y <= self.y[1] + margin


def _grid() -> dict[str, Region]:
    x0, x1 = WORKSPACE_X
    y0, y1 = WORKSPACE_Y
    xs = [x0 + (x1 - x0) * i / 3 for i in range(4)]  # bottom (near) .. top (far)
    ys = [y0 + (y1 - y0) * i / 3 for i in range(4)]  # right .. left
    rows = {"bottom": 0, "": 1, "top": 2}
    columns = {"right": 0, "": 1, "left": 2}
    regions = {}
    for row, i in rows.items():
        for column, j in columns.items():
            name = "_".join(part for part in (row, column) if part) or "centre"
            regions[name] = Region(name, (xs[i], xs[i + 1]), (ys[j], ys[j + 1]))
    return regions


REGIONS: dict[str, Region] = _grid()
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
"""The nine region names, usable as place targets: ``place(obj_3, top_left)``."""

GRID_ROWS = 5  # along x: row 0 is the near (bottom) edge
GRID_COLUMNS = 7  # along y: column 0 is the robot's right


def _cells() -> dict[str, tuple[float, float]]:
    dx = (WORKSPACE_X[1] - WORKSPACE_X[0]) / GRID_ROWS
    dy = (WORKSPACE_Y[1] - WORKSPACE_Y[0]) / GRID_COLUMNS
    return {
        f"pos_{row}_{column}": (
            WORKSPACE_X[0] + (row + 0.5) * dx,
            WORKSPACE_Y[0] + (column + 0.5) * dy,
        )
        for row in range(GRID_ROWS)
        for column in range(GRID_COLUMNS)
    }


CELLS: dict[str, tuple[float, float]] = _cells()
"""Quantized table positions ``pos_<row>_<column>`` -> (x, y) of the cell centre: finer place
targets than regions (lines of blocks), like Ferret's quantized coordinates in text."""
CELL_NAMES: tuple[str, ...] = tuple(CELLS)
