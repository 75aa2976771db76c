"""SEVIRI frames and the rule that puts them on the 15-minute radar times.

Scan time, slot time
    A SEVIRI repeat cycle (a *slot*) is named after its nominal start, e.g. 18:00 for the scan that
    runs 18:00:09-18:12:09 from south to north (the rapid-scan service: 5-minute slots, the northern
    third in about 4 minutes). The part over a target grid is seen later than the slot time: over
    France about 10-11 minutes later. The *scan time* of a frame is the acquisition time of the image
    line over the centre of the target grid (level-1.5 files and satpy CF files carry a time per line);
    files without line times give their own time instead (``scan_time_rule`` says which).
Alignment
    Each frame is put on the radar time (a multiple of ``step``, 15 min) nearest its scan time, if it
    lies within ``tolerance`` (default 7.5 min: every frame finds one). Where several frames fall on
    one radar time (rapid-scan slots, a repeated file) the one scanned closest to it is kept. Frames
    left out are reported, one line each. The radar time becomes the dataset's ``time``; the scan time
    and the slot time stay as coordinates ``scan_time(time)`` and ``slot_time(time)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpe.errors import InputError

#: Time step of the radar composites (and of SEVIRI's full-disk service).
STEP = pd.Timedelta(minutes=15)
#: Largest distance of a scan time from its radar time by default: half a step, so every frame aligns.
DEFAULT_TOLERANCE = pd.Timedelta(minutes=7.5)


@dataclass(frozen=True)
class SeviriFrame:
    """One SEVIRI image on the target grid.

    Attributes
    ----------
    scan_time : pandas.Timestamp
        When the target area was scanned, UTC (see :attr:`scan_time_rule`).
    slot_time : pandas.Timestamp
        Nominal start of the repeat cycle (NaT when the file does not say).
    values : numpy.ndarray
        ``(channel, y, x)`` brightness temperature, K, float32.
    label : str
        The file(s) it came from, for messages.
    scan_time_rule : str
        How :attr:`scan_time` was found.
    """

    scan_time: pd.Timestamp
    slot_time: pd.Timestamp
    values: np.ndarray
    label: str
    scan_time_rule: str


@dataclass(frozen=True)
class Alignment:
    """Frames put on radar times.

    Attributes
    ----------
    times : pandas.DatetimeIndex
        The radar time of each kept frame, increasing.
    kept : numpy.ndarray
        Indices of the kept frames, in the order of :attr:`times`.
    left_out : list of str
        One line per frame left out, saying why.
    """

    times: pd.DatetimeIndex
    kept: np.ndarray
    left_out: list[str]


def check_tolerance(tolerance: pd.Timedelta, step: pd.Timedelta = STEP) -> pd.Timedelta:
    """``tolerance`` if it is from 0 to half a ``step``; :class:`InputError` otherwise."""
    tolerance = pd.Timedelta(tolerance)
    if not (pd.Timedelta(0) <= tolerance <= step / 2):
        raise InputError(
            f"time tolerance must be 0 to {step / 2 / pd.Timedelta(minutes=1):g} minutes (half the "
            f"{step / pd.Timedelta(minutes=1):g}-minute step), got {tolerance / pd.Timedelta(minutes=1):g}"
        )
    return tolerance


def align_scans(
    scan_times: pd.DatetimeIndex, labels: list[str], step: pd.Timedelta = STEP,
    tolerance: pd.Timedelta = DEFAULT_TOLERANCE,
) -> Alignment:
    """Put frames on the radar times nearest their scan times.

    Parameters
    ----------
    scan_times : pandas.DatetimeIndex
        Scan time of each frame, UTC, any order.
    labels : list of str
        A name for each frame, for the messages.
    step : pandas.Timedelta
        Radar time step (times are multiples of it from midnight).
    tolerance : pandas.Timedelta
        Largest distance from a scan time to its radar time, 0 .. step / 2.

    Returns
    -------
    Alignment
        The kept frames on their radar times and a line for each frame left out.
    """
    tolerance = check_tolerance(tolerance, step)
    scan_times = pd.DatetimeIndex(scan_times)
    nearest = scan_times.round(step)
    gap = np.abs((scan_times - nearest).values)
    left_out: list[str] = []
    best: dict[pd.Timestamp, int] = {}
    for i in np.argsort(scan_times.values, kind="stable"):
        if gap[i] > tolerance.to_timedelta64():
            minutes = pd.Timedelta(gap[i]) / pd.Timedelta(minutes=1)
            left_out.append(f"{labels[i]}: scanned {scan_times[i]:%H:%M:%S}, {minutes:.1f} min from "
                            f"{nearest[i]:%H:%M}, more than the {tolerance / pd.Timedelta(minutes=1):g} min "
                            "tolerance")
            continue
        j = best.get(nearest[i])
        if j is None:
            best[nearest[i]] = int(i)
            continue
        keep, drop = (i, j) if gap[i] < gap[j] else (j, i)
        best[nearest[i]] = int(keep)
        left_out.append(f"{labels[drop]}: scanned {scan_times[drop]:%H:%M:%S}, {labels[keep]} is closer to "
                        f"{nearest[i]:%Y-%m-%dT%H:%M} ({scan_times[keep]:%H:%M:%S})")
    order = sorted(best)
    return Alignment(pd.DatetimeIndex(order), np.array([best[t] for t in order], dtype="int64"), left_out)
