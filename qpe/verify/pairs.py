"""Checking and aligning the (estimate, radar) fields that every score compares.

A :class:`FieldPair` is built once per call by :func:`pair_fields` from labelled inputs and then handed
to every family of scores, so that units, grids, times, the region and the NaN mask are checked and
applied in one place and mean the same thing for every score.

Conventions
-----------
* **Valid pixels.** A pixel is scored only where the radar is finite, *every* member of the estimate
  is finite, and the pixel lies in the region. Invalid pixels are excluded from every score: they
  are left out of counts, sums and histograms; for the neighbourhood (FSS) and spectral (RAPSD) scores,
  which need a rectangle, see those modules (FSS treats them like the outside of the domain, RAPSD
  sets them to 0 in both fields).
* **Region.** ``region`` is a box ``(xmin, ymin, xmax, ymax)`` in metres (pixels whose centres lie in
  it), an object with such a ``bounds`` attribute (:class:`qpe.data.grid.Region`), or a boolean mask
  ``(y, x)``. Both fields are cropped to the bounding rectangle of the region and the pixels of that
  rectangle outside the mask are invalid, exactly like NaN.
* **Scales.** Neighbourhood scales are given in km and converted to a whole number of pixels by
  :func:`window_sizes`.
* **Pixel weights.** An optional ``weight`` field (e.g. OPERA's quality index,
  :func:`qpe.verify.regimes.quality_weights`) makes every pixel count ``w >= 0`` times instead of once in
  the families whose statistics are sums over pixels (categorical, matched, continuous, distribution,
  extremes, ensemble, regimes): counts become sums of weights, sums of values weighted sums. Invalid
  pixels weigh 0. The field scores (FSS, spectra, coherence, energy and variogram scores, SAL,
  displacement) ignore it: see ``docs/verification.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from qpe.data.paired import RAIN_UNITS
from qpe.errors import DatasetError, InputError

#: Default thresholds of the categorical scores, FSS and reliability, mm/h.
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 1.0, 5.0, 10.0)
#: Default FSS scales, km (1, 2, 4, 8, 16, 32 pixels on the 2 km OPERA grid).
DEFAULT_SCALES_KM: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)

_ESTIMATE_DIMS = (("member", "time", "y", "x"), ("time", "y", "x"), ("member", "y", "x"), ("y", "x"))
_RADAR_DIMS = (("time", "y", "x"), ("y", "x"))

Region = tuple[float, float, float, float] | xr.DataArray | np.ndarray | object | None


@dataclass(frozen=True)
class FieldPair:
    """Estimate and radar fields, checked, cropped to the region and masked, ready to score.

    Attributes
    ----------
    estimate : numpy.ndarray
        (member, time, y, x) rain rate, mm/h; the member axis has length 1 for a deterministic
        estimate. Invalid pixels hold 0. Read-only (it may share memory with the input).
    radar : numpy.ndarray
        (time, y, x) rain rate, mm/h; invalid pixels hold 0. Read-only.
    valid : numpy.ndarray
        (time, y, x) bool, True where the pixel is scored.
    time : numpy.ndarray
        (time,) datetime64[ns]; NaT for undated fields.
    member : numpy.ndarray or None
        Member labels, or None for a deterministic estimate.
    x, y : numpy.ndarray
        Pixel-centre coordinates of the (cropped) rectangle, m.
    pixel_km : float
        Pixel size, km (square pixels).
    regimes : numpy.ndarray or None
        (regime, time, y, x) bool regime masks (:mod:`qpe.verify.regimes`), cropped like the fields;
        None when not given.
    regime, regime_group : numpy.ndarray or None
        (regime,) labels of the masks and their groups.
    weight : numpy.ndarray or None
        (time, y, x) float64 weight of each pixel (0 where invalid), or None: every valid pixel counts once.
    """

    estimate: np.ndarray
    radar: np.ndarray
    valid: np.ndarray
    time: np.ndarray
    member: np.ndarray | None
    x: np.ndarray
    y: np.ndarray
    pixel_km: float
    regimes: np.ndarray | None = None
    regime: np.ndarray | None = None
    regime_group: np.ndarray | None = None
    weight: np.ndarray | None = None

    def restricted(self, mask: np.ndarray) -> FieldPair:
        """The pair scored only where ``mask`` ((time, y, x) bool) is True as well (others hold 0)."""
        valid = self.valid & mask
        estimate = np.where(valid, self.estimate, 0).astype(self.estimate.dtype, copy=False)
        radar = np.where(valid, self.radar, 0).astype(self.radar.dtype, copy=False)
        weight = None if self.weight is None else np.where(valid, self.weight, 0.0)
        for array in (estimate, radar, valid, weight):
            if array is not None:
                array.flags.writeable = False
        return dataclasses.replace(
            self, estimate=estimate, radar=radar, valid=valid, regimes=None, weight=weight
        )

    def weighted_count(self, t: int, mask: np.ndarray) -> float | int:
        """Pixels of field ``t`` where ``mask`` ((y, x) bool, within the valid pixels) holds: their number,
        or the sum of their weights for a weighted pair."""
        if self.weight is None:
            return np.count_nonzero(mask)
        return float(self.weight[t][mask].sum())

    @property
    def is_ensemble(self) -> bool:
        return self.member is not None

    @property
    def n_members(self) -> int:
        return self.estimate.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) of the rectangle."""
        return self.radar.shape[1:]

    def member_dims(self) -> tuple[str, ...]:
        """``("member",)`` for an ensemble estimate, ``()`` otherwise."""
        return ("member",) if self.is_ensemble else ()

    def member_coords(self) -> dict[str, np.ndarray]:
        return {"member": self.member} if self.is_ensemble else {}

    def labelled(
        self, values: np.ndarray, dims: Sequence[str], coords: dict | None = None, **attrs
    ) -> xr.DataArray:
        """Wrap per-field results of shape (member, time, *dims) as a DataArray.

        The member axis is dropped for a deterministic estimate.
        """
        values = np.asarray(values)
        if not self.is_ensemble:
            values = values[0]
        all_coords = {**self.member_coords(), "time": self.time, **(coords or {})}
        return xr.DataArray(values, dims=(*self.member_dims(), "time", *dims), coords=all_coords, attrs=attrs)

    def radar_labelled(
        self, values: np.ndarray, dims: Sequence[str], coords: dict | None = None, **attrs
    ) -> xr.DataArray:
        """Wrap per-field radar results of shape (time, *dims) as a DataArray."""
        return xr.DataArray(
            values, dims=("time", *dims), coords={"time": self.time, **(coords or {})}, attrs=attrs
        )


