"""National radar networks read through pysteps' importers -> radar rain in the paired layout.

Three networks, each a :class:`RadarNetwork` in :data:`NETWORKS` naming its pysteps importer
(:func:`pysteps.io.interface.get_method`), its file names and its product:

========  ==============================  =====================  ==================================
name      product (5-minute files)         pysteps importer       rain rate, mm/h
========  ==============================  =====================  ==================================
``knmi``  KNMI (NL) accumulation, mm       ``knmi_hdf5``          accumulation x 12
``mch``   MeteoSwiss AQC accumulation, mm  ``mch_gif`` (AQC)      accumulation x 12
``fmi``   FMI lowest-elevation dBZ          ``fmi_pgm``            ``(10^(dBZ/10) / a)^(1/b)``
========  ==============================  =====================  ==================================

Conversion is :func:`pysteps.utils.conversion.to_rainrate` with the importer's metadata: an
accumulation over ``accutime`` = 5 min is divided by 5 min (x 12 -> mm/h); a reflectivity goes through
``Z = a R^b`` with ``(a, b)`` given by the caller (``zr``) or the network's default (FMI: pysteps'
223, 1.53). The accumulation products carry their producer's own Z-R (KNMI 200, 1.6; MeteoSwiss AQC
316, 1.5, inside the file's look-up table) and take no other.

Missing data
    ``nodata`` (outside coverage) is NaN, as the importers give it; ``undetect`` (no echo) is 0 (KNMI
    and MeteoSwiss store 0 mm; FMI's lowest value, -32 dBZ, is below pysteps' detection threshold and
    becomes 0). None of the three files has a quality index, so there is no ``rain_quality``.

Time (:data:`STEP_RULES`)
    Files are 5-minute; the output has 15-minute steps at :00, :15, :30 and :45. Each file is stamped
    with the time in its name: for the accumulations the *end* of its 5 minutes (KNMI's
    ``product_datetime_end``), for FMI the scan time. ``instant`` (default) takes the file stamped at
    the step: an instantaneous rate for FMI, the mean rate of the last 5 minutes for the accumulations,
    as close to instantaneous as they come; this matches OPERA's instantaneous RATE product and the
    synthetic generator's rain (a rate at the frame's time), so a model is trained and judged on one
    kind of rain. ``mean`` averages the rates of the three files stamped ``t - 10, t - 5, t``: for the
    accumulations, exactly the 15-minute accumulation ending at ``t`` divided by 15 minutes; for FMI
    the mean of three instantaneous rates. A step lacking a file (an edge of the series, a gap, a
    skipped damaged file) is left out and named in the attribute ``steps_left_out``; under ``mean`` a
    pixel missing in one of the three files is NaN.

Quality control and regridding (in this order)
    1. Outliers, on each 5-minute file's native pixels, as the OPERA reader does
       (:func:`qpe.data.readers.opera.apply_outlier_control`): rain above ``max_rate`` (300 mm/h) is set
       to NaN (``mask``) or clipped (``clip``); counts per step in ``qc_outliers(time)``.
    2. The 15-minute rule.
    3. Reprojection of the 1 km native grid onto the target grid (usually the network's region,
       :data:`qpe.data.grid.REGIONS`, on the OPERA projection at 2 km) by the area mean of
       :class:`~qpe.data.readers.reprojection.AreaMeanRegridder` (4 x 4 sub-samples per 2 km pixel).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import make_paired_dataset
from qpe.data.readers.inputs import (
    PathsLike,
    SkippedFile,
    append_history,
    check_same_grid,
    check_time_order,
    file_list,
    progress_bar,
    read_or_skip,
    report_skipped,
    resolve_paths,
    resolve_target,
)
from qpe.data.readers.opera import DEFAULT_MAX_RATE, apply_outlier_control, check_qc_settings
from qpe.data.readers.reprojection import AreaMeanRegridder
from qpe.data.times import SEVIRI_STEP
from qpe.errors import InputError

#: How 15-minute steps are made of 5-minute files (module docstring).
STEP_RULES = ("instant", "mean")
StepRule = Literal["instant", "mean"]
#: Time between two files of a network.
FILE_STEP = pd.Timedelta(minutes=5)


@dataclass(frozen=True)
class RadarNetwork:
    """A radar network's product, as pysteps imports it.

    Attributes
    ----------
    name : str
        Short name (``knmi``, ``mch``, ``fmi``), as ``qpe data radar --source`` takes it.
    title : str
        What the files hold, for attributes and messages.
    files : str
        What the files are called in messages (``"KNMI HDF5 files"``).
    importer : str
        Name of the pysteps importer (:func:`pysteps.io.interface.get_method`).
    options : callable
        ``options(path) -> dict``: keyword arguments of the importer for this file.
    product : {"accumulation", "reflectivity"}
        5-minute rain accumulation in mm, or reflectivity in dBZ.
    file_name : re.Pattern
        Names of the files; group ``time`` holds the time, read with ``time_format``.
    time_format : str
        :func:`datetime.strptime` format of the time in the name.
    example : str
        A file name, for messages.
    region : str
        Default target region (:data:`qpe.data.grid.REGIONS`).
    zr : tuple of float or None
        Default ``(a, b)`` of ``Z = a R^b`` for a reflectivity product (mm^6 m^-3, R in mm/h); None for
        an accumulation.
    producer_zr : tuple of float or None
        The Z-R the producer used to make an accumulation product (documentation only).
    """

    name: str
    title: str
    files: str
    importer: str
    options: Callable[[Path], dict[str, Any]]
    product: Literal["accumulation", "reflectivity"]
    file_name: re.Pattern
    time_format: str
    example: str
    region: str
    zr: tuple[float, float] | None = None
    producer_zr: tuple[float, float] | None = None

    def file_time(self, path: Path) -> pd.Timestamp:
        """Time stamped in a file's name, UTC; :class:`InputError` for a name of another product."""
        match = self.file_name.match(path.name)
        if match is None:
            raise InputError(f"{path} is not named like {self.files} (e.g. {self.example})")
        try:
            return pd.Timestamp(pd.to_datetime(match["time"], format=self.time_format))
        except (ValueError, OverflowError):
            raise InputError(
                f"{path}: {match['time']!r} in its name is not a time ({self.time_format})") from None


