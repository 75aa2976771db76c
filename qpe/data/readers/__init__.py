"""Readers of real sources into the paired layout: OPERA radar, the KNMI, MeteoSwiss and FMI radar
networks (through pysteps' importers), SEVIRI CF brightness temperatures, NWC SAF CRR rain rates.
Choose one by name with :func:`get_reader`, or a radar source by name (or from its files) with
:func:`read_radar_source`."""

from qpe.data.readers.crr import read_crr
from qpe.data.readers.networks import NETWORKS, read_fmi, read_knmi, read_mch, read_network
from qpe.data.readers.opera import read_radar
from qpe.data.readers.radar_sources import RADAR_SOURCES, detect_source, read_radar_source
from qpe.data.readers.registry import READERS, get_reader
from qpe.data.readers.seviri import read_seviri

__all__ = [
    "NETWORKS", "RADAR_SOURCES", "READERS", "detect_source", "get_reader", "read_crr", "read_fmi",
    "read_knmi", "read_mch", "read_network", "read_radar", "read_radar_source", "read_seviri",
]
