"""Readers of real sources into the paired layout: OPERA radar, SEVIRI CF brightness temperatures,
NWC SAF CRR rain rates. Choose one by name with :func:`get_reader`."""

from qpe.data.readers.crr import read_crr
from qpe.data.readers.opera import read_radar
from qpe.data.readers.registry import READERS, get_reader
from qpe.data.readers.seviri import read_seviri

__all__ = ["READERS", "get_reader", "read_crr", "read_radar", "read_seviri"]
