"""Copy the result tables in experiments/results/ into the README, between its result markers.

python -m experiments.update_readme
"""

from __future__ import annotations

import re
from pathlib import Path

from experiments.common import RESULTS_DIR

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
SECTIONS = (
    (
        "benchmark_env",
        "python -m experiments.benchmark_env",
        "skills run on state-only observations",
    ),
    ("oracle_success", "python -m experiments.oracle_success", "state-only observations"),
    (
        "oracle_success_8_objects",
        "python -m experiments.oracle_success --num-objects 8 --episodes 50 "
        "--families p1 p2 sort tower pair gather",
        "the 8-cube generalization scenes",
    ),
    (
        "benchmark_kitchen",
        "python -m experiments.benchmark_kitchen",
        "skills run on state-only observations, no injected failures",
    ),
    (
        "oracle_success_kitchen",
        "python -m experiments.oracle_success --env kitchen",
        "state-only observations",
    ),
    (
        "oracle_success_kitchen_failure_rate_0.2",
        "python -m experiments.oracle_success --env kitchen --failure-rate 0.2 "
        "--families put_in_drawer bring_from_cabinet clear_counter put_away",
        "each pick, open and close fails with probability 0.2; the oracle re-plans from the state",
    ),
    (
        "benchmark_generate",
        "python -m experiments.benchmark_generate",
        "each world's default families, train split, balancing on",
    ),
    (
        "pretrain_encoders",
        "python -m experiments.pretrain_encoders --collect (after the training runs it names)",
        "partial: OSRT's Slot Mixer trained 400 of its 1500 default steps; the broadcast "
        "variant 2000 steps on one thread beside other jobs; neither reaches FG-ARI 0.8",
    ),
    (
        "default_planner",
        "python -m experiments.train_default_planner",
        "the shipped checkpoint, closed loop in physics",
    ),
    (
        "benchmark_planner",
        "python -m experiments.benchmark_planner",
        "the shipped checkpoint",
    ),
)


def results_block() -> str:
    parts = []
    for name, command, remark in SECTIONS:
        path = RESULTS_DIR / f"{name}.md"
        if path.exists():
            table = path.read_text().strip().replace("\n## ", "\n### ")
            table = re.sub(r"^## ", "### ", table)
            parts.append(f"`{command}` ({remark}):\n\n{table}")
    return "\n\n".join(parts)


def main() -> None:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{README} has no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{results_block()}\n{END}{tail}")
    print(f"updated {README}")


if __name__ == "__main__":
    main()
