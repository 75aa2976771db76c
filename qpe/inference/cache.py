"""On-disk cache of estimates, safe for concurrent users.

An estimate is stored as a NetCDF file named after the hash of everything that determines it: the
checkpoint's weights hash, the exact input IR values, the valid time, members, sampler steps, seed
and tiling. Files are written by :func:`qpe.files.atomic_write` (a temporary flushed to disk, then
renamed), so a reader sees either no file or a complete one, never a half-written file; two users
computing the same estimate at once simply write the same bytes twice. Within a process, threads read
and write under :data:`qpe.netcdf.NETCDF_LOCK` (the netCDF library is not thread-safe).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from qpe.errors import InputError
from qpe.files import atomic_write
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


class CacheWarning(UserWarning):
    """A cache entry could not be read and was discarded (it is recomputed)."""


class EstimateCache:
    """A folder of cached estimates (one NetCDF file per key).

    An entry that cannot be read (truncated by a crash of an older version, emptied by a full disk, or
    edited) is discarded with one :class:`CacheWarning` line, and the estimate is computed again.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"the estimate cache {self.root} is a file, not a folder (set another with "
                             f"--cache-dir or ${CACHE_ENV})")

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.nc"

    def get(self, key: str, variables: tuple[str, ...] = ("rain",)) -> xr.Dataset | None:
        """The cached dataset, loaded into memory, or None (also for an unreadable entry, then deleted).

        Parameters
        ----------
        key : str
            The entry's key (:func:`cache_key`).
        variables : tuple of str
            Variables a usable entry holds.
        """
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with NETCDF_LOCK, xr.open_dataset(path) as ds:  # netCDF-C is not thread-safe
                ds = ds.load()
            missing = [v for v in variables if v not in ds.data_vars]
            if missing:
                raise ValueError(f"no variable {', '.join(missing)}")
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            warnings.warn(f"discarding the unreadable cached estimate {path} ({reason}); computing it again",
                          CacheWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        return ds

    def put(self, key: str, ds: xr.Dataset) -> Path:
        """Store ``ds`` under ``key`` atomically; returns the file path."""

        def write(tmp: Path) -> None:
            with NETCDF_LOCK:
                ds.to_netcdf(tmp, engine="netcdf4")

        return atomic_write(self.path(key), write)
