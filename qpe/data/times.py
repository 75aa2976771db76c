"""Times in one place: UTC without a time zone everywhere, people's times parsed once, and the rule that
says which times have the T successive 15-minute IR frames a model reads.

Inside qpe every time is a timezone-naive UTC :class:`pandas.Timestamp` / ``datetime64``
(:func:`utc_naive` makes one of an aware time); times given by people (``--time``, ``--start``, settings)
go through :func:`parse_utc_time`, which gives one clear error for anything else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qpe.errors import InputError

#: An example for messages.
TIME_EXAMPLE = "2021-06-01T12:00"
#: Time step of SEVIRI full-disk scans and of the OPERA composite.
SEVIRI_STEP = pd.Timedelta(minutes=15)


def utc_naive(times: pd.Timestamp | pd.DatetimeIndex) -> pd.Timestamp | pd.DatetimeIndex:
    """A time (or times) converted to UTC and stripped of its zone; a naive one is taken as UTC already."""
    return times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times


def has_frames(times, frames: int, step: pd.Timedelta = SEVIRI_STEP) -> np.ndarray:
    """(time,) bool: True where a time and its ``frames - 1`` predecessors are consecutive at ``step``.

    Parameters
    ----------
    times : array-like of datetime64
        Strictly increasing times.
    frames : int
        T, the successive frames a model reads (the time itself and T - 1 before it).
    """
    values = pd.DatetimeIndex(times).values
    n = values.size
    if frames <= 1:
        return np.ones(n, dtype=bool)
    breaks = np.concatenate([[0], np.cumsum(np.diff(values) != step.to_timedelta64())])  # run label
    i = np.arange(n)
    first = i - frames + 1
    ok = first >= 0
    ok[ok] = breaks[i[ok]] == breaks[first[ok]]
    return ok


def parse_utc_time(value: object, what: str = "time") -> pd.Timestamp:
    """``value`` as a timezone-naive UTC :class:`pandas.Timestamp`.

    Parameters
    ----------
    value : str or datetime-like
        ISO 8601 text (``2021-06-01T12:00``, ``2021-06-01 12:00Z``, ``2021-06-01T14:00+02:00``) or a
        datetime. A time with an offset is converted to UTC; one without is taken as UTC.
    what : str
        What the time is, for the message (e.g. ``"--time"``).

    Raises
    ------
    InputError
        Text that is not a time (``yesterday``, ``2021-13-01``), an empty value, or a time outside
        the years pandas can represent (1677..2262).
    """
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"{what} {value!r} is not an ISO 8601 time (e.g. {TIME_EXAMPLE}): {reason}"
        ) from None
    if pd.isna(stamp):
        raise InputError(f"{what} {value!r} is not an ISO 8601 time (e.g. {TIME_EXAMPLE})")
    return utc_naive(stamp)


def day_folds(times, folds: int) -> np.ndarray:
    """(time,) int: the fold of each time, its UTC day number modulo ``folds``.

    Whole days go to one fold, so that a model trained without fold ``i`` has seen no time of those
    days (15-minute neighbours are nearly the same scene: splitting inside a day would leak).
    """
    days = pd.DatetimeIndex(times).values.astype("datetime64[D]").astype("int64")
    return (days % folds).astype("int64")
