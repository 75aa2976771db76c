"""Clip Natural Earth 1:50m coastlines and land borders to Europe for offline maps.

Writes ``qpe/resources/natural_earth_europe.json``: {"coastline": [[[lon, lat], ...], ...],
"border": [...]}, coordinates rounded to 0.01 degree (~1 km, below the 2 km radar pixel).
Natural Earth is public domain. Run from the repository root:

    python scripts/package_natural_earth.py ../shared/data/natural_earth
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shapely.geometry import box, mapping, shape

#: lon/lat box covering the OPERA domain with a margin.
EUROPE = box(-45.0, 25.0, 70.0, 75.0)
OUT = Path(__file__).resolve().parents[1] / "qpe" / "resources" / "natural_earth_europe.json"


def clipped_lines(path: Path) -> list[list[list[float]]]:
    lines = []
    for feature in json.loads(path.read_text())["features"]:
        geom = shape(feature["geometry"]).intersection(EUROPE)
        if geom.is_empty:
            continue
        parts = getattr(geom, "geoms", [geom])
        for part in parts:
            coords = mapping(part)["coordinates"]
            if part.geom_type == "LineString" and len(coords) > 1:
                lines.append([[round(x, 2), round(y, 2)] for x, y in coords])
    return lines


def main(source: str) -> None:
    src = Path(source)
    layers = {
        "source": "Natural Earth 1:50m (public domain), clipped to lon -45..70, lat 25..75",
        "coastline": clipped_lines(src / "ne_50m_coastline.json"),
        "border": clipped_lines(src / "ne_50m_admin_0_boundary_lines_land.json"),
    }
    OUT.write_text(json.dumps(layers, separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, "
          f"{len(layers['coastline'])} coastlines, {len(layers['border'])} borders)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/natural_earth")
