"""Data: the paired IR/radar layout, its grids, readers of real sources and the synthetic benchmark."""

from qpe.data.grid import OPERA_CRS, REGIONS, Grid, Region, get_region
from qpe.data.paired import (
    SEVIRI_CHANNELS,
    make_paired_dataset,
    open_paired,
    save_paired,
    summarize,
    validate_paired,
)

__all__ = [
    "OPERA_CRS",
    "REGIONS",
    "SEVIRI_CHANNELS",
    "Grid",
    "Region",
    "get_region",
    "make_paired_dataset",
    "open_paired",
    "save_paired",
    "summarize",
    "validate_paired",
]