def pair_fields(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    regimes: xr.DataArray | None = None,
    weight: xr.DataArray | None = None,
) -> FieldPair:
    """Check an estimate against its radar truth and prepare both for scoring.

    Parameters
    ----------
    estimate : xarray.DataArray
        (y, x), (time, y, x), (member, y, x) or (member, time, y, x) rain rate, mm/h, on the same
        x/y coordinates as ``radar``; NaN where the model gives no value.
    radar : xarray.DataArray
        (y, x) or (time, y, x) rain rate, mm/h, NaN where there is no radar coverage.
    region : tuple or Region or xarray.DataArray, optional
        Box ``(xmin, ymin, xmax, ymax)`` in m, an object with such ``bounds``, or a boolean
        (y, x) mask; see the module notes.
    regimes : xarray.DataArray, optional
        (regime, [time,] y, x) bool regime masks on the same grid and times (:mod:`qpe.verify.regimes`),
        coordinate ``regime`` (labels) and optionally ``regime_group``.
    weight : xarray.DataArray, optional
        ([time,] y, x) finite weight >= 0 of each pixel (dimensionless; e.g.
        :func:`qpe.verify.regimes.quality_weights`), on the grid and times of ``radar``; see the module notes.

    Returns
    -------
    FieldPair

    Raises
    ------
    InputError
        The inputs are not DataArrays, or the region holds no pixel.
    DatasetError
        Wrong dimensions or units, different grids or times, non-square or irregular pixels.
    """
    for name, da in (("estimate", estimate), ("radar", radar)):
        if not isinstance(da, xr.DataArray):
            raise InputError(
                f"{name} must be an xarray.DataArray of rain rate (mm/h), got {type(da).__name__}"
            )
        units = da.attrs.get("units")
        if units is None:
            raise DatasetError(f"{name} has no 'units' attribute; expected rain rate in mm/h")
        if str(units).strip() not in RAIN_UNITS:
            raise DatasetError(f"{name} is in {units!r}; expected rain rate in mm/h")
    estimate, has_member = _canonical(estimate, "estimate", _ESTIMATE_DIMS)
    radar, _ = _canonical(radar, "radar", _RADAR_DIMS)
    if estimate.sizes["y"] != radar.sizes["y"] or estimate.sizes["x"] != radar.sizes["x"]:
        raise DatasetError(
            f"estimate and radar are on different grids: {estimate.sizes['y']} x {estimate.sizes['x']} "
            f"vs {radar.sizes['y']} x {radar.sizes['x']} pixels"
        )
    x, y, pixel_m = _grid_of(radar)
    ex, ey, _ = _grid_of(estimate)
    tol = 1e-6 * pixel_m + 1e-3
    if np.abs(ex - x).max() > tol or np.abs(ey - y).max() > tol:
        raise DatasetError(
            "estimate and radar are on different grids: their x/y coordinates differ by up to "
            f"{max(np.abs(ex - x).max(), np.abs(ey - y).max()):.6g} m"
        )
    time = _common_time(estimate, radar)
    rows, cols, inside = _region_window(region, x, y)
    est = np.asarray(estimate.isel(y=rows, x=cols).values).view()  # a view: its flags are ours to set
    rad = np.asarray(radar.isel(y=rows, x=cols).values).view()
    if est.dtype.kind != "f":
        est = est.astype("float64")
    if rad.dtype.kind != "f":
        rad = rad.astype("float64")
    valid = np.isfinite(rad) & np.isfinite(est).all(axis=0)
    if inside is not None:
        valid &= inside
    if not valid.all():
        est = np.where(valid, est, 0).astype(est.dtype, copy=False)
        rad = np.where(valid, rad, 0).astype(rad.dtype, copy=False)
    for array in (est, rad, valid):  # may be views of the inputs: scores only read them
        array.flags.writeable = False
    member = np.asarray(estimate["member"].values) if has_member else None
    regime_fields = _regime_fields(regimes, radar, rows, cols) if regimes is not None else {}
    weights = _weight_field(weight, radar, rows, cols, valid) if weight is not None else None
    return FieldPair(
        estimate=est,
        radar=rad,
        valid=valid,
        time=time,
        member=member,
        x=x[cols],
        y=y[rows],
        pixel_km=pixel_m / 1000.0,
        weight=weights,
        **regime_fields,
    )


