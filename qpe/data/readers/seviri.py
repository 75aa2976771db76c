"""SEVIRI brightness temperatures -> ``ir``: level-1.5 files through satpy, or CF NetCDF/Zarr.

Formats (``file_format``, told from the file names by default)
    ``seviri_l1b_native``, ``seviri_l1b_hrit``, ``seviri_l1b_nc``: EUMETSAT's native, HRIT and NetCDF
    level-1.5 files, read, calibrated to brightness temperature and resampled onto the target grid by
    satpy and pyresample (:mod:`qpe.data.readers.seviri_l1b`; the optional extra ``satpy``), with
    optional parallax correction (:mod:`qpe.data.parallax`). ``cf``: CF NetCDF files or Zarr stores as
    satpy's ``cf`` writer writes them (below); these need neither satpy nor pyresample.
Time (:mod:`qpe.data.readers.seviri_time`)
    Every frame has a *scan time*, when the target grid's centre was scanned (the line acquisition
    time; files without line times give their own time), and is put on the nearest 15-minute radar
    time within a tolerance (7.5 min by default). ``time`` is that radar time; ``scan_time(time)`` and
    ``slot_time(time)`` (the nominal repeat-cycle start) are kept as coordinates. Frames left out
    (beyond the tolerance, or a closer scan on the same radar time) are reported.
Attributes
    ``seviri_reader``, ``seviri_resampling``, ``seviri_parallax`` (and ``seviri_cloud_top_rule``),
    ``seviri_scan_time_rule``, ``seviri_time_step_min``, ``seviri_time_tolerance_min`` and, when
    frames were left out, ``seviri_frames_left_out``.

What satpy's CF writer (``scene.save_datasets(writer="cf")``) produces, and the ``cf`` format expects:
one variable per channel named after it (``IR_108``, ``WV_062``, ...; dims ``(y, x)`` or
``(time, y, x)``), ``units = "K"``, ``standard_name = "toa_brightness_temperature"``, projected
``x``/``y`` coordinates in metres (geostationary for native SEVIRI, any projection after resampling)
with a CF grid-mapping variable, and the time as a ``time`` coordinate or a ``start_time`` attribute;
line acquisition times as ``<channel>_acq_time(y)`` or ``acq_time(y)`` when satpy had them.
Longitude/latitude arrays, visible channels and other variables are ignored. CF files are regridded
by :class:`qpe.data.regrid.Regridder` (bilinear by default; exact when the source is already on (a
super-grid of) the target); parallax correction needs the level-1.5 files.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import IR_UNITS, SEVIRI_CHANNELS, make_paired_dataset
from qpe.data.parallax import CloudTopRule
from qpe.data.readers import seviri_l1b
from qpe.data.readers.inputs import (
    PathsLike,
    SkippedFile,
    append_history,
    check_time_order,
    file_list,
    progress_bar,
    read_or_skip,
    report_skipped,
    resolve_paths,
    resolve_target,
)
from qpe.data.readers.seviri_l1b import L1B_READERS
from qpe.data.readers.seviri_time import DEFAULT_TOLERANCE, STEP, SeviriFrame, align_scans, check_tolerance
from qpe.data.regrid import Method, Regridder
from qpe.data.times import utc_naive
from qpe.errors import DatasetError, InputError

BT_STANDARD_NAME = "toa_brightness_temperature"
_TIME_ATTRS = ("start_time", "nominal_start_time", "time_coverage_start")


def open_cf(path: str | os.PathLike) -> xr.Dataset:
    """Open a CF NetCDF file or a Zarr store lazily; :class:`InputError` when it is neither."""
    path = Path(path)
    try:
        if path.is_dir() or path.suffix == ".zarr":
            return xr.open_zarr(path, chunks=None)
        return xr.open_dataset(path, engine="netcdf4", chunks=None)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(
            f"{path} is not a readable CF NetCDF/Zarr file ({type(err).__name__}: {err})"
        ) from None


def _channel_names(ds: xr.Dataset, path: Path) -> list[str]:
    names = [str(n) for n in ds.data_vars if str(n) in SEVIRI_CHANNELS]
    if not names:
        raise InputError(
            f"{path} holds no SEVIRI IR channel variable "
            f"(expected names such as {', '.join(SEVIRI_CHANNELS)})"
        )
    for name in names:
        var = ds[name]
        units = var.attrs.get("units")
        if units is None or str(units).strip() not in IR_UNITS:
            raise DatasetError(
                f"{path}: channel {name} is in {units!r}; expected brightness temperature in K"
            )
        standard_name = var.attrs.get("standard_name", BT_STANDARD_NAME)
        if standard_name != BT_STANDARD_NAME:
            raise DatasetError(
                f"{path}: channel {name} is {standard_name!r}, not {BT_STANDARD_NAME} "
                "(calibrate to brightness temperature)"
            )
        if var.dims not in (("y", "x"), ("time", "y", "x")):
            raise DatasetError(f"{path}: channel {name} has dims {var.dims}; expected (y, x) or (time, y, x)")
    return names


def _times(ds: xr.Dataset, name: str, path: Path) -> pd.DatetimeIndex:
    if "time" in ds.coords:
        values = np.atleast_1d(ds["time"].values)
    else:
        text = next(
            (src.attrs[a] for src in (ds[name], ds) for a in _TIME_ATTRS if src.attrs.get(a)), None
        )
        if text is None:
            raise InputError(f"{path} has no time: no 'time' coordinate and no start_time attribute")
        values = [str(text)]
    try:
        times = pd.DatetimeIndex(pd.to_datetime(values))
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: cannot read its time {values!r} ({err})") from None
    return utc_naive(times)


def _source_grid(ds: xr.Dataset, names: list[str], path: Path) -> tuple[Grid, xr.Dataset]:
    """The grid of the channels, with rows flipped north-up when the file stores them south-up."""
    if "x" not in ds.coords or "y" not in ds.coords:
        raise InputError(f"{path} has no projected x/y coordinates (save an area-based satpy Scene)")
    if ds.sizes["y"] > 1 and ds["y"].values[1] > ds["y"].values[0]:
        ds = ds.isel(y=slice(None, None, -1))
    mapping = ds[names[0]].attrs.get("grid_mapping") or ds[names[0]].encoding.get("grid_mapping")
    keep = names + ([mapping] if mapping in ds.data_vars else [])
    try:
        return Grid.from_dataset(ds[keep]), ds
    except DatasetError as err:
        raise DatasetError(f"{path}: {err}") from None


def _line_times(ds: xr.Dataset, channel: str, frames: int) -> np.ndarray | None:
    """``(time, y)`` line acquisition times (datetime64[ns]) of a file, or None when it has none."""
    for name in (f"{channel}_acq_time", "acq_time"):
        if name in ds.coords and np.issubdtype(ds[name].dtype, np.datetime64):
            values = ds[name].transpose(..., "y").values.astype("datetime64[ns]")
            if ds[name].dims == ("y",):
                return np.broadcast_to(values, (frames, values.size))
            if ds[name].dims == ("time", "y"):
                return values
    return None


def _read_file(path: Path, wanted: list[str] | None) -> _CfContent:
    """Times, ``(time, channel, y, x)`` BT (K, channels in SEVIRI order), grid, channels, platform,
    line times."""
    try:
        return _read_open_file(path, wanted)
    except (OSError, RuntimeError) as err:  # damaged data inside a readable header
        raise InputError(f"{path} is a damaged CF NetCDF/Zarr file ({str(err).splitlines()[0]})") from None


def _read_open_file(path: Path, wanted: list[str] | None) -> _CfContent:
    with open_cf(path) as ds:
        present = _channel_names(ds, path)
        if wanted is not None:
            lacking = [c for c in wanted if c not in present]
            if lacking:
                raise InputError(f"{path.name} lacks channel(s) {', '.join(lacking)}")
        channels = [c for c in SEVIRI_CHANNELS if c in (wanted if wanted is not None else present)]
        source, ds = _source_grid(ds, channels, path)
        times = _times(ds, channels[0], path)
        stack = np.stack(
            [np.asarray(ds[c].transpose(..., "y", "x").values, dtype="float32").reshape(-1, *source.shape)
             for c in channels],
            axis=1,
        )
        platform = str(ds[channels[0]].attrs.get("platform_name", ""))
        line_times = _line_times(ds, channels[0], times.size)
    if stack.shape[0] != times.size:
        raise InputError(f"{path}: {stack.shape[0]} frames but {times.size} times")
    return _CfContent(times, stack, source, channels, platform, line_times)


@dataclass(frozen=True)
class _CfContent:
    times: pd.DatetimeIndex
    stack: np.ndarray
    grid: Grid
    channels: list[str]
    platform: str
    line_times: np.ndarray | None


def file_format(path: Path) -> str:
    """The format of a SEVIRI file, told from its name (EUMETSAT's naming); ``cf`` for any other."""
    name = Path(path).name
    if name.endswith(".nat") or "-SEVI-MSG15-" in name:
        return "seviri_l1b_native"
    if name.startswith("H-000-MSG"):
        return "seviri_l1b_hrit"
    if name.startswith("W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY"):
        return "seviri_l1b_nc"
    return "cf"


def _format_of(files: list[Path], requested: str) -> str:
    """The one format of all ``files`` (``requested``, or told from their names)."""
    name = FORMAT_NAMES.get(str(requested).lower())
    if name is None:
        raise InputError(f"unknown SEVIRI file format {requested!r}; choose one of {', '.join(FORMAT_NAMES)}")
    if name != "auto":
        return name
    found = {}
    for path in files:
        found.setdefault(file_format(path), path)
    if len(found) > 1:
        kinds = ", ".join(f"{FORMATS[k]} ({p.name})" for k, p in found.items())
        raise InputError(f"the files are of several formats: {kinds}; read each format separately")
    return next(iter(found))


#: Input formats: name -> what the files are.
FORMATS: dict[str, str] = {"cf": "SEVIRI CF NetCDF/Zarr files", **L1B_READERS}
#: Names accepted for ``file_format`` (``--format``).
FORMAT_NAMES: dict[str, str] = {"auto": "auto", "cf": "cf", "native": "seviri_l1b_native",
                                "hrit": "seviri_l1b_hrit", "nc": "seviri_l1b_nc",
                                **{name: name for name in L1B_READERS}}


class SeviriFramesLeftOutWarning(UserWarning):
    """Some SEVIRI frames were left out: not on a radar time within the tolerance, or a closer one was."""


def _row_over(grid: Grid, centre: tuple[float, float]) -> int | None:
    """Row of ``grid`` over ``centre`` (lon, lat), or None when it is off the grid."""
    import pyproj

    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True)
    _, y = to_grid.transform(*centre)
    row = (grid.y0 - y) / grid.dy
    return round(row) if np.isfinite(row) and -0.5 <= row <= grid.ny - 0.5 else None


