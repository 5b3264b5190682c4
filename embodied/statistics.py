"""The statistics every success table here reports: rates with 95% Wilson intervals, and the
macro-F1 of yes/no answers (kitchen affordance and failure detection, the tabletop's q3/q4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

YES_NO = ("yes", "no")


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sound at 0 or all successes, unlike the
    normal approximation); ``(0, 1)`` without trials."""
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} must lie in [0, trials={trials}]")
    if trials == 0:
        return (0.0, 1.0)
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z
        * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
        / (1 + z * z / trials)
    )
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate_summary(successes: int, trials: int) -> dict[str, Any]:
    """Trials, rate and its 95% Wilson interval: one cell of a success table."""
    low, high = wilson_interval(successes, trials)
    return {
        "trials": trials,
        "successes": successes,
        "rate": successes / trials if trials else 0.0,
        "ci95": [round(low, 4), round(high, 4)],
    }


def macro_f1(expected: Sequence[str], answered: Sequence[str]) -> float:
    """Mean over the classes ``yes`` and ``no`` of each one's F1 (precision and recall of
    answering it), so neither the common nor the rare answer dominates: a model that always says
    "yes" to a question whose answer is "yes" 80% of the time scores 0.44, not 0.89. Answers
    other than yes/no count as wrong for both classes."""
    if len(expected) != len(answered):
        raise ValueError(f"{len(expected)} expected answers but {len(answered)} given")
    unknown = sorted(set(expected) - set(YES_NO))
    if unknown:
        raise ValueError(f"expected answers {unknown} are not yes/no")
    pairs = list(zip(expected, answered, strict=True))
    scores = []
    for label in YES_NO:
        true_positive = sum(e == label and a == label for e, a in pairs)
        predicted = sum(a == label for a in answered)
        actual = sum(e == label for e in expected)
        if predicted + actual == 0:  # the class never occurs nor is answered: perfect
            scores.append(1.0)
            continue
        scores.append(2 * true_positive / (predicted + actual))
    return sum(scores) / len(scores)
