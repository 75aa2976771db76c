"""SEVIRI level-1.5 files read through satpy, calibrated to brightness temperature, on a target grid.

Formats (satpy reader)
    ``seviri_l1b_native``: EUMETSAT native files, one per slot (``MSG4-SEVI-MSG15-...-NA.nat``; full disk
    or a region of interest from the Data Store); ``seviri_l1b_hrit``: HRIT segment files of one slot
    (``H-000-MSG4__-MSG4________-IR_108___-000008___-201808241800-__``) with the slot's prologue
    (``...-PRO______-...``) and epilogue (``...-EPI______-...``); uncompressed, or compressed (``-C_``)
    when EUMETSAT's decompression library is installed; ``seviri_l1b_nc``: EUMETSAT NetCDF
    (``W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,MSG4+SEVIRI_C_EUMG_*.nc``). Files are grouped into
    slots by satpy (:func:`satpy.readers.group_files`).
Reading
    ``Scene(filenames, reader=...)``, ``load(channels, calibration="brightness_temperature",
    upper_right_corner="NE")`` (satpy's nominal calibration from the files' coefficients), cropped to
    the target grid's footprint (``Scene.crop``).
Resampling (pyresample)
    ``nearest``: :class:`pyresample.kd_tree.XArrayResamplerNN`; ``bilinear``:
    :class:`pyresample.bilinear.XArrayBilinearResampler`; radius of influence :data:`RADIUS_M`. The
    plan is made once per source area and reused for every slot on it. With parallax correction the
    positions to read come from :mod:`qpe.data.parallax` and are sampled there (same methods).
Scan time
    The line acquisition time (satpy's ``acq_time``) of the line over the target grid's centre; when
    a file has none for that line, the start of its forward scan.

satpy and pyresample are imported inside the functions (the optional extra ``satpy``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import SEVIRI_CHANNELS
from qpe.data.parallax import (
    CloudTopRule,
    away_from_satellite,
    cloud_top_height,
    complete_orbital_parameters,
    corrected_lonlats,
    fill_hidden,
    sample_at,
)
from qpe.data.readers.seviri_time import SeviriFrame
from qpe.errors import InputError

#: satpy reader -> what its files are (for messages).
L1B_READERS: dict[str, str] = {
    "seviri_l1b_native": "SEVIRI native level-1.5 files (*.nat)",
    "seviri_l1b_hrit": "SEVIRI HRIT level-1.5 files (H-000-MSG*: segments, prologue, epilogue)",
    "seviri_l1b_nc":
        "EUMETSAT SEVIRI level-1.5 NetCDF files (W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,*.nc)",
}
#: satpy reader and dataset of a cloud-top-height product (NWC SAF GEO CTTH: cloud-top altitude, m).
CTH_READER, CTH_DATASET = "nwcsaf-geo", "ctth_alti"
#: Names of NWC SAF GEO CTTH files, with the nominal slot time (satpy's pattern; not the ``_PLAX`` ones).
_CTH_NAME = re.compile(r"^S_NWC_CTTH_[^_]+_.+_(\d{8}T\d{6})Z(_PLAX)?\.nc$")
#: Radius of influence of the pyresample resamplers, m (a few SEVIRI pixels over Europe).
RADIUS_M = 20_000.0
#: satpy errors a damaged or foreign file raises while it is opened or read.
_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, RuntimeError, NotImplementedError)


def satpy_version() -> str:
    """satpy's version (for provenance); :class:`InputError` when satpy is not installed."""
    try:
        import pyresample  # noqa: F401
        import satpy
    except ImportError as err:
        raise InputError(
            f"reading SEVIRI level-1.5 files needs satpy and pyresample ({err.name} is not installed): "
            "pip install 'qpe[satpy]'"
        ) from None
    return satpy.__version__


def _no_downloads():
    """A satpy configuration context that forbids downloading auxiliary data."""
    import satpy

    return satpy.config.set(download_aux=False)


