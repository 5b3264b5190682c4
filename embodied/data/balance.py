"""MetaCLIP's curation (Xu et al., 2023, "Demystifying CLIP Data"), over scene metadata.

MetaCLIP counts how many examples of a raw pool match each metadata entry and keeps an example of
entry ``e`` with probability ``t / count(e)`` (1 when count(e) <= t): head entries are capped at
about ``t`` examples, tail entries are kept whole. Here every candidate scene matches exactly one
entry, its task family x scene configuration (``"p1 | 4 objects, 1 stacked"``), so the algorithm is
one line per candidate; the bookkeeping around it is what the generator reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curation:
    """Which candidates MetaCLIP kept, with the threshold it used."""

    threshold: int
    kept: tuple[int, ...]
    """Indices into the candidate list, in increasing order."""
    before: dict[str, int]
    """Candidates per metadata entry in the pool."""


def entry_counts(entries: Sequence[str]) -> dict[str, int]:
    """Examples per metadata entry, largest first (ties by name)."""
    return dict(sorted(Counter(entries).items(), key=lambda item: (-item[1], item[0])))


def median_threshold(entries: Sequence[str]) -> int:
    """The default ``t``: the median of the pool's entry counts (halves the head's excess)."""
    return max(1, int(np.median(list(Counter(entries).values()))))


def metaclip_curate(
    entries: Sequence[str], threshold: int | None, rng: np.random.Generator
) -> Curation:
    """Keep candidate i with probability min(1, t / count(entries[i])).

    ``threshold`` None uses ``median_threshold``. The draw is one uniform per candidate, in
    candidate order, so a seeded ``rng`` makes the curation reproducible.
    """
    if threshold is not None and threshold < 1:
        raise ValueError(f"balance_threshold={threshold}: must be >= 1 (or null for the median)")
    t = median_threshold(entries) if threshold is None else threshold
    counts = Counter(entries)
    keep_probability = np.array([min(1.0, t / counts[e]) for e in entries])
    draws = rng.random(len(entries))
    kept = tuple(int(i) for i in np.flatnonzero(draws < keep_probability))
    return Curation(t, kept, entry_counts(entries))


def imbalance(counts: dict[str, int]) -> float:
    """Largest over smallest entry count (1.0 is perfectly balanced)."""
    return max(counts.values()) / min(counts.values()) if counts else 1.0


def uniformity(counts: dict[str, int]) -> float:
    """Entropy of the entry distribution over its largest possible value, log(#entries):
    1.0 when every entry has the same count, lower the more a few entries dominate."""
    if len(counts) < 2:
        return 1.0
    p = np.array(list(counts.values()), dtype=np.float64)
    p /= p.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(p)))
