"""Task families of the tabletop and the kitchen.

PaLM-E's TAMP set (``tamp``): planning tasks p1 (grasp) and p2 (stack) and the questions q1-q4.
Language-Table-style long-horizon tasks (``long_horizon``): sort, tower, line, pair, gather.
SayCan-style kitchen tasks and questions (``kitchen``).
"""

from typing import Any

from envs.scene import SymbolicState
from envs.tasks.base import PlanTask, QuestionTask, Task, TaskFamily, normalize_answer
from envs.tasks.kitchen import KITCHEN_FAMILIES, AttemptQuestion, KitchenFamily
from envs.tasks.long_horizon import LONG_HORIZON_FAMILIES
from envs.tasks.tamp import TAMP_FAMILIES, GraspTask, StackTask, is_feasible

TABLETOP_FAMILIES: dict[str, TaskFamily[SymbolicState]] = {
    **TAMP_FAMILIES,
    **LONG_HORIZON_FAMILIES,
}
"""Every tabletop task family by name."""
TASK_FAMILIES: dict[str, TaskFamily[Any]] = {**TABLETOP_FAMILIES, **KITCHEN_FAMILIES}
"""Every task family of every world by name (names are unique across worlds)."""

__all__ = [
    "KITCHEN_FAMILIES",
    "LONG_HORIZON_FAMILIES",
    "TABLETOP_FAMILIES",
    "TAMP_FAMILIES",
    "TASK_FAMILIES",
    "AttemptQuestion",
    "GraspTask",
    "KitchenFamily",
    "PlanTask",
    "QuestionTask",
    "StackTask",
    "Task",
    "TaskFamily",
    "is_feasible",
    "normalize_answer",
]
