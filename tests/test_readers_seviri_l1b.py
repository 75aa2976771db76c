"""SEVIRI level-1.5 files (native, HRIT, EUMETSAT NetCDF) through satpy: calibration, the real SEVIRI grid,
pyresample onto the radar grid, scan times on 15-minute radar times, parallax against known geometry.

The files are written by ``tests/data/make_seviri_l1b.py`` with satpy's own record layouts of the three
formats on the real SEVIRI reference grid (what is real and what is generated is said there), and read
by the same satpy code a user's files go through.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import tomllib
import xarray as xr

from qpe.cli import main
from qpe.data.grid import OPERA_CRS, Grid, get_region
from qpe.data.paired import open_paired
from qpe.data.parallax import CloudTopRule, away_from_satellite, fill_hidden
from qpe.data.readers.inputs import SkippedFilesWarning
from qpe.data.readers.seviri import SeviriFramesLeftOutWarning, file_format, read_seviri
from qpe.data.readers.seviri_l1b import target_area
from qpe.errors import InputError

# satpy and pyresample come with the test extra (CI installs it): these tests run there
satpy = pytest.importorskip("satpy", reason="satpy (the 'satpy' extra, in the 'test' extra) is not installed")
pytest.importorskip("pyresample", reason="pyresample (the 'satpy' extra) is not installed")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def _load_builder():
    spec = importlib.util.spec_from_file_location("make_seviri_l1b", DATA / "make_seviri_l1b.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


L1B = _load_builder()
READERS = ("seviri_l1b_native", "seviri_l1b_nc", "seviri_l1b_hrit")
SLOTS = (L1B.Slot(dt.datetime(2018, 8, 24, 18, 0)), L1B.Slot(dt.datetime(2018, 8, 24, 18, 15)))
HRIT_CHANNELS = ("WV_062", "IR_108")  # full-width segments are large: two channels
FRANCE = get_region("france").grid(2000.0)


def _france_window(lon_0: float):
    lon, lat = FRANCE.lonlat()
    return L1B.window_over(lon, lat, lon_0)


def _slot_field(index: int):
    return lambda channel, x, y: L1B.default_field(channel, x, y, index)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """One folder per format: native and NetCDF with two slots, HRIT with one."""
    out = {}
    window = _france_window(0.0)
    for reader in READERS:
        folder = tmp_path_factory.mktemp(reader)
        slots = SLOTS[:1] if reader == "seviri_l1b_hrit" else SLOTS
        channels = HRIT_CHANNELS if reader == "seviri_l1b_hrit" else L1B.IR_CHANNELS
        for i, slot in enumerate(slots):
            L1B.write_slot(reader, folder, slot, window, _slot_field(i), channels)
        out[reader] = folder
    return out


_CACHE: dict = {}


def _read(folders, reader: str, method: str = "bilinear", **options) -> xr.Dataset:
    """read_seviri of a format's folder onto France at 4 km (cached: several tests look at one read)."""
    key = (reader, method, tuple(sorted(options.items())))
    if key not in _CACHE:
        _CACHE[key] = read_seviri(str(folders[reader] / "*"), region="france", pixel_km=4, method=method,
                                  **options)
    return _CACHE[key]