def _weight_field(
    weight: xr.DataArray, radar: xr.DataArray, rows: slice, cols: slice, valid: np.ndarray
) -> np.ndarray:
    """The pixel weights (time, y, x) cropped like the fields, float64, 0 at invalid pixels."""
    if not isinstance(weight, xr.DataArray):
        raise InputError(f"weight must be an xarray.DataArray ([time,] y, x), got {type(weight).__name__}")
    if set(weight.dims) == {"y", "x"}:  # one weight field for every time
        weight = weight.expand_dims(time=radar.sizes["time"])
    weight, _ = _canonical(weight, "weight", _RADAR_DIMS)
    if weight.shape != radar.shape:
        raise DatasetError(f"pixel weights are {weight.shape} (time, y, x), the fields {radar.shape}")
    for name in ("x", "y"):
        if name in weight.coords and not np.allclose(weight[name].values, radar[name].values, atol=1e-3):
            raise DatasetError(f"pixel weights are not on the grid of the fields (their {name!r} differs)")
    values = np.asarray(weight.isel(y=rows, x=cols).values, dtype="float64")
    inside = values[valid]
    if not np.isfinite(inside).all() or (inside < 0).any():
        raise InputError("pixel weights must be finite and >= 0 at every scored pixel")
    values = np.where(valid, values, 0.0)
    values.flags.writeable = False
    return values


