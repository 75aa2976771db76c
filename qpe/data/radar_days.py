"""A semi-synthetic training set from days of real radar rain of several networks.

Each part (a glob of one radar source: KNMI, MeteoSwiss, FMI, ...) is read at 15-minute steps on its
region at 2 km on the OPERA projection (:func:`qpe.data.readers.read_radar_source`) and split into
days: runs of consecutive 15-minute steps (a run may pass midnight). Each day is cut to a
``box x box`` pixel square placed where the radar has coverage and rain (:func:`choose_box`), SEVIRI IR
is simulated for it on its real grid (viewing geometry and parallax of its place;
:func:`qpe.data.synthetic.semisynthetic.ir_from_rain`, seed ``seed + i`` for the ``i``-th day in time
order), and the days are joined in time into one dataset. Days are separate runs in time:
:func:`qpe.data.times.has_frames` never makes an input window across two.

One grid for several places
    The paired layout has one ``x``/``y`` grid. The dataset takes the grid of its first day's box; each
    frame's real place is that grid shifted by the coordinates ``x_offset(time)``, ``y_offset(time)``
    (m, OPERA projection; 0 for the first day), and ``rain_source(time)`` names its network. The
    models read pixels only; a map of a frame must add the offsets.

The days of the test benchmarks (:data:`HELD_OUT_DAYS`: the OPERA France case of 2018-08-24, catalog
``opera-semisynthetic``) are refused: a model is never trained on what it is judged on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.times import SEVIRI_STEP
from qpe.errors import InputError

#: UTC days of the test benchmarks; a radar training set refuses any time on them.
HELD_OUT_DAYS: tuple[str, ...] = ("2018-08-24",)
#: Rain rate above which a pixel counts as wet when placing a box, mm/h.
WET_MM_H = 0.1
#: A box should have radar at least this fraction of its pixels and times.
MIN_BOX_COVERAGE = 0.9


@dataclass(frozen=True)
class RainPart:
    """Radar files of one source, as a catalog entry names them.

    Attributes
    ----------
    files : str
        Glob pattern of the files (absolute, or relative to the working directory).
    source : str or None
        ``opera``, ``knmi``, ``mch`` or ``fmi``; None: told from the files.
    zr : (float, float) or None
        ``(a, b)`` of ``Z = a R^b`` for a reflectivity source; its default when None.
    step_rule : str
        ``instant`` or ``mean`` (:mod:`qpe.data.readers.networks`); ``instant`` for OPERA.
    """

    files: str
    source: str | None = None
    zr: tuple[float, float] | None = None
    step_rule: str = "instant"

    def read(self, pixel_km: float, progress: bool = False) -> xr.Dataset:
        """The part's radar rain on its source's region at ``pixel_km``."""
        from qpe.data.readers.inputs import resolve_paths
        from qpe.data.readers.radar_sources import check_source, detect_source, read_radar_source

        source = check_source(self.source) if self.source else detect_source(
            resolve_paths(self.files, "radar files"))
        options = {} if source == "opera" else {"zr": self.zr, "step_rule": self.step_rule}
        return read_radar_source(self.files, source, pixel_km=pixel_km, progress=progress, **options)


@dataclass(frozen=True)
class Box:
    """A square of a day's rain: ``rows``, ``cols`` of its grid, and what it holds."""

    rows: slice
    cols: slice
    coverage: float
    wet_fraction: float


