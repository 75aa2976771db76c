"""SEVIRI brightness temperatures from CF NetCDF/Zarr (satpy's CF writer output) -> ``ir``."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from qpe.cli import main
from qpe.data.grid import Grid, get_region
from qpe.data.paired import open_paired
from qpe.data.readers import get_reader, read_seviri
from qpe.errors import DatasetError, InputError

DATA = Path(__file__).resolve().parent / "data"
FILES = sorted(DATA.glob("seviri_cf_*.nc"))


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_seviri_cf", DATA / "make_seviri_cf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURE = _fixture_module()
SEVIRI_ORDER = ["WV_062", "IR_087", "IR_108", "IR_120"]


@pytest.fixture(scope="module")
def native() -> xr.Dataset:
    return read_seviri([str(p) for p in FILES])


@pytest.fixture(scope="module")
def france() -> xr.Dataset:
    return read_seviri(str(DATA / "seviri_cf_*.nc"), region="france")


def test_channels_come_in_seviri_order_in_kelvin(native):
    assert FIXTURE.CHANNELS != tuple(SEVIRI_ORDER)  # the files store them in another order
    assert list(native["channel"].values) == SEVIRI_ORDER
    assert native["ir"].attrs["units"] == "K"
    np.testing.assert_allclose(native["wavelength"].values, [6.25, 8.7, 10.8, 12.0], rtol=1e-6)


def test_times_from_time_coordinate_and_start_time_attribute(native):
    # 18:00 file: `time` coordinate; 18:15 file: only start_time (the scan start, 9 s into the slot);
    # no line times in these files: the file's time is the scan time, put on the 15-minute radar time
    assert list(pd.DatetimeIndex(native["scan_time"].values)) == [
        pd.Timestamp("2018-08-24T18:00:00"), pd.Timestamp("2018-08-24T18:15:09")]
    assert list(pd.DatetimeIndex(native["time"].values)) == [
        pd.Timestamp("2018-08-24T18:00:00"), pd.Timestamp("2018-08-24T18:15:00")]
    assert native.attrs["seviri_scan_time_rule"] == "the file's time (no line acquisition times)"


def test_native_grid_and_values_are_the_files(native):
    x, y = FIXTURE.pixel_centres()
    grid = Grid.from_dataset(native)
    assert grid.pyproj_crs.to_cf()["grid_mapping_name"] == "geostationary"
    np.testing.assert_allclose(grid.x, x)
    np.testing.assert_allclose(grid.y, y)
    xx, yy = np.meshgrid(x, y)
    for t in range(2):
        for c, channel in enumerate(SEVIRI_ORDER):
            expected = FIXTURE.brightness_temperature(channel, xx, yy, t).astype("float32")
            np.testing.assert_array_equal(native["ir"].values[t, c], expected)


def test_france_grid_is_bilinear_on_the_smooth_field(france):
    target = get_region("france").grid(2000.0)
    assert Grid.from_dataset(france).matches(target)
    tx, ty = np.meshgrid(target.x, target.y)
    to_geos = pyproj.Transformer.from_crs(target.crs, pyproj.CRS(FIXTURE.GEOS_PROJ), always_xy=True)
    gx, gy = to_geos.transform(tx, ty)
    assert np.isfinite(france["ir"].values).all()
    for c, channel in enumerate(SEVIRI_ORDER):
        # bilinear on 18 x 15 km pixels of a 150 km wide cloud: error below 0.3 K
        expected = FIXTURE.brightness_temperature(channel, gx, gy, 1)
        np.testing.assert_allclose(france["ir"].values[1, c], expected, atol=0.3)


def test_files_in_reverse_order_are_sorted(native):
    back = read_seviri([str(p) for p in FILES[::-1]])
    xr.testing.assert_identical(back["ir"], native["ir"])


def test_zarr_store_with_a_time_dimension_reads_the_same(tmp_path, native):
    first = xr.open_dataset(FILES[0]).drop_vars("time_bnds")
    second = xr.open_dataset(FILES[1]).expand_dims(time=[np.datetime64("2018-08-24T18:15:09", "ns")])
    store = xr.concat([first, second], dim="time", data_vars="minimal", coords="minimal", compat="override")
    store["time"].encoding = {"units": "seconds since 2018-08-24T00:00:00", "dtype": "int64"}
    store.to_zarr(tmp_path / "seviri.zarr", zarr_format=2)
    back = read_seviri(tmp_path / "seviri.zarr")
    np.testing.assert_array_equal(back["ir"].values, native["ir"].values)
    np.testing.assert_array_equal(back["time"].values, native["time"].values)


def test_channel_selection(native):
    ds = read_seviri([str(p) for p in FILES], channels=["IR_108", "WV_062"])
    assert list(ds["channel"].values) == ["WV_062", "IR_108"]
    np.testing.assert_array_equal(ds["ir"].sel(channel="IR_108").values,
                                  native["ir"].sel(channel="IR_108").values)


def test_command_writes_an_ir_dataset(tmp_path, capsys):
    out = tmp_path / "ir.zarr"
    assert main(["data", "seviri", "--in", str(DATA / "seviri_cf_*.nc"), "--region", "france",
                 "--pixel-km", "4", "--out", str(out)]) == 0
    assert "read 2 frames of WV_062, IR_087, IR_108, IR_120" in capsys.readouterr().out
    ds = open_paired(out, require=("ir",))
    assert ds["ir"].shape == (2, 4, 300, 312) and "ir_mean" in ds


def test_registry_gives_the_seviri_reader():
    assert get_reader("seviri_cf") is read_seviri


def test_a_fresh_satpy_cf_file_reads_back(tmp_path, native):
    pytest.importorskip("satpy", reason="satpy (optional extra 'satpy') is not installed")
    pytest.importorskip("pyresample", reason="pyresample (optional extra 'satpy') is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # satpy's own warnings (time encoding)
        paths = FIXTURE.write_files(tmp_path)
    fresh = read_seviri([str(p) for p in paths])
    xr.testing.assert_identical(fresh["ir"], native["ir"])


# -- bad inputs: one clear line each -------------------------------------------------------------------
def _rewrite(tmp: Path, name: str, change, source: Path = FILES[1]) -> str:
    ds = xr.open_dataset(source).load()
    ds.close()
    ds = change(ds)
    path = tmp / name
    ds.to_netcdf(path)
    return str(path)


def _celsius(ds):
    ds["IR_108"] = (ds["IR_108"] - 273.15).assign_attrs({**ds["IR_108"].attrs, "units": "degC"})
    return ds


def _radiance(ds):
    ds["IR_108"].attrs.update(units="mW m-2 sr-1 (cm-1)-1",
                              standard_name="toa_outgoing_radiance_per_unit_wavenumber")
    return ds


def _radiance_named_kelvin(ds):
    ds["IR_108"].attrs["standard_name"] = "toa_outgoing_radiance_per_unit_wavenumber"
    return ds


def _visible_only(ds):
    return ds[["msg_france"]].assign(VIS006=ds["IR_108"] / 300.0)


def _no_time(ds):
    for name in FIXTURE.CHANNELS:
        ds[name].attrs.pop("start_time")
    return ds


def _no_xy(ds):
    return ds.drop_vars(["x", "y"])


def _bad(case: str, tmp: Path) -> tuple[list[str], dict]:
    if case == "degrees celsius":
        return [_rewrite(tmp, "celsius.nc", _celsius)], {}
    if case == "radiance units":
        return [_rewrite(tmp, "radiance.nc", _radiance)], {}
    if case == "radiance standard name":
        return [_rewrite(tmp, "radiance_k.nc", _radiance_named_kelvin)], {}
    if case == "no ir channel":
        return [_rewrite(tmp, "vis.nc", _visible_only)], {}
    if case == "no time":
        return [_rewrite(tmp, "notime.nc", _no_time)], {}
    if case == "no x/y":
        return [_rewrite(tmp, "noxy.nc", _no_xy)], {}
    if case == "channels differ":
        return [str(FILES[0]), _rewrite(tmp, "three.nc", lambda ds: ds.drop_vars("IR_087"))], {}
    if case == "duplicated time":
        return [str(FILES[1]), _rewrite(tmp, "copy.nc", lambda ds: ds)], {}
    if case == "not netcdf":
        (tmp / "fake.nc").write_text("not a netcdf file")
        return [str(tmp / "fake.nc")], {}
    if case == "unknown channel":
        return [str(FILES[0])], {"channels": ["IR_108", "VIS006"]}
    if case == "missing channel":
        return [str(FILES[0])], {"channels": ["IR_108", "IR_134"]}
    if case == "empty glob":
        return [str(tmp / "*.nc")], {}
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("degrees celsius", DatasetError,
         "celsius.nc: channel IR_108 is in 'degC'; expected brightness temperature in K"),
        ("radiance units", DatasetError,
         "channel IR_108 is in 'mW m-2 sr-1 (cm-1)-1'; expected brightness temperature in K"),
        ("radiance standard name", DatasetError,
         "is 'toa_outgoing_radiance_per_unit_wavenumber', not toa_brightness_temperature"),
        ("no ir channel", InputError, "vis.nc holds no SEVIRI IR channel variable"),
        ("no time", InputError, "notime.nc has no time: no 'time' coordinate and no start_time attribute"),
        ("no x/y", InputError, "noxy.nc has no projected x/y coordinates"),
        ("channels differ", InputError,
         "three.nc has channels WV_062, IR_108, IR_120, the first file WV_062, IR_087, IR_108, IR_120"),
        ("duplicated time", InputError, "have the same time 2018-08-24T18:15"),
        ("not netcdf", InputError, "fake.nc is not a readable CF NetCDF/Zarr file"),
        ("unknown channel", InputError, "unknown channel(s) VIS006"),
        ("missing channel", InputError, "lacks channel(s) IR_134"),
        ("empty glob", InputError, "no SEVIRI files match"),
    ],
)
def test_bad_input_gives_one_error_line(tmp_path, case, error, message):
    paths, options = _bad(case, tmp_path)
    with pytest.raises(error) as err:
        read_seviri(paths, region="france", **options)
    assert message in str(err.value) and "\n" not in str(err.value)
