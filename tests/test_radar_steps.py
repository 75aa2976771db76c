"""Radar networks without files: 15-minute steps, Z-R settings, pysteps grids in metres, the area-mean
reprojection, and the boxes and days of the radar training set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from qpe.data.grid import OPERA_CRS, Grid, get_region
from qpe.data.radar_days import HELD_OUT_DAYS, check_held_out, choose_box, runs
from qpe.data.readers.networks import NETWORKS, check_zr, combine_step, grid_from_pysteps, plan_steps
from qpe.data.readers.reprojection import AreaMeanRegridder
from qpe.errors import InputError

T0 = pd.Timestamp("2020-06-01T12:00")


def minutes(*values: int) -> list[pd.Timestamp]:
    return [T0 + pd.Timedelta(minutes=m) for m in values]


# -- 15-minute steps -----------------------------------------------------------------------------------
def test_instant_takes_the_file_stamped_at_each_quarter_hour():
    plan = plan_steps(minutes(*range(-10, 40, 5)), "instant")  # 11:50 .. 12:35
    assert list(plan.steps) == minutes(0, 15, 30)
    assert all(plan.steps[t] == (t,) for t in plan.steps)
    assert plan.left_out == {}


def test_mean_takes_the_three_files_ending_at_the_step():
    plan = plan_steps(minutes(*range(-10, 40, 5)), "mean")
    assert list(plan.steps) == minutes(0, 15, 30)
    assert plan.steps[T0] == tuple(minutes(-10, -5, 0))
    assert plan.steps[T0 + pd.Timedelta(minutes=30)] == tuple(minutes(20, 25, 30))


def test_a_missing_file_leaves_its_steps_out_and_names_them():
    files = minutes(0, 5, 10, 20, 25, 30, 35, 40, 45)  # 12:15 is missing
    instant, mean = plan_steps(files, "instant"), plan_steps(files, "mean")
    assert list(instant.steps) == minutes(0, 30, 45) and instant.left_out == {T0 + pd.Timedelta(minutes=15): (
        T0 + pd.Timedelta(minutes=15),)}
    assert list(mean.steps) == minutes(30, 45)
    # 12:00 lacks 11:50 and 11:55 (the first file's step), 12:15 lacks itself
    assert mean.left_out == {T0: tuple(minutes(-10, -5)), T0 + pd.Timedelta(minutes=15): tuple(minutes(15))}


def test_steps_beyond_the_last_file_are_not_listed_as_left_out():
    plan = plan_steps(minutes(0, 5, 10, 15, 20), "mean")
    assert list(plan.steps) == minutes(15) and list(plan.left_out) == [T0]


def test_combine_step_on_known_values():
    a, b, c = np.array([[0.0, 1.2]]), np.array([[0.0, 2.4]]), np.array([[3.0, np.nan]])
    np.testing.assert_array_equal(combine_step([c], "instant"), c)
    np.testing.assert_allclose(combine_step([a, b, c], "mean"), [[1.0, np.nan]])
    with pytest.raises(ValueError, match="one field per step"):
        combine_step([a, b], "instant")


def test_an_unknown_step_rule_is_refused():
    with pytest.raises(InputError, match="step rule must be one of instant, mean"):
        plan_steps(minutes(0), "sum")


# -- Z-R -------------------------------------------------------------------------------------------
def test_zr_defaults_per_network():
    assert check_zr(None, NETWORKS["fmi"]) == (223.0, 1.53)  # pysteps' metadata for FMI
    assert check_zr(None, NETWORKS["knmi"]) is None and check_zr(None, NETWORKS["mch"]) is None
    assert check_zr([200, 1.6], NETWORKS["fmi"]) == (200.0, 1.6)


@pytest.mark.parametrize("zr", [[0, 1.6], [200, -1], [float("nan"), 1.6], [200, float("inf")], [200]])
def test_bad_zr_is_one_line(zr):
    with pytest.raises(InputError, match=r"Z-R needs two finite positive numbers"):
        check_zr(zr, NETWORKS["fmi"])


@pytest.mark.parametrize("name", ["knmi", "mch"])
def test_zr_is_refused_for_accumulations(name):
    with pytest.raises(InputError, match=f"{name} gives rain accumulations in mm"):
        check_zr([223, 1.53], NETWORKS[name])


# -- pysteps grids ------------------------------------------------------------------------------------
KNMI_METADATA = {  # as pysteps' import_knmi_hdf5 gives it for RAD_NL25_RAP_5min files
    "projection": "+proj=stere +lat_0=90 +lon_0=0.0 +lat_ts=60.0 +a=6378.137 +b=6356.752 +x_0=0 +y_0=0",
    "x1": 0.0, "y1": -4415.0, "x2": 700.0, "y2": -3650.0, "xpixelsize": 1.0, "ypixelsize": 1.0,
    "cartesian_unit": "km", "yorigin": "upper",
}


def test_a_grid_in_km_is_put_in_metres():
    grid = grid_from_pysteps(KNMI_METADATA, (765, 700), Path("knmi.h5"))
    assert (grid.dx, grid.dy, grid.nx, grid.ny) == (1000.0, 1000.0, 700, 765)
    assert grid.bounds == (0.0, -4_415_000.0, 700_000.0, -3_650_000.0)
    # the corners KNMI gives (geo_product_corners): lower left (0, 49.362), upper right (10.856, 55.389)
    to_geo = pyproj.Transformer.from_crs(grid.pyproj_crs, "EPSG:4326", always_xy=True)
    np.testing.assert_allclose(to_geo.transform(0.0, -4_415_000.0), (0.0, 49.362), atol=2e-3)
    np.testing.assert_allclose(to_geo.transform(700_000.0, -3_650_000.0), (10.856, 55.389), atol=2e-3)


def test_a_grid_whose_extent_does_not_match_its_shape_is_refused():
    with pytest.raises(InputError, match="does not match 765 x 600 pixels"):
        grid_from_pysteps(KNMI_METADATA, (765, 600), Path("knmi.h5"))


# -- area-mean reprojection ---------------------------------------------------------------------------
STERE = "+proj=stere +lat_0=90 +lon_0=25 +lat_ts=60 +a=6371288 +x_0=380886.31 +y_0=3395677.92"


#: FMI's Vantaa radar, lon, lat.
VANTAA = (24.87, 60.27)


@pytest.fixture(scope="module")
def km_grid() -> Grid:
    """300 x 300 pixels of 1 km, polar stereographic (FMI's projection), around the Vantaa radar."""
    x, y = pyproj.Transformer.from_crs("EPSG:4326", STERE, always_xy=True).transform(*VANTAA)
    return Grid(STERE, round(x / 1000) * 1000 - 149_500.0, round(y / 1000) * 1000 + 149_500.0,
                1000.0, 1000.0, 300, 300)


@pytest.fixture(scope="module")
def to_opera(km_grid) -> AreaMeanRegridder:
    to_laea = pyproj.Transformer.from_crs(km_grid.pyproj_crs, OPERA_CRS, always_xy=True)
    xmin, ymin, xmax, ymax = km_grid.bounds
    cx, cy = to_laea.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
    target = Grid.centred(OPERA_CRS, (round(cx / 2000) * 2000, round(cy / 2000) * 2000), 100, 2000.0)
    return AreaMeanRegridder(km_grid, target)


def test_reprojection_is_a_mean_of_4x4_sub_samples(to_opera):
    assert to_opera.kind == "area mean of 4 x 4 nearest sub-samples"


def test_a_known_place_lands_at_the_right_pixel(km_grid, to_opera):
    lon, lat = VANTAA
    to_km = pyproj.Transformer.from_crs("EPSG:4326", km_grid.pyproj_crs, always_xy=True)
    x, y = to_km.transform(lon, lat)
    field = np.zeros(km_grid.shape)
    row, col = int((km_grid.y0 + 500 - y) // 1000), int((x - km_grid.x0 + 500) // 1000)
    field[row - 1: row + 2, col - 1: col + 2] = 10.0  # 3 x 3 km of rain around the radar
    out = to_opera.apply(field)
    r, c = np.unravel_index(np.argmax(out), out.shape)
    to_laea = pyproj.Transformer.from_crs("EPSG:4326", OPERA_CRS, always_xy=True)
    px, py = to_laea.transform(lon, lat)
    assert np.hypot(to_opera.target.x[c] - px, to_opera.target.y[r] - py) < 2000.0


def test_the_area_mean_keeps_the_rain_of_every_source_pixel(km_grid, to_opera):
    """Rain in every other 1 km column: a 2 km pixel holds about two wet and two dry columns, so its mean
    is about half the rain (sampling one source pixel per target pixel would give 0 or 10)."""
    field = np.zeros(km_grid.shape)
    field[:, ::2] = 10.0
    out = to_opera.apply(field)
    assert np.isfinite(out).all()  # the target lies inside the source
    assert out.mean() == pytest.approx(5.0, rel=0.02)
    assert 3.0 < out.min() and out.max() < 7.0


def test_coverage_edges_need_half_of_the_sub_samples(km_grid, to_opera):
    field = np.ones(km_grid.shape)
    field[:, :150] = np.nan
    out = to_opera.apply(field)
    assert np.isnan(out).any() and (out[np.isfinite(out)] == 1.0).all()


def test_same_projection_aligned_coarsening_is_the_exact_block_mean():
    fine = Grid(OPERA_CRS, 1_000_500.0, -2_000_500.0, 1000.0, 1000.0, 8, 8)
    coarse = Grid(OPERA_CRS, 1_001_000.0, -2_001_000.0, 2000.0, 2000.0, 4, 4)
    regrid = AreaMeanRegridder(fine, coarse)
    values = np.arange(64.0).reshape(8, 8)
    assert regrid.kind == "mean"
    np.testing.assert_allclose(regrid.apply(values), values.reshape(4, 2, 4, 2).mean(axis=(1, 3)))


# -- training set: boxes, days, held-out days ------------------------------------------------------
def rain_array(values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(values, dims=("time", "y", "x"))


def test_the_box_goes_where_the_radar_sees_rain():
    rain = np.zeros((3, 40, 40))
    rain[:, :, :10] = np.nan  # no radar in the west
    rain[:, 25:35, 28:38] = 2.0  # a storm in the south-east
    rain[:, 2:8, 0:8] = np.nan
    box = choose_box(rain_array(rain), 16)
    assert (box.rows, box.cols) == (slice(19, 35), slice(22, 38))  # the first square holding the whole storm
    assert box.coverage == 1.0 and box.wet_fraction == pytest.approx(100 / 256)


def test_without_enough_radar_the_box_with_most_radar_is_taken():
    rain = np.full((2, 20, 20), np.nan)
    rain[:, 10:, 10:] = 1.0
    box = choose_box(rain_array(rain), 12, min_coverage=0.9)
    assert box.coverage == pytest.approx(100 / 144) and (box.rows.start, box.cols.start) == (8, 8)


def test_a_box_larger_than_the_grid_is_refused():
    with pytest.raises(InputError, match="box of 64 pixels is larger than the radar grid"):
        choose_box(rain_array(np.zeros((1, 32, 80))), 64)


def test_days_are_runs_of_15_minute_steps_even_across_midnight():
    times = pd.DatetimeIndex(
        list(pd.date_range("2016-07-11T23:30", "2016-07-12T00:15", freq="15min"))
        + list(pd.date_range("2017-01-31T09:45", periods=3, freq="15min"))
    )
    assert [list(r) for r in runs(times)] == [[0, 1, 2, 3], [4, 5, 6]]


def test_the_test_benchmark_day_is_refused():
    assert "2018-08-24" in HELD_OUT_DAYS
    with pytest.raises(InputError, match="2018-08-24, a day of a test benchmark"):
        check_held_out(pd.date_range("2018-08-24T18:00", periods=2, freq="15min"), "radar files x")
    check_held_out(pd.date_range("2018-08-25T00:00", periods=2, freq="15min"), "radar files y")


def test_regions_of_the_networks_are_on_opera_2km_pixels():
    for name in ("netherlands", "switzerland", "finland"):
        region = get_region(name)
        assert all(b % 2000 == 0 for b in region.bounds)
        assert Grid.from_bounds(region.crs, region.bounds, 2000.0).matches(region.grid(2000.0))
