"""Which times of a dataset an evaluation scores, and how they are cut into tasks.

The period's times that have the T - 1 predecessors every model reads, and that every model holding
estimates for some times only (a folder of external estimates, :meth:`available`) holds, are cut into
runs of at most
``chunk_times`` times, never across a UTC day (the unit of the bootstrap), of near-equal length so that
parallel workers finish together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.times import SEVIRI_STEP, has_frames, parse_utc_time
from qpe.errors import DatasetError

if TYPE_CHECKING:
    from qpe.inference.estimators import Estimator


# -- the period -------------------------------------------------------------------------------------------
def select_period(ds: xr.Dataset, start=None, end=None) -> pd.DatetimeIndex:
    """Times of ``ds`` in ``[start, end]`` (UTC; either open when None).

    Raises
    ------
    DatasetError
        The period is empty (start after end), lies outside the data, or holds no time of the data.
    """
    index = pd.DatetimeIndex(ds["time"].values)
    first, last = index[0], index[-1]
    lo = parse_utc_time(start, "start") if start is not None else first
    hi = parse_utc_time(end, "end") if end is not None else last
    span = f"the data cover {first:%Y-%m-%dT%H:%M} .. {last:%Y-%m-%dT%H:%M}"
    if lo > hi:
        raise DatasetError(f"empty period: start {lo:%Y-%m-%dT%H:%M} is after end {hi:%Y-%m-%dT%H:%M}")
    if hi < first or lo > last:
        raise DatasetError(f"period {lo:%Y-%m-%dT%H:%M} .. {hi:%Y-%m-%dT%H:%M} is not in the data ({span})")
    inside = index[(index >= lo) & (index <= hi)]
    if inside.empty:
        raise DatasetError(
            f"empty period: no time of the data lies in {lo:%Y-%m-%dT%H:%M} .. {hi:%Y-%m-%dT%H:%M} ({span})"
        )
    return inside


def _longest_run(index: pd.DatetimeIndex) -> int:
    breaks = np.flatnonzero(np.diff(index.values) != SEVIRI_STEP.to_timedelta64())
    edges = np.concatenate([[-1], breaks, [index.size - 1]])
    return int(np.diff(edges).max())


def held_times(est: Estimator, times: pd.DatetimeIndex) -> np.ndarray:
    """(time,) bool: the times an estimator can give; every time, unless it holds estimates for some times
    only and says which through an ``available(times)`` method (external estimates)."""
    available = getattr(est, "available", None)
    return np.ones(times.size, dtype=bool) if available is None else np.asarray(available(times), dtype=bool)


def not_held(period: pd.DatetimeIndex, estimators: Sequence[Estimator]) -> dict[str, pd.DatetimeIndex]:
    """The times of ``period`` each estimator that holds only some times lacks (only those that lack any)."""
    missing = {e.name: period[~held_times(e, period)] for e in estimators}
    return {name: times for name, times in missing.items() if times.size}


def usable_times(
    ds: xr.Dataset, period: pd.DatetimeIndex, estimators: Sequence[Estimator]
) -> pd.DatetimeIndex:
    """The times of ``period`` at which every estimator has the IR frames it reads and holds an estimate.

    Raises
    ------
    DatasetError
        An estimator needs more successive frames than any time of the period has, or holds no estimate
        at any time of the period.
    """
    index = pd.DatetimeIndex(ds["time"].values)
    in_period = index.isin(period)
    keep = in_period.copy()
    for est in estimators:
        ok = has_frames(index, est.frames) & in_period
        if not ok.any():
            raise DatasetError(
                f"model {est.name!r} needs T={est.frames} successive 15-min IR frames, but no time of the "
                f"period has them (the data hold runs of at most {_longest_run(index)} frames)"
            )
        held = held_times(est, index) & in_period
        if not held.any():
            holds = est.describe_times() if hasattr(est, "describe_times") else "other times"
            raise DatasetError(
                f"model {est.name!r} holds no estimate at any time of the period "
                f"({period[0]:%Y-%m-%dT%H:%M} .. {period[-1]:%Y-%m-%dT%H:%M}); it holds {holds}"
            )
        keep &= ok & held
    if not keep.any():
        raise DatasetError(
            "no time of the period has the IR frames that all models need and an estimate of every model"
        )
    return index[keep]


def plan_tasks(times: pd.DatetimeIndex, chunk_times: int) -> list[pd.DatetimeIndex]:
    """Runs of at most ``chunk_times`` times, each within one UTC day, in time order.

    A day is cut into the fewest runs that fit, of near-equal length (12 times in runs of at most 8
    give 6 + 6, not 8 + 4), so that parallel workers finish together.
    """
    tasks = []
    days = times.normalize()
    for day in days.unique():
        in_day = times[days == day]
        parts = -(-in_day.size // chunk_times)
        bounds = np.linspace(0, in_day.size, parts + 1).round().astype(int)
        tasks.extend(in_day[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    return tasks
