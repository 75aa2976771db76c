"""One lock for the netCDF-C / HDF5 libraries, which are not thread-safe.

xarray's netCDF4 backend takes its own lock for array reads but not for everything it asks of the
library while opening a file, so two threads opening NetCDF files at once can crash the process
(a segmentation fault or bus error, seen with ``qpe study`` reading a warm estimate cache from two
Dask threads). Code of qpe that opens, loads or writes NetCDF from threads (the estimate cache, the
evaluation tasks) does it under :data:`NETCDF_LOCK`. Processes do not share it and need not.
"""

from __future__ import annotations

import threading

#: Held while qpe opens, loads or writes a NetCDF file (not re-entrant: do not nest).
NETCDF_LOCK = threading.Lock()
