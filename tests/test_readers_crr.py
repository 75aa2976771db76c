"""NWC SAF CRR NetCDF -> reference rain on a target grid, checked against pysteps + nearest neighbour."""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pyproj
import pytest

from qpe.cli import main
from qpe.data.grid import Grid, get_region
from qpe.data.paired import make_paired_dataset, open_paired, save_paired
from qpe.data.readers import get_reader, read_crr
from qpe.errors import DatasetError, InputError

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def crr_files(crr_dir) -> list[Path]:
    return sorted(crr_dir.glob("*.nc"))


@pytest.fixture(scope="module")
def france(crr_files):
    """Three CRR files (given out of order) on the France 2 km grid."""
    return read_crr([crr_files[5], crr_files[0], crr_files[10]], region="france")


def pysteps_crr(path: Path):
    from pysteps.io import import_saf_crri

    return import_saf_crri(str(path))


def nearest_crr_value(rain: np.ndarray, meta: dict, x: float, y: float) -> float:
    """Value of the CRR pixel containing the LAEA point (x, y): pyproj to geostationary, then index."""
    to_geos = pyproj.Transformer.from_crs(get_region("france").crs, meta["projection"], always_xy=True)
    gx, gy = to_geos.transform(x, y)
    col = int(np.floor((gx - float(meta["x1"])) / float(meta["xpixelsize"])))
    row = int(np.floor((float(meta["y2"]) - gy) / float(meta["ypixelsize"])))
    return float(rain[row, col])


def test_times_are_nominal_and_sorted(france):
    assert list(pd.DatetimeIndex(france["time"].values).strftime("%H:%M")) == ["12:00", "13:15", "14:30"]


def test_dataset_says_it_is_the_crr_estimate(france):
    assert france.attrs["rain_source"] == "nwcsaf_crr"
    assert "NWC SAF CRR" in france.attrs["source"] and "not radar" in france.attrs["source"]
    assert france["rain"].attrs["units"] == "mm/h"
    assert Grid.from_dataset(france).matches(get_region("france").grid(2000.0))


@pytest.mark.parametrize("t, file_index", [(0, 0), (1, 5), (2, 10)])
def test_values_equal_pysteps_read_at_the_nearest_crr_pixel(france, crr_files, t, file_index):
    rain, _, meta = pysteps_crr(crr_files[file_index])
    field = france["rain"].values[t]
    wet = np.argwhere(field > 1.0)
    dry = np.argwhere(field == 0.0)
    assert len(wet) > 10
    picks = [*wet[np.linspace(0, len(wet) - 1, 5).astype(int)],
             *dry[np.linspace(0, len(dry) - 1, 3).astype(int)]]
    for i, j in picks:
        expected = nearest_crr_value(rain, meta, france["x"].values[j], france["y"].values[i])
        np.testing.assert_allclose(field[i, j], expected, rtol=1e-6, atol=1e-6)


def test_rain_statistics_match_the_source(france, crr_files):
    rain, _, _ = pysteps_crr(crr_files[0])
    field = france["rain"].values[0]
    assert np.isfinite(field).all()  # France lies inside the CRR Europe domain
    assert 0 < np.nanmax(field) <= np.nanmax(rain)
    np.testing.assert_allclose(np.unique(field[field > 0] * 10) % 1, 0, atol=1e-3)  # 0.1 mm/h steps kept


def test_quality_flags_are_carried(france):
    flags = set(np.unique(france["crr_quality"].values).tolist())
    assert flags <= {1, 2, 4, 8, 16, 24, 32} and 8 in flags


def test_outside_the_crr_domain_is_nan(crr_files):
    rain, _, meta = pysteps_crr(crr_files[0])
    x0, y0 = float(meta["x1"]) + 1500, float(meta["y2"]) - 1500
    src = Grid(meta["projection"], x0, y0, 3000.0, 3000.0, 2200, 1019)
    # 40 x 40 CRR pixels straddling the northern edge of the domain: the 10 rows above it are outside
    target = Grid(src.crs, src.x0 + 1000 * 3000, src.y0 + 10 * 3000, 3000.0, 3000.0, 40, 40)
    out = read_crr(crr_files[:1], target)["rain"].values[0]
    assert np.isnan(out[:10]).all()
    np.testing.assert_allclose(out[10:], rain[:30, 1000:1040], equal_nan=True)


def test_grid_like_command_puts_crr_on_a_dataset_grid(tmp_path, crr_dir, small_grid):
    like = save_paired(
        make_paired_dataset(small_grid, ["2018-06-01T12:00"], rain=np.zeros((1, *small_grid.shape))),
        tmp_path / "like.zarr",
    )
    out = tmp_path / "crr.zarr"
    assert main(["data", "crr", "--in", f"{crr_dir}/*T12[01]*.nc", "--grid-like", str(like),
                 "--out", str(out)]) == 0
    ds = open_paired(out)
    assert Grid.from_dataset(ds).matches(small_grid) and ds.sizes["time"] == 2


def test_region_command_writes_a_dataset(tmp_path, crr_dir, capsys):
    out = tmp_path / "crr.zarr"
    assert main(["data", "crr", "--in", f"{crr_dir}/*T1200*.nc", "--region", "france", "--pixel-km", "4",
                 "--out", str(out)]) == 0
    assert "100.0% of the target grid covered" in capsys.readouterr().out
    assert open_paired(out)["rain"].shape == (1, 300, 312)


def test_registry_gives_the_crr_reader():
    assert get_reader("nwcsaf_crr") is read_crr


def _bad(case: str, tmp: Path, files: list[Path]) -> list[str]:
    if case == "empty glob":
        return [str(tmp / "*.nc")]
    if case == "not netcdf":
        (tmp / "fake.nc").write_text("not a netcdf file")
        return [str(tmp / "fake.nc")]
    if case == "not crr":
        with netCDF4.Dataset(tmp / "other.nc", "w") as nc:
            nc.createDimension("x", 3)
            nc.createVariable("t2m", "f4", ("x",))
        return [str(tmp / "other.nc")]
    if case == "wrong units":
        path = Path(shutil.copy(files[0], tmp / "mm.nc"))
        with netCDF4.Dataset(path, "a") as nc:
            nc.variables["crr_intensity"].units = "mm"
        return [str(path)]
    if case == "duplicated time":
        return [str(files[0]), str(shutil.copy(files[0], tmp / "again.nc"))]
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("empty glob", InputError, "no NWC SAF CRR files match"),
        ("not netcdf", InputError, "fake.nc is not a NetCDF file"),
        ("not crr", InputError, "other.nc is not an NWC SAF CRR file (no crr_intensity variable)"),
        ("wrong units", DatasetError, "mm.nc: crr_intensity is in 'mm'; expected rain rate in mm/h"),
        ("duplicated time", InputError, "again.nc have the same time 2018-06-01T12:00"),
    ],
)
def test_bad_input_gives_one_error_line(tmp_path, crr_files, case, error, message):
    with pytest.raises(error) as err:
        read_crr(_bad(case, tmp_path, crr_files), region="france")
    assert message in str(err.value) and "\n" not in str(err.value)