def _grid_centre(grid: Grid) -> tuple[float, float]:
    """(lon, lat) of the centre pixel of ``grid``, degrees."""
    import pyproj

    to_geo = pyproj.Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(grid.x[grid.nx // 2], grid.y[grid.ny // 2])
    return float(lon), float(lat)


def _cf_frames(
    files: list[Path], target: Grid | None, wanted: list[str] | None, method: Method, progress: bool,
    skipped: list[SkippedFile],
) -> tuple[list[SeviriFrame], list[str], Grid, str, list[Path], str]:
    """Frames of CF NetCDF/Zarr files: frames, channels, grid, platform, files read, resampling."""
    regridders: list[Regridder] = []
    frames: list[SeviriFrame] = []
    channel_order: list[str] | None = None
    platform = ""
    read_files: list[Path] = []
    with progress_bar(files, "SEVIRI", progress) as bar:
        for path in bar:
            content = read_or_skip(partial(_read_file, wanted=wanted), path, len(files) > 1, skipped)
            if content is None:
                continue
            read_files.append(path)
            if channel_order is None:
                channel_order, platform = content.channels, content.platform
                target = target or content.grid  # without a target, the first file's grid
            elif content.channels != channel_order:
                raise InputError(
                    f"{path.name} has channels {', '.join(content.channels)}, "
                    f"the first file {', '.join(channel_order)}"
                )
            regridder = next((r for r in regridders if r.source.matches(content.grid)), None)
            if regridder is None:
                regridder = Regridder(content.grid, target, method)
                regridders.append(regridder)
            regridded = regridder.apply(content.stack).astype("float32")
            centre = _grid_centre(target)
            row = _row_over(content.grid, centre) if content.line_times is not None else None
            for i, t in enumerate(content.times):
                scan, rule = t, "the file's time (no line acquisition times)"
                if row is not None and not np.isnat(content.line_times[i, row]):
                    scan = pd.Timestamp(content.line_times[i, row])
                    rule = (f"acquisition time of the line over the grid centre "
                            f"({centre[1]:.2f} N, {centre[0]:.2f} E)")
                label = f"{path.name}[{t:%H:%M}]"
                frames.append(SeviriFrame(pd.Timestamp(scan), t, regridded[i], label, rule))
    kinds = "/".join(sorted({r.kind for r in regridders}))
    grid = regridders[0].target if regridders else target
    return frames, channel_order or [], grid, platform, read_files, f"qpe Regridder {kinds}"


def _l1b_frames(
    files: list[Path], reader: str, target: Grid | None, wanted: list[str] | None, method: Method,
    cloud_top: CloudTopRule | None, cth_product: seviri_l1b.CloudTopProduct | None, progress: bool,
    skipped: list[SkippedFile],
) -> tuple[list[SeviriFrame], list[str], Grid, str, list[Path], str, list[dict]]:
    """Frames of level-1.5 files through satpy: frames, channels, grid, platform, files read,
    resampling, per-frame information (parallax)."""
    if method not in ("nearest", "bilinear"):
        raise InputError(f"resampling {method!r} is for CF files; level-1.5 files take nearest or bilinear")
    slots, unknown = seviri_l1b.group_slots(files, reader)
    for path in unknown:
        skipped.append(SkippedFile(path, f"{path.name} is not named as {FORMATS[reader]} are"))
    if not slots:
        raise InputError(f"none of the {len(files)} files is named as {FORMATS[reader]} are "
                         f"(first: {files[0].name})")
    resampler = seviri_l1b.AreaResampler(target, method) if target else None
    frames: list[SeviriFrame] = []
    infos: list[dict] = []
    channel_order: list[str] | None = None
    grid, platforms, read_files = target, [], []
    with progress_bar(slots, "SEVIRI", progress) as bar:
        for slot in bar:
            read = partial(seviri_l1b.read_slot, reader=reader, channels=channel_order or wanted,
                           resampler=resampler, cloud_top=cloud_top, method=method, cth_product=cth_product)
            content = read_or_skip(read, slot, len(slots) > 1 or bool(unknown), skipped)
            if content is None:
                continue
            frame, channels, grid, info = content
            if resampler is None:  # without a target, later slots go onto the first one's grid
                resampler = seviri_l1b.AreaResampler(grid, method)
            channel_order = channel_order or channels
            frames.append(frame)
            infos.append(info)
            platforms.append(info["platform"])
            read_files.extend(slot)
    resampling = resampler.describe() if resampler is not None else "none"
    if target is None:
        resampling = f"none: the first slot's own grid (later slots on other grids by {resampling})"
    if cloud_top is not None:
        resampling = f"{method} sampling at the parallax-corrected positions (pyresample area geometry)"
    platform = ", ".join(dict.fromkeys(p for p in platforms if p))
    return frames, channel_order or [], grid, platform, read_files, resampling, infos


def read_seviri(
    paths: PathsLike,
    grid: Grid | None = None,
    *,
    region: str | None = None,
    pixel_km: float = 2.0,
    channels: list[str] | tuple[str, ...] | None = None,
    method: Method = "bilinear",
    file_format: str = "auto",
    parallax: bool = False,
    cloud_top: CloudTopRule | None = None,
    cth_files: PathsLike | None = None,
    tolerance_min: float = DEFAULT_TOLERANCE / pd.Timedelta(minutes=1),
    progress: bool = False,
) -> xr.Dataset:
    """Read SEVIRI brightness temperatures into ``ir`` on 15-minute radar times.

    Files may hold one time or several and may be given in any order: the frames are sorted by time.

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths: level-1.5 files (native ``*.nat``; HRIT segments with their
        prologue and epilogue; EUMETSAT NetCDF) or CF NetCDF files / Zarr stores.
    grid : Grid, optional
        Target grid. Give ``grid`` or ``region``; with neither, the files' own grid is kept.
    region : str, optional
        Named region (``"france"``, ``"europe"``) at ``pixel_km``.
    pixel_km : float
        Pixel size of the region grid, km.
    channels : sequence of str, optional
        Channels to keep; by default every SEVIRI IR channel of the files (all files must hold the same).
    method : {"bilinear", "nearest", "auto"}
        Resampling onto the target: pyresample's for level-1.5 files (nearest or bilinear); qpe's
        :class:`~qpe.data.regrid.Regridder` for CF files (``auto``: exact crop or block mean when the
        grids allow).
    file_format : str
        ``auto`` (told from the file names), ``native``, ``hrit``, ``nc`` or ``cf`` (or the satpy
        reader names ``seviri_l1b_native``, ``seviri_l1b_hrit``, ``seviri_l1b_nc``).
    parallax : bool
        Correct the parallax of cloud tops (level-1.5 files; :mod:`qpe.data.parallax`).
    cloud_top : CloudTopRule, optional
        How cloud-top heights follow from IR_108 (default :class:`~qpe.data.parallax.CloudTopRule`), for
        the slots without a cloud-top-height product.
    cth_files : str, path-like or sequence, optional
        NWC SAF GEO CTTH files (``S_NWC_CTTH_*Z.nc``, not ``_PLAX``): their cloud-top altitude is used
        for parallax correction of the slot with the same nominal time.
    tolerance_min : float
        Largest distance of a scan time from the 15-minute radar time it is put on, min (0 .. 7.5).
    progress : bool
        Show a progress bar over files (slots).

    Returns
    -------
    xarray.Dataset
        ``ir(time, channel, y, x)`` in K, channels in SEVIRI order (``WV_062`` ... ``IR_134``), NaN
        where the target lies outside the source; ``time`` on the 15-minute radar times, with
        coordinates ``scan_time(time)`` and ``slot_time(time)``; the reading choices in the attributes.

    Raises
    ------
    InputError
        Missing files, unreadable files, files of several formats, no IR channel, no time, channels
        that differ between files, two frames with the same time, no frame within the tolerance, satpy
        missing for level-1.5 files.
    DatasetError
        A channel that is not a brightness temperature in K (e.g. degrees Celsius, radiances), or a
        grid that is not regular and projected.
    """
    files = resolve_paths(paths, "SEVIRI files")
    fmt = _format_of(files, file_format)
    target = resolve_target(grid, region, pixel_km)
    wanted = list(channels) if channels is not None else None
    unknown = sorted(set(wanted or ()) - set(SEVIRI_CHANNELS))
    if unknown:
        raise InputError(f"unknown channel(s) {', '.join(unknown)}; SEVIRI IR: {', '.join(SEVIRI_CHANNELS)}")
    if not (isinstance(tolerance_min, (int, float)) and np.isfinite(tolerance_min)):
        raise InputError(f"time tolerance must be a number of minutes, got {tolerance_min!r}")
    tolerance = check_tolerance(pd.Timedelta(minutes=tolerance_min))
    if parallax and fmt == "cf":
        raise InputError("parallax correction needs the level-1.5 files (native, HRIT or EUMETSAT NetCDF): "
                         "CF files carry no satellite position")
    cloud_top = (cloud_top or CloudTopRule()) if parallax else None
    if cth_files is not None and not parallax:
        raise InputError("a cloud-top-height product is for parallax correction: ask for parallax too")
    cth_product = (seviri_l1b.CloudTopProduct(resolve_paths(cth_files, "NWC SAF CTTH files"))
                   if cth_files is not None else None)
    skipped: list[SkippedFile] = []
    infos: list[dict] = []
    if fmt == "cf":
        frames, channel_order, target_grid, platform, read_files, resampling = _cf_frames(
            files, target, wanted, method, progress, skipped)
        reader = "cf (qpe, no satpy)"
    else:
        version = seviri_l1b.satpy_version()
        frames, channel_order, target_grid, platform, read_files, resampling, infos = _l1b_frames(
            files, fmt, target, wanted, method, cloud_top, cth_product, progress, skipped)
        reader = f"satpy {version} {fmt}"
    skipped_note = report_skipped(skipped, len(files), FORMATS[fmt])
    labels = [f.label for f in frames]
    check_time_order([f.scan_time for f in frames], labels)
    aligned = align_scans(pd.DatetimeIndex([f.scan_time for f in frames]), labels, STEP, tolerance)
    if aligned.kept.size == 0:
        raise InputError(f"no SEVIRI frame is within {tolerance_min:g} min of a 15-minute time: "
                         f"{aligned.left_out[0]}")
    if aligned.left_out:
        warnings.warn(f"left out {len(aligned.left_out)} of {len(frames)} SEVIRI frames: "
                      f"{'; '.join(aligned.left_out)}", SeviriFramesLeftOutWarning, stacklevel=2)
    kept = [frames[i] for i in aligned.kept]
    attrs = {
        "source": f"SEVIRI brightness temperature ({FORMATS[fmt]}{', ' + platform if platform else ''}), "
                  f"{len(read_files)} file(s), {len(kept)} frame(s)",
        "source_files": file_list(read_files),
        "seviri_reader": reader,
        "seviri_resampling": resampling,
        "seviri_parallax": _parallax_note(cloud_top, infos),
        "seviri_scan_time_rule": "; ".join(dict.fromkeys(f.scan_time_rule for f in kept)),
        "seviri_time_step_min": STEP / pd.Timedelta(minutes=1),
        "seviri_time_tolerance_min": tolerance / pd.Timedelta(minutes=1),
        "seviri_time_rule": "time = the 15-minute radar time nearest the scan time, within the tolerance; "
                            "the closest scan wins a shared time",
        "history": append_history(
            None,
            f"read {len(kept)} SEVIRI frames ({', '.join(channel_order)}) from {FORMATS[fmt]} with {reader}, "
            f"resampled by {resampling} onto {target_grid.describe()}",
        ),
    }
    if cloud_top is not None:
        attrs["seviri_cloud_top_rule"] = cloud_top.describe()
    if aligned.left_out:
        attrs["seviri_frames_left_out"] = "; ".join(aligned.left_out)
    if skipped_note:
        attrs["skipped_files"] = skipped_note
    ds = make_paired_dataset(
        target_grid, aligned.times, ir=np.stack([f.values for f in kept]), channels=channel_order,
        attrs=attrs,
    )
    return ds.assign_coords(
        scan_time=("time", np.array([f.scan_time for f in kept], dtype="datetime64[ns]"),
                   {"long_name": "SEVIRI scan time over the grid centre",
                    "rule": attrs["seviri_scan_time_rule"]}),
        slot_time=("time", np.array([f.slot_time for f in kept], dtype="datetime64[ns]"),
                   {"long_name": "nominal start of the SEVIRI repeat cycle"}),
    )


def _parallax_note(cloud_top: CloudTopRule | None, infos: list[dict]) -> str:
    if cloud_top is None:
        return "off"
    if not infos:
        return "on"
    surfaces = [i["surface_k"] for i in infos if "surface_k" in i]
    hidden = max(i["hidden_fraction"] for i in infos)
    product = sum(i["cth_source"] == "product" for i in infos)
    heights = []
    if product:
        name = f"{seviri_l1b.CTH_READER} {seviri_l1b.CTH_DATASET}"
        heights.append(f"from the cloud-top-height product ({name}) for {product} slot(s)")
    if surfaces:
        surface = (f"{min(surfaces):.1f}..{max(surfaces):.1f} K" if cloud_top.surface_k is None
                   else f"{cloud_top.surface_k:g} K")
        heights.append(
            f"by seviri_cloud_top_rule for {len(surfaces)} slot(s) (surface temperature {surface})")
    return ("on: satpy.modifiers.parallax.ParallaxCorrection on the target grid, heights "
            f"{' and '.join(heights)}; ground hidden behind clouds (up to {100 * hidden:.2f} % of the "
            "pixels) takes the first visible pixel away from the satellite")
