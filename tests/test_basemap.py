"""Offline coastlines and borders projected onto qpe grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyproj
from shapely.geometry import shape

from qpe.data.basemap import basemap_lines
from qpe.data.grid import get_region


def test_france_map_has_coastline_and_borders_inside_the_grid():
    grid = get_region("france").grid(2000.0)
    lines = basemap_lines(grid)
    xmin, ymin, xmax, ymax = grid.bounds
    for layer in ("coastline", "border"):
        xy = lines[layer][np.isfinite(lines[layer][:, 0])]
        assert len(xy) > 500, f"too few {layer} vertices over France"
        assert (xy[:, 0] >= xmin - 0.06 * (xmax - xmin)).all() and (xy[:, 1] <= ymax + 0.06 * (ymax - ymin)).all()


def test_brest_lies_on_the_projected_coastline():
    """Brest (4.49W, 48.39N) is on the coast: some coastline vertex is within 5 km of it."""
    grid = get_region("france").grid(2000.0)
    coast = basemap_lines(grid, layers=("coastline",))["coastline"]
    bx, by = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True).transform(-4.49, 48.39)
    dist = np.hypot(coast[:, 0] - bx, coast[:, 1] - by)
    assert np.nanmin(dist) < 5000.0


def test_packaged_lines_match_natural_earth(natural_earth_dir: Path):
    """The packaged subset keeps every 1:50m coastline vertex over France (to 0.01 degree)."""
    resource = Path(__file__).resolve().parents[1] / "qpe" / "resources" / "natural_earth_europe.json"
    packaged = np.concatenate([np.asarray(line) for line in json.loads(resource.read_text())["coastline"]])
    source = json.loads((natural_earth_dir / "ne_50m_coastline.json").read_text())
    ref = np.concatenate([np.asarray(line.coords) for f in source["features"]
                          for line in getattr(shape(f["geometry"]), "geoms", [shape(f["geometry"])])])
    ref = ref[(ref[:, 0] > -5) & (ref[:, 0] < 9) & (ref[:, 1] > 42) & (ref[:, 1] < 51)]
    assert len(ref) > 200
    # nearest packaged vertex of every reference vertex, in degrees
    d = np.hypot(ref[:, None, 0] - packaged[None, :, 0], ref[:, None, 1] - packaged[None, :, 1]).min(axis=1)
    assert d.max() <= 0.0071  # rounding to 0.01 degree moves a vertex by at most 0.005 * sqrt(2)
