"""On-disk cache of estimates, safe for concurrent users.

An estimate is stored as a NetCDF file named after the hash of everything that determines it: the
checkpoint's weights hash, the exact input IR values, the valid time, members, sampler steps, seed
and tiling. Files are written under a temporary name and moved into place with ``os.replace``, so a
reader sees either no file or a complete one, never a half-written file; two users computing the
same estimate at once simply write the same bytes twice. Within a process, threads read and write
under :data:`qpe.netcdf.NETCDF_LOCK` (the netCDF library is not thread-safe).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import xarray as xr

from qpe.netcdf import NETCDF_LOCK

#: Environment variable that moves the cache (default ``~/.cache/qpe/estimates``).
CACHE_ENV = "QPE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$QPE_CACHE_DIR`` or ``~/.cache/qpe/estimates``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "qpe" / "estimates"))


def array_digest(array: np.ndarray) -> str:
    """Content hash (BLAKE2b, 128 bits) of an array's dtype, shape and bytes."""
    h = hashlib.blake2b(digest_size=16)
    a = np.ascontiguousarray(array)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.view(np.uint8).reshape(-1).data)
    return h.hexdigest()


def cache_key(**parts: object) -> str:
    """Stable key of JSON-serialisable parts (order of keywords does not matter)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class EstimateCache:
    """A folder of cached estimates (one NetCDF file per key)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.nc"

    def get(self, key: str) -> xr.Dataset | None:
        """The cached dataset, loaded into memory, or None."""
        path = self.path(key)
        if not path.exists():
            return None
        with NETCDF_LOCK, xr.open_dataset(path) as ds:  # netCDF-C is not thread-safe
            return ds.load()

    def put(self, key: str, ds: xr.Dataset) -> Path:
        """Store ``ds`` under ``key`` atomically; returns the file path."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with NETCDF_LOCK:
                ds.to_netcdf(tmp, engine="netcdf4")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path
