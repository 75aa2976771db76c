"""An operational-style baseline: rain rate from the 10.8 µm brightness temperature alone.

The rule is a monotone lookup table fitted by **probability matching** (as in the classic IR
auto-estimators): over the training data, the coldest ``p`` percent of pixels receive the heaviest
``p`` percent of the radar rain rates, i.e.

    R(T) = F_R^{-1}(1 - F_T(T))

with ``F_T`` the distribution of IR_108 brightness temperature and ``F_R`` that of radar rain (dry
pixels included) over the same valid pixels. The fitted rule reproduces the climatological rain
distribution and wet fraction by construction, and places rain under every cold cloud top — cirrus
anvils included, warm rain never. It is the physical floor the learned models must beat. An optional
split-window screen (``IR_108 - IR_120`` above ``cirrus_split_k``: thin, semi-transparent ice) sets rain
to zero there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from qpe.errors import CheckpointError, DatasetError

RULE_FORMAT = "qpe-ir-rule"
#: Quantile levels of the fitted table.
DEFAULT_LEVELS = 512


@dataclass(frozen=True)
class IRRainRule:
    """A monotone lookup table brightness temperature (K) -> rain rate (mm/h).

    Parameters
    ----------
    temperatures : tuple of float
        Increasing IR_108 brightness temperatures, K.
    rates : tuple of float
        Non-increasing rain rates at those temperatures, mm/h.
    channel : str
        The channel the table reads.
    cirrus_split_k : float or None
        Zero rain where ``IR_108 - IR_120`` exceeds this (thin cirrus), K; None disables the screen.
    source : str
        Provenance of the fit.
    """

    temperatures: tuple[float, ...]
    rates: tuple[float, ...]
    channel: str = "IR_108"
    cirrus_split_k: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        t, r = np.asarray(self.temperatures), np.asarray(self.rates)
        if t.ndim != 1 or t.size < 2 or t.size != r.size:
            raise CheckpointError("an IR rule needs equally long temperature and rate tables (>= 2 entries)")
        if np.any(np.diff(t) < 0) or np.any(np.diff(r) > 0) or np.any(r < 0):
            raise CheckpointError("an IR rule's temperatures must increase and its rates must not")

    @property
    def frames(self) -> int:
        return 1

    @property
    def channels(self) -> list[str]:
        return [self.channel] + (["IR_120"] if self.cirrus_split_k is not None else [])

    def apply(self, ir: xr.DataArray) -> xr.DataArray:
        """Rain (..., y, x) in mm/h from ``ir`` (..., channel, y, x) in K; NaN where the IR is missing."""
        missing = sorted(set(self.channels) - {str(c) for c in ir["channel"].values})
        if missing:
            raise DatasetError(f"the IR rule needs channel(s) {', '.join(missing)}, which the data lack")
        bt = ir.sel(channel=self.channel, drop=True)
        rain = np.interp(bt.values, self.temperatures, self.rates)
        if self.cirrus_split_k is not None:
            split = bt.values - ir.sel(channel="IR_120", drop=True).values
            rain = np.where(split > self.cirrus_split_k, 0.0, rain)
        rain = np.where(np.isfinite(bt.values), rain, np.nan).astype("float32")
        return xr.DataArray(rain, dims=bt.dims, coords=bt.coords, attrs={"units": "mm/h"})

    # -- persistence ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": RULE_FORMAT, "channel": self.channel, "cirrus_split_k": self.cirrus_split_k,
                "source": self.source, "temperatures": [round(float(v), 4) for v in self.temperatures],
                "rates": [round(float(v), 5) for v in self.rates]}

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, width=110))
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> IRRainRule:
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise CheckpointError(f"cannot read IR rule {path}: {str(err).splitlines()[0]}") from None
        if not isinstance(d, dict) or d.pop("format", None) != RULE_FORMAT:
            raise CheckpointError(f"{path} is not a qpe IR rule (format: {RULE_FORMAT} missing)")
        try:
            return cls(temperatures=tuple(d.pop("temperatures")), rates=tuple(d.pop("rates")), **d)
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"{path} is a malformed IR rule ({err})") from None


def fit_ir_rule(
    ds: xr.Dataset,
    *,
    channel: str = "IR_108",
    cirrus_split_k: float | None = None,
    levels: int = DEFAULT_LEVELS,
    source: str = "",
) -> IRRainRule:
    """Fit the probability-matching rule on a paired dataset (every time, every valid pixel).

    Parameters
    ----------
    ds : xarray.Dataset
        Paired dataset with ``ir`` (K) holding ``channel`` and ``rain`` (mm/h, NaN = no radar).
    channel : str
        Channel of the rule, default the 10.8 µm window.
    cirrus_split_k : float, optional
        Split-window screen threshold, K (pixels screened out are left out of the fit too).
    levels : int
        Quantile levels of the table.
    """
    bt = ds["ir"].sel(channel=channel).values.astype("float64")
    rain = ds["rain"].values.astype("float64")
    valid = np.isfinite(bt) & np.isfinite(rain)
    if cirrus_split_k is not None:
        valid &= ~(bt - ds["ir"].sel(channel="IR_120").values > cirrus_split_k)
    if valid.sum() < levels:
        raise DatasetError(f"too few valid pixels ({int(valid.sum())}) to fit an IR rule")
    q = np.linspace(0.0, 1.0, levels)
    temperatures = np.quantile(bt[valid], q)
    rates = np.quantile(rain[valid], 1.0 - q)
    temperatures = np.maximum.accumulate(temperatures)  # guard ties against rounding
    return IRRainRule(tuple(temperatures), tuple(np.minimum.accumulate(rates)), channel, cirrus_split_k,
                      source)
