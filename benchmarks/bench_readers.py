"""Speed of the real readers and of regridding; prints figures (run: python benchmarks/bench_readers.py).

Needs ../shared/data (or $QPE_SHARED_DATA) for the OPERA and CRR parts; the regridding part runs anywhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from qpe.data.grid import Grid, get_region
from qpe.data.readers import read_crr, read_radar
from qpe.data.regrid import Regridder

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QPE_SHARED_DATA", REPO.parent / "shared" / "data"))
#: The NWC SAF CRR Europe grid (geostationary, 3 km, 1019 x 2200).
CRR_GRID = Grid("+proj=geos +a=6378137.0 +b=6356752.3 +lon_0=0.0 +h=35785863.0",
                -3_300_000.0, 5_568_000.0, 3000.0, 3000.0, 2200, 1019)


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls, s, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_regrid() -> None:
    rng = np.random.default_rng(0)
    field = rng.gamma(0.5, 2.0, CRR_GRID.shape).astype("float32")
    for name, target in [("france 2 km", get_region("france").grid(2000.0)),
                         ("europe 2 km (full OPERA grid 2200 x 1900)", get_region("europe").grid(2000.0))]:
        for method in ("nearest", "bilinear"):
            plan, regridder = timed(partial(Regridder, CRR_GRID, target, method))
            apply, _ = timed(partial(regridder.apply, field), repeat=3)
            print(f"regrid geos 3 km -> {name}, {method:8s}: plan {plan:5.2f} s, "
                  f"apply {apply * 1000:6.1f} ms/field")
    opera = get_region("europe").grid(2000.0)
    full = rng.gamma(0.5, 2.0, opera.shape)
    for name, target in [("crop to france 2 km", get_region("france").grid(2000.0)),
                         ("block mean to europe 4 km", get_region("europe").grid(4000.0))]:
        regridder = Regridder(opera, target)
        apply, _ = timed(partial(regridder.apply, full), repeat=3)
        print(f"regrid OPERA 2 km -> {name} ({regridder.kind}): {apply * 1000:6.1f} ms/field")


def bench_files(label: str, reader: Callable, files: list[Path], cases: dict[str, dict]) -> None:
    for case, kwargs in cases.items():
        seconds, _ = timed(partial(reader, files, **kwargs))
        rate = len(files) / seconds
        print(f"{label} {len(files)} files -> {case:26s}: {seconds:6.2f} s, {rate:5.2f} files/s")


def main() -> None:
    print(f"qpe reader benchmarks on {os.cpu_count()} cores")
    bench_regrid()
    opera = sorted((SHARED / "opera" / "20180824").glob("*.hdf"))
    crr = sorted((SHARED / "nwcsaf_crr" / "20180601").glob("*.nc"))
    if opera:
        read_radar(opera[:1], region="france")  # import pysteps once, outside the timings
        bench_files("OPERA", read_radar, opera, {
            "france 2 km (crop)": {"region": "france"},
            "france 4 km (block mean)": {"region": "france", "pixel_km": 4.0},
            "europe 2 km (full grid)": {"region": "europe"},
        })
    else:
        print(f"OPERA: skipped, no files under {SHARED / 'opera'}")
    if crr:
        bench_files("CRR", read_crr, crr, {
            "france 2 km (nearest)": {"region": "france"},
            "europe 2 km (nearest)": {"region": "europe"},
        })
    else:
        print(f"CRR: skipped, no files under {SHARED / 'nwcsaf_crr'}")


if __name__ == "__main__":
    main()