NETWORKS: Mapping[str, RadarNetwork] = MappingProxyType({
    "knmi": RadarNetwork(
        name="knmi",
        title="KNMI (Netherlands) radar 5-minute rain accumulation",
        files="KNMI HDF5 files",
        importer="knmi_hdf5",
        options=lambda path: {"qty": "ACRR", "accutime": 5.0},
        product="accumulation",
        file_name=re.compile(r"^RAD_NL\d+_[A-Z0-9]+_5min_(?P<time>\d{12})\.h5$"),
        time_format="%Y%m%d%H%M",
        example="RAD_NL25_RAP_5min_201008260000.h5",
        region="netherlands",
        producer_zr=(200.0, 1.6),
    ),
    "mch": RadarNetwork(
        name="mch",
        title="MeteoSwiss (Switzerland) radar AQC 5-minute rain accumulation",
        files="MeteoSwiss GIF files",
        importer="mch_gif",
        options=lambda path: {"product": "AQC", "unit": "mm", "accutime": 5.0},
        product="accumulation",
        file_name=re.compile(r"^AQC(?P<time>\d{9})[A-Z0-9]*_00005\.\d+\.gif$"),
        time_format="%y%j%H%M",
        example="AQC151351545F_00005.801.gif",
        region="switzerland",
        producer_zr=(316.0, 1.5),
    ),
    "fmi": RadarNetwork(
        name="fmi",
        title="FMI (Finland) radar lowest-elevation reflectivity composite",
        files="FMI PGM files",
        importer="fmi_pgm",
        options=lambda path: {"gzipped": path.suffix == ".gz"},
        product="reflectivity",
        file_name=re.compile(r"^(?P<time>\d{12})_fmi\.radar\.composite\.[\w.]+\.pgm(\.gz)?$"),
        time_format="%Y%m%d%H%M",
        example="201609281445_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz",
        region="finland",
        zr=(223.0, 1.53),
    ),
})


