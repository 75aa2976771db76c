"""Fractions skill score (FSS) over thresholds x scales, vectorised with summed-area tables.

Definition (pysteps :func:`~pysteps.verification.spatialscores.fss`, Roberts and Lean 2008): binary
fields ``I = rain >= threshold``; fractions ``S = uniform_filter(I, w, mode="constant", cval=0)`` over
a ``w`` x ``w`` window (zero padding outside the domain); sums over pixels of ``S_f^2``, ``S_f S_o``,
``S_o^2``; ``FSS = 1 - (sum S_f^2 - 2 sum S_f S_o + sum S_o^2) / (sum S_f^2 + sum S_o^2)``, accumulated
over fields by adding the three sums (as pysteps' ``fss_accum`` does).

How it is computed: one integer summed-area table per binary field and threshold, extended with its
edge values so that every window — clipped at the domain edge like the zero padding — is four
look-ups; the box sums of all windows then come from slice differences, and the three sums from
integer products. The window sums are exact integers, so the result equals pysteps' to rounding.

Scales are in km and map to windows of ``floor(scale / pixel + 0.5)`` pixels
(:func:`qpe.verify.pairs.window_sizes`); even windows sit as in ``uniform_filter``.

Invalid pixels (no radar, NaN estimate, outside the region): they are non-events in *both* fields and
are left out of the three sums, i.e. they behave exactly like the outside of the domain in pysteps.
So a field whose invalid pixels form a border strip (or the outside of a region box) scores the same
as the cropped valid rectangle does in pysteps. (pysteps itself sets each field's own NaN to a
non-event and sums over all pixels, so a radar gap would penalise any rain the estimate puts there.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from qpe.verify.coords import scale_coordinate, score_attrs, threshold_coordinate
from qpe.verify.pairs import (
    DEFAULT_SCALES_KM,
    DEFAULT_THRESHOLDS,
    FieldPair,
    Region,
    field_levels,
    pair_fields,
    window_sizes,
)
from qpe.verify.statistics import accumulate, add_statistics

#: Largest window (pixels) whose box sums fit in int16 (w^2 < 2^15): tables and box sums use int16 then.
_INT16_WINDOW = 181
#: Largest window (pixels) whose squared box sums fit in int32 products (w^4 < 2^31).
_INT32_WINDOW = 215


class _SummedAreaTables:
    """Edge-extended summed-area tables of a stack of binary planes, and their window box sums.

    ``table[..., P + 1 + i, P + 1 + j]`` is the number of events in rows ``<= i`` and columns
    ``<= j``; rows/columns before the domain hold 0 and after it repeat the last row/column, so the box
    sum of any window clipped to the domain is a difference of slices. The tables are kept in int16
    (or int32) and allowed to wrap around: differences are exact modulo 2^16, and a box sum (at most
    w^2) fits, so the box sums are exact while halving the memory traffic.
    """

    def __init__(self, planes: np.ndarray, pad: int, dtype: type | None = None):
        *lead, ny, nx = planes.shape
        self.pad, self.ny, self.nx = pad, ny, nx
        # binary planes: int16 while a box sum (<= w^2) fits; planes of counts pass a wider dtype
        self.dtype = dtype or (np.int16 if pad <= _INT16_WINDOW else np.int32)
        table = np.empty((*lead, ny + 1 + 2 * pad, nx + 1 + 2 * pad), dtype=self.dtype)
        core = table[..., pad + 1 : pad + 1 + ny, pad + 1 : pad + 1 + nx]
        with np.errstate(over="ignore"):
            np.cumsum(planes, axis=-1, dtype=self.dtype, out=core)
            for i in range(1, ny):  # row by row: much faster than cumsum along a non-contiguous axis
                np.add(core[..., i - 1, :], core[..., i, :], out=core[..., i, :])
        table[..., : pad + 1, :] = 0
        table[..., :, : pad + 1] = 0
        table[..., pad + 1 + ny :, :] = table[..., pad + ny : pad + ny + 1, :]
        table[..., :, pad + 1 + nx :] = table[..., :, pad + nx : pad + nx + 1]
        self.table = table

    def any_events(self) -> np.ndarray:
        """Whether each plane holds at least one event."""
        return self.table[..., self.pad + self.ny, :].any(axis=-1)

    def box_sums(self, index: tuple, window: int, mask: np.ndarray | None) -> np.ndarray:
        """Events in the ``window`` x ``window`` box around every pixel of plane ``index``, (y, x) int32
        (int64 for windows wider than 215 pixels)."""
        p, ny, nx = self.pad, self.ny, self.nx
        before, after = window // 2, window - 1 - window // 2
        table = self.table[index]
        rows = table[p - before : p + after + 1 + ny]
        cols = rows[:, p + after + 1 : p + after + 1 + nx] - rows[:, p - before : p - before + nx]
        box = (cols[window:] - cols[:ny]).astype(np.int64 if window > _INT32_WINDOW else np.int32)
        if mask is not None:
            box *= mask
        return box


def _sum_product(a: np.ndarray, b: np.ndarray, window: int) -> int:
    """Exact sum of ``a * b`` for box sums of a ``window``-wide window (each at most window^2).

    Column sums in int32 are exact while ``rows * window^4 < 2^31``, so the rows are taken in blocks
    that guarantee it; this is twice as fast as an int64 product and sum.
    """
    if a.dtype != np.int32:
        return int(np.multiply(a, b, dtype=np.int64).sum())
    rows = max(1, (2**31 - 1) // window**4)
    return sum(
        int(np.einsum("ij,ij->j", a[i : i + rows], b[i : i + rows]).sum(dtype=np.int64))
        for i in range(0, a.shape[0], rows)
    )


def fss_statistics(pair: FieldPair, thresholds: Sequence[float], scales_km: Sequence[float]) -> xr.Dataset:
    """FSS sums of every field.

    Returns
    -------
    xarray.Dataset
        ``sum_fct_sq``, ``sum_fct_obs``, ``sum_obs_sq`` (sums of fractions as in pysteps' FSS object),
        dims ``([member,] time, threshold, scale)``; ``n_obs_events`` (time, threshold) and
        ``n_valid`` (time) for the base rate of ``radar >= threshold``.
    """
    thr = threshold_coordinate(thresholds)
    scale = scale_coordinate(scales_km)
    windows = window_sizes(scale.values, pair.pixel_km)
    levels = thr.values[:, None, None]
    n_members, n_times = pair.estimate.shape[:2]
    n_thr, n_scales = levels.shape[0], windows.size
    sums = np.zeros((3, n_members, n_times, n_thr, n_scales))
    n_obs = np.zeros((n_times, n_thr))
    pad = int(windows.max())
    for t in range(n_times):
        valid = pair.valid[t]
        mask = None if valid.all() else valid.astype(np.int32)
        planes = np.empty((n_members + 1, n_thr, *pair.shape), dtype=bool)
        np.greater_equal(pair.radar[t], field_levels(levels, pair.radar), out=planes[0])
        np.greater_equal(pair.estimate[:, t, None], field_levels(levels, pair.estimate), out=planes[1:])
        if mask is not None or levels.min() <= 0:  # invalid pixels hold 0: no event above a positive level
            planes &= valid
        n_obs[t] = np.count_nonzero(planes[0], axis=(1, 2))
        tables = _SummedAreaTables(planes, pad)
        events = tables.any_events()
        for k in range(n_thr):
            for j, w in enumerate(windows.tolist()):
                obs = tables.box_sums((0, k), w, mask) if events[0, k] else None
                obs_sq = _sum_product(obs, obs, w) if obs is not None else 0
                for m in range(n_members):
                    fct = tables.box_sums((m + 1, k), w, mask) if events[m + 1, k] else None
                    fct_sq = _sum_product(fct, fct, w) if fct is not None else 0
                    cross = _sum_product(fct, obs, w) if fct is not None and obs is not None else 0
                    sums[:, m, t, k, j] = np.array((fct_sq, cross, obs_sq), dtype="float64") / float(w) ** 4
    coords = {"threshold": thr, "scale": scale, "window": ("scale", windows, {"units": "pixel"})}
    names = ("sum_fct_sq", "sum_fct_obs", "sum_obs_sq")
    data = {name: pair.labelled(sums[i], ("threshold", "scale"), coords) for i, name in enumerate(names)}
    data["n_obs_events"] = pair.radar_labelled(n_obs, ("threshold",), {"threshold": thr})
    data["n_valid"] = pair.radar_labelled(pair.valid.sum(axis=(1, 2)).astype("float64"), ())
    return xr.Dataset(data, attrs={"family": "fss"})


def fss_init(
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS, scales_km: Sequence[float] = DEFAULT_SCALES_KM
) -> xr.Dataset:
    """Empty FSS statistics for thresholds (mm/h) x scales (km)."""
    return xr.Dataset(
        coords={"threshold": threshold_coordinate(thresholds), "scale": scale_coordinate(scales_km)},
        attrs={"family": "fss"},
    )


def fss_accum(stats: xr.Dataset, pair: FieldPair) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, fss_statistics(pair, stats["threshold"].values, stats["scale"].values))


def fss_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def fractions_skill_score(stats: xr.Dataset) -> xr.DataArray:
    """FSS = 1 - (sum S_f^2 - 2 sum S_f S_o + sum S_o^2) / (sum S_f^2 + sum S_o^2); NaN with no events."""
    ff, fo, oo = stats["sum_fct_sq"], stats["sum_fct_obs"], stats["sum_obs_sq"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 - (ff - 2.0 * fo + oo) / (ff + oo)).assign_attrs(
            score_attrs("fractions skill score", "1", "spatialscores.fss")
        )


def useful_fss(stats: xr.Dataset) -> xr.DataArray:
    """The 'useful' FSS level 0.5 + f_o / 2, f_o = radar base rate of ``rain >= threshold``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        base_rate = stats["n_obs_events"] / stats["n_valid"]
    return (0.5 + base_rate / 2).assign_attrs(
        score_attrs("useful FSS level 0.5 + f_o/2 (Roberts and Lean 2008)")
    )


def fss_compute(stats: xr.Dataset) -> xr.Dataset:
    """``FSS`` ([member,] threshold, scale) and ``FSS_useful`` (threshold)."""
    return xr.Dataset({"FSS": fractions_skill_score(stats), "FSS_useful": useful_fss(stats)})


def fss(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    scales_km: Sequence[float] = DEFAULT_SCALES_KM,
    region: Region = None,
) -> xr.DataArray:
    """Fractions skill score of an estimate against radar, accumulated over all its fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float
        mm/h (event: rain >= threshold, as in pysteps' FSS).
    scales_km : sequence of float
        Neighbourhood widths, km.
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.

    Returns
    -------
    xarray.DataArray
        FSS with dims ``([member,] threshold, scale)``.
    """
    stats = fss_accum(fss_init(thresholds, scales_km), pair_fields(estimate, radar, region))
    return fractions_skill_score(stats)