def _geos_xy(grid: Grid, lon_0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Geostationary x, y (m) of a grid's pixel centres."""
    xx, yy = np.meshgrid(grid.x, grid.y)
    return pyproj.Transformer.from_crs(grid.pyproj_crs, L1B.geos_crs(lon_0), always_xy=True).transform(xx, yy)


# -- files, grid, calibration ------------------------------------------------------------------------------
def test_format_is_told_from_eumetsat_names():
    assert file_format(Path(L1B.native_name(SLOTS[0]))) == "seviri_l1b_native"
    assert file_format(Path(L1B.netcdf_name(SLOTS[0]))) == "seviri_l1b_nc"
    assert file_format(Path(L1B._hrit_name(SLOTS[0], "IR_108", 8))) == "seviri_l1b_hrit"
    assert file_format(Path(L1B._hrit_name(SLOTS[0], "PRO"))) == "seviri_l1b_hrit"
    assert file_format(DATA / "seviri_cf_20180824T1800.nc") == "cf"


@pytest.mark.parametrize("reader", READERS)
def test_files_lie_on_the_real_seviri_grid(folders, reader):
    from satpy import Scene
    from satpy.area import get_area_def

    files = sorted(folders[reader].iterdir())
    scene = Scene([str(p) for p in (files if reader == "seviri_l1b_hrit" else files[:1])], reader=reader)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene.load(["IR_108"], upper_right_corner="NE")
    area = scene["IR_108"].attrs["area"]
    full = get_area_def("msg_seviri_fes_3km")
    if reader == "seviri_l1b_hrit":
        expected = full  # HRIT segments come padded to the full disk
    else:
        w = _france_window(0.0)  # rows north first, columns west first
        expected = full[L1B.GRID_SIZE - w.north: L1B.GRID_SIZE - w.south + 1,
                        L1B.GRID_SIZE - w.west: L1B.GRID_SIZE - w.east + 1]
    assert area.shape == expected.shape
    # the native and NetCDF headers store the grid step to 0.1 mm less than HRIT: 0.2 m over the disk
    np.testing.assert_allclose(area.area_extent, expected.area_extent, atol=1.0)
    cf = area.crs.to_cf()
    assert cf["longitude_of_projection_origin"] == 0 and cf["perspective_point_height"] == L1B.SAT_HEIGHT_M


@pytest.mark.parametrize("reader", ["seviri_l1b_native", "seviri_l1b_nc"])
def test_brightness_temperature_is_the_calibrated_counts(folders, reader):
    """On the files' own grid: satpy's BT equals the counts through the calibration written out by hand
    (slope/offset, Planck with the channel's wavenumber, EUMETSAT's spectral-radiance fit)."""
    ds = read_seviri(str(folders[reader] / "*"), channels=["WV_062", "IR_108", "IR_134"])
    window = _france_window(0.0)  # the grid: rows north first, columns west first
    x, y = L1B.pixel_x(window.columns[::-1]), L1B.pixel_y(window.lines[::-1])
    np.testing.assert_allclose(Grid.from_dataset(ds).x, x, atol=1.0)
    np.testing.assert_allclose(Grid.from_dataset(ds).y, y, atol=1.0)
    gx, gy = np.meshgrid(x, y)
    for c, channel in enumerate(ds["channel"].values):
        for t in range(2):
            field = L1B.default_field(str(channel), gx, gy, t)
            by_hand = L1B.bt_from_counts(L1B.counts_from_bt(field, str(channel)), str(channel))
            np.testing.assert_allclose(ds["ir"].values[t, c], by_hand, atol=2e-3)
            np.testing.assert_allclose(ds["ir"].values[t, c], field, atol=0.25)  # 10-bit steps
    assert ds["ir"].attrs["units"] == "K" and ds.attrs["seviri_resampling"].startswith("none: the first slot")


@pytest.mark.parametrize("method, atol", [("bilinear", 0.35), ("nearest", 1.2)])
@pytest.mark.parametrize("reader", READERS)
def test_resampled_onto_the_radar_grid(folders, reader, method, atol):
    """pyresample onto France (OPERA LAEA, 4 km): the field at each target pixel centre, to within the
    interpolation error over 3 x 4.5 km pixels (a 70 K cloud 150 km wide; nearest is up to 2.5 km off)."""
    ds = _read(folders, reader, method)
    assert Grid.from_dataset(ds).matches(get_region("france").grid(4000.0))
    gx, gy = _geos_xy(Grid.from_dataset(ds))
    for c, channel in enumerate(ds["channel"].values):
        values = ds["ir"].values[0, c]
        ok = np.isfinite(values)
        assert ok.mean() > 0.999  # bilinear leaves a corner pixel or two at the window's edge
        np.testing.assert_allclose(values[ok], L1B.default_field(str(channel), gx, gy, 0)[ok], atol=atol)
    assert method in ds.attrs["seviri_resampling"] and "pyresample" in ds.attrs["seviri_resampling"]
    assert ds.attrs["seviri_reader"] == f"satpy {satpy.__version__} {reader}"
    assert ds.attrs["seviri_parallax"] == "off"


def test_the_three_formats_give_one_image(folders):
    native, nc, hrit = (_read(folders, reader) for reader in READERS)
    for channel in HRIT_CHANNELS:
        first = native["ir"].sel(channel=channel).values[0]
        # the same counts; the areas differ by the headers' 0.2 m and float32 extents
        np.testing.assert_allclose(nc["ir"].sel(channel=channel).values[0], first, atol=0.05)
        np.testing.assert_allclose(hrit["ir"].sel(channel=channel).values[0], first, atol=0.05)


# -- time ---------------------------------------------------------------------------------------------------
def _centre_line_time(slot) -> pd.Timestamp:
    """When the slot scanned the line over the France grid's centre pixel (from the geometry, here)."""
    lon, lat = pyproj.Transformer.from_crs(FRANCE.pyproj_crs, "EPSG:4326", always_xy=True).transform(
        FRANCE.x[FRANCE.nx // 2], FRANCE.y[FRANCE.ny // 2])
    to_geos = pyproj.Transformer.from_crs("EPSG:4326", L1B.geos_crs(slot.lon_0), always_xy=True)
    _, y = to_geos.transform(lon, lat)
    line = round(y / L1B.STEP_M + L1B.GRID_SIZE / 2)
    return pd.Timestamp(slot.line_times(np.array([line]))[0])


def test_scan_time_is_the_line_over_the_grid_centre_and_time_the_nearest_radar_time(folders):
    ds = read_seviri(str(folders["seviri_l1b_native"] / "*.nat"), region="france", pixel_km=8)
    scans = pd.DatetimeIndex(ds["scan_time"].values)
    for scan, slot in zip(scans, SLOTS, strict=True):
        assert abs(scan - _centre_line_time(slot)) <= pd.Timedelta(seconds=1)
        assert pd.Timedelta(minutes=10) < scan - slot.start < pd.Timedelta(minutes=12)  # France: ~11 min in
    # the 18:00 slot saw France at ~18:11: nearest radar time 18:15 (the 18:15 slot: 18:30)
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["18:15", "18:30"]
    assert list(pd.DatetimeIndex(ds["slot_time"].values).strftime("%H:%M")) == ["18:00", "18:15"]
    assert ds.attrs["seviri_scan_time_rule"].startswith("acquisition time of the line over the grid centre")
    assert ds.attrs["seviri_time_tolerance_min"] == 7.5 and ds.attrs["seviri_time_step_min"] == 15.0


@pytest.fixture(scope="module")
def rapid_scan(tmp_path_factory) -> tuple[Path, list]:
    """Four rapid-scan slots (Meteosat-10 at 9.5 E, every 5 minutes), two channels (satpy 0.60 cannot
    read a native file of a single channel: its line times keep a channel axis)."""
    folder = tmp_path_factory.mktemp("rss")
    slots = [L1B.Slot(dt.datetime(2018, 8, 24, 18, 0) + dt.timedelta(minutes=5 * k), rapid_scan=True,
                      platform_id=323) for k in range(4)]
    for slot in slots:
        L1B.write_native(folder, slot, _france_window(slot.lon_0), channels=["WV_062", "IR_108"])
    return folder, slots


def test_rapid_scan_slots_go_to_the_nearest_radar_times_closest_first(rapid_scan):
    folder, slots = rapid_scan
    scans = [_centre_line_time(s) for s in slots]  # ~2.8 min into each 5-minute slot
    with pytest.warns(SeviriFramesLeftOutWarning, match="left out 2 of 4 SEVIRI frames") as caught:
        ds = read_seviri(str(folder / "*.nat"), region="france", pixel_km=8, method="nearest")
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["18:00", "18:15"]
    # 18:15 is nearer the 18:10 slot's scan (18:12:5x) than the 18:15 slot's (18:17:5x)
    for got, want in zip(pd.DatetimeIndex(ds["scan_time"].values), [scans[0], scans[2]], strict=True):
        assert abs(got - want) <= pd.Timedelta(seconds=1)
    note = ds.attrs["seviri_frames_left_out"]
    assert note.count("is closer to") == 2 and "\n" not in str(caught[0].message)
    assert "Meteosat-10" in ds.attrs["source"]


def test_a_tolerance_leaves_out_scans_too_far_from_a_radar_time(rapid_scan):
    folder, slots = rapid_scan
    gaps = [abs(_centre_line_time(s) - _centre_line_time(s).round("15min")) for s in slots]
    tolerance = (min(gaps) + pd.Timedelta(seconds=20)) / pd.Timedelta(minutes=1)  # only the closest fits
    with pytest.warns(SeviriFramesLeftOutWarning, match="more than the"):
        ds = read_seviri(str(folder / "*.nat"), region="france", pixel_km=8, method="nearest",
                         tolerance_min=tolerance)
    assert ds.sizes["time"] == 1 and ds.attrs["seviri_time_tolerance_min"] == pytest.approx(tolerance)
    with pytest.raises(InputError, match="no SEVIRI frame is within 0.5 min of a 15-minute time"):
        read_seviri(str(folder / "*.nat"), region="france", pixel_km=8, tolerance_min=0.5)


# -- parallax -----------------------------------------------------------------------------------------------
CLOUD_LON, CLOUD_LAT, CLOUD_TOP_M, CLOUD_RADIUS_M = 2.0, 47.0, 10_000.0, 40_000.0
SURFACE_K = 288.0
EARTH_RADIUS_M = 6_378_137.0  # the sphere of satpy's parallax code (pyorbital's A)
ORBIT_RADIUS_M = 42_164_000.0


def apparent_to_true(lon: float, lat: float, height: float, sat_lon: float) -> tuple[float, float]:
    """Where a cloud top seen at (lon, lat) really is, by vector geometry on a sphere, independent of satpy:
    the top lies on the line of sight from the satellite (equator, ``sat_lon``) to the apparent point, at
    ``height`` above the surface; its ground point is straight below it."""
    def xyz(lo, la, r):
        lo, la = np.deg2rad(lo), np.deg2rad(la)
        return r * np.array([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])

    seen, sat = xyz(lon, lat, EARTH_RADIUS_M), xyz(sat_lon, 0.0, ORBIT_RADIUS_M)
    ray = seen - sat
    a, b, c = ray @ ray, 2 * sat @ ray, sat @ sat - (EARTH_RADIUS_M + height) ** 2
    top = sat + (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a) * ray  # first crossing of the sphere r = R + h
    ground = top / np.linalg.norm(top)
    return float(np.rad2deg(np.arctan2(ground[1], ground[0]))), float(np.rad2deg(np.arcsin(ground[2])))


def _cloud_field(lon_0: float):
    """A 10 km cloud top (IR_108 = 288 - 65 = 223 K: 10 km at 6.5 K/km) 80 km across, seen at 2 E 47 N,
    over a uniform 288 K surface."""
    to_lonlat = pyproj.Transformer.from_crs(L1B.geos_crs(lon_0), "EPSG:4326", always_xy=True)
    geod = pyproj.Geod(ellps="WGS84")

    def field(channel, x, y):
        lon, lat = to_lonlat.transform(x, y)
        _, _, dist = geod.inv(np.full(np.shape(lon), CLOUD_LON), np.full(np.shape(lon), CLOUD_LAT), lon, lat)
        top_k = SURFACE_K - 6.5 * CLOUD_TOP_M / 1000
        cloud_k = top_k if channel == "IR_108" else L1B.BACKGROUND_K[channel] - 50
        background_k = SURFACE_K if channel == "IR_108" else L1B.BACKGROUND_K[channel]
        return np.where(np.asarray(dist) < CLOUD_RADIUS_M, cloud_k, background_k)

    return field


def _cloud_grid() -> Grid:
    """240 km square at 2 km on the OPERA projection around the cloud."""
    x, y = pyproj.Transformer.from_crs("EPSG:4326", OPERA_CRS, always_xy=True).transform(CLOUD_LON, CLOUD_LAT)
    return Grid.centred(OPERA_CRS, (round(x / 2000) * 2000, round(y / 2000) * 2000 - 6000), 120, 2000.0)


def _core_centroid(ds: xr.Dataset) -> np.ndarray:
    """x, y (m) of the cloud's core: pixels within 3 K of its top temperature."""
    bt = ds["ir"].sel(channel="IR_108").values[0]
    grid = Grid.from_dataset(ds)
    xx, yy = np.meshgrid(grid.x, grid.y)
    core = bt < SURFACE_K - 6.5 * CLOUD_TOP_M / 1000 + 3.0
    return np.array([xx[core].mean(), yy[core].mean()])


@pytest.mark.parametrize("rapid", [False, True], ids=["0E full disk", "9.5E rapid scan"])
def test_parallax_moves_a_cloud_toward_the_sub_satellite_point_by_the_expected_distance(tmp_path, rapid):
    slot = L1B.Slot(dt.datetime(2018, 8, 24, 12, 0), rapid_scan=rapid, platform_id=323 if rapid else 324)
    L1B.write_native(tmp_path, slot, _france_window(slot.lon_0), _cloud_field(slot.lon_0),
                     channels=["WV_062", "IR_108"])
    grid = _cloud_grid()
    plain = read_seviri(str(tmp_path / "*.nat"), grid)
    corrected = read_seviri(str(tmp_path / "*.nat"), grid, parallax=True)
    measured = _core_centroid(corrected) - _core_centroid(plain)

    true_lon, true_lat = apparent_to_true(CLOUD_LON, CLOUD_LAT, CLOUD_TOP_M, slot.lon_0)
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", OPERA_CRS, always_xy=True)
    expected = np.subtract(to_grid.transform(true_lon, true_lat), to_grid.transform(CLOUD_LON, CLOUD_LAT))
    assert 13_000 < np.hypot(*expected) < 14_500  # ~1.37 km per km of height at 47 N
    np.testing.assert_allclose(measured, expected, atol=500.0)  # a quarter of a 2 km pixel
    # toward the sub-satellite point: the azimuth of the move is the azimuth to (lon_0, 0)
    geod = pyproj.Geod(ellps="WGS84")
    to_ssp, _, _ = geod.inv(CLOUD_LON, CLOUD_LAT, slot.lon_0, 0.0)
    moved, _, _ = geod.inv(CLOUD_LON, CLOUD_LAT, *pyproj.Transformer.from_crs(
        OPERA_CRS, "EPSG:4326", always_xy=True).transform(*(np.array(to_grid.transform(CLOUD_LON, CLOUD_LAT))
                                                            + measured)))
    assert abs(moved - to_ssp) < 3.0
    # clear sky far from the cloud is unchanged; hidden ground is filled, nothing is NaN
    far = np.hypot(*np.meshgrid(grid.x - grid.x.mean(), grid.y - grid.y.mean())) > 80_000
    np.testing.assert_allclose(corrected["ir"].values[0][:, far], plain["ir"].values[0][:, far], atol=1e-3)
    assert np.isfinite(corrected["ir"].values).all()
    assert corrected.attrs["seviri_parallax"].startswith("on: satpy.modifiers.parallax.ParallaxCorrection")
    assert "6.5 K/km" in corrected.attrs["seviri_cloud_top_rule"]


def test_a_cloud_top_height_product_gives_the_heights_of_its_slot(tmp_path):
    """NWC SAF CTTH heights equal to the IR rule's (10 km on the cloud) give the same image; a product of
    another slot is not used (the IR rule is, and the attributes say so)."""
    slot = L1B.Slot(dt.datetime(2018, 8, 24, 12, 0))
    window = _france_window(0.0)
    native = L1B.write_native(tmp_path, slot, window, _cloud_field(0.0), channels=["WV_062", "IR_108"])
    top_k = float(L1B.bt_from_counts(L1B.counts_from_bt(SURFACE_K - 65.0, "IR_108"), "IR_108"))
    rule = CloudTopRule(surface_k=top_k + 65.0)  # exactly 10 km for the cloud's 10-bit temperature

    def heights(x, y):
        return np.where(_cloud_field(0.0)("IR_108", x, y) < 250.0, CLOUD_TOP_M, np.nan)

    (tmp_path / "now").mkdir()
    (tmp_path / "later").mkdir()
    product = L1B.write_nwcsaf_ctth(tmp_path / "now", slot, window, heights)
    later = L1B.write_nwcsaf_ctth(tmp_path / "later", L1B.Slot(dt.datetime(2018, 8, 24, 12, 15)), window,
                                  heights)
    grid = _cloud_grid()
    from_ir = read_seviri(str(native), grid, parallax=True, cloud_top=rule)
    from_product = read_seviri(str(native), grid, parallax=True, cloud_top=rule, cth_files=str(product))
    np.testing.assert_allclose(from_product["ir"].values, from_ir["ir"].values, atol=1e-3)
    assert not np.allclose(from_product["ir"].values, read_seviri(str(native), grid)["ir"].values, atol=1.0)
    assert "from the cloud-top-height product (nwcsaf-geo ctth_alti) for 1 slot(s)" in (
        from_product.attrs["seviri_parallax"])
    unused = read_seviri(str(native), grid, parallax=True, cloud_top=rule, cth_files=str(later))
    assert "product" not in unused.attrs["seviri_parallax"]
    assert "by seviri_cloud_top_rule for 1 slot(s)" in unused.attrs["seviri_parallax"]


def test_cloud_top_rule():
    rule = CloudTopRule()
    bt = np.array([300.0, 288.0, 223.0, 150.0, np.nan])
    np.testing.assert_allclose(rule.height_m(bt, 288.0), [0.0, 0.0, 10_000.0, 16_000.0, np.nan])
    assert rule.surface_temperature(np.array([[250.0] * 97 + [290.0, 291.0, 292.0]])) == pytest.approx(290.02)
    assert CloudTopRule(surface_k=295.0).surface_temperature(np.array([200.0])) == 295.0
    assert "(T_s - BT_108) / 6.5 K/km" in rule.describe() and "98th percentile" in rule.describe()
    for bad, message in (({"lapse_rate_k_per_km": 0.0}, "lapse rate"), ({"surface_k": 20.0}, "150..350 K"),
                         ({"max_height_km": -1.0}, "maximum cloud-top height")):
        with pytest.raises(InputError, match=message):
            CloudTopRule(**bad)


def test_hidden_ground_takes_the_first_visible_pixel_away_from_the_satellite():
    grid = Grid.centred(OPERA_CRS, (1_300_000.0, -2_960_000.0), 20, 2000.0)  # France
    away = away_from_satellite(target_area(grid), 0.0, 0.0)
    assert (away[0] < -0.9).all()  # north: up the rows, and a little east
    values = np.arange(400.0).reshape(1, 20, 20)
    hidden = np.zeros((20, 20), dtype=bool)
    hidden[8:11, 5] = True
    filled = fill_hidden(values, hidden, away)
    visible = ~hidden
    np.testing.assert_array_equal(filled[0][visible], values[0][visible])
    # each hidden pixel takes a visible pixel just north of the hidden run (row 7), not its own value
    assert set(np.unique(filled[0, 8:11, 5] // 20)) == {7}


# -- other sources of the same slot -------------------------------------------------------------------------
def test_a_satpy_cf_file_of_the_slot_keeps_its_line_times(folders, tmp_path):
    """satpy's CF writer keeps the line times (``<channel>_acq_time``): the CF path finds the same scan time
    and radar time as the native file, and nearly the same values (qpe's bilinear, not pyresample's)."""
    from satpy import Scene

    native = min(folders["seviri_l1b_native"].glob("*.nat"))
    scene = Scene([str(native)], reader="seviri_l1b_native")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene.load(["WV_062", "IR_108"], upper_right_corner="NE")
        scene.save_datasets(writer="cf", filename=str(tmp_path / "slot.nc"), include_lonlats=False)
    cf = read_seviri(str(tmp_path / "slot.nc"), region="france", pixel_km=4)
    direct = read_seviri(str(native), region="france", pixel_km=4, channels=["WV_062", "IR_108"])
    np.testing.assert_array_equal(cf["scan_time"].values, direct["scan_time"].values)
    np.testing.assert_array_equal(cf["time"].values, direct["time"].values)
    # two bilinear schemes (qpe's in the geostationary plane, pyresample's on the sphere): 0.15 K on the
    # steepest slope of the cloud (0.3 K/km)
    np.testing.assert_allclose(cf["ir"].values, direct["ir"].values, atol=0.15)
    assert cf.attrs["seviri_reader"].startswith("cf")
    assert "Regridder bilinear" in cf.attrs["seviri_resampling"]


def test_command_writes_a_parallax_corrected_dataset(folders, tmp_path, capsys):
    out = tmp_path / "ir.zarr"
    assert main(["data", "seviri", "--in", str(folders["seviri_l1b_nc"] / "*.nc"), "--region", "france",
                 "--pixel-km", "8", "--method", "nearest", "--parallax", "--surface-k", "295", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read 2 frames of WV_062, WV_073, IR_087, IR_097, IR_108, IR_120, IR_134" in printed
    assert "2018-08-24T18:15 .. 2018-08-24T18:30 UTC (satpy" in printed
    ds = open_paired(out, require=("ir",))
    assert ds.attrs["seviri_reader"].endswith("seviri_l1b_nc")
    assert "295 K" in ds.attrs["seviri_cloud_top_rule"]
    assert ds.attrs["seviri_resampling"].startswith("nearest sampling at the parallax-corrected positions")
    slots, scans = pd.DatetimeIndex(ds["slot_time"].values), pd.DatetimeIndex(ds["scan_time"].values)
    assert list(slots.strftime("%H:%M")) == ["18:00", "18:15"]
    assert ((scans - slots > pd.Timedelta(minutes=10)) & (scans - slots < pd.Timedelta(minutes=12))).all()


def test_nothing_is_downloaded(folders, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ds = read_seviri(str(folders["seviri_l1b_native"] / "*.nat"), region="france", pixel_km=8,
                     channels=["IR_108"], parallax=True)
    assert np.isfinite(ds["ir"].values).all()


# -- bad inputs: one line each ------------------------------------------------------------------------------
def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _truncated(folders, tmp_path) -> Path:
    source = min(folders["seviri_l1b_native"].glob("*.nat"))
    path = tmp_path / source.name
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("mixed formats", "the files are of several formats: SEVIRI native level-1.5 files (*.nat)"),
        ("auto method", "resampling 'auto' is for CF files; level-1.5 files take nearest or bilinear"),
        ("parallax of cf", "parallax correction needs the level-1.5 files"),
        ("missing channel", "lacks channel(s) IR_134"),
        ("truncated", "cannot be read by satpy's seviri_l1b_native (buffer is smaller than requested size)"),
        ("outside", "does not cover the target grid"),
        ("tolerance", "time tolerance must be 0 to 7.5 minutes"),
        ("cth without parallax", "a cloud-top-height product is for parallax correction"),
        ("plax cth", "is a parallax-corrected CTTH product (_PLAX): give the uncorrected one"),
        ("hrit without prologue",
         ("(such as Epilog, Prolog) or none of the provided files match the filter parameters.; "
          "satpy: No handler for reading requirement 'HRIT_PRO' for H-000-")),
    ],
)
def test_bad_input_gives_one_error_line(folders, tmp_path, case, message):
    native = str(folders["seviri_l1b_native"] / "*.nat")
    calls = {
        "mixed formats": lambda: read_seviri([native, str(DATA / "seviri_cf_20180824T1800.nc")],
                                             region="france"),
        "auto method": lambda: read_seviri(native, region="france", method="auto"),
        "parallax of cf": lambda: read_seviri(str(DATA / "seviri_cf_*.nc"), region="france", parallax=True),
        "missing channel": lambda: read_seviri(str(folders["seviri_l1b_hrit"] / "*"), region="france",
                                               channels=["IR_108", "IR_134"]),
        "truncated": lambda: read_seviri(str(_truncated(folders, tmp_path)), region="france"),
        "outside": lambda: read_seviri(native, region="finland", pixel_km=8),
        "tolerance": lambda: read_seviri(native, region="france", tolerance_min=9),
        "cth without parallax": lambda: read_seviri(native, region="france", cth_files=native),
        "plax cth": lambda: read_seviri(native, region="france", parallax=True, cth_files=str(
            _touch(tmp_path / "S_NWC_CTTH_MSG4_EUROPE-VISIR_20180824T180000Z_PLAX.nc"))),
        "hrit without prologue": lambda: read_seviri(
            [str(p) for p in folders["seviri_l1b_hrit"].iterdir() if "-PRO" not in p.name], region="france"),
    }
    with pytest.raises(InputError) as err:
        calls[case]()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_damaged_file_among_good_ones_is_left_out(folders, tmp_path):
    good = sorted(folders["seviri_l1b_native"].glob("*.nat"))[1]
    with pytest.warns(SkippedFilesWarning, match="skipped 1 of 2 SEVIRI native level-1.5 files"):
        ds = read_seviri([str(_truncated(folders, tmp_path)), str(good)], region="france", pixel_km=8)
    assert ds.sizes["time"] == 1 and "cannot be read by satpy" in ds.attrs["skipped_files"]


def test_surface_temperature_needs_parallax(folders, capsys):
    assert main(["data", "seviri", "--in", str(folders["seviri_l1b_native"] / "*.nat"), "--region", "france",
                 "--surface-k", "290", "--out", "x.zarr"]) == 2
    assert "--surface-k is for the parallax correction; add --parallax" in capsys.readouterr().err


# -- packaging ----------------------------------------------------------------------------------------------
def test_qpe_data_and_the_command_line_do_not_import_satpy():
    code = """
import sys
import qpe.data, qpe.data.readers
from qpe.cli import main
for argv in (['--help'], ['data', 'seviri', '--help']):
    try:
        main(argv)
    except SystemExit:
        pass
print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in ('satpy', 'pyresample')))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "imported: []"


def test_the_test_extra_installs_satpy_so_these_tests_run_in_ci():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {r.split(">")[0].split("=")[0].strip() for r in extras["test"]}
    assert {"satpy", "pyresample"} <= names


# -- the archive builder: native files and OPERA composites into a paired archive ------------------------
def test_archive_build_pairs_native_files_as_the_readers_and_pairing_do(tmp_path, folders, opera_files, capsys):
    """``qpe data build --seviri '*.nat' --radar ...``: the archive holds what reading both and pairing
    (the steps of ``qpe data radar``, ``qpe data seviri`` and ``qpe data pair``) gives, value for value."""
    from qpe.data.pairing import pair
    from qpe.data.readers.radar_sources import read_radar_source

    radar = [p for p in opera_files if any(f"20180824{hhmm}" in p.name for hhmm in ("1800", "1815", "1830", "1845"))]
    radar_dir = tmp_path / "opera"
    radar_dir.mkdir()
    for path in radar:
        (radar_dir / path.name).symlink_to(path)
    out = tmp_path / "native.zarr"
    seviri = str(folders["seviri_l1b_native"] / "*.nat")
    argv = ["data", "build", "--out", str(out), "--start", "2018-08-24T18:00", "--end", "2018-08-24T18:45",
            "--seviri", seviri, "--radar", str(radar_dir / "*.hdf"), "--region", "france", "--pixel-km", "4",
            "--method", "nearest", "--block-hours", "1", "--workers", "1"]
    assert main(argv) == 0
    assert "2 of 4 times paired" in capsys.readouterr().out
    ir = _read(folders, "seviri_l1b_native", "nearest")  # all IR channels onto France at 4 km, as the build
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rain = read_radar_source(radar, grid=Grid.from_dataset(ir))
    want = pair(ir, rain)
    got = open_paired(out, require=("ir", "rain"))
    # the 18:00 and 18:15 slots are seen over France ~11 min later: the 18:15 and 18:30 radar times
    assert [f"{t:%H:%M}" for t in pd.DatetimeIndex(got["time"].values)] == ["18:15", "18:30"]
    np.testing.assert_array_equal(got["time"].values, want["time"].values)
    assert [str(c) for c in got["channel"].values] == list(L1B.IR_CHANNELS)
    for name in ("ir", "rain"):
        np.testing.assert_array_equal(got[name].values, want[name].sel(channel=list(L1B.IR_CHANNELS)).values
                                      if name == "ir" else want[name].values, err_msg=name)
    assert np.isfinite(got["ir"].values).mean() > 0.5 and np.isfinite(got["rain"].values).mean() > 0.5
    rows = json.loads((tmp_path / "native.manifest.json").read_text())["rows"]
    assert {(r["time"], r["input"]) for r in rows} >= {("2018-08-24T18:00", "seviri"), ("2018-08-24T18:45", "seviri")}
