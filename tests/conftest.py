"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent) and small datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpe.data.grid import OPERA_CRS, Grid
from qpe.data.paired import make_paired_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("QPE_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is absent (set QPE_SHARED_DATA to ../shared/data)")
    return path


@pytest.fixture(scope="session")
def opera_dir() -> Path:
    """../shared/data/opera/20180824: 24 OPERA ODIM HDF5 composites, 18:00-23:45 UTC."""
    return _shared("opera/20180824")


@pytest.fixture(scope="session")
def opera_files(opera_dir: Path) -> list[Path]:
    return sorted(opera_dir.glob("*.hdf"))


@pytest.fixture(scope="session")
def knmi_dir() -> Path:
    """../shared/data/knmi/20100826: 92 KNMI 5-minute accumulation HDF5 files, 00:00-07:35 UTC."""
    return _shared("knmi/20100826")


@pytest.fixture(scope="session")
def mch_dir() -> Path:
    """../shared/data/mch: MeteoSwiss AQC GIF files of 2015-05-15, 2016-07-11 and 2017-01-31 (40 each)."""
    return _shared("mch")


@pytest.fixture(scope="session")
def fmi_dir() -> Path:
    """../shared/data/fmi: FMI PGM reflectivity composites of 2016-09-28 and 2017-05-09 (40 each)."""
    return _shared("fmi")


@pytest.fixture(scope="session")
def crr_dir() -> Path:
    """../shared/data/nwcsaf_crr/20180601: 12 NWC SAF CRR NetCDF files, 12:00-14:45 UTC."""
    return _shared("nwcsaf_crr/20180601")


@pytest.fixture(scope="session")
def natural_earth_dir() -> Path:
    return _shared("natural_earth")


@pytest.fixture
def small_grid() -> Grid:
    """32 x 48 pixels of 2 km on the OPERA projection, over central France."""
    return Grid(OPERA_CRS, 1_201_000.0, -2_901_000.0, 2000.0, 2000.0, 48, 32)


@pytest.fixture
def small_paired(small_grid: Grid):
    """A tiny valid paired dataset (4 times, 2 channels) with a NaN radar gap."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2021-06-01T12:00", periods=4, freq="15min")
    ir = 230 + 40 * rng.random((4, 2, *small_grid.shape))
    rain = rng.gamma(0.5, 2.0, (4, *small_grid.shape))
    rain[:, :5, :5] = np.nan
    return make_paired_dataset(small_grid, times, ir=ir, channels=["WV_062", "IR_108"], rain=rain)


@pytest.fixture(scope="module")
def one_torch_thread_per_module():
    """One torch thread for a whole module (tiny networks run fastest on one thread; modules comparing
    estimates made at different places need the same count everywhere). Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_reference() -> tuple:
    """The fixed 48 x 48 case of ``tests/data/demo_estimates_reference.npz`` as a paired dataset, and the
    file's arrays (the demo checkpoints' estimates on it; ``tests/data/make_demo_estimates_reference.py``)."""
    with np.load(REPO / "tests" / "data" / "demo_estimates_reference.npz") as f:
        ref = {k: f[k] for k in f.files}
    grid = Grid.from_coords(OPERA_CRS, ref["x"], ref["y"])
    ds = make_paired_dataset(grid, pd.to_datetime(ref["time"]), ir=ref["ir"], channels=list(ref["channels"]))
    return ds, ref