def choose_box(rain: xr.DataArray, size: int, min_coverage: float = MIN_BOX_COVERAGE) -> Box:
    """The ``size x size`` square with the most wet pixel-times among those with enough radar.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN without radar.
    size : int
        Side of the square, pixels.
    min_coverage : float
        Least fraction of the square's pixel-times with radar; when no square has it, the square with
        the most radar is taken.

    Returns
    -------
    Box
        The first such square in row-major order (deterministic), its radar coverage and its wet
        fraction (> 0.1 mm/h, of the pixel-times with radar).
    """
    values = np.asarray(rain.values)
    ny, nx = values.shape[1:]
    if size > min(ny, nx):
        raise InputError(f"box of {size} pixels is larger than the radar grid ({ny} x {nx} pixels)")
    valid = np.isfinite(values).sum(axis=0, dtype="int64")
    with np.errstate(invalid="ignore"):
        wet = (values > WET_MM_H).sum(axis=0, dtype="int64")
    n = values.shape[0] * size * size
    covered = _box_sums(valid, size) / n
    wet_sums = _box_sums(wet, size)
    eligible = covered >= min_coverage
    if not eligible.any():
        eligible = covered >= covered.max()
    score = np.where(eligible, wet_sums, -1)
    r, c = np.unravel_index(int(np.argmax(score)), score.shape)
    coverage = float(covered[r, c])
    return Box(slice(r, r + size), slice(c, c + size), coverage, float(wet_sums[r, c] / max(coverage * n, 1)))


def _box_sums(counts: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``counts`` over every ``size x size`` square, (ny - size + 1, nx - size + 1)."""
    table = np.pad(counts, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]


def check_held_out(times: pd.DatetimeIndex, what: str) -> None:
    """Refuse times on a test benchmark's day (:data:`HELD_OUT_DAYS`)."""
    days = sorted(set(times.strftime("%Y-%m-%d")) & set(HELD_OUT_DAYS))
    if days:
        raise InputError(
            f"{what} has rain of {', '.join(days)}, a day of a test benchmark (opera-semisynthetic): "
            "it is never trained on"
        )


def runs(times: pd.DatetimeIndex, step: pd.Timedelta = SEVIRI_STEP) -> list[np.ndarray]:
    """Indices of ``times`` (increasing) split where consecutive times are not ``step`` apart."""
    if times.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(times.values) != step.to_timedelta64()) + 1
    return np.split(np.arange(times.size), breaks)


def radar_days_paired(
    parts: Sequence[RainPart], config=None, *, box: int = 128, progress: bool = False
) -> xr.Dataset:
    """A semi-synthetic paired dataset of days of real radar rain from several sources (module docstring).

    Parameters
    ----------
    parts : sequence of RainPart
        The radar files, one source per part.
    config : SynthConfig, optional
        Seed, channels, pixel size and the cloud and IR settings; the days set grid and times.
    box : int
        Side of each day's square, pixels.
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.Dataset
        ``rain(time, y, x)`` mm/h, ``ir(time, channel, y, x)`` K, ``qc_outliers(time)``, coordinates
        ``rain_source``, ``x_offset``, ``y_offset`` (time); attribute ``days`` (one line per day: source,
        date, box place, coverage and wet fraction).

    Raises
    ------
    InputError
        No part, a part on a test benchmark's day, two parts with the same times, a box larger than a
        source's region.
    """
    from qpe.data.synthetic import SynthConfig
    from qpe.data.synthetic.semisynthetic import ir_from_rain

    cfg = config or SynthConfig()
    if not parts:
        raise InputError("a radar training set needs at least one part (radar files of one source)")
    if not isinstance(box, int) or box < 8:
        raise InputError(f"box must be a whole number of pixels, at least 8, got {box!r}")
    days: list[tuple[xr.Dataset, str, Box]] = []
    sources: list[str] = []
    rules: list[str] = []
    for part in parts:
        radar = part.read(cfg.pixel_km, progress)
        times = pd.DatetimeIndex(radar["time"].values)
        check_held_out(times, f"radar files {part.files}")
        network = str(radar.attrs.get("radar_network", part.source or "radar"))
        sources.append(radar.attrs.get("source", network))
        rules.append(str(radar.attrs.get("rain_step_rule", "instant")))
        for index in runs(times):
            day = radar.isel(time=index)
            chosen = choose_box(day["rain"], box)
            days.append((day.isel(y=chosen.rows, x=chosen.cols), network, chosen))
    days.sort(key=lambda d: d[0]["time"].values[0])
    _check_disjoint([d[0] for d in days])

    first = Grid.from_dataset(days[0][0])
    frames, lines = [], []
    for i, (day, network, chosen) in enumerate(days):
        grid = Grid.from_dataset(day)
        ir = ir_from_rain(day["rain"], cfg.replace(seed=cfg.seed + i), progress=progress)
        n = day.sizes["time"]
        frame = xr.Dataset(
            {"rain": (("time", "y", "x"), day["rain"].values),
             "ir": (("time", "channel", "y", "x"), ir.values),
             "qc_outliers": ("time", day["qc_outliers"].values)},
            coords={"time": day["time"].values, "channel": ir["channel"].values,
                    "rain_source": ("time", np.full(n, network)),
                    "x_offset": ("time", np.full(n, grid.x0 - first.x0)),
                    "y_offset": ("time", np.full(n, grid.y0 - first.y0))},
        )
        frames.append(frame)
        lon, lat = _centre_lonlat(grid)
        xmin, ymin, xmax, ymax = grid.bounds
        lines.append(
            f"{pd.Timestamp(day['time'].values[0]):%Y-%m-%d} {network}: {n} steps, box "
            f"x [{xmin / 1e3:.0f}, {xmax / 1e3:.0f}] y [{ymin / 1e3:.0f}, {ymax / 1e3:.0f}] km "
            f"(centre lon {lon:.2f} lat {lat:.2f}), radar coverage {chosen.coverage:.0%}, "
            f"wet (> {WET_MM_H:g} mm/h) {chosen.wet_fraction:.0%}, IR seed {cfg.seed + i}"
        )
    return _joined(frames, first, rules, cfg, lines, sources, box)