def get_network(name: str) -> RadarNetwork:
    """The network called ``name``; :class:`InputError` listing the known ones otherwise."""
    try:
        return NETWORKS[name.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"unknown radar network {name!r}; known networks: {', '.join(NETWORKS)}") from None


def check_zr(zr: Sequence[float] | None, network: RadarNetwork) -> tuple[float, float] | None:
    """The Z-R ``(a, b)`` to use for ``network``: ``zr``, or its default; None for an accumulation.

    Raises
    ------
    InputError
        ``zr`` given for an accumulation product, or not two finite positive numbers.
    """
    if zr is None:
        return network.zr
    if network.product != "reflectivity":
        a, b = network.producer_zr
        raise InputError(
            f"a Z-R relation applies to reflectivity; {network.name} gives rain accumulations in mm "
            f"(made by its producer with Z = {a:g} R^{b:g}), which are read as they are"
        )
    values = tuple(zr)
    positive = all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)
    if len(values) != 2 or not positive:
        raise InputError(f"Z-R needs two finite positive numbers a b (Z = a R^b), got {list(values)!r}")
    return (float(values[0]), float(values[1]))


# -- one file -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RadarFrame:
    """One 5-minute file read and converted to a rain rate.

    Attributes
    ----------
    path : Path
    time : pandas.Timestamp
        Time stamped in the file's name, UTC.
    rain : numpy.ndarray
        (rows, cols) of the window read, rain rate, mm/h, float64, NaN = no data, 0 = no rain detected.
    grid : Grid
        The whole file's grid, in metres.
    metadata : dict
        pysteps' metadata after :func:`~pysteps.utils.conversion.to_rainrate`.
    """

    path: Path
    time: pd.Timestamp
    rain: np.ndarray
    grid: Grid
    metadata: dict


#: Errors of pysteps' importers on a damaged or foreign file (HDF5, GIF, gzip, PGM parsing).
_IMPORT_ERRORS = (OSError, EOFError, KeyError, ValueError, IndexError, TypeError, AttributeError,
                  zlib.error, gzip.BadGzipFile)


def _pysteps():
    """``(get_method, to_rainrate, DataModelError)``, imported without pysteps' start-up message."""
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps.exceptions import DataModelError
        from pysteps.io.interface import get_method
        from pysteps.utils.conversion import to_rainrate
    return get_method, to_rainrate, DataModelError


def import_network_file(path: Path, network: RadarNetwork) -> tuple[np.ndarray, dict]:
    """The field and metadata of one file, exactly as pysteps' importer of ``network`` returns them."""
    get_method, _, data_model_error = _pysteps()
    importer = get_method(network.importer, "importer")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            field, _, metadata = importer(str(path), **network.options(path))
    except (*_IMPORT_ERRORS, data_model_error) as err:
        reason = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise InputError(f"{path} could not be read as {network.files[:-6]} by pysteps ({reason})") from None
    return field, metadata


