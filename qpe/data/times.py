"""Times given by people (``--time``, ``--start``, settings): parsed in one place as UTC, or one error."""

from __future__ import annotations

import pandas as pd

from qpe.errors import InputError

#: An example for messages.
TIME_EXAMPLE = "2021-06-01T12:00"


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
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tz is not None else stamp
