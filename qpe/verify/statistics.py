"""Sufficient statistics: the mergeable state behind every score.

Each family of scores reduces a batch of fields to a small :class:`xarray.Dataset` of *statistics*
(contingency counts, sums of products, histogram counts, ...) from which its scores are computed. The
statistics of two batches combine by addition — except those named ``maximum*`` (field maxima),
which combine by the NaN-ignoring maximum. This is what lets scores be
accumulated over many cases without holding them, merged across Dask workers, and resampled by day
for bootstrap confidence intervals (a weighted sum over days).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from qpe.errors import DatasetError

#: Statistics whose name starts with this combine by maximum (NaN = no value); all others by sum.
MAXIMUM_PREFIX = "maximum"


def _is_max(name: str) -> bool:
    return str(name).startswith(MAXIMUM_PREFIX)


def check_compatible(a: xr.Dataset, b: xr.Dataset) -> None:
    """Raise a one-line :class:`DatasetError` unless two statistics share variables and labels."""
    if set(a.data_vars) != set(b.data_vars):
        missing = sorted(set(a.data_vars) ^ set(b.data_vars))
        raise DatasetError(f"cannot combine score statistics: variables {', '.join(missing)} are not in both")
    for name in set(a.indexes) & set(b.indexes):
        ia, ib = a.indexes[name], b.indexes[name]
        if len(ia) != len(ib) or not ia.equals(ib):
            raise DatasetError(
                f"cannot combine score statistics with different {name!r} labels "
                f"({len(ia)} vs {len(ib)} values): thresholds, scales, grids or members differ"
            )
    for name in set(a.coords) & set(b.coords):
        if name in a.indexes or a[name].ndim == 0 or name in ("time", "day"):
            continue
        if a[name].shape != b[name].shape or not np.array_equal(a[name].values, b[name].values):
            raise DatasetError(f"cannot combine score statistics with different {name!r} coordinates")
    for name in a.data_vars:
        if a[name].dims != b[name].dims:
            raise DatasetError(
                f"cannot combine score statistics: {name!r} has dims {a[name].dims} vs {b[name].dims}"
            )


def add_statistics(total: xr.Dataset, new: xr.Dataset) -> xr.Dataset:
    """Combine two statistics of the same kind (sum, or maximum for ``maximum*`` variables).

    An empty ``total`` (no data variables, as returned by the ``*_init`` functions) takes ``new``.
    """
    if not total.data_vars:
        for name in set(total.coords) & set(new.coords):
            if total[name].shape != new[name].shape or not np.array_equal(
                total[name].values, new[name].values
            ):
                raise DatasetError(f"statistics were initialised for other {name!r} values")
        return new.assign_attrs({**total.attrs, **new.attrs})
    check_compatible(total, new)
    data = {}
    for name, da in total.data_vars.items():
        other = new[name].values
        data[name] = np.fmax(da.values, other) if _is_max(name) else da.values + other
    return total.copy(data=data)


def reduce_statistics(stats: xr.Dataset, dim: str) -> xr.Dataset:
    """Combine the statistics along one dimension (e.g. over ``time``)."""
    missing = [name for name, da in stats.data_vars.items() if dim not in da.dims]
    if missing:
        raise DatasetError(f"statistic {missing[0]!r} has no {dim!r} dimension to reduce")
    maxima = [name for name in stats.data_vars if _is_max(name)]
    out = stats.drop_vars(maxima).sum(dim, keep_attrs=True)
    if maxima:
        with np.errstate(invalid="ignore"):
            out = out.assign(stats[maxima].max(dim, skipna=True, keep_attrs=True))
    return out.drop_vars([c for c in out.coords if dim in stats[c].dims], errors="ignore")


def group_statistics(stats: xr.Dataset, labels: np.ndarray, dim: str = "time") -> dict:
    """Split per-field statistics by label (e.g. day) and combine each group along ``dim``.

    Returns ``{label: statistics}``; a NaT label is a group of its own.
    """
    keys = pd.Index(np.asarray(labels))
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    uniques = np.asarray(uniques)
    if uniques.size == 1:
        return {uniques[0]: reduce_statistics(stats, dim)}
    return {
        uniques[i]: reduce_statistics(stats.isel({dim: np.flatnonzero(codes == i)}), dim)
        for i in range(len(uniques))
    }


def resample_statistics(stats: xr.Dataset, weights: xr.DataArray, dim: str = "day") -> xr.Dataset:
    """Statistics of resampled groups: sum of ``weights * stats`` over ``dim`` (max where weight > 0).

    Parameters
    ----------
    stats : xarray.Dataset
        Statistics with a ``dim`` dimension (one entry per group, e.g. per day).
    weights : xarray.DataArray
        (replicate, dim) how many times each group is drawn in each replicate.
    """
    out = {}
    for name, da in stats.data_vars.items():
        if _is_max(name):
            with np.errstate(invalid="ignore"):
                resampled = da.where(weights > 0).max(dim, skipna=True)
        else:
            resampled = xr.dot(weights.astype("float64"), da.astype("float64"), dim=dim)
        out[name] = resampled.assign_attrs(da.attrs)
    return xr.Dataset(out, attrs=stats.attrs)


def accumulate(total: xr.Dataset, per_field: xr.Dataset, dim: str = "time") -> xr.Dataset:
    """Add per-field statistics, combined over ``dim``, to a running total (the ``*_accum`` step)."""
    return add_statistics(total, reduce_statistics(per_field, dim))
