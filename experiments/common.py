"""Helpers shared by the experiment scripts: where results go and how they are written."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from embodied.statistics import wilson_interval

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    """The short commit hash, with "+uncommitted" when tracked files differ from it: a result
    measured on uncommitted code does not claim the commit's code."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() + ("+uncommitted" if changed.stdout.strip() else "")


def success_summary(successes: int, calls: int) -> dict[str, Any]:
    """Calls, success rate and its 95% Wilson interval: one row of a skill-success table."""
    low, high = wilson_interval(successes, calls)
    return {
        "calls": calls,
        "success_rate": successes / max(calls, 1),
        "ci95": [round(low, 3), round(high, 3)],
    }


def merge_rows(
    rows: list[dict[str, Any]], earlier: list[dict[str, Any]], key: str, order: list[str]
) -> list[dict[str, Any]]:
    """The rows just measured, with the earlier rows of the names not measured again (rerunning
    one row keeps the rest of a table), sorted by ``order``; an earlier row whose ``key`` is no
    longer in ``order`` is dropped, not kept as a stale row."""
    by_name = {row[key]: row for row in earlier if row[key] in order}
    by_name |= {row[key]: row for row in rows}
    return sorted(by_name.values(), key=lambda row: order.index(row[key]))


def write_results(name: str, results: dict[str, Any], markdown: str, output_dir: Path) -> None:
    """Write ``name.json`` and ``name.md`` and print the markdown. A run that outlived a commit
    (``machine()`` taken at its start names another) also records ``commit_at_end``: the
    processes it spawned later imported the code of that time."""
    measured_on = results.get("machine")
    if isinstance(measured_on, dict) and "commit" in measured_on:
        now = _git_commit()
        if now != measured_on["commit"]:
            results = {**results, "machine": {**measured_on, "commit_at_end": now}}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (output_dir / f"{name}.md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {output_dir / (name + '.json')} and {output_dir / (name + '.md')}")