def _regime_fields(regimes: xr.DataArray, radar: xr.DataArray, rows: slice, cols: slice) -> dict:
    """The regime masks (regime, time, y, x) cropped like the fields, with their labels."""
    if not isinstance(regimes, xr.DataArray) or "regime" not in regimes.dims or regimes.dtype != bool:
        raise InputError("regimes must be a boolean xarray.DataArray with a 'regime' dimension")
    if "time" not in regimes.dims:
        regimes = regimes.expand_dims(time=radar.sizes["time"], axis=1)
    regimes = regimes.transpose("regime", "time", "y", "x")
    if regimes.shape[1:] != radar.shape:
        raise DatasetError(
            f"regime masks are {regimes.shape[1:]} (time, y, x), the fields {radar.shape}"
        )
    for name in ("x", "y"):
        if name in regimes.coords and not np.allclose(regimes[name].values, radar[name].values, atol=1e-3):
            raise DatasetError(f"regime masks are not on the grid of the fields (their {name!r} differs)")
    if "time" in regimes.coords and regimes["time"].ndim == 1:
        mask_times = regimes["time"].values.astype("datetime64[ns]")
        field_times = radar["time"].values.astype("datetime64[ns]")
        both = ~np.isnat(mask_times) & ~np.isnat(field_times)
        if (mask_times[both] != field_times[both]).any():
            raise DatasetError("regime masks are for other times than the fields")
    labels = np.asarray(regimes["regime"].values if "regime" in regimes.coords else
                        np.arange(regimes.sizes["regime"])).astype(str)
    groups = np.asarray(regimes["regime_group"].values).astype(str) if "regime_group" in regimes.coords else labels
    masks = np.asarray(regimes.isel(y=rows, x=cols).values)
    masks.flags.writeable = False
    return {"regimes": masks, "regime": labels, "regime_group": groups}


def field_levels(levels: np.ndarray | Sequence[float], field: np.ndarray) -> np.ndarray:
    """Thresholds in the precision of a field, so that comparisons mean what the stored values mean.

    A float32 field stores 0.1 mm/h as float32(0.1); compared in float64 it would exceed 0.1. pysteps,
    given a Python float, compares in the field's precision too.
    """
    return np.asarray(levels, dtype=field.dtype if field.dtype.kind == "f" else "float64")


def window_sizes(scales_km: Sequence[float], pixel_km: float) -> np.ndarray:
    """Neighbourhood window widths in pixels for scales in km.

    The window is the nearest whole number of pixels, ``floor(scale_km / pixel_km + 0.5)`` (halves
    round up). Even windows are placed as :func:`scipy.ndimage.uniform_filter` (and so pysteps' FSS)
    places them: ``w // 2`` pixels before the centre pixel and ``w - 1 - w // 2`` after it.

    Raises
    ------
    InputError
        A scale is shorter than half a pixel.
    """
    scales = np.asarray(scales_km, dtype="float64")
    windows = np.floor(scales / pixel_km + 0.5).astype(int)
    if scales.ndim != 1 or scales.size == 0:
        raise InputError("FSS scales must be a non-empty list of lengths in km")
    if (windows < 1).any():
        bad = scales[windows < 1][0]
        raise InputError(f"FSS scale {bad:g} km is shorter than half a pixel ({pixel_km:g} km)")
    return windows


# -- helpers ---------------------------------------------------------------------------------------------
def _canonical(
    da: xr.DataArray, name: str, allowed: tuple[tuple[str, ...], ...]
) -> tuple[xr.DataArray, bool]:
    """Transpose to the canonical dim order and add missing member/time axes of length 1.

    Returns the array and whether it had a member dimension.
    """
    dims = set(da.dims)
    match = next((d for d in allowed if set(d) == dims), None)
    if match is None:
        expected = " or ".join("(" + ", ".join(d) + ")" for d in allowed)
        raise DatasetError(f"{name} has dims {tuple(da.dims)}; expected {expected}")
    da = da.transpose(*match)
    has_member = "member" in da.dims
    if "time" not in da.dims:
        t = da.coords["time"].values if "time" in da.coords and da.coords["time"].ndim == 0 else None
        da = da.drop_vars("time", errors="ignore").expand_dims(
            time=[t if t is not None else np.datetime64("NaT", "ns")], axis=-3
        )
    if not has_member and "member" in allowed[0]:
        da = da.expand_dims("member", axis=0)
    if has_member and "member" not in da.coords:
        da = da.assign_coords(member=np.arange(da.sizes["member"]))
    return da, has_member


