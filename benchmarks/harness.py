"""What a benchmark reports, and how a measurement is repeated: medians with min–max over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """One figure of one benchmark. `baseline` names the measurement it is compared with in the same run."""

    section: str  # "bus", "ledger", "governance", "loop", …
    name: str
    unit: str  # "events/s", "µs", "s", …
    median: float
    low: float
    high: float
    repeats: int
    higher_is_better: bool = True
    baseline: str | None = None  # name of the baseline Measurement in the same section
    target: str | None = None  # human text, e.g. "≥ 70% of raw redis-py"
    target_ratio: float | None = None  # ratio (this/baseline, or baseline/this when lower is better) to pass
    target_absolute: float | None = None  # absolute bound on the median (≥ if higher_is_better else ≤)
    notes: str = ""

    @classmethod
    def of_seconds(cls, section: str, name: str, samples: list[float], **details: Any) -> Measurement:
        """A time in seconds (lower is better) from its samples: their median, min–max and count."""
        return cls(
            section,
            name,
            "s",
            statistics.median(samples),
            min(samples),
            max(samples),
            len(samples),
            higher_is_better=False,
            **details,
        )


def repeat(fn: Callable[[], float], repeats: int) -> tuple[float, float, float]:
    """Run fn (which returns one figure) `repeats` times; return (median, min, max)."""
    values = [fn() for _ in range(repeats)]
    return statistics.median(values), min(values), max(values)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of fn takes (perf_counter)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
