"""The paired IR/radar layout: construction, validation errors, files and summary."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from qpe.cli import main
from qpe.data.grid import Grid, get_region
from qpe.data.paired import open_paired, save_paired, summarize, validate_paired
from qpe.errors import DatasetError, InputError


def test_layout_has_cf_grid_mapping_and_units(small_paired, small_grid):
    ds = small_paired
    assert ds["ir"].dims == ("time", "channel", "y", "x")
    assert ds["rain"].dims == ("time", "y", "x")
    assert ds["ir"].attrs["units"] == "K" and ds["rain"].attrs["units"] == "mm/h"
    assert ds["rain"].attrs["grid_mapping"] == "crs"
    assert ds["crs"].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    assert Grid.from_dataset(ds).matches(small_grid)
    np.testing.assert_allclose(ds["wavelength"].values, [6.25, 10.8], rtol=1e-6)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda ds: ds.assign(rain=ds.rain.assign_attrs(units="mm")), "is in 'mm'; expected rain rate in mm/h"),
        (lambda ds: ds.assign(ir=ds.ir - 273.15), "outside the plausible range"),
        (lambda ds: ds.assign(rain=ds.rain.where(ds.rain < 5, 2000.0)), "rain rate values span"),
        (lambda ds: ds.assign(rain=ds.rain * -1), "rain rate values span"),
        (lambda ds: ds.isel(time=[1, 0, 2, 3]), "'time' is not sorted"),
        (lambda ds: ds.isel(time=[0, 1, 1, 2]), "duplicated step"),
        (lambda ds: ds.isel(x=[0, 2, 1, *range(3, ds.sizes["x"])]), "coordinate 'x' must be strictly increasing"),
        (lambda ds: ds.isel(y=slice(None, None, -1)), "coordinate 'y' must be strictly decreasing"),
        (lambda ds: ds.drop_vars("crs"), "no CF grid-mapping variable"),
        (lambda ds: ds.assign_coords(channel=["WV_062", "VIS_006"]), "unknown IR channel(s) VIS_006"),
        (lambda ds: ds.assign_coords(channel=["WV_062", "WV_073"]), "must include IR_108"),
        (lambda ds: ds.drop_vars(["ir", "rain"]), "neither 'ir'"),
        (lambda ds: ds.assign(rain=ds.rain.transpose("time", "x", "y")), "must have dims"),
    ],
)
def test_validator_rejects_with_one_clear_line(small_paired, corrupt, message):
    with pytest.raises(DatasetError) as err:
        validate_paired(corrupt(small_paired))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_validator_requires_named_variables(small_paired):
    with pytest.raises(DatasetError, match="lacks required variable"):
        validate_paired(small_paired.drop_vars("rain"), require=("ir", "rain"))


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_and_open_round_trip(tmp_path, small_paired, suffix):
    path = save_paired(small_paired, tmp_path / f"d{suffix}")
    back = open_paired(path)
    xr.testing.assert_allclose(back[["ir", "rain"]].load(), small_paired[["ir", "rain"]])
    assert np.isnan(back["rain"].values[:, :5, :5]).all()
    assert Grid.from_dataset(back).matches(Grid.from_dataset(small_paired))
    assert not list(tmp_path.glob(".*tmp")), "temporary files left behind"


def test_save_replaces_existing_dataset(tmp_path, small_paired):
    path = tmp_path / "d.zarr"
    save_paired(small_paired, path)
    save_paired(small_paired.isel(time=[0, 1]), path)
    assert open_paired(path).sizes["time"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]


def test_open_missing_and_foreign_files(tmp_path):
    with pytest.raises(InputError, match="no dataset at"):
        open_paired(tmp_path / "absent.zarr")
    bogus = tmp_path / "bogus.nc"
    bogus.write_text("not a netcdf file")
    with pytest.raises(InputError, match="not a readable Zarr/NetCDF dataset"):
        open_paired(bogus)


def test_summary_statistics(small_paired):
    info = summarize(small_paired)
    rain = small_paired["rain"].values
    valid = rain[np.isfinite(rain)]
    assert info["times"]["count"] == 4 and info["times"]["steps_min"] == [15]
    assert info["rain"]["coverage"] == pytest.approx(valid.size / rain.size, abs=1e-4)
    assert info["rain"]["wet_fraction_0.1"] == pytest.approx((valid > 0.1).mean(), abs=1e-4)
    assert info["rain"]["wet_p99_mm_h"] == pytest.approx(np.percentile(valid[valid > 0.1], 99), rel=1e-3)


def test_cli_info_prints_summary_and_fails_cleanly(tmp_path, small_paired, capsys):
    path = save_paired(small_paired, tmp_path / "d.zarr")
    assert main(["data", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 steps, 2021-06-01T12:00 .. 2021-06-01T12:45 UTC, every 15 min" in out
    assert "32 x 48 pixels of 2 x 2 km" in out
    assert main(["data", "info", str(tmp_path / "nope.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"qpe: error: no dataset at {tmp_path / 'nope.zarr'}"]


def test_regions_are_snapped_to_opera_pixels():
    france = get_region("france").grid(2000.0)
    assert france.shape == (600, 624)
    # OPERA pixel centres sit at odd kilometres
    assert france.x0 % 2000 == 1000 and abs(france.y0) % 2000 == 1000
    lon, lat = france.lonlat()
    # covers mainland France (lon -5.2..9.6, lat 41.3..51.1) without spilling far beyond it
    assert -10 < lon.min() < -5.2 and 9.6 < lon.max() < 13 and 39 < lat.min() < 41.3 and 51.1 < lat.max() < 53
    with pytest.raises(DatasetError, match="known regions: europe, finland, france, netherlands, switzerland"):
        get_region("atlantis")