def _check_disjoint(days: list[xr.Dataset]) -> None:
    for a, b in pairwise(days):
        if a["time"].values[-1] >= b["time"].values[0]:
            when = pd.Timestamp(b["time"].values[0])
            raise InputError(
                f"two parts have rain at the same time ({when:%Y-%m-%dT%H:%M}): one source per day")


def _centre_lonlat(grid: Grid) -> tuple[float, float]:
    import pyproj

    xmin, ymin, xmax, ymax = grid.bounds
    to_geo = pyproj.Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
    return float(lon), float(lat)


def _joined(frames: list[xr.Dataset], grid: Grid, rules: list[str], cfg, lines: list[str],
            sources: list[str], box: int) -> xr.Dataset:
    from qpe.data.paired import SEVIRI_CHANNELS, ir_attrs, rain_attrs, validate_paired
    from qpe.data.readers.inputs import append_history

    ds = xr.concat(frames, dim="time", data_vars="all", coords="different", join="exact", compat="equals")
    ds = ds.assign_coords({**grid.coords(), GRID_MAPPING_NAME: grid.grid_mapping()})
    ds["rain"].attrs.update(rain_attrs())
    ds["ir"].attrs.update(ir_attrs())
    ds["qc_outliers"].attrs.update({"units": "1", "long_name": "rain pixels flagged as outliers"})
    channels = [str(c) for c in ds["channel"].values]
    ds = ds.assign_coords(wavelength=("channel", np.array([SEVIRI_CHANNELS.get(c, np.nan) for c in channels],
                                                          dtype="float32"),
                                      {"units": "um", "long_name": "central wavelength"}))
    ds["x_offset"].attrs.update({"units": "m", "long_name": "x of this frame's box minus x of the grid"})
    ds["y_offset"].attrs.update({"units": "m", "long_name": "y of this frame's box minus y of the grid"})
    ds["rain_source"].attrs.update({"long_name": "radar network of this frame's rain"})
    ds.coords["time"].attrs["standard_name"] = "time"
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "qpe_layout_version": 1,
        "source": f"qpe semi-synthetic radar days: IR simulated (seeds {cfg.seed}.."
                  f"{cfg.seed + len(lines) - 1}) for {'; '.join(sources)}",
        "days": "\n".join(lines),
        "box_pixels": int(box),
        "rain_step_rule": ", ".join(sorted(set(rules))),
        "synthetic_config": cfg.to_yaml(),
        "note": "frames from several places on one grid: a frame lies at x + x_offset, y + y_offset",
        "history": append_history(None, f"joined {len(lines)} days of radar rain in {box} x {box} boxes"),
    })
    return validate_paired(ds)
