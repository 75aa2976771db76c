"""Readers chosen by name, in the spirit of pysteps' ``io.interface.get_method``.

Every reader is a function ``reader(paths, grid=None, *, region=None, pixel_km=2.0, progress=False,
**options) -> xarray.Dataset`` returning a validated dataset in the paired layout
(:mod:`qpe.data.paired`) on the target grid (``grid``, or ``region`` at ``pixel_km``, or the source's
own grid): ``rain`` for radar and rain-rate products, ``ir`` for SEVIRI. The radar readers (OPERA and
the national networks over pysteps' importers, named as pysteps names them) are also chosen by source
name (``opera``, ``knmi``, ``mch``, ``fmi``) in :mod:`qpe.data.readers.radar_sources`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import xarray as xr

from qpe.data.readers.crr import read_crr
from qpe.data.readers.networks import read_fmi, read_knmi, read_mch
from qpe.data.readers.opera import read_radar
from qpe.data.readers.seviri import read_seviri
from qpe.errors import InputError

Reader = Callable[..., xr.Dataset]

#: Reader name -> reader function (read-only).
READERS: MappingProxyType[str, Reader] = MappingProxyType({
    "opera_hdf5": read_radar,
    "knmi_hdf5": read_knmi,
    "mch_gif": read_mch,
    "fmi_pgm": read_fmi,
    "seviri": read_seviri,
    "seviri_cf": read_seviri,  # its first name, when it read satpy's CF output only
    "nwcsaf_crr": read_crr,
})


def get_reader(name: str) -> Reader:
    """The reader registered under ``name`` (``opera_hdf5``, ``knmi_hdf5``, ``mch_gif``, ``fmi_pgm``,
    ``seviri`` (native, HRIT, EUMETSAT NetCDF through satpy, or satpy's CF output), ``nwcsaf_crr``).

    Raises
    ------
    InputError
        Unknown name; the message lists the known ones.
    """
    try:
        return READERS[name.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"unknown reader {name!r}; known readers: {', '.join(READERS)}") from None
