"""One lock for the netCDF-C / HDF5 libraries, which are not thread-safe.

xarray's netCDF4 backend takes its own lock for array reads but not for everything it asks of the
library while opening a file, so two threads opening NetCDF files at once can crash the process
(a segmentation fault or bus error, seen with ``qpe study`` reading a warm estimate cache from two
Dask threads). Code of qpe that opens, loads or writes NetCDF from threads (the estimate cache, the
evaluation tasks) does it under :data:`NETCDF_LOCK`. Processes do not share it and need not.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext

import xarray as xr

#: Held while qpe opens, loads or writes a NetCDF file (not re-entrant: do not nest).
NETCDF_LOCK = threading.Lock()


def reading_lock(source: str | os.PathLike | xr.Dataset) -> AbstractContextManager:
    """What reads of a dataset must hold: :data:`NETCDF_LOCK` for a NetCDF file or a Dataset (which may
    be backed by one; loading one already in memory costs nothing), nothing for a Zarr store (a folder),
    which threads read in parallel."""
    if not isinstance(source, xr.Dataset) and os.path.isdir(source):
        return nullcontext()
    return NETCDF_LOCK