def read_network_file(
    path: str | os.PathLike, network: RadarNetwork, zr: tuple[float, float] | None = None,
    window: tuple[slice, slice] | None = None,
) -> RadarFrame:
    """Read one file of ``network`` and convert it to a rain rate (mm/h) with pysteps.

    Parameters
    ----------
    path : path-like
        A 5-minute file of the network.
    network : RadarNetwork
    zr : (float, float), optional
        ``(a, b)`` of ``Z = a R^b`` for a reflectivity product; the network's default when None.
    window : tuple of slice, optional
        ``(rows, cols)`` of the field to keep (e.g. a regridder's window), north-up; all by default.

    Raises
    ------
    InputError
        Missing file, a name not of this network, a file pysteps cannot read, or no usable grid.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    time = network.file_time(path)
    field, metadata = import_network_file(path, network)
    _, to_rainrate, _ = _pysteps()
    a, b = zr or network.zr or (None, None)
    rain, metadata = to_rainrate(field, metadata, zr_a=a, zr_b=b)
    if metadata.get("yorigin") == "lower":
        rain = rain[::-1]
    grid = grid_from_pysteps(metadata, rain.shape, path)
    return RadarFrame(path, time, rain[window or (slice(None), slice(None))], grid, metadata)


_ELLIPSOID_AXES = re.compile(r"\+(?P<key>a|b)=(?P<value>[0-9.eE+-]+)")


def _in_metres(metadata: dict, path: Path) -> tuple[str, float]:
    """``(projection, scale)`` so that ``scale * metadata coordinates`` are metres in ``projection``.

    KNMI gives its grid in km on an ellipsoid whose axes are in km (``+a=6378.137 +b=6356.752``): the
    same projection in metres has the axes x 1000.
    """
    projection, unit = str(metadata["projection"]), metadata.get("cartesian_unit", "m")
    if unit == "m":
        return projection, 1.0
    if unit != "km":
        raise InputError(f"{path}: grid coordinates in {unit!r}, not m or km")
    if not _ELLIPSOID_AXES.search(projection):
        raise InputError(
            f"{path}: a grid in km on a projection without +a/+b ({projection}) cannot be put in metres")
    return _ELLIPSOID_AXES.sub(lambda m: f"+{m['key']}={float(m['value']) * 1000.0:.10g}", projection), 1000.0


def grid_from_pysteps(metadata: dict, shape: tuple[int, int], path: Path) -> Grid:
    """The north-up :class:`Grid` (metres) of a field of ``shape`` from pysteps' metadata.

    Uses ``projection``, ``x1``, ``y2`` (outer edges), ``xpixelsize``, ``ypixelsize`` and
    ``cartesian_unit``; checks that ``x1..x2`` and ``y1..y2`` span ``shape`` pixels.
    """
    if not metadata.get("projection"):
        raise InputError(f"{path}: pysteps gives no projection for this file")
    projection, scale = _in_metres(metadata, path)
    dx, dy = float(metadata["xpixelsize"]) * scale, float(metadata["ypixelsize"]) * scale
    x1, x2 = float(metadata["x1"]) * scale, float(metadata["x2"]) * scale
    y1, y2 = float(metadata["y1"]) * scale, float(metadata["y2"]) * scale
    ny, nx = shape
    if abs((x2 - x1) - nx * dx) > 0.01 * dx or abs((y2 - y1) - ny * dy) > 0.01 * dy:
        raise InputError(
            f"{path}: the grid extent ({(x2 - x1) / 1000:g} x {(y2 - y1) / 1000:g} km) does not match "
            f"{ny} x {nx} pixels of {dx / 1000:g} x {dy / 1000:g} km"
        )
    return Grid(projection, x1 + dx / 2, y2 - dy / 2, dx, dy, nx, ny)


# -- 15-minute steps ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepPlan:
    """Which files make which 15-minute steps.

    Attributes
    ----------
    steps : dict
        Step time -> the times of its files (one under ``instant``, three under ``mean``), oldest first.
    left_out : dict
        Step time -> the file times it lacks, for steps some but not all of whose files exist.
    """

    steps: dict[pd.Timestamp, tuple[pd.Timestamp, ...]]
    left_out: dict[pd.Timestamp, tuple[pd.Timestamp, ...]]


def plan_steps(file_times: Sequence[pd.Timestamp], rule: StepRule, step: pd.Timedelta = SEVIRI_STEP,
               file_step: pd.Timedelta = FILE_STEP) -> StepPlan:
    """The 15-minute steps (``:00, :15, :30, :45``) that the files make under ``rule``.

    ``instant``: each step is the file stamped at it. ``mean``: each step needs the files stamped
    ``t - 10 min, t - 5 min, t``. Steps between the first and the last file that lack a file are in
    ``left_out`` (the series' edges beyond its files are not).
    """
    if rule not in STEP_RULES:
        raise InputError(f"step rule must be one of {', '.join(STEP_RULES)}, got {rule!r}")
    have = set(pd.DatetimeIndex(file_times))
    if not have:
        return StepPlan({}, {})
    first, last = min(have), max(have)
    per_step = 1 if rule == "instant" else int(step / file_step)
    steps: dict[pd.Timestamp, tuple[pd.Timestamp, ...]] = {}
    left_out: dict[pd.Timestamp, tuple[pd.Timestamp, ...]] = {}
    for t in sorted({time.ceil(step) for time in have}):
        needed = tuple(t - k * file_step for k in range(per_step - 1, -1, -1))
        missing = tuple(n for n in needed if n not in have)
        if not missing:
            steps[t] = needed
        elif first <= t <= last:
            left_out[t] = missing
    return StepPlan(steps, left_out)


def combine_step(rates: Sequence[np.ndarray], rule: StepRule) -> np.ndarray:
    """The 15-minute rain rate from the step's 5-minute rates (mm/h): the one, or their mean.

    Under ``mean`` a pixel is NaN when any of the rates is (no measurement for part of the window).
    """
    if rule == "instant":
        if len(rates) != 1:
            raise ValueError(f"the instant rule takes one field per step, got {len(rates)}")
        return np.asarray(rates[0])
    return np.mean(np.stack(rates), axis=0)


def _describe_rule(rule: StepRule, network: RadarNetwork) -> str:
    if rule == "instant":
        what = ("the scan at the step (instantaneous)" if network.product == "reflectivity"
                else "its mean rate over the 5 minutes ending at the step")
        return f"instant: the 5-minute file stamped at each 15-minute step, {what}"
    what = ("the 15-minute accumulation ending at the step / 15 min" if network.product == "accumulation"
            else "the mean of three instantaneous rates")
    return f"mean: the mean rate of the three 5-minute files stamped t-10, t-5, t min, {what}"


def _describe_conversion(network: RadarNetwork, zr: tuple[float, float] | None) -> str:
    if network.product == "accumulation":
        a, b = network.producer_zr
        return (f"pysteps.utils.conversion.to_rainrate: 5-minute accumulation (mm) x 12 -> mm/h "
                f"(producer's Z-R Z = {a:g} R^{b:g} inside the product)")
    a, b = zr
    return f"pysteps.utils.conversion.to_rainrate: dBZ -> Z = 10^(dBZ/10) -> R = (Z / {a:g})^(1/{b:g}) mm/h"


# -- the reader -----------------------------------------------------------------------------------------
def read_network(
    paths: PathsLike,
    network: str | RadarNetwork,
    grid: Grid | None = None,
    *,
    region: str | None = None,
    pixel_km: float = 2.0,
    zr: Sequence[float] | None = None,
    step_rule: StepRule = "instant",
    max_rate: float = DEFAULT_MAX_RATE,
    outliers: Literal["mask", "clip"] = "mask",
    progress: bool = False,
) -> xr.Dataset:
    """Read 5-minute files of a radar network into 15-minute radar rain in the paired layout.

    Files may be given in any order (they are sorted by the time in their names). Of several files,
    those that cannot be read are left out with a
    :class:`~qpe.data.readers.inputs.SkippedFilesWarning` and listed in ``skipped_files``, as for
    OPERA; the steps that lack them are listed in ``steps_left_out``.

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths of the network's 5-minute files.
    network : str or RadarNetwork
        ``knmi``, ``mch`` or ``fmi`` (:data:`NETWORKS`).
    grid : Grid, optional
        Target grid. Give ``grid`` or ``region``; with neither, the network's own 1 km grid and
        projection are kept (no regridding). The network's usual target is its region
        (:attr:`RadarNetwork.region`, e.g. ``netherlands``) at 2 km.
    region : str, optional
        Named region (:data:`qpe.data.grid.REGIONS`), at ``pixel_km``.
    pixel_km : float
        Pixel size of the region grid, km (default 2).
    zr : (float, float), optional
        ``(a, b)`` of ``Z = a R^b`` (R in mm/h) for a reflectivity network; its default otherwise.
    step_rule : {"instant", "mean"}
        How 15-minute steps are made of the 5-minute files (module docstring).
    max_rate : float
        Outlier threshold, mm/h (at most the layout's 500 mm/h).
    outliers : {"mask", "clip"}
        Rain above ``max_rate``: NaN, or clipped to ``max_rate``. Counted either way.
    progress : bool
        Show a progress bar over the 15-minute steps.

    Returns
    -------
    xarray.Dataset
        ``rain(time, y, x)`` mm/h at 15-minute steps, ``qc_outliers(time)``; attributes ``source``,
        ``radar_network``, ``rain_step_rule``, ``rain_time_rule``, ``rain_conversion`` (and ``zr_a``,
        ``zr_b`` for a reflectivity network), ``qc_*``, ``history``, ``steps_left_out`` and
        ``skipped_files`` when there are any.

    Raises
    ------
    InputError
        Missing files or empty glob; no file readable; files on different grids or with the same
        time; no complete 15-minute step; bad settings.
    """
    net = network if isinstance(network, RadarNetwork) else get_network(network)
    zr_used = check_zr(zr, net)
    check_qc_settings(max_rate, outliers)
    if step_rule not in STEP_RULES:
        raise InputError(f"step rule must be one of {', '.join(STEP_RULES)}, got {step_rule!r}")
    files = resolve_paths(paths, net.files)
    target = resolve_target(grid, region, pixel_km)

    skipped: list[SkippedFile] = []
    several = len(files) > 1
    named = [(p, read_or_skip(net.file_time, p, several, skipped)) for p in files]
    named = [(p, t) for p, t in named if t is not None]
    if named:
        check_time_order([t for _, t in named], [p.name for p, _ in named])
    by_time = {t: p for p, t in named}
    plan = plan_steps(list(by_time), step_rule)

    rates = _FileRates(net, zr_used, target, max_rate, outliers, several, skipped)
    steps, fields, counts, left_out = [], [], [], dict(plan.left_out)
    with progress_bar(list(plan.steps.items()), net.name.upper(), progress) as bar:
        for t, times in bar:  # each file belongs to one step: read, combine, regrid, forget
            read = [rates.read(by_time[s]) for s in times]
            if any(r is None for r in read):
                left_out[t] = tuple(s for s, r in zip(times, read, strict=True) if r is None)
                continue
            steps.append(t)
            fields.append(rates.regridder.apply_window(combine_step([r[0] for r in read], step_rule)))
            counts.append(sum(r[1] for r in read))
            rates.used.extend(by_time[s] for s in times)
    skipped_note = report_skipped(skipped, len(files), net.files)
    if not steps:
        raise InputError(
            f"no complete 15-minute step ({step_rule}) in the {len(files)} {net.files}: "
            + ("each step needs the files stamped t-10, t-5 and t min" if step_rule == "mean"
               else "each step needs a file stamped at :00, :15, :30 or :45")
        )
    attrs = _attributes(net, zr_used, step_rule, max_rate, outliers, sum(counts), rates.used, rates.regridder,
                        left_out, skipped_note)
    ds = make_paired_dataset(rates.regridder.target, steps, rain=np.stack(fields), attrs=attrs)
    ds["qc_outliers"] = xr.DataArray(
        np.array(counts, dtype="int64"), dims="time",
        attrs={"units": "1",
               "long_name": f"native rain pixels above {max_rate:g} mm/h flagged as outliers ({outliers}) "
                            "in the step's 5-minute files"},
    )
    return ds


class _FileRates:
    """Reads a network's files one at a time: rain rate (mm/h, float32) on the regridder's window with
    outliers flagged, and their count; the regridder is planned on the first file read."""

    def __init__(self, net: RadarNetwork, zr: tuple[float, float] | None, target: Grid | None,
                 max_rate: float, outliers: str, several: bool, skipped: list[SkippedFile]) -> None:
        self.net, self.zr, self.target = net, zr, target
        self.max_rate, self.outliers, self.several, self.skipped = max_rate, outliers, several, skipped
        self.regridder: AreaMeanRegridder | None = None
        self.used: list[Path] = []

    def read(self, path: Path) -> tuple[np.ndarray, int] | None:
        """``(rain, outliers)`` of one file, or None when it is skipped (:func:`read_or_skip`)."""
        window = self.regridder.window if self.regridder is not None else None
        frame = read_or_skip(partial(read_network_file, network=self.net, zr=self.zr, window=window),
                             path, self.several, self.skipped)
        if frame is None:
            return None
        rain = frame.rain
        if self.regridder is None:
            self.regridder = AreaMeanRegridder(frame.grid, self.target or frame.grid)
            rain = rain[self.regridder.window]
        else:
            check_same_grid(path, frame.grid, self.regridder.source)
        rain, flagged = apply_outlier_control(rain, self.max_rate, self.outliers)
        return rain.astype("float32"), flagged


def _attributes(net: RadarNetwork, zr: tuple[float, float] | None, rule: StepRule, max_rate: float,
                outliers: str, flagged: int, read_files: list[Path], regridder: AreaMeanRegridder,
                left_out: dict, skipped_note: str | None) -> dict:
    conversion = _describe_conversion(net, zr)
    attrs: dict[str, Any] = {
        "source": f"{net.title} (pysteps import_{net.importer}), {len(read_files)} files",
        "source_files": file_list(sorted(read_files)),
        "radar_network": net.name,
        "rain_step_rule": rule,
        "rain_time_rule": _describe_rule(rule, net),
        "rain_conversion": conversion,
        "qc_max_rate": float(max_rate),
        "qc_outlier_action": outliers,
        "qc_outliers_flagged": int(flagged),
        "history": append_history(
            None,
            f"read {len(read_files)} {net.name} 5-minute files; {conversion}; outliers > {max_rate:g} mm/h "
            f"{'set to NaN' if outliers == 'mask' else 'clipped'} on native pixels; 15-minute steps by "
            f"{_describe_rule(rule, net)}; regridded by {regridder.kind} onto {regridder.target.describe()}",
        ),
    }
    if zr is not None:
        attrs["zr_a"], attrs["zr_b"] = zr
    if left_out:
        attrs["steps_left_out"] = "; ".join(
            f"{t:%Y-%m-%dT%H:%M} lacks {', '.join(f'{s:%H:%M}' for s in missing)}"
            for t, missing in sorted(left_out.items())
        )
    if skipped_note:
        attrs["skipped_files"] = skipped_note
    return attrs


def network_reader(name: str) -> Callable[..., xr.Dataset]:
    """The reader of one network with the registry's signature ``reader(paths, grid=None, **options)``."""
    net = get_network(name)

    def read(paths: PathsLike, grid: Grid | None = None, **options) -> xr.Dataset:
        return read_network(paths, net, grid, **options)

    read.__name__ = f"read_{net.name}"
    read.__qualname__ = read.__name__
    read.__doc__ = (f"Read {net.title} files into 15-minute radar rain (:func:`read_network` with "
                    f"network={net.name!r}).")
    return read


read_knmi = network_reader("knmi")
read_mch = network_reader("mch")
read_fmi = network_reader("fmi")
