"""Reference rain products as estimators: NWC SAF CRR scored through the same call as a model.

:class:`CrrReference` answers ``estimate(ds, times, ...)`` like :func:`qpe.inference.engine.estimate`:
``rain (member, time, y, x)`` in mm/h on the grid of ``ds``, with one member. It picks the CRR file
whose nominal product time is each asked-for time, and regrids it onto the dataset's grid with the CRR
reader (:func:`qpe.data.readers.crr.read_crr`: nearest neighbour, NaN outside the CRR domain and where
CRR has no data). Regridded fields are cached on disk like model estimates, keyed by the CRR file's
content hash, the target grid and the time.

HDF5 (under netCDF4) is not thread-safe: CRR files are read under :data:`qpe.netcdf.NETCDF_LOCK`, the
one lock under which qpe touches NetCDF from threads (the estimate cache, evaluation tasks), so
estimates may run in threads (the Dask threaded scheduler).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr

from qpe import __version__
from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.paired import rain_attrs
from qpe.data.readers.crr import read_crr
from qpe.data.readers.inputs import PathsLike, check_time_order, resolve_paths
from qpe.data.times import parse_utc_time
from qpe.errors import InputError
from qpe.inference.cache import EstimateCache, cache_key
from qpe.inference.engine import EstimateConfig, find_times
from qpe.models.checkpoint import sha256_file
from qpe.netcdf import NETCDF_LOCK

#: Model name of the CRR reference in scores and figures.
CRR_NAME = "nwcsaf_crr"


def crr_nominal_time(path: str | os.PathLike) -> pd.Timestamp:
    """Nominal product time (UTC, naive) of a CRR file, from its attributes only.

    Raises
    ------
    InputError
        Not NetCDF, or no usable ``nominal_product_time`` attribute.
    """
    try:
        with NETCDF_LOCK, netCDF4.Dataset(path) as nc:
            text = nc.getncattr("nominal_product_time")
    except OSError as err:
        raise InputError(f"{path} is not a NetCDF file ({err})") from err
    except AttributeError:
        raise InputError(f"{path} is not an NWC SAF CRR file (no nominal_product_time attribute)") from None
    return parse_utc_time(text, f"{path}: nominal_product_time")


class CrrReference:
    """NWC SAF CRR files as an estimator with one member (see the module notes).

    Parameters
    ----------
    paths : str, path-like or sequence
        Glob pattern(s) or paths of CRR NetCDF files.
    name : str
        Model name in scores and figures.
    """

    family = "reference"
    is_ensemble = False
    frames = 1  # the valid time only

    def __init__(self, paths: PathsLike, name: str = CRR_NAME) -> None:
        self.files = resolve_paths(paths, "NWC SAF CRR files")
        self.name = name
        self._times: pd.DatetimeIndex | None = None

    def __repr__(self) -> str:
        return f"CrrReference({self.name!r}, {len(self.files)} files)"

    @property
    def times(self) -> pd.DatetimeIndex:
        """Nominal times of the files, in file order (read once)."""
        if self._times is None:
            times = [crr_nominal_time(p) for p in self.files]
            check_time_order(times, [p.name for p in self.files])  # one file per time
            self._times = pd.DatetimeIndex(times)
        return self._times

    def describe_times(self) -> str:
        ordered = self.times.sort_values()
        return f"{ordered[0]:%Y-%m-%dT%H:%M} .. {ordered[-1]:%Y-%m-%dT%H:%M}, {ordered.size} files"

    def files_for(self, times: Sequence | pd.DatetimeIndex) -> list[Path]:
        """The file of each time; one clear error for the first time CRR does not have."""
        wanted = pd.DatetimeIndex(pd.to_datetime(list(times)))
        positions = self.times.get_indexer(wanted)
        if (positions < 0).any():
            first = wanted[positions < 0][0]
            raise InputError(
                f"NWC SAF CRR has no file for {first:%Y-%m-%dT%H:%M} (the CRR files cover "
                f"{self.describe_times()}): narrow the period or give more CRR files"
            )
        return [self.files[i] for i in positions]

    @property
    def source(self) -> str:
        folders = sorted({str(p.parent) for p in self.files})
        return f"{len(self.files)} NWC SAF CRR files in {', '.join(folders)}"

    def check(
        self, ds: xr.Dataset, times: Sequence | pd.DatetimeIndex = (), config: EstimateConfig | None = None
    ) -> None:
        """Raise unless every time has a CRR file (CRR fits any projected grid of ``ds``; ``config`` does
        not matter to a product read from files)."""
        Grid.from_dataset(ds)
        self.files_for(times)

    def estimate(
        self,
        ds: xr.Dataset,
        times: Sequence | pd.DatetimeIndex,
        config: EstimateConfig = EstimateConfig(),
        *,
        cache: EstimateCache | None = None,
        progress: bool = True,
    ) -> xr.Dataset:
        """CRR rain rate on the grid of ``ds`` at ``times``, in the layout of model estimates.

        Parameters
        ----------
        ds : xarray.Dataset
            Paired dataset; only its grid and times are used.
        times : sequence of datetime-like
            Valid times (UTC), each in ``ds`` and among the CRR files' nominal times.
        config : EstimateConfig
            Accepted for the common call shape; members, steps and seed do not apply (one member).
        cache : EstimateCache, optional
            Where regridded fields are cached.
        progress : bool
            Show a progress bar over times.

        Returns
        -------
        xarray.Dataset
            ``rain (member=1, time, y, x)`` in mm/h (NaN outside the CRR domain and where CRR has no
            data), with ``model``, ``family = "reference"`` and the CRR files in ``attrs``.
        """
        positions = find_times(ds, times)
        grid = Grid.from_dataset(ds)
        valid_times = ds["time"].values[positions]
        files = self.files_for(valid_times)
        fields: list[np.ndarray | None] = [None] * len(files)
        keys = []
        for i, path in enumerate(files):
            key = cache_key(
                reference=self.name, crr_sha256=sha256_file(path), grid=repr(grid), time=str(valid_times[i])
            )
            keys.append(key)
            cached = cache.get(key) if cache is not None else None
            if cached is not None:
                fields[i] = cached["rain"].values
        todo = [i for i, f in enumerate(fields) if f is None]
        if todo:  # one reader call: the geostationary -> grid mapping is computed once
            with NETCDF_LOCK:
                read = read_crr([files[i] for i in todo], grid, progress=progress)["rain"]
            for i in todo:
                fields[i] = read.sel(time=valid_times[i]).values
                if cache is not None:
                    cache.put(keys[i], xr.Dataset({"rain": (("y", "x"), fields[i])}))
        rain = np.stack(fields)[None].astype("float32")  # (member=1, time, y, x)
        out = xr.Dataset(
            {
                "rain": (
                    ("member", "time", "y", "x"),
                    rain,
                    {**rain_attrs(), "long_name": "NWC SAF CRR convective rainfall intensity"},
                )
            },
            coords={
                "member": np.arange(1),
                "time": valid_times,
                "y": ds["y"],
                "x": ds["x"],
                GRID_MAPPING_NAME: ds[GRID_MAPPING_NAME],
            },
        )
        out.attrs.update(
            {
                "model": self.name,
                "family": self.family,
                "checkpoint_sha256": "",
                "source_files": ", ".join(p.name for p in files),
                "members": 1,
                "steps": -1,
                "sampler": "none",
                "seed": config.seed,
                "device": "cpu",
                "network_evaluations": 0,
                "qpe_version": __version__,
            }
        )
        return out
