"""Write the SEVIRI CF fixture files with satpy's own CF writer: ``python tests/data/make_seviri_cf.py``.

Two files, one SEVIRI slot each (2018-08-24 18:00 and 18:15 UTC), of four IR channels on a small
geostationary area (80 x 56 pixels of 18 x 15 km, MSG projection) that covers the ``france`` region.
The brightness temperatures are an analytic field (:func:`brightness_temperature`): a smooth
background per channel with a cold convective cloud moving east, so tests can recompute every value
exactly, and check interpolation against the same function.

The 18:00 file carries a ``time`` coordinate (satpy then writes a ``time`` dimension); the 18:15 file
has only the ``start_time`` attribute, as satpy writes for scenes read from level-1.5 files. Needs
satpy and pyresample (the project's optional ``satpy`` extra); the tests themselves do not.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: MSG geostationary projection (the ellipsoid of SEVIRI level-1.5 data).
GEOS_PROJ = {"proj": "geos", "lon_0": 0.0, "h": 35785831.0, "a": 6378169.0, "b": 6356583.8, "units": "m"}
#: (xmin, ymin, xmax, ymax) outer edges, m, and the size in pixels.
AREA_EXTENT = (-600_000.0, 3_870_000.0, 840_000.0, 4_710_000.0)
WIDTH, HEIGHT = 80, 56
#: Channels in the order written to the files (deliberately not the SEVIRI order).
CHANNELS = ("IR_108", "WV_062", "IR_120", "IR_087")
#: Clear-sky background, K, per channel.
BACKGROUND_K = {"WV_062": 238.0, "WV_073": 252.0, "IR_087": 282.0, "IR_097": 258.0,
                "IR_108": 288.0, "IR_120": 286.0, "IR_134": 262.0}
#: Central wavelengths (min, central, max), µm, as satpy labels SEVIRI channels.
WAVELENGTHS = {"WV_062": (5.35, 6.25, 7.15), "IR_087": (8.3, 8.7, 9.1), "IR_108": (9.8, 10.8, 11.8),
               "IR_120": (11.0, 12.0, 13.0)}
#: Slot times (start of the repeat cycle) and the actual scan start of each file.
SLOTS = (dt.datetime(2018, 8, 24, 18, 0), dt.datetime(2018, 8, 24, 18, 15))
SCAN_START_OFFSET = dt.timedelta(seconds=9)
FILES = ("seviri_cf_20180824T1800.nc", "seviri_cf_20180824T1815.nc")


def pixel_centres() -> tuple[np.ndarray, np.ndarray]:
    """x (increasing) and y (decreasing) of the fixture's pixel centres, m."""
    xmin, ymin, xmax, ymax = AREA_EXTENT
    dx, dy = (xmax - xmin) / WIDTH, (ymax - ymin) / HEIGHT
    return xmin + dx * (np.arange(WIDTH) + 0.5), ymax - dy * (np.arange(HEIGHT) + 0.5)


def brightness_temperature(channel: str, x: np.ndarray, y: np.ndarray, slot: int) -> np.ndarray:
    """The fixture's brightness temperature, K, at geostationary coordinates ``x``, ``y`` (m).

    A background with a gentle north-south gradient (colder to the north) and a cold cloud
    (Gaussian, 150 km wide) centred at x = 100 km + 30 km * slot, y = 4300 km; the cloud is 70 K
    colder than the background in window channels and 25 K colder in the water-vapour channel.
    """
    background = BACKGROUND_K[channel] - 8.0 * (y - 4_290_000.0) / 420_000.0 + 2.0 * np.sin(x / 200_000.0)
    depth = 25.0 if channel.startswith("WV") else 70.0
    cloud = np.exp(-((x - 100_000.0 - 30_000.0 * slot) ** 2 + (y - 4_300_000.0) ** 2) / (2 * 150_000.0**2))
    return background - depth * cloud


def write_files(directory: Path) -> list[Path]:
    """Write the fixture files into ``directory`` with satpy's CF writer; returns their paths."""
    import xarray as xr
    from pyresample.geometry import AreaDefinition
    from satpy import Scene
    from satpy.coords import add_crs_xy_coords

    area = AreaDefinition("msg_france", "MSG SEVIRI over France", "msg_france", GEOS_PROJ,
                          WIDTH, HEIGHT, AREA_EXTENT)
    x, y = pixel_centres()
    xx, yy = np.meshgrid(x, y)
    paths = []
    for slot, (start, name) in enumerate(zip(SLOTS, FILES, strict=True)):
        scene = Scene()
        for channel in CHANNELS:
            data = xr.DataArray(
                brightness_temperature(channel, xx, yy, slot).astype("float32"), dims=("y", "x"),
                attrs={
                    "name": channel, "units": "K", "standard_name": "toa_brightness_temperature",
                    "calibration": "brightness_temperature", "wavelength": WAVELENGTHS[channel],
                    "platform_name": "Meteosat-11", "sensor": "seviri", "area": area,
                    "start_time": start + SCAN_START_OFFSET, "end_time": start + dt.timedelta(minutes=12),
                },
            )
            data = add_crs_xy_coords(data, area)
            if slot == 0:
                data = data.assign_coords(time=np.datetime64(start, "ns"))
            scene[channel] = data
        path = Path(directory) / name
        scene.save_datasets(writer="cf", filename=str(path), include_lonlats=False,
                            encoding={c: {"zlib": True, "complevel": 6} for c in CHANNELS})
        paths.append(path)
    return paths


def main() -> None:
    for path in write_files(HERE):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
