"""Reprojection of fine radar grids onto coarser target grids by an area mean.

A 1 km radar grid in its own projection (polar stereographic, Swiss oblique Mercator) goes onto a 2 km
grid of the OPERA projection in two steps of :class:`qpe.data.regrid.Regridder`:

1. ``nearest``: the source is sampled at ``k x k`` sub-pixel centres of every target pixel (``k = 4``
   for 1 km -> 2 km: sub-samples every 0.5 km, half a source pixel);
2. ``mean``: the NaN-aware mean of the ``k x k`` sub-samples, NaN where fewer than half are valid.

Each source pixel then weighs in proportion to the number of sub-samples it holds, i.e. to its area
inside the target pixel up to 1/k^2 of a target pixel: an approximately conservative (area-weighted)
mean, which keeps the rain of every source pixel and does not pick one source pixel in four as plain
nearest-neighbour sampling would. When the target is the source, a sub-grid of it or an aligned integer
coarsening of it, the plain regridder is used (copy, crop or exact block mean).
"""

from __future__ import annotations

import math

import numpy as np

from qpe.data.grid import Grid
from qpe.data.regrid import Regridder, same_crs

#: Least fraction of a target pixel's sub-samples that must be valid (non-NaN) for the pixel to be valid.
MIN_VALID_FRACTION = 0.5


def subsamples_for(source: Grid, target: Grid) -> int:
    """Sub-samples per target pixel side: twice the ratio of target to source pixel size (rounded up,
    ignoring a few percent: FMI's 999.67 m pixels take 4 for 2 km, like 1 km ones), at least 1."""
    ratio = max(target.dx / source.dx, target.dy / source.dy)
    return max(1, math.ceil(2.0 * ratio - 0.05))


def subpixel_grid(target: Grid, k: int) -> Grid:
    """``target`` with every pixel split into ``k x k`` sub-pixels (same CRS and outer edges)."""
    xmin, _, _, ymax = target.bounds
    dx, dy = target.dx / k, target.dy / k
    return Grid(target.crs, xmin + dx / 2, ymax - dy / 2, dx, dy, target.nx * k, target.ny * k)


class AreaMeanRegridder:
    """Regrid fields from ``source`` onto ``target`` by the mean of sub-samples (module docstring).

    Parameters
    ----------
    source, target : Grid
        Grids of the input fields (e.g. 1 km polar stereographic) and of the output (e.g. 2 km LAEA).
    subsamples : int, optional
        ``k``, sub-samples per target pixel side; by default :func:`subsamples_for`.
    min_valid_fraction : float
        Least valid fraction of a target pixel's sub-samples.

    Attributes
    ----------
    kind : str
        ``identity``, ``crop``, ``mean`` (exact block mean) or ``area mean of k x k nearest
        sub-samples``.
    window : tuple of slice
        ``(rows, cols)`` of the source holding every source pixel the target uses.
    """

    def __init__(self, source: Grid, target: Grid, subsamples: int | None = None,
                 min_valid_fraction: float = MIN_VALID_FRACTION) -> None:
        self.source, self.target = source, target
        direct = Regridder(source, target, "auto", min_valid_fraction) if same_crs(source, target) else None
        if direct is not None and direct.kind in ("identity", "crop", "mean"):
            self._stages = (direct,)
            self.kind = direct.kind
        else:
            k = subsamples or subsamples_for(source, target)
            if k == 1:
                self._stages = (Regridder(source, target, "nearest"),)
                self.kind = "nearest"
            else:
                fine = subpixel_grid(target, k)
                self._stages = (Regridder(source, fine, "nearest"),
                                Regridder(fine, target, "mean", min_valid_fraction))
                self.kind = f"area mean of {k} x {k} nearest sub-samples"
        self.window = self._stages[0].window

    def apply_window(self, values: np.ndarray) -> np.ndarray:
        """Regrid ``(..., wy, wx)`` (the source cut to :attr:`window`) -> ``(..., ny, nx)`` on the target."""
        out = self._stages[0].apply_window(values)
        for stage in self._stages[1:]:
            out = stage.apply(out)
        return out

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Regrid ``(..., source.ny, source.nx)`` -> ``(..., target.ny, target.nx)``."""
        rows, cols = self.window
        return self.apply_window(np.asarray(values)[..., rows, cols])