def group_slots(files: Sequence[Path], reader: str) -> tuple[list[list[Path]], list[Path]]:
    """The files of each slot (satpy's grouping by start time), and the files the reader does not know.

    Returns
    -------
    slots : list of list of pathlib.Path
        One list per slot, in the order satpy groups them.
    unknown : list of pathlib.Path
        Files whose names match none of the reader's patterns.
    """
    try:
        from satpy.readers.core.grouping import group_files
    except ImportError:  # satpy < 0.57
        from satpy.readers import group_files

    by_name = {str(f): Path(f) for f in files}
    with _no_downloads(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # satpy warns about files it leaves out: reported below
        groups = group_files(list(by_name), reader=reader)
    slots = [sorted(by_name[str(f)] for f in g.get(reader, [])) for g in groups]
    slots = [s for s in slots if s]
    known = {str(f) for s in slots for f in s}
    return slots, [by_name[f] for f in by_name if f not in known]


def target_area(grid: Grid):
    """The grid as a pyresample area."""
    from pyresample.geometry import AreaDefinition

    return AreaDefinition("qpe_target", grid.describe(), "qpe_target", grid.pyproj_crs, grid.nx, grid.ny,
                          grid.bounds)


def area_grid(area) -> Grid:
    """A pyresample area (north-up) as a :class:`Grid`."""
    x, y = area.get_proj_vectors()
    return Grid.from_coords(area.crs.to_wkt(), np.asarray(x), np.asarray(y))


class AreaResampler:
    """pyresample nearest or bilinear onto one target grid, planned once per source area.

    Parameters
    ----------
    grid : Grid
        The output grid.
    method : {"nearest", "bilinear"}
        The pyresample resampler.
    """

    def __init__(self, grid: Grid, method: str):
        self.grid = grid
        self.area = target_area(grid)
        self.method = method
        self._plans: list[tuple[object, object]] = []

    def describe(self) -> str:
        what = "kd-tree nearest neighbour" if self.method == "nearest" else "bilinear"
        return f"pyresample {what} (radius of influence {RADIUS_M / 1000:g} km)"

    def _plan(self, source):
        from pyresample.bilinear import XArrayBilinearResampler
        from pyresample.kd_tree import XArrayResamplerNN

        for area, plan in self._plans:
            if area == source:
                return plan
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You will likely lose important projection information")
            if self.method == "nearest":
                plan = XArrayResamplerNN(source, self.area, RADIUS_M)
                plan.get_neighbour_info()
            else:
                plan = XArrayBilinearResampler(source, self.area, RADIUS_M)
                plan.get_bil_info()
        self._plans.append((source, plan))
        return plan

    def __call__(self, arrays: list[xr.DataArray]) -> np.ndarray:
        """``(channel, y, x)`` float32 of ``(y, x)`` arrays on one source area."""
        import dask

        source = arrays[0].attrs["area"]
        if area_grid(source).matches(self.grid):
            return np.stack([np.asarray(a.values, dtype="float32") for a in arrays])
        plan = self._plan(source)
        # float64: pyresample's bilinear blanks results beyond the input's range by more than 1e-6, which
        # float32 rounding reaches where a field sits at its minimum or maximum (a uniform cold top)
        bare = [xr.DataArray(a.data.astype("float64"), dims=("y", "x")) for a in arrays]
        if self.method == "nearest":
            out = [plan.get_sample_from_neighbour_info(a, fill_value=np.nan) for a in bare]
        else:
            out = [plan.get_sample_from_bil_info(a, fill_value=np.nan) for a in bare]
        return np.stack(dask.compute(*[o.data for o in out])).astype("float32")


class _SatpyLog(logging.Handler):
    """Keeps what satpy logs at ERROR while loading (a channel it could not load, and why), and keeps it
    off the user's terminal: the reader reports those channels itself, with satpy's reason."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split())[:300])

    def reason(self) -> str:
        return f" (satpy: {self.messages[-1]})" if self.messages else ""


@contextlib.contextmanager
def _satpy_log() -> Iterator[_SatpyLog]:
    logger = logging.getLogger("satpy")
    handler, propagate = _SatpyLog(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _crop(scene, name: str, area, label: str, margin: int = 3):
    """The scene cut to the source pixels that cover ``area``, with ``margin`` pixels more on each side
    (the bilinear stencil at the target's edges)."""
    source = scene[name].attrs["area"]
    try:
        xs, ys = source.get_area_slices(area)
    except (ValueError, NotImplementedError):  # pyresample finds no intersection
        xs = ys = slice(0, 0)
    height, width = source.shape
    ys = slice(max(ys.start - margin, 0), min(ys.stop + margin, height))
    xs = slice(max(xs.start - margin, 0), min(xs.stop + margin, width))
    if ys.stop - ys.start <= 2 * margin or xs.stop - xs.start <= 2 * margin:
        raise InputError(f"{label} does not cover the target grid")
    return scene.slice((ys, xs))


class CloudTopProduct:
    """Cloud-top heights of a product (NWC SAF GEO CTTH ``ctth_alti``, m) for parallax correction, by slot.

    Parameters
    ----------
    files : sequence of pathlib.Path
        ``S_NWC_CTTH_<satellite>_<region>_<YYYYmmddTHHMMSS>Z.nc`` files; the time in the name is the
        nominal slot time. Parallax-corrected products (``..._PLAX.nc``) are refused: the heights must
        lie where the satellite saw them.
    """

    def __init__(self, files: Sequence[Path]):
        self.by_slot: dict[pd.Timestamp, Path] = {}
        for path in files:
            match = _CTH_NAME.match(Path(path).name)
            if match is None:
                raise InputError(f"{Path(path).name} is not named as an NWC SAF GEO CTTH file "
                                 "(S_NWC_CTTH_<satellite>_<region>_<YYYYmmddTHHMMSS>Z.nc)")
            if match.group(2):
                raise InputError(f"{Path(path).name} is a parallax-corrected CTTH product (_PLAX): give the "
                                 "uncorrected one, whose heights lie where the satellite saw them")
            self.by_slot[pd.Timestamp(match.group(1))] = Path(path)

    def height(self, slot_time: pd.Timestamp) -> xr.DataArray | None:
        """``(y, x)`` cloud-top height (m) of the slot starting at ``slot_time``, None without a file."""
        from satpy import Scene

        path = self.by_slot.get(pd.Timestamp(slot_time).round("min"))
        if path is None:
            return None
        try:
            with _no_downloads(), _satpy_log() as log:
                scene = Scene([str(path)], reader=CTH_READER)
                scene.load([CTH_DATASET])
            if CTH_DATASET not in scene:
                raise InputError(f"{path.name} holds no {CTH_DATASET}{log.reason()}")
        except _READ_ERRORS as err:
            first = next((line for line in str(err).splitlines() if line.strip()), "")
            raise InputError(f"{path.name} cannot be read by satpy's {CTH_READER} ({first})") from None
        cth = scene[CTH_DATASET]
        cth.attrs["orbital_parameters"] = complete_orbital_parameters(cth.attrs)
        return cth


def _slot_label(files: Sequence[Path]) -> str:
    first = files[0].name
    return first if len(files) == 1 else f"{first} and {len(files) - 1} more"


def _scan_time(data: xr.DataArray, centre: tuple[float, float]) -> tuple[pd.Timestamp, str]:
    """Acquisition time of the line over ``centre`` (lon, lat), or the forward-scan start."""
    area = data.attrs["area"]
    _, row = area.get_array_coordinates_from_lonlat(*centre)
    if "acq_time" in data.coords and np.isfinite(row):
        row = int(np.clip(np.rint(row), 0, data.sizes["y"] - 1))
        when = pd.Timestamp(data["acq_time"].values[row])
        if not pd.isna(when):
            where = f"({centre[1]:.2f} N, {centre[0]:.2f} E)"
            return when, f"acquisition time of the line over the grid centre {where}"
    params = data.attrs.get("time_parameters") or {}
    start = params.get("observation_start_time") or data.attrs["start_time"]
    return pd.Timestamp(start), "start of the forward scan (no line time over the grid centre)"


def _slot_time(data: xr.DataArray) -> pd.Timestamp:
    params = data.attrs.get("time_parameters") or {}
    return pd.Timestamp(params.get("nominal_start_time") or data.attrs["start_time"])


def read_slot(
    files: Sequence[Path], reader: str, channels: Sequence[str] | None, resampler: AreaResampler | None,
    cloud_top: CloudTopRule | None, method: str = "bilinear", cth_product: CloudTopProduct | None = None,
) -> tuple[SeviriFrame, list[str], Grid, dict]:
    """One slot's brightness temperatures on the target grid.

    Parameters
    ----------
    files : sequence of pathlib.Path
        The slot's files (one native or NetCDF file; HRIT segments, prologue and epilogue).
    reader : str
        A key of :data:`L1B_READERS`.
    channels : sequence of str, optional
        SEVIRI IR channels to read; by default every IR channel of the files.
    resampler : AreaResampler, optional
        Resampler onto the target grid; None keeps the files' own (geostationary) grid.
    cloud_top : CloudTopRule, optional
        Parallax correction with heights from IR_108 by this rule; None for no correction.
    method : {"nearest", "bilinear"}
        Sampling at the parallax-corrected positions.
    cth_product : CloudTopProduct, optional
        Cloud-top heights for the correction; slots it has no file for take ``cloud_top``'s rule.

    Returns
    -------
    frame : SeviriFrame
        ``(channel, y, x)`` K on the target grid with scan and slot times.
    channels : list of str
        The channels read, in SEVIRI order.
    grid : Grid
        The grid of the frame.
    info : dict
        ``platform``; with parallax ``cth_source`` (``product`` or ``ir``), ``hidden_fraction`` and
        (heights from IR) ``surface_k``.

    Raises
    ------
    InputError
        The files cannot be read (one line naming them), lack a channel, or do not cover the target.
    """
    label = _slot_label(files)
    try:
        return _read_slot(files, reader, channels, resampler, cloud_top, method, cth_product, label)
    except InputError:
        raise
    except _READ_ERRORS as err:
        first = next((line for line in str(err).splitlines() if line.strip()), "")
        raise InputError(
            f"{label} cannot be read by satpy's {reader} ({type(err).__name__}: {first})") from None


def _scene(files: Sequence[Path], reader: str, label: str):
    """``satpy.Scene`` of one slot; satpy's warnings about what it could not use go into the error."""
    from satpy import Scene

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return Scene([str(f) for f in files], reader=reader)
        except ValueError as err:
            first = next((line for line in str(err).splitlines() if line.strip()), "")
            notes = [re.sub(r"(?:[A-Za-z]:)?[/\\](?:[^\s/\\]+[/\\])+", "", " ".join(str(w.message).split()))
                     for w in caught if issubclass(w.category, UserWarning)]  # file names without folders
            why = f"; satpy: {notes[0]}" if notes else ""
            raise InputError(f"{label} cannot be read by satpy's {reader} ({first}{why})") from None


def _ordered(names) -> list[str]:
    return [c for c in SEVIRI_CHANNELS if c in set(names)]


def _read_slot(files, reader, channels, resampler, cloud_top, method, cth_product, label):
    with _no_downloads(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No orbit polynomial valid", category=UserWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module="pyresample")
        scene = _scene(files, reader, label)
        candidates = _ordered(channels or scene.available_dataset_names())
        if not candidates:
            raise InputError(f"{label} holds no SEVIRI IR channel")
        load = _ordered(candidates + (["IR_108"] if cloud_top is not None else []))
        with _satpy_log() as log:
            scene.load(load, calibration="brightness_temperature", upper_right_corner="NE")
        loaded = [c for c in load if c in scene]
        lacking = [c for c in (channels or []) + (["IR_108"] if cloud_top else []) if c not in loaded]
        if lacking:
            need = " (parallax correction needs IR_108)" if lacking == ["IR_108"] and cloud_top else ""
            names = ", ".join(dict.fromkeys(lacking))
            raise InputError(f"{label} lacks channel(s) {names}{need}{log.reason()}")
        wanted = [c for c in candidates if c in loaded]
        if not wanted:
            raise InputError(f"{label}: no SEVIRI IR channel could be loaded{log.reason()}")
        if resampler is not None:
            scene = _crop(scene, wanted[0], resampler.area, label)
        arrays = [scene[c] for c in wanted]
        area = resampler.area if resampler is not None else arrays[0].attrs["area"]
        grid = resampler.grid if resampler is not None else area_grid(area)
        centre = area.get_lonlat(area.height // 2, area.width // 2)
        scan_time, rule = _scan_time(arrays[0], centre)
        info = {"platform": str(arrays[0].attrs.get("platform_name", ""))}
        if cloud_top is not None:
            cth = cth_product.height(_slot_time(arrays[0])) if cth_product is not None else None
            values, parallax_info = _parallax_corrected(arrays, scene["IR_108"], area, cloud_top, method, cth)
            info.update(parallax_info)
        elif resampler is not None:
            values = resampler(arrays)
        else:
            values = np.stack([np.asarray(a.values, dtype="float32") for a in arrays])
    if not np.isfinite(values).any():
        raise InputError(f"{label} has no valid brightness temperature over the target grid")
    frame = SeviriFrame(scan_time, _slot_time(arrays[0]), values.astype("float32"), label, rule)
    return frame, wanted, grid, info


def _parallax_corrected(
    arrays: list[xr.DataArray], bt108: xr.DataArray, area, cloud_top: CloudTopRule, method: str,
    cth: xr.DataArray | None = None,
) -> tuple[np.ndarray, dict]:
    """``(channel, y, x)`` parallax-corrected BT on ``area`` with heights ``cth`` (m) or, without them,
    from IR_108 by ``cloud_top``; and what was done (``cth_source``, ``surface_k``, ``hidden_fraction``)."""
    info: dict = {"cth_source": "product"}
    if cth is None:
        cth, info["surface_k"] = cloud_top_height(bt108, cloud_top)
        info["cth_source"] = "ir"
    lon, lat, hidden = corrected_lonlats(cth, area)
    source = np.stack([np.asarray(a.values, dtype="float32") for a in arrays])
    values = sample_at(source, arrays[0].attrs["area"], lon, lat, method)
    if hidden.any():
        orbital = cth.attrs["orbital_parameters"]
        ssp = (orbital.get("satellite_actual_longitude", orbital.get("satellite_nominal_longitude")),
               orbital.get("satellite_actual_latitude", orbital.get("satellite_nominal_latitude", 0.0)))
        values = fill_hidden(values, hidden, away_from_satellite(area, *ssp))
    info["hidden_fraction"] = float(hidden.mean())
    return values, info
