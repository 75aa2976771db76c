"""Rain estimates made elsewhere, read from a folder of NetCDF / Zarr files and scored like a model.

A team that trained a model outside qpe writes its fields into one folder; :class:`ExternalEstimates`
answers ``estimate(ds, times, ...)`` like a checkpoint (:class:`qpe.inference.estimators.Estimator`), so
``qpe evaluate --estimates DIR`` and the dashboard score it exactly like one. One folder is one model,
named after the folder.

The layout (what ``qpe estimate --out`` writes is already in it)
    * files ``*.nc`` / ``*.nc4`` (NetCDF) or ``*.zarr`` (Zarr stores) directly in the folder; other and
      hidden files, and paired IR/radar datasets, are ignored. Each holds some times; a time may be in
      only one file;
    * a variable ``rain`` (or the file's only data variable) with dims ``(member, time, y, x)`` or
      ``(time, y, x)`` (one member: a deterministic model);
    * ``units``: a rain rate in mm/h (:data:`qpe.data.paired.RAIN_UNITS`), ``kg m-2 s-1`` (x 3600) or an
      accumulation over a *stated* period, ``mm`` with ``accumulation_period = "15 min"`` (x 4): the rules
      are the table :data:`UNIT_FACTORS` and :func:`rain_rate_factor`; anything else is refused;
    * ``x``/``y`` in metres with a CF grid mapping (the ``crs`` variable qpe writes). On the grid of the
      paired dataset values are taken as they are; on another grid they are refused unless a regridding
      method is stated (``regrid="nearest"``, ``"bilinear"``, ``"mean"`` or ``"crop"``:
      :class:`qpe.data.regrid.Regridder`, as the CRR product is brought in);
    * ``time``: valid times (UTC). Only times present are scored; an evaluation reports the others.

Values
    NaN means "no estimate" at that pixel: it is left out of every score (with the common mask of an
    evaluation, for every model). Negative, infinite or implausible values (above
    :data:`qpe.data.paired.MAX_RAIN_RATE` mm/h after conversion) are refused with one line naming the
    file and time: a rain rate cannot be negative, and clipping round-off silently would change the
    scores of what was handed in. Fields are returned as float32, the type of model estimates.

Files are opened lazily: the folder's times are read from each file's ``time`` coordinate once, and an
estimate loads only the fields of the times asked for. NetCDF is read under
:data:`qpe.netcdf.NETCDF_LOCK` (evaluation tasks run in threads); Zarr stores are read in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe import __version__
from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.paired import MAX_RAIN_RATE, RAIN_UNITS, describe_times, rain_attrs
from qpe.data.regrid import Regridder
from qpe.data.times import utc_naive
from qpe.errors import DatasetError, InputError, MissingInputError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig, find_times
from qpe.netcdf import reading_lock

#: File name endings read from an estimates folder: NetCDF files and Zarr stores (folders).
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
ZARR_SUFFIX = ".zarr"
#: Family of external estimates in scores and figures.
EXTERNAL_FAMILY = "external"
#: Regridding methods that may be stated for estimates on another grid (:class:`~qpe.data.regrid.Regridder`).
REGRID_METHODS = ("nearest", "bilinear", "mean", "crop")

#: Factor from each accepted unit to mm/h. A rate in mm/h is taken as it is; a mass flux in kg m-2 s-1
#: (1 kg m-2 of water is 1 mm) is x 3600. Accumulations are in :data:`ACCUMULATION_FACTORS`.
UNIT_FACTORS: dict[str, float] = {
    **dict.fromkeys(RAIN_UNITS, 1.0),
    "kg m-2 s-1": 3600.0,
    "kg m-2 s**-1": 3600.0,
    "mm s-1": 3600.0,
}
#: Units of an accumulation and the ``accumulation_period`` values that state its period, with the
#: factor from that accumulation to a rate in mm/h. Without a stated period an accumulation is refused.
ACCUMULATION_UNITS = ("mm", "kg m-2")
ACCUMULATION_FACTORS: dict[str, float] = {
    "15 min": 4.0, "15min": 4.0, "15 minutes": 4.0, "PT15M": 4.0,
}


def rain_rate_factor(attrs: dict, where: str) -> float:
    """The factor that turns a variable with ``attrs`` into a rain rate in mm/h.

    Parameters
    ----------
    attrs : dict
        The variable's attributes: ``units``, and ``accumulation_period`` for an accumulation.
    where : str
        The file and variable, for the message.

    Raises
    ------
    DatasetError
        No units, an unknown unit, or an accumulation without a stated period (one line each).
    """
    units = attrs.get("units")
    if units is None:
        raise DatasetError(f"{where} has no 'units' attribute; expected a rain rate in mm/h")
    units = str(units).strip()
    if units in UNIT_FACTORS:
        return UNIT_FACTORS[units]
    if units in ACCUMULATION_UNITS:
        period = str(attrs.get("accumulation_period", "")).strip()
        if period in ACCUMULATION_FACTORS:
            return ACCUMULATION_FACTORS[period]
        stated = f"accumulation_period {period!r}" if period else "no accumulation_period attribute"
        raise DatasetError(
            f"{where} is in {units!r} with {stated}: an accumulation is read only over a stated period "
            f"({', '.join(map(repr, ACCUMULATION_FACTORS))}); or give a rain rate in mm/h"
        )
    raise DatasetError(
        f"{where} is in {units!r}; expected a rain rate in mm/h (or kg m-2 s-1, or mm with "
        "accumulation_period = '15 min')"
    )


@dataclass(frozen=True)
class _FileLayout:
    """What one file holds, read from its metadata: variable, times, members, unit factor, grid."""

    path: Path
    variable: str
    times: pd.DatetimeIndex
    members: int
    factor: float
    grid: Grid


def _is_estimate_file(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.suffix == ZARR_SUFFIX:
        return path.is_dir()
    return path.suffix in NETCDF_SUFFIXES and path.is_file()


def _is_paired_dataset(path: Path) -> bool:
    """Whether a file is a paired IR/radar dataset (it holds ``ir`` or the layout's version attribute): such a
    file is data, not estimates. False when it does not open (the reader then says why)."""
    try:
        with reading_lock(path):
            ds = _open(path)
            try:
                return "ir" in ds.data_vars or "qpe_layout_version" in ds.attrs
            finally:
                ds.close()
    except DatasetError:
        return False


def estimate_files(folder: str | os.PathLike) -> list[Path]:
    """The estimate files directly in ``folder``, sorted: NetCDF files and Zarr stores, not hidden, that
    are not paired datasets (a models folder may hold the data too)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.suffix == ZARR_SUFFIX:
        return []
    return sorted(p for p in folder.iterdir() if _is_estimate_file(p) and not _is_paired_dataset(p))


def holds_estimates(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` directly holds estimate files, i.e. is a model (:func:`estimate_files`)."""
    return bool(estimate_files(folder))


def find_estimate_folders(root: str | os.PathLike) -> list[Path]:
    """The folders at or below ``root`` that hold estimate files, sorted; Zarr stores and hidden folders
    are not searched."""
    found = []
    for here, subfolders, _ in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and not d.endswith(ZARR_SUFFIX))
        if holds_estimates(here):
            found.append(Path(here))
    return sorted(found)


def _open(path: Path) -> xr.Dataset:
    """The file, lazily; one clear line when it is not a readable NetCDF file or Zarr store."""
    try:
        if path.suffix == ZARR_SUFFIX:
            return xr.open_zarr(path, chunks=None)
        return xr.open_dataset(path, engine="netcdf4", cache=False)
    except Exception as err:  # the backends raise many types for a damaged file; one line names it
        kind = "Zarr store" if path.suffix == ZARR_SUFFIX else "NetCDF file"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(f"{path} is not a readable {kind} ({reason})") from err


def _rain_variable(ds: xr.Dataset, path: Path) -> str:
    if "rain" in ds.data_vars:
        return "rain"
    names = [str(n) for n, v in ds.data_vars.items() if "grid_mapping_name" not in v.attrs and n != GRID_MAPPING_NAME]
    if len(names) == 1:
        return names[0]
    raise DatasetError(
        f"{path} has no variable 'rain' and {len(names)} data variables ({', '.join(names) or 'none'}): "
        "name the rain rate 'rain'"
    )


def _read_layout(path: Path) -> _FileLayout:
    with reading_lock(path):
        ds = _open(path)
        try:
            name = _rain_variable(ds, path)
            da = ds[name]
            where = f"{path}: variable {name!r}"
            if set(da.dims) not in ({"member", "time", "y", "x"}, {"time", "y", "x"}):
                raise DatasetError(
                    f"{where} has dims {da.dims}; expected (member, time, y, x) or (time, y, x)"
                )
            factor = rain_rate_factor(dict(da.attrs), where)
            try:
                times = utc_naive(pd.DatetimeIndex(ds["time"].values))
            except (TypeError, ValueError) as err:
                raise DatasetError(f"{path}: its 'time' coordinate is not a date and time ({err})") from None
            if times.has_duplicates:
                raise DatasetError(f"{path} holds time {times[times.duplicated()][0]:%Y-%m-%dT%H:%M} twice")
            try:
                grid = Grid.from_dataset(ds)
            except DatasetError as err:
                raise DatasetError(f"{path}: {err}") from None
            members = int(da.sizes.get("member", 1))
        finally:
            ds.close()
    return _FileLayout(path, name, times, members, factor, grid)


class ExternalEstimates:
    """A folder of rain estimates made elsewhere, as an estimator (see the module notes).

    Parameters
    ----------
    folder : path-like
        Folder of NetCDF files / Zarr stores in the layout of the module notes.
    name : str, optional
        Model name in scores and figures; the folder's name by default.
    regrid : {"nearest", "bilinear", "mean", "crop"}, optional
        How estimates on another grid than the paired dataset's are brought onto it; None (the default)
        refuses another grid.

    Raises
    ------
    InputError
        The folder is missing or holds no estimate file, or ``regrid`` is not a method.
    DatasetError
        A file is unreadable, or its variable, dims, units, times or grid do not follow the layout;
        files disagree on members or grid; a time is in two files.
    """

    family = EXTERNAL_FAMILY
    frames = 1  # no IR is read: any time of the data may be scored

    def __init__(self, folder: str | os.PathLike, name: str | None = None, regrid: str | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MissingInputError(f"estimates folder {self.folder} does not exist (or is not a folder)")
        if regrid is not None and regrid not in REGRID_METHODS:
            raise InputError(f"unknown regridding method {regrid!r}; choose one of {', '.join(REGRID_METHODS)}")
        self.files = estimate_files(self.folder)
        if not self.files:
            raise InputError(
                f"no estimate files in {self.folder}: expected NetCDF ({', '.join(NETCDF_SUFFIXES)}) files or "
                f"Zarr ({ZARR_SUFFIX}) stores holding rain (member, time, y, x) in mm/h"
            )
        self.name = name or self.folder.resolve().name
        self.regrid = regrid
        self._layouts = [_read_layout(p) for p in self.files]
        self._check_files_agree()
        owner = np.concatenate([np.full(lay.times.size, i) for i, lay in enumerate(self._layouts)])
        times = pd.DatetimeIndex(np.concatenate([lay.times.values for lay in self._layouts]))
        if times.has_duplicates:
            first = times[times.duplicated()][0]
            holders = [lay.path.name for lay in self._layouts if first in lay.times]
            raise DatasetError(f"{self.folder}: time {first:%Y-%m-%dT%H:%M} is in {' and '.join(holders)}")
        order = np.argsort(times.values, kind="stable")
        self.times = times[order]
        self._owner = owner[order]

    def _check_files_agree(self) -> None:
        first = self._layouts[0]
        for lay in self._layouts[1:]:
            if lay.members != first.members:
                raise DatasetError(
                    f"{self.folder}: {first.path.name} holds {first.members} member(s) but {lay.path.name} "
                    f"{lay.members}: every file of a model must hold the same members"
                )
            if not lay.grid.matches(first.grid):
                raise DatasetError(
                    f"{self.folder}: {lay.path.name} is on another grid than {first.path.name} "
                    f"({lay.grid.describe()} vs {first.grid.describe()})"
                )

    def __repr__(self) -> str:
        return f"ExternalEstimates({self.name!r}, {len(self.files)} files, {self.times.size} times)"

    @property
    def source(self) -> str:
        return str(self.folder)

    @property
    def members(self) -> int:
        """Members of every field (1: deterministic)."""
        return self._layouts[0].members

    @property
    def is_ensemble(self) -> bool:
        return self.members > 1

    @property
    def grid(self) -> Grid:
        """The grid of the files."""
        return self._layouts[0].grid

    def describe_times(self) -> str:
        """The folder's times, as one phrase (for messages)."""
        return f"{describe_times(self.times)} ({self.times.size} times in {len(self.files)} files)"

    def available(self, times: Sequence | pd.DatetimeIndex) -> np.ndarray:
        """(n,) bool: which of ``times`` the folder holds."""
        return utc_naive(pd.DatetimeIndex(pd.to_datetime(list(times)))).isin(self.times)

    def _regridder(self, target: Grid) -> Regridder | None:
        """None on the dataset's grid; the stated method's regridder on another; an error without one."""
        if self.grid.matches(target):
            return None
        if self.regrid is None:
            raise DatasetError(
                f"estimates {self.name!r} are on another grid ({self.grid.describe()}) than the data "
                f"({target.describe()}): write them on the data's grid, or state a regridding method "
                f"({', '.join(REGRID_METHODS)})"
            )
        return Regridder(self.grid, target, self.regrid)

    def check(
        self, ds: xr.Dataset, times: Sequence | pd.DatetimeIndex = (), config: EstimateConfig | None = None
    ) -> None:
        """Raise unless the files fit the grid of ``ds`` (or a regridding method is stated) and hold every
        one of ``times`` (``config`` does not apply to fields read from files)."""
        self._regridder(Grid.from_dataset(ds))
        wanted = list(times)
        if wanted:
            have = self.available(wanted)
            if not have.all():
                missing = pd.DatetimeIndex(pd.to_datetime(wanted))[~have]
                raise DatasetError(
                    f"estimates {self.name!r} lack {missing.size} of the {len(wanted)} time(s) asked for "
                    f"({describe_times(missing)}); the folder holds {self.describe_times()}"
                )

    def _read(self, lay: _FileLayout, times: pd.DatetimeIndex) -> np.ndarray:
        """(member, time, y, x) float64 mm/h of ``times`` from one file, on the file's grid, checked."""
        positions = lay.times.get_indexer(times)
        with reading_lock(lay.path):
            ds = _open(lay.path)
            try:
                da = ds[lay.variable].isel(time=positions)
                if "member" not in da.dims:
                    da = da.expand_dims("member")
                values = np.asarray(da.transpose("member", "time", "y", "x").values, dtype="float64")
            except DatasetError:
                raise
            except Exception as err:  # a damaged chunk surfaces only when read
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise DatasetError(f"{lay.path}: cannot read {lay.variable!r} ({reason})") from err
            finally:
                ds.close()
        return values * lay.factor if lay.factor != 1.0 else values

    def _check_values(self, values: np.ndarray, path: Path, times: pd.DatetimeIndex) -> None:
        for i, when in enumerate(times):
            field = values[:, i]
            finite = field[np.isfinite(field)]
            bad = np.isinf(field).any()
            if bad or (finite.size and (finite.min() < 0 or finite.max() > MAX_RAIN_RATE)):
                span = f"[{finite.min():g}, {finite.max():g}] mm/h" if finite.size else "no finite value"
                what = "infinite values" if bad else f"values {span}"
                raise DatasetError(
                    f"{path} at {when:%Y-%m-%dT%H:%M}: {what}; rain rates must lie in [0, {MAX_RAIN_RATE:g}] "
                    "mm/h (NaN for no estimate): clip round-off below 0 or check the units"
                )

    def estimate(
        self,
        ds: xr.Dataset,
        times: Sequence | pd.DatetimeIndex,
        config: EstimateConfig = EstimateConfig(),
        *,
        cache: EstimateCache | None = None,
        progress: bool = True,
    ) -> xr.Dataset:
        """The folder's fields at ``times`` on the grid of ``ds``, in the layout of model estimates.

        Parameters
        ----------
        ds : xarray.Dataset
            Paired dataset; only its grid and times are used.
        times : sequence of datetime-like
            Valid times (UTC), each in ``ds`` and in the folder.
        config, cache, progress
            Accepted for the common call shape; they do not apply to fields read from files.

        Returns
        -------
        xarray.Dataset
            ``rain (member, time, y, x)`` float32 in mm/h, with ``model``, ``family = "external"`` and the
            files read in ``attrs``.
        """
        positions = find_times(ds, times)
        valid_times = pd.DatetimeIndex(ds["time"].values[positions])
        self.check(ds, valid_times)
        regridder = self._regridder(Grid.from_dataset(ds))
        owners = self._owner[self.times.get_indexer(valid_times)]
        fields = np.empty((self.members, valid_times.size, ds.sizes["y"], ds.sizes["x"]), dtype="float32")
        for owner in np.unique(owners):
            lay = self._layouts[owner]
            chosen = np.flatnonzero(owners == owner)
            values = self._read(lay, valid_times[chosen])
            self._check_values(values, lay.path, valid_times[chosen])
            if regridder is not None:
                values = regridder.apply(values)
            fields[:, chosen] = values
        out = xr.Dataset(
            {"rain": (("member", "time", "y", "x"), fields,
                      {**rain_attrs(), "long_name": f"rain rate estimated by {self.name} (external)"})},
            coords={
                "member": np.arange(self.members),
                "time": valid_times.values,
                "y": ds["y"],
                "x": ds["x"],
                GRID_MAPPING_NAME: ds[GRID_MAPPING_NAME],
            },
        )
        read = sorted({self._layouts[o].path.name for o in np.unique(owners)})
        out.attrs.update({
            "model": self.name, "family": self.family, "checkpoint_sha256": "",
            "source_files": ", ".join(read), "regrid": regridder.kind if regridder is not None else "none",
            "members": self.members, "steps": -1, "sampler": "none", "seed": config.seed, "device": "cpu",
            "network_evaluations": 0, "qpe_version": __version__,
        })
        return out