def _grid_of(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, float]:
    """x, y (m) and the pixel size (m) of a field; raises on missing, irregular or non-square grids."""
    coords = []
    for name in ("x", "y"):
        if name not in da.coords:
            raise DatasetError(f"field has no {name!r} coordinate (projected, m)")
        units = da[name].attrs.get("units", "m")
        if units not in ("m", "metre", "meter", "metres", "meters"):
            raise DatasetError(f"coordinate {name!r} must be in metres, got units {units!r}")
        c = np.asarray(da[name].values, dtype="float64")
        if c.size < 2:
            raise DatasetError(f"coordinate {name!r} needs at least 2 pixels")
        step = np.abs(np.diff(c))
        if step.min() <= 0 or np.ptp(step) > 1e-3 * step.mean():
            raise DatasetError(f"coordinate {name!r} is not regularly spaced")
        coords.append(c)
    dx, dy = np.abs(np.diff(coords[0])).mean(), np.abs(np.diff(coords[1])).mean()
    if abs(dx - dy) > 1e-3 * dx:
        raise DatasetError(
            f"pixels must be square for neighbourhood and spectral scores, got {dx:g} x {dy:g} m"
        )
    return coords[0], coords[1], float(dx)


def _common_time(estimate: xr.DataArray, radar: xr.DataArray) -> np.ndarray:
    te = estimate["time"].values.astype("datetime64[ns]")
    tr = radar["time"].values.astype("datetime64[ns]")
    if te.size != tr.size:
        raise DatasetError(f"estimate has {te.size} time steps but radar has {tr.size}")
    both = ~np.isnat(te) & ~np.isnat(tr)
    if (te[both] != tr[both]).any():
        first = np.flatnonzero(both & (te != tr))[0]
        raise DatasetError(
            f"estimate and radar times differ: {np.datetime_as_string(te[first], 'm')} vs "
            f"{np.datetime_as_string(tr[first], 'm')}"
        )
    return np.where(np.isnat(tr), te, tr)


def _region_window(region: Region, x: np.ndarray, y: np.ndarray) -> tuple[slice, slice, np.ndarray | None]:
    """Row/column slices of the region's bounding rectangle and the mask inside it (None: all in)."""
    if region is None:
        return slice(None), slice(None), None
    if hasattr(region, "bounds") and not isinstance(region, (xr.DataArray, np.ndarray)):
        region = tuple(region.bounds)
    if isinstance(region, (xr.DataArray, np.ndarray)):
        mask = _mask_on_grid(region, x, y)
    else:
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in region)
        except (TypeError, ValueError):
            raise InputError(
                "region must be (xmin, ymin, xmax, ymax) in m, a Region, or a boolean (y, x) mask"
            ) from None
        if xmin >= xmax or ymin >= ymax:
            raise InputError(f"region box {region} is empty: need xmin < xmax and ymin < ymax (m)")
        mask = ((x >= xmin) & (x <= xmax))[None, :] & ((y >= ymin) & (y <= ymax))[:, None]
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise InputError("region contains no pixel of the grid")
    rs, cs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    inside = mask[rs, cs]
    return rs, cs, (None if inside.all() else inside)


def _mask_on_grid(mask: xr.DataArray | np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if isinstance(mask, xr.DataArray):
        if set(mask.dims) != {"y", "x"}:
            raise InputError(f"region mask must have dims (y, x), got {tuple(mask.dims)}")
        mask = mask.transpose("y", "x")
        if mask.shape != (y.size, x.size):
            raise InputError(
                f"region mask is {mask.shape[0]} x {mask.shape[1]}, fields are {y.size} x {x.size}"
            )
        for name, c in (("x", x), ("y", y)):
            if name in mask.coords and np.abs(mask[name].values - c).max() > 1e-3 * abs(c[1] - c[0]) + 1e-3:
                raise InputError(f"region mask is not on the grid of the fields (its {name!r} differs)")
        values = mask.values
    else:
        values = np.asarray(mask)
        if values.shape != (y.size, x.size):
            raise InputError(
                f"region mask is {'x'.join(map(str, values.shape))}, fields are {y.size} x {x.size}"
            )
    if values.dtype != bool:
        raise InputError(f"region mask must be boolean, got dtype {values.dtype}")
    return values
