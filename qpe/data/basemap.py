"""Coastlines and land borders for maps, drawn offline from packaged Natural Earth data.

The lines (Natural Earth 1:50m, public domain, clipped to Europe by
``scripts/package_natural_earth.py``) ship inside the package, so maps never download anything.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
import pyproj

from qpe.data.grid import Grid

LAYERS = ("coastline", "border")


@lru_cache(maxsize=1)
def _lonlat_lines() -> dict[str, tuple[np.ndarray, ...]]:
    text = resources.files("qpe.resources").joinpath("natural_earth_europe.json").read_text()
    raw = json.loads(text)
    return {layer: tuple(np.asarray(line, dtype="float64") for line in raw[layer]) for layer in LAYERS}


def basemap_lines(grid: Grid, layers: tuple[str, ...] = LAYERS, margin: float = 0.05) -> dict[str, np.ndarray]:
    """Coastlines and borders projected onto a grid's CRS and clipped to its extent.

    Parameters
    ----------
    grid : Grid
        Target grid; lines are returned in its projected coordinates, m.
    layers : tuple of str
        Any of ``"coastline"``, ``"border"``.
    margin : float
        Fraction of the grid's width/height kept around it, so lines run off the map edge.

    Returns
    -------
    dict of str to numpy.ndarray
        For each layer an (N, 2) array of x/y vertices, m, with rows of NaN separating lines (the
        form matplotlib's ``plot`` and holoviews' ``Path`` draw directly).
    """
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    xmin, ymin, xmax, ymax = grid.bounds
    mx, my = margin * (xmax - xmin), margin * (ymax - ymin)
    xmin, xmax, ymin, ymax = xmin - mx, xmax + mx, ymin - my, ymax + my
    out = {}
    for layer in layers:
        pieces = []
        for line in _lonlat_lines()[layer]:
            x, y = to_grid.transform(line[:, 0], line[:, 1])
            inside = np.isfinite(x) & (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
            if inside.sum() < 2:
                continue
            xy = np.column_stack([x, y])
            xy[~inside] = np.nan  # break the line where it leaves the map
            pieces.append(xy)
            pieces.append(np.full((1, 2), np.nan))
        out[layer] = np.concatenate(pieces) if pieces else np.empty((0, 2))
    return out
