"""Figures over subjects: mean, standard deviation, median and quartiles of each metric (nan skipped), and JSON
without nan."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STATISTICS", "summary", "summarise", "nan_to_none"]


STATISTICS = ("mean", "std", "median", "q1", "q3")
"""The summaries over subjects: mean, population std, median and first / third quartiles (numpy's linear percentiles,
as the SynthRAD challenges aggregate)."""


def summary(per_subject: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each statistic of :data:`STATISTICS` -> {metric: value over subjects}, skipping nan (a subject without bone
    has no bone MAE); nan where no subject has a value.

    Example:
        >>> s = summary({"a": {"mae": 10.0}, "b": {"mae": 20.0}, "c": {"mae": 60.0}})
        >>> s["mean"]["mae"], s["median"]["mae"], s["q1"]["mae"], s["q3"]["mae"]
        (30.0, 20.0, 15.0, 40.0)
    """
    names = list(next(iter(per_subject.values()))) if per_subject else []
    values = {m: np.array([row[m] for row in per_subject.values()], dtype=np.float64) for m in names}
    values = {m: v[~np.isnan(v)] for m, v in values.items()}
    stats = {"mean": np.mean, "std": np.std, "median": np.median, "q1": lambda v: np.percentile(v, 25),
             "q3": lambda v: np.percentile(v, 75)}  # fmt: skip
    return {s: {m: float(f(v)) if v.size else float("nan") for m, v in values.items()} for s, f in stats.items()}


def summarise(per_subject: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) standard deviation of each metric over subjects (see :func:`summary`)."""
    s = summary(per_subject)
    return s["mean"], s["std"]


def nan_to_none(obj: Any) -> Any:
    """``obj`` with every float nan replaced by None, so JSON gets null (json.dumps would write NaN, not JSON)."""
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    return None if isinstance(obj, float) and obj != obj else obj
