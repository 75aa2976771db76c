"""Regridding fields of the paired layout from one :class:`~qpe.data.grid.Grid` onto another.

Three cases, chosen from the two grids (``method="auto"``):

``crop``
    The target is a sub-grid of the source (same CRS, same pixel size, pixel centres on source pixel
    centres): values are copied exactly; target pixels outside the source are NaN.
``mean``
    The target coarsens the source by integer factors ``(ky, kx)`` on aligned pixels (each target pixel
    is exactly a ``ky x kx`` block of source pixels): NaN-aware block mean, NaN where fewer than
    ``min_valid_fraction`` of the block's pixels are valid.
``nearest`` / ``bilinear``
    Anything else (another CRS, such as geostationary SEVIRI/CRR -> LAEA; non-integer factors):
    the target pixel centres are transformed into source coordinates with pyproj and the source is
    sampled there, by nearest neighbour or by bilinear interpolation over the valid neighbours
    (weights renormalised over non-NaN neighbours; NaN where the valid neighbours carry less than
    ``min_valid_fraction`` of the weight, so a NaN pixel stays NaN). Target pixels outside the source
    grid (or off the Earth disk of a geostationary view) are NaN.

A :class:`Regridder` computes the mapping once for a pair of grids and applies it to any number of
fields ``(..., y, x)``, so a reader regrids every file of a series with one pyproj transform.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Literal

import numpy as np
import pyproj
import xarray as xr

from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.errors import DatasetError

Method = Literal["auto", "crop", "mean", "nearest", "bilinear"]
METHODS: tuple[str, ...] = ("auto", "crop", "mean", "nearest", "bilinear")

#: Pixel offsets closer than this to an integer (in pixels) count as aligned.
_ALIGN_TOL = 1e-6


def same_crs(a: Grid, b: Grid) -> bool:
    """True when two grids share one coordinate reference system."""
    return a.crs == b.crs or a.pyproj_crs == b.pyproj_crs


def _integer(value: float) -> int | None:
    """``round(value)`` when ``value`` is an integer to within :data:`_ALIGN_TOL`, else None."""
    r = round(value)
    return int(r) if abs(value - r) <= _ALIGN_TOL * max(1.0, abs(value)) else None


class Regridder:
    """The mapping from a source grid onto a target grid, computed once and applied to many fields.

    Parameters
    ----------
    source, target : Grid
        Grids of the input fields and of the output.
    method : {"auto", "crop", "mean", "nearest", "bilinear"}
        ``auto`` picks ``crop``, then ``mean``, then ``nearest`` (see the module docstring). Asking
        for ``nearest`` or ``bilinear`` when the target is a sub-grid of the source gives the exact
        crop (sampling at coincident pixel centres). ``crop`` and ``mean`` raise
        :class:`~qpe.errors.DatasetError` when the grids do not allow them.
    min_valid_fraction : float
        A target pixel is NaN unless at least this fraction of its block (``mean``) or of its
        bilinear weight (``bilinear``) comes from valid (non-NaN) source pixels.

    Attributes
    ----------
    kind : str
        The method in use: ``identity``, ``crop``, ``mean``, ``nearest`` or ``bilinear``.
    window : tuple of slice
        ``(rows, cols)`` of the source that hold every source pixel the target uses; fields may be
        passed whole or already cut to this window (:meth:`apply_window`).
    """

    def __init__(self, source: Grid, target: Grid, method: Method = "auto", min_valid_fraction: float = 0.5):
        if method not in METHODS:
            raise DatasetError(f"unknown regridding method {method!r}; choose one of {', '.join(METHODS)}")
        if not 0.0 < min_valid_fraction <= 1.0:
            raise DatasetError(f"min_valid_fraction must be in (0, 1], got {min_valid_fraction}")
        self.source = source
        self.target = target
        self.min_valid_fraction = float(min_valid_fraction)
        self.kind = self._choose(method)
        if self.kind in ("identity", "crop"):
            self._plan_crop()
        elif self.kind == "mean":
            self._plan_mean()
        else:
            self._plan_reprojection()

    # -- planning ----------------------------------------------------------------------------------
    def _offsets(self, factor_y: int, factor_x: int) -> tuple[int, int] | None:
        """Source (row, col) of the first pixel of the target's first block, if aligned."""
        s, t = self.source, self.target
        col = _integer((t.x0 - (factor_x - 1) * s.dx / 2 - s.x0) / s.dx)
        row = _integer((s.y0 - (t.y0 + (factor_y - 1) * s.dy / 2)) / s.dy)
        return None if col is None or row is None else (row, col)

    def _factors(self) -> tuple[int, int] | None:
        s, t = self.source, self.target
        fy, fx = _integer(t.dy / s.dy), _integer(t.dx / s.dx)
        if fy is None or fx is None or fy < 1 or fx < 1:
            return None
        return fy, fx

    def _choose(self, method: str) -> str:
        s, t = self.source, self.target
        if s.matches(t):
            return "identity"
        factors = self._factors() if same_crs(s, t) else None
        aligned = factors is not None and self._offsets(*factors) is not None
        if method in ("auto", "crop", "nearest", "bilinear") and aligned and factors == (1, 1):
            return "crop"
        if method in ("auto", "mean") and aligned and factors != (1, 1):
            return "mean"
        if method in ("crop", "mean"):
            need = "a sub-grid of" if method == "crop" else "an integer coarsening, on aligned pixels, of"
            raise DatasetError(
                f"cannot regrid by {method}: target ({t.describe()}) is not {need} the source "
                f"({s.describe()}); use nearest or bilinear"
            )
        return "nearest" if method == "auto" else method

    def _plan_crop(self) -> None:
        row0, col0 = self._offsets(1, 1)
        rows = row0 + np.arange(self.target.ny)
        cols = col0 + np.arange(self.target.nx)
        self._rows, self._cols, self.window = _index_window(rows, cols, self.source)

    def _plan_mean(self) -> None:
        self._fy, self._fx = self._factors()
        row0, col0 = self._offsets(self._fy, self._fx)
        rows = row0 + np.arange(self.target.ny * self._fy)
        cols = col0 + np.arange(self.target.nx * self._fx)
        self._rows, self._cols, self.window = _index_window(rows, cols, self.source)

    def _plan_reprojection(self) -> None:
        s, t = self.source, self.target
        xx, yy = np.meshgrid(t.x, t.y)
        to_source = pyproj.Transformer.from_crs(t.pyproj_crs, s.pyproj_crs, always_xy=True)
        with np.errstate(invalid="ignore"):
            xs, ys = to_source.transform(xx, yy)
            fcol = (np.asarray(xs) - s.x0) / s.dx  # fractional source column of each target pixel
            frow = (s.y0 - np.asarray(ys)) / s.dy
            inside = (
                np.isfinite(fcol) & np.isfinite(frow)
                & (fcol >= -0.5) & (fcol <= s.nx - 0.5) & (frow >= -0.5) & (frow <= s.ny - 0.5)
            )
        if not inside.any():
            self.window = (slice(0, 0), slice(0, 0))
            self._valid = inside
            return
        fcol = np.where(inside, fcol, 0.0)
        frow = np.where(inside, frow, 0.0)
        r0 = max(int(np.floor(frow[inside].min())), 0)
        r1 = min(int(np.ceil(frow[inside].max())) + 1, s.ny)
        c0 = max(int(np.floor(fcol[inside].min())), 0)
        c1 = min(int(np.ceil(fcol[inside].max())) + 1, s.nx)
        self.window = (slice(r0, r1), slice(c0, c1))
        wy, wx = r1 - r0, c1 - c0
        frow, fcol = frow - r0, fcol - c0
        self._valid = inside
        if self.kind == "nearest":
            rows = np.clip(np.rint(frow).astype(np.int64), 0, wy - 1)
            cols = np.clip(np.rint(fcol).astype(np.int64), 0, wx - 1)
            self._flat = rows * wx + cols
            return
        frow, fcol = np.clip(frow, 0, wy - 1), np.clip(fcol, 0, wx - 1)
        rows = np.minimum(np.floor(frow).astype(np.int64), max(wy - 2, 0))
        cols = np.minimum(np.floor(fcol).astype(np.int64), max(wx - 2, 0))
        ty, tx = frow - rows, fcol - cols
        rows1, cols1 = np.minimum(rows + 1, wy - 1), np.minimum(cols + 1, wx - 1)
        corners = np.stack([rows * wx + cols, rows * wx + cols1, rows1 * wx + cols, rows1 * wx + cols1])
        self._corners = corners.astype(np.int32 if wy * wx < 2**31 else np.int64)
        self._weights = np.stack([(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx])

    # -- application -------------------------------------------------------------------------------
    @property
    def window_shape(self) -> tuple[int, int]:
        rows, cols = self.window
        return (rows.stop - rows.start, cols.stop - cols.start)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Regrid an array ``(..., source.ny, source.nx)`` -> ``(..., target.ny, target.nx)`` (float)."""
        if values.shape[-2:] != self.source.shape:
            raise DatasetError(
                f"field of shape {values.shape[-2:]} is not on the source grid ({self.source.describe()})"
            )
        rows, cols = self.window
        return self.apply_window(values[..., rows, cols])

    def apply_window(self, values: np.ndarray) -> np.ndarray:
        """Regrid an array already cut to :attr:`window`, ``(..., wy, wx)`` -> ``(..., ny, nx)``."""
        values = np.asarray(values)
        if values.shape[-2:] != self.window_shape:
            raise DatasetError(
                f"field of shape {values.shape[-2:]} does not match the window {self.window_shape}"
            )
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype("float64")
        lead = values.shape[:-2]
        if self.kind == "identity":
            return values.copy()
        if 0 in self.window_shape:  # the target lies wholly outside the source
            return np.full((*lead, *self.target.shape), np.nan, dtype=values.dtype)
        if self.kind == "crop":
            return _take(values, self._rows, self._cols)
        if self.kind == "mean":
            return self._block_mean(_take(values, self._rows, self._cols))
        flat = values.reshape(*lead, -1)
        if self.kind == "nearest":
            out = flat[..., self._flat]
        else:
            corners = flat[..., self._corners]  # (..., 4, ny, nx)
            ok = np.isfinite(corners)
            w = np.where(ok, self._weights, 0.0)
            total = w.sum(axis=-3)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = (np.where(ok, corners, 0.0) * w).sum(axis=-3) / total
            out = np.where(total >= self.min_valid_fraction, out, np.nan).astype(values.dtype, copy=False)
        return np.where(self._valid, out, np.nan).astype(values.dtype, copy=False)

    def _block_mean(self, values: np.ndarray) -> np.ndarray:
        ny, nx = self.target.shape
        blocks = values.reshape(*values.shape[:-2], ny, self._fy, nx, self._fx)
        valid = np.isfinite(blocks)
        count = valid.sum(axis=(-3, -1))
        total = np.where(valid, blocks, 0.0).sum(axis=(-3, -1), dtype="float64")
        enough = count >= self.min_valid_fraction * self._fy * self._fx
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(enough & (count > 0), total / count, np.nan)
        return out.astype(values.dtype, copy=False)

    def __call__(self, da: xr.DataArray) -> xr.DataArray:
        """Regrid a labelled field ``(..., y, x)`` on the source grid; other dims and coords are kept."""
        if da.dims[-2:] != ("y", "x"):
            raise DatasetError(f"variable {da.name!r} must end with dims ('y', 'x'), got {da.dims}")
        grid = Grid.from_coords(self.source.crs, da["x"].values, da["y"].values)
        if not grid.matches(self.source):
            raise DatasetError(
                f"variable {da.name!r} is on {grid.describe()}, not on the regridder's source "
                f"grid {self.source.describe()}"
            )
        out = self.apply(np.asarray(da.values))
        coords: dict[Hashable, xr.DataArray] = {
            name: c for name, c in da.coords.items()
            if "x" not in c.dims and "y" not in c.dims and name != GRID_MAPPING_NAME
        }
        coords.update(self.target.coords())
        coords[GRID_MAPPING_NAME] = self.target.grid_mapping()
        attrs = {**da.attrs, "grid_mapping": GRID_MAPPING_NAME}
        return xr.DataArray(out, dims=da.dims, coords=coords, attrs=attrs, name=da.name)


def _index_window(rows: np.ndarray, cols: np.ndarray, source: Grid) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Source window covering ``rows``/``cols`` and the indices relative to it (-1: outside)."""
    rin = rows[(rows >= 0) & (rows < source.ny)]
    cin = cols[(cols >= 0) & (cols < source.nx)]
    if rin.size == 0 or cin.size == 0:
        return np.full(rows.size, -1), np.full(cols.size, -1), (slice(0, 0), slice(0, 0))
    r0, r1, c0, c1 = int(rin.min()), int(rin.max()) + 1, int(cin.min()), int(cin.max()) + 1
    rel_rows = np.where((rows >= r0) & (rows < r1), rows - r0, -1)
    rel_cols = np.where((cols >= c0) & (cols < c1), cols - c0, -1)
    return rel_rows, rel_cols, (slice(r0, r1), slice(c0, c1))


def _take(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values[..., rows, :][..., cols]`` with NaN where an index is -1 (a slice when contiguous)."""
    if (rows >= 0).all() and (cols >= 0).all() and _contiguous(rows) and _contiguous(cols):
        return values[..., rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1].copy()
    out = values[..., np.clip(rows, 0, None), :][..., np.clip(cols, 0, None)]
    out[..., rows < 0, :] = np.nan
    out[..., cols < 0] = np.nan
    return out


def _contiguous(idx: np.ndarray) -> bool:
    return idx.size > 0 and bool(np.all(np.diff(idx) == 1))


def regrid(
    da: xr.DataArray, target: Grid, method: Method = "auto", min_valid_fraction: float = 0.5
) -> xr.DataArray:
    """Regrid one labelled field onto ``target``.

    Parameters
    ----------
    da : xarray.DataArray
        ``(..., y, x)`` field with ``x``/``y`` coordinates (m) and its CF grid mapping (the ``crs``
        coordinate, as in every paired dataset).
    target : Grid
        The output grid.
    method : {"auto", "crop", "mean", "nearest", "bilinear"}
        See :class:`Regridder`.
    min_valid_fraction : float
        Least valid fraction of a block (``mean``) or of the bilinear weight (``bilinear``).

    Returns
    -------
    xarray.DataArray
        ``(..., y, x)`` on ``target``, same leading dims, coords and attributes; NaN where the
        source has no data.
    """
    return Regridder(Grid.from_dataset(da), target, method, min_valid_fraction)(da)


def regrid_dataset(
    ds: xr.Dataset, target: Grid, method: Method = "auto", min_valid_fraction: float = 0.5
) -> xr.Dataset:
    """Regrid every ``(..., y, x)`` variable of a dataset onto ``target`` (one mapping for all).

    Variables without ``y``/``x`` dims (e.g. ``qc_outliers(time)``, ``ir_mean(channel)``) are kept
    as they are; dataset attributes are kept.
    """
    regridder = Regridder(Grid.from_dataset(ds), target, method, min_valid_fraction)
    out = {}
    for name, var in ds.data_vars.items():
        if var.dims[-2:] == ("y", "x"):
            out[name] = regridder(var).drop_vars(GRID_MAPPING_NAME)
        elif "y" not in var.dims and "x" not in var.dims:
            out[name] = var.drop_vars([c for c in var.coords if c in ("x", "y", GRID_MAPPING_NAME)])
        else:
            raise DatasetError(
                f"variable {name!r} has dims {var.dims}; spatial dims must come last as (y, x)"
            )
    coords = {n: c for n, c in ds.coords.items() if not ({"x", "y"} & set(c.dims)) and n != GRID_MAPPING_NAME}
    result = xr.Dataset(out, coords={**coords, **target.coords(), GRID_MAPPING_NAME: target.grid_mapping()})
    result.attrs.update(ds.attrs)
    return result
