"""Task families of the tabletop.

PaLM-E's TAMP set (``tamp``): planning tasks p1 (grasp) and p2 (stack) and the questions q1-q4.
Language-Table-style long-horizon tasks (``long_horizon``): sort, tower, line, pair, gather.
"""

from envs.tasks.base import PlanTask, QuestionTask, Task, TaskFamily, normalize_answer
from envs.tasks.long_horizon import LONG_HORIZON_FAMILIES
from envs.tasks.tamp import TAMP_FAMILIES, GraspTask, StackTask, is_feasible

TASK_FAMILIES: dict[str, TaskFamily] = {**TAMP_FAMILIES, **LONG_HORIZON_FAMILIES}
"""Every tabletop task family by name."""

__all__ = [
    "LONG_HORIZON_FAMILIES",
    "TAMP_FAMILIES",
    "TASK_FAMILIES",
    "GraspTask",
    "PlanTask",
    "QuestionTask",
    "StackTask",
    "Task",
    "TaskFamily",
    "is_feasible",
    "normalize_answer",
]
