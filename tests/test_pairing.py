"""Pairing IR and rain by time on one grid: tolerance, unmatched counts, grid and time-order errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpe.cli import main
from qpe.data.grid import Grid, get_region
from qpe.data.paired import make_paired_dataset, open_paired, save_paired
from qpe.data.pairing import match_times, pair
from qpe.errors import DatasetError

DATA = Path(__file__).resolve().parent / "data"

IR_TIMES = pd.to_datetime(["2018-08-24T18:00:09", "2018-08-24T18:15:09", "2018-08-24T18:30:09",
                           "2018-08-24T19:00:09"])
RAIN_TIMES = pd.to_datetime(["2018-08-24T18:00", "2018-08-24T18:15", "2018-08-24T18:45", "2018-08-24T19:00",
                             "2018-08-24T19:15"])


def coded_ir(grid: Grid, times=IR_TIMES):
    """IR = 200 + 10 * time index + channel index, K: each frame says where it came from."""
    ir = 200.0 + 10.0 * np.arange(len(times))[:, None, None, None] + np.arange(2)[None, :, None, None]
    ir = np.broadcast_to(ir, (len(times), 2, *grid.shape)).copy()
    return make_paired_dataset(grid, times, ir=ir, channels=["WV_062", "IR_108"], attrs={"source": "test IR"})


def coded_rain(grid: Grid, times=RAIN_TIMES):
    """rain = time index + 0.5, mm/h, with a NaN corner; quality 0.5; two outliers at 19:00."""
    rain = np.broadcast_to(np.arange(len(times))[:, None, None] + 0.5, (len(times), *grid.shape)).copy()
    rain[:, :3, :3] = np.nan
    ds = make_paired_dataset(grid, times, rain=rain, rain_quality=np.full_like(rain, 0.5),
                             attrs={"source": "test radar", "qc_max_rate": 300.0, "qc_outliers_flagged": 9})
    ds["qc_outliers"] = ("time", np.array([0, 0, 7, 2, 0])[: len(times)])
    return ds


def test_times_match_within_tolerance_and_unmatched_are_counted(small_grid):
    ds = pair(coded_ir(small_grid), coded_rain(small_grid))
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["18:00", "18:15", "19:00"]
    np.testing.assert_array_equal(ds["ir_time"].values, IR_TIMES[[0, 1, 3]].values)
    np.testing.assert_allclose(ds["ir"].values[:, 1, 5, 5], [201.0, 211.0, 231.0])
    np.testing.assert_allclose(ds["rain"].values[:, 5, 5], [0.5, 1.5, 3.5])
    assert np.isnan(ds["rain"].values[:, :3, :3]).all()
    counts = (ds.attrs["pair_matched"], ds.attrs["pair_unmatched_ir"], ds.attrs["pair_unmatched_rain"])
    assert counts == (3, 1, 2)


def test_qc_variables_follow_the_matched_rain_times(small_grid):
    ds = pair(coded_ir(small_grid), coded_rain(small_grid))
    np.testing.assert_array_equal(ds["qc_outliers"].values, [0, 0, 2])
    assert ds.attrs["qc_outliers_flagged"] == 2 and ds.attrs["qc_max_rate"] == 300.0
    np.testing.assert_allclose(ds["rain_quality"].values, 0.5)
    assert "paired IR and rain within 0 days 00:05:00: 3 matched" in ds.attrs["history"]
    assert ds.attrs["source"] == "IR: test IR; rain: test radar"


@pytest.mark.parametrize(
    "tolerance, matched", [("0s", 0), ("9s", 3), ("5min", 3), ("15min", 4)],
)
def test_tolerance_decides_the_matches(tolerance, matched):
    ir_idx, rain_idx = match_times(IR_TIMES.values, RAIN_TIMES.values, pd.Timedelta(tolerance))
    assert ir_idx.size == rain_idx.size == matched
    assert np.all(np.abs(IR_TIMES.values[ir_idx] - RAIN_TIMES.values[rain_idx]) <= pd.Timedelta(tolerance))


def test_matching_is_one_to_one_closest_first():
    ir = pd.to_datetime(["2018-08-24T18:00:00", "2018-08-24T18:03:00"])
    rain = pd.to_datetime(["2018-08-24T18:02:00"])
    ir_idx, rain_idx = match_times(ir.values, rain.values, pd.Timedelta("5min"))
    assert ir_idx.tolist() == [1] and rain_idx.tolist() == [0]


def test_no_match_is_an_error(small_grid):
    late = coded_rain(small_grid, RAIN_TIMES + pd.Timedelta("3h"))
    message = r"no IR time is within 0 days 00:05:00 of a rain time \(IR 2018-08-24T18"
    with pytest.raises(DatasetError, match=message):
        pair(coded_ir(small_grid), late)


def test_mismatched_grids_name_both_grids(small_grid):
    g = small_grid
    other = Grid(g.crs, g.x0 + 2000, g.y0, 2000.0, 2000.0, g.nx, g.ny)
    with pytest.raises(DatasetError) as err:
        pair(coded_ir(small_grid), coded_rain(other))
    message = str(err.value)
    assert f"IR: {small_grid.describe()}" in message and f"rain: {other.describe()}" in message
    assert "give a target grid" in message and "\n" not in message


def test_a_target_grid_regrids_both(small_grid):
    coarse = Grid(small_grid.crs, small_grid.x0 + 1000, small_grid.y0 - 1000, 4000.0, 4000.0, 24, 16)
    shifted = Grid(small_grid.crs, small_grid.x0 - 2000, small_grid.y0 + 2000, 2000.0, 2000.0, 50, 34)
    ds = pair(coded_ir(small_grid), coded_rain(shifted), grid=coarse)
    assert Grid.from_dataset(ds).matches(coarse)
    np.testing.assert_allclose(ds["ir"].values[:, 1, 3, 3], [201.0, 211.0, 231.0])
    np.testing.assert_allclose(ds["rain"].values[:, 3, 3], [0.5, 1.5, 3.5])


@pytest.mark.parametrize("which", ["ir", "rain"])
def test_unsorted_times_are_rejected_with_one_line(small_grid, which):
    ir, rain = coded_ir(small_grid), coded_rain(small_grid)
    if which == "ir":
        ir = ir.isel(time=[1, 0, 2, 3])
    else:
        rain = rain.isel(time=[0, 2, 1, 3, 4])
    with pytest.raises(DatasetError) as err:
        pair(ir, rain)
    role = "IR" if which == "ir" else "rain"
    assert str(err.value).startswith(f"{role} dataset: 'time' is not sorted") and "\n" not in str(err.value)


def test_inputs_must_hold_their_variable(small_grid):
    with pytest.raises(DatasetError, match="IR dataset: dataset lacks required variable"):
        pair(coded_rain(small_grid), coded_rain(small_grid))


def test_paired_dataset_round_trips_through_zarr(tmp_path, small_grid):
    ds = pair(coded_ir(small_grid), coded_rain(small_grid))
    back = open_paired(save_paired(ds, tmp_path / "p.zarr"), require=("ir", "rain"))
    np.testing.assert_array_equal(back["ir_time"].values, ds["ir_time"].values)
    np.testing.assert_array_equal(back["qc_outliers"].values, [0, 0, 2])


@pytest.mark.shared_data
def test_command_pairs_seviri_fixture_with_opera(tmp_path, opera_files, capsys):
    """Real files end to end: SEVIRI CF fixture (18:00, 18:15:09) + OPERA 18:00, 18:30 on the France grid."""
    ir_path, rain_path, out = tmp_path / "ir.zarr", tmp_path / "r.zarr", tmp_path / "paired.zarr"
    assert main(["data", "seviri", "--in", str(DATA / "seviri_cf_*.nc"), "--region", "france", "--out",
                 str(ir_path)]) == 0
    assert main(["data", "radar", "--in", str(opera_files[0]), str(opera_files[2]), "--region", "france",
                 "--out", str(rain_path)]) == 0
    assert main(["data", "pair", "--ir", str(ir_path), "--rain", str(rain_path), "--out", str(out)]) == 0
    assert "paired 1 times; unmatched: 1 IR, 1 rain (tolerance 5 min)" in capsys.readouterr().out
    ds = open_paired(out, require=("ir", "rain"))
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["18:00"]
    assert Grid.from_dataset(ds).matches(get_region("france").grid(2000.0))
    np.testing.assert_array_equal(ds["qc_outliers"].values, [2])
    np.testing.assert_array_equal(ds["rain"].values, open_paired(rain_path)["rain"].values[:1])
    np.testing.assert_array_equal(ds["ir"].values, open_paired(ir_path)["ir"].values[:1])


def test_command_reports_mismatched_grids(tmp_path, capsys):
    ir_path, rain_path = tmp_path / "ir.zarr", tmp_path / "rain.zarr"
    assert main(["data", "seviri", "--in", str(DATA / "seviri_cf_*.nc"), "--region", "france",
                 "--pixel-km", "4", "--out", str(ir_path)]) == 0
    grid = get_region("france").grid(2000.0)
    save_paired(coded_rain(grid, RAIN_TIMES[:2]), rain_path)
    capsys.readouterr()
    out = tmp_path / "p.zarr"
    assert main(["data", "pair", "--ir", str(ir_path), "--rain", str(rain_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qpe: error: IR and rain are on different grids") and err.count("\n") == 1
