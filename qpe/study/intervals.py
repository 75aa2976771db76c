"""Bootstrap intervals of the study's numbers: a value with its interval, and how it was resampled.

An :class:`Interval` is a point value (computed on all held-out data) with the percentile interval of its
bootstrap replicates; :class:`Resampling` says what was resampled (UTC days, or times within days), how
many units and times there were, and with which settings, so that every number on the page can say
what it was measured on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from qpe.verify.bootstrap import MIN_UNITS, UNIT_NAMES, percentile_bounds


@dataclass(frozen=True)
class Interval:
    """A value and its bootstrap interval ``[low, high]`` (NaN bounds: no interval)."""

    value: float
    low: float = np.nan
    high: float = np.nan

    @property
    def defined(self) -> bool:
        """Whether both bounds are finite (enough resampling units and finite replicates)."""
        return bool(np.isfinite(self.low) and np.isfinite(self.high))

    def format(self, fmt: str = "{:.3f}") -> str:
        """``0.153 [0.121, 0.187]``; ``-`` for a NaN value, no brackets without an interval."""
        if not np.isfinite(self.value):
            return "-"
        text = fmt.format(self.value)
        return text + (f" [{fmt.format(self.low)}, {fmt.format(self.high)}]" if self.defined else "")

    @classmethod
    def of(cls, value: float, replicates: xr.DataArray | None, confidence: float) -> Interval:
        """``value`` with the ``confidence`` percentile interval of ``replicates`` (dim ``replicate``)."""
        if replicates is None:
            return cls(float(value))
        low, high = (float(b) for b in percentile_bounds(replicates, confidence).values)
        return cls(float(value), low, high)


@dataclass(frozen=True)
class Resampling:
    """How a benchmark's intervals were drawn.

    Parameters
    ----------
    unit : {"day", "time"}
        Resampled UTC days, or the times within each day.
    n_units : int
        Days (unit day) or times (unit time, those of days with two times or more) resampled.
    n_days, n_times : int
        UTC days and valid times of the held-out data.
    n_resamples : int
        Bootstrap replicates (0: no interval).
    confidence : float
        Coverage of the intervals (0.95: the 2.5 and 97.5 percentiles).
    seed : int
        Seed of the draws (the evaluation's: the same draws as ``scores.csv``'s intervals).
    """

    unit: str
    n_units: int
    n_days: int
    n_times: int
    n_resamples: int
    confidence: float = 0.95
    seed: int = 0

    @property
    def has_intervals(self) -> bool:
        """At least 2 units that vary and 1 replicate: otherwise every replicate is the data itself."""
        return self.n_resamples > 0 and self.n_units >= 2

    @property
    def decides(self) -> bool:
        """Enough units (:data:`qpe.verify.bootstrap.MIN_UNITS`) for an interval to decide a claim."""
        return self.has_intervals and self.n_units >= MIN_UNITS

    def describe(self) -> str:
        """One line for the page, e.g. '95 % percentile bootstrap over UTC days (12 days, 96 times) ...'."""
        held_out = f"{self.n_times} held-out times in {self.n_days} UTC day{'s' if self.n_days != 1 else ''}"
        if not self.has_intervals:
            needs = "2 days" if self.unit == "day" else "a day with 2 times"
            return f"{held_out}; no interval (resampling {UNIT_NAMES[self.unit]} needs {needs} or more)"
        return (f"{held_out}; {self.confidence:.0%} percentile bootstrap over {UNIT_NAMES[self.unit]} "
                f"({self.n_units} units), {self.n_resamples} resamples, seed {self.seed}"
                + ("" if self.decides else f"; too few units to decide a hypothesis (needs {MIN_UNITS})"))
