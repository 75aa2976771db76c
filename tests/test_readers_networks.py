"""KNMI, MeteoSwiss and FMI radar files -> 15-minute radar rain: values against pysteps' own importers and
a hand computation, the 15-minute rules, Z-R, the 2 km OPERA grid, source detection and damaged files."""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyproj
import pytest
from PIL import Image

from qpe.cli import main
from qpe.data.grid import OPERA_CRS, Grid, get_region
from qpe.data.paired import open_paired
from qpe.data.readers import detect_source, get_reader, read_network, read_radar_source
from qpe.data.readers import networks as networks_module
from qpe.data.readers.inputs import SkippedFilesWarning
from qpe.data.readers.networks import NETWORKS
from qpe.errors import InputError

pytestmark = pytest.mark.shared_data


def pysteps_rate(path: Path, name: str, zr=None) -> np.ndarray:
    """Rain rate (mm/h) of one file read by pysteps alone: its importer, then to_rainrate."""
    from pysteps.io import import_fmi_pgm, import_knmi_hdf5, import_mch_gif
    from pysteps.utils.conversion import to_rainrate

    if name == "knmi":
        field, _, meta = import_knmi_hdf5(str(path))
    elif name == "mch":
        field, _, meta = import_mch_gif(str(path), product="AQC", unit="mm", accutime=5.0)
    else:
        field, _, meta = import_fmi_pgm(str(path), gzipped=True)
    a, b = zr or (None, None)
    return to_rainrate(field, meta, zr_a=a, zr_b=b)[0]


@pytest.fixture(scope="module")
def six_files(knmi_dir, mch_dir, fmi_dir) -> dict[str, list[Path]]:
    """Six consecutive 5-minute files per network, making two 15-minute steps under either rule."""
    picks = {
        "knmi": (knmi_dir, "RAD_NL25_RAP_5min_20100826{}.h5", ["0350", "0355", "0400", "0405", "0410",
                                                                "0415"]),
        "mch": (mch_dir / "20150515", "AQC15135{}F_00005.801.gif", ["1650", "1655", "1700", "1705", "1710",
                                                                    "1715"]),
        "fmi": (fmi_dir / "20160928", "20160928{}_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz",
                ["1650", "1655", "1700", "1705", "1710", "1715"]),
    }
    return {name: [folder / pattern.format(hhmm) for hhmm in times]
            for name, (folder, pattern, times) in picks.items()}


STEP_TIMES = {
    "knmi": ("2010-08-26T04:00", "2010-08-26T04:15"),
    "mch": ("2015-05-15T17:00", "2015-05-15T17:15"),
    "fmi": ("2016-09-28T17:00", "2016-09-28T17:15"),
}


@pytest.fixture(scope="module")
def native(six_files) -> dict:
    """Each network's six files on its own 1 km grid, under both rules."""
    return {(name, rule): read_network(files, name, step_rule=rule)
            for name, files in six_files.items() for rule in ("instant", "mean")}


# -- values before regridding --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["knmi", "mch", "fmi"])
def test_instant_steps_are_pysteps_rates_of_the_files_at_the_steps(native, six_files, name):
    ds = native[name, "instant"]
    assert list(pd.DatetimeIndex(ds["time"].values)) == [pd.Timestamp(t) for t in STEP_TIMES[name]]
    for k, path in zip((0, 1), (six_files[name][2], six_files[name][5]), strict=True):
        np.testing.assert_allclose(ds["rain"].values[k], pysteps_rate(path, name), rtol=1e-6, atol=1e-6)
    assert ds["rain"].attrs["units"] == "mm/h" and ds.attrs["rain_step_rule"] == "instant"
    assert ds.attrs["qc_outliers_flagged"] == 0 and "rain_quality" not in ds


@pytest.mark.parametrize("name", ["knmi", "mch", "fmi"])
def test_mean_steps_are_the_mean_of_the_three_files_ending_at_the_steps(native, six_files, name):
    ds = native[name, "mean"]
    assert list(pd.DatetimeIndex(ds["time"].values)) == [pd.Timestamp(t) for t in STEP_TIMES[name]]
    for k, files in ((0, six_files[name][:3]), (1, six_files[name][3:])):
        expected = np.mean([pysteps_rate(p, name) for p in files], axis=0)
        np.testing.assert_allclose(ds["rain"].values[k], expected, rtol=1e-6, atol=1e-6)
    assert ds.attrs["rain_step_rule"] == "mean" and "steps_left_out" not in ds.attrs


def test_the_native_grid_is_the_importers(native):
    grids = {name: Grid.from_dataset(native[name, "instant"]) for name in NETWORKS}
    assert grids["knmi"].bounds == (0.0, -4_415_000.0, 700_000.0, -3_650_000.0)  # km -> m
    assert grids["mch"].bounds == (255_000.0, -160_000.0, 965_000.0, 480_000.0)
    assert grids["fmi"].shape == (1226, 760) and grids["fmi"].dx == pytest.approx(999.674053)
    # MeteoSwiss' Albis radar (lon 8.512, lat 47.284) is at Swiss LV03 681201 m E, 237604 m N
    to_swiss = pyproj.Transformer.from_crs("EPSG:4326", grids["mch"].pyproj_crs, always_xy=True)
    x, y = to_swiss.transform(8.512, 47.284)
    assert np.hypot(x - 681_201.0, y - 237_604.0) < 100.0


# -- a pixel by hand ----------------------------------------------------------------------------------
def wettest(rain: np.ndarray) -> tuple[int, int]:
    return np.unravel_index(int(np.nanargmax(rain)), rain.shape)


def test_knmi_pixel_by_hand(native, six_files):
    """KNMI stores hundredths of mm in 5 minutes (uint16, 65535 = no data): rate = 0.01 * value * 12."""
    rain = native["knmi", "instant"]["rain"].values[0]
    row, col = wettest(rain)
    with h5py.File(six_files["knmi"][2]) as h5:
        raw = int(h5["image1/image_data"][row, col])
        assert h5["overview"].attrs["product_datetime_end"][0] == b"26-AUG-2010;04:00:00.000"  # time = end
    assert raw not in (0, 65535)
    assert rain[row, col] == pytest.approx(raw * 0.01 * 60.0 / 5.0, rel=1e-6)


def test_meteoswiss_pixel_by_hand(native, six_files):
    """AQC digital numbers: depth in 5 minutes (10^((DN - 71.5) / 20) / 316)^(1 / 1.5) mm, rate x 12."""
    rain = native["mch", "instant"]["rain"].values[0]
    row, col = wettest(rain)
    dn = int(np.array(Image.open(six_files["mch"][2]))[row, col])
    depth_mm = (10.0 ** ((dn - 71.5) / 20.0) / 316.0) ** (1.0 / 1.5)
    assert rain[row, col] == pytest.approx(depth_mm * 12.0, rel=1e-6)


def fmi_dbz(path: Path, row: int, col: int) -> float:
    """FMI PGM byte -> dBZ = (byte - 64) / 2."""
    with gzip.open(path) as f:
        return (int(np.array(Image.open(f))[row, col]) - 64) / 2.0


def test_fmi_pixel_by_hand_with_the_default_zr(native, six_files):
    rain = native["fmi", "instant"]["rain"].values[0]
    row, col = wettest(rain)
    z = 10.0 ** (fmi_dbz(six_files["fmi"][2], row, col) / 10.0)
    assert rain[row, col] == pytest.approx((z / 223.0) ** (1.0 / 1.53), rel=1e-6)
    assert native["fmi", "instant"].attrs["zr_a"] == 223.0 and native["fmi", "instant"].attrs["zr_b"] == 1.53


def test_fmi_zr_is_settable(native, six_files):
    ds = read_network(six_files["fmi"][2:3], "fmi", zr=(200.0, 1.6))
    default = native["fmi", "instant"]["rain"].values[0]
    row, col = wettest(default)
    z = 10.0 ** (fmi_dbz(six_files["fmi"][2], row, col) / 10.0)
    assert ds["rain"].values[0, row, col] == pytest.approx((z / 200.0) ** (1.0 / 1.6), rel=1e-6)
    np.testing.assert_allclose(ds["rain"].values[0], pysteps_rate(six_files["fmi"][2], "fmi", (200.0, 1.6)),
                               rtol=1e-6, atol=1e-6)
    assert (ds.attrs["zr_a"], ds.attrs["zr_b"]) == (200.0, 1.6)
    assert "(Z / 200)^(1/1.6)" in ds.attrs["rain_conversion"]


def test_no_echo_is_zero_and_no_coverage_is_nan(native):
    for name in NETWORKS:
        rain = native[name, "instant"]["rain"].values
        assert np.isnan(rain).any() and (rain == 0).any() and np.nanmin(rain) == 0.0


# -- on the 2 km OPERA grid ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def on_region(six_files) -> dict:
    """The files at 17:00/04:00 (one step each) through the registry, on each network's default region."""
    return {name: read_radar_source(files[2:3], name, region=NETWORKS[name].region)
            for name, files in six_files.items()}


REGIONS = [("knmi", "netherlands"), ("mch", "switzerland"), ("fmi", "finland")]


@pytest.mark.parametrize(("name", "region"), REGIONS)
def test_default_region_is_the_networks_on_the_opera_projection(on_region, name, region):
    ds = on_region[name]
    assert Grid.from_dataset(ds).matches(get_region(region).grid(2000.0))
    assert "area mean of 4 x 4 nearest sub-samples" in ds.attrs["history"]
    assert 0.6 < np.isfinite(ds["rain"].values).mean() < 0.85  # the region is the coverage's bounding box


#: A radar site of each network, (lon, lat).
SITES = {"knmi": (5.179, 52.103), "mch": (8.512, 47.284), "fmi": (24.873, 60.271)}


@pytest.mark.parametrize("name", ["knmi", "mch", "fmi"])
def test_a_known_place_lands_at_the_right_2km_pixel(six_files, monkeypatch, name):
    """The importer's field replaced by rain only in 3 x 3 km around a radar site: after the reader's
    conversion and reprojection the wettest 2 km pixel is within 2 km of the site."""
    real_import = networks_module.import_network_file
    lon, lat = SITES[name]

    def site_only(path, network):
        field, meta = real_import(path, network)
        grid = networks_module.grid_from_pysteps(meta, field.shape, path)
        x, y = pyproj.Transformer.from_crs("EPSG:4326", grid.pyproj_crs, always_xy=True).transform(lon, lat)
        row, col = round((grid.y0 - y) / grid.dy), round((x - grid.x0) / grid.dx)
        dry, wet = (-32.0, 40.0) if network.product == "reflectivity" else (0.0, 1.0)
        out = np.where(np.isfinite(field), dry, np.nan)
        out[row - 1: row + 2, col - 1: col + 2] = wet
        return out, meta

    monkeypatch.setattr(networks_module, "import_network_file", site_only)
    ds = read_network(six_files[name][2:3], name, region=NETWORKS[name].region)
    rain = ds["rain"].values[0]
    r, c = wettest(rain)
    px, py = pyproj.Transformer.from_crs("EPSG:4326", OPERA_CRS, always_xy=True).transform(lon, lat)
    assert np.hypot(ds["x"].values[c] - px, ds["y"].values[r] - py) < 2000.0
    # 3 x 3 km at the site's rate spread over 2 km pixels: the rain volume (mm/h km2) is kept
    rate = 12.0 if name != "fmi" else (10.0 ** 4.0 / 223.0) ** (1.0 / 1.53)
    assert np.nansum(rain) * 4.0 == pytest.approx(9.0 * rate, rel=0.1)  # 1 km native pixels


def test_the_area_mean_keeps_the_regional_rain(six_files, native, on_region):
    """Mean rain over the covered area, 1 km native vs 2 km OPERA grid (same file): within 2 %."""
    native_rain = native["knmi", "instant"]["rain"].values[0]
    regridded = on_region["knmi"]["rain"].values[0]
    assert np.nanmean(regridded) == pytest.approx(np.nanmean(native_rain), rel=0.02)
    assert np.nanmax(regridded) <= np.nanmax(native_rain)


# -- sources and the command --------------------------------------------------------------------------
def test_sources_are_told_from_the_files(knmi_dir, mch_dir, fmi_dir, opera_files):
    assert detect_source(sorted(knmi_dir.glob("*.h5"))[:2]) == "knmi"
    assert detect_source(sorted(mch_dir.glob("*/*.gif"))[:2]) == "mch"
    assert detect_source(sorted(fmi_dir.glob("*/*.pgm.gz"))[:2]) == "fmi"
    assert detect_source(opera_files[:2]) == "opera"
    with pytest.raises(InputError, match=r"several radar sources \(knmi 1 file, opera 1 file\)"):
        detect_source([min(knmi_dir.glob("*.h5")), opera_files[0]])


def test_registry_names_the_network_readers():
    for reader, name in (("knmi_hdf5", "read_knmi"), ("mch_gif", "read_mch"), ("fmi_pgm", "read_fmi")):
        assert get_reader(reader).__name__ == name


def test_command_reads_knmi_without_being_told_the_source(tmp_path, six_files, capsys):
    out = tmp_path / "k.zarr"
    inputs = [str(p) for p in six_files["knmi"]]
    assert main(["data", "radar", "--in", *inputs, "--step-rule", "mean", "--out", str(out)]) == 0
    assert "read 2 15-minute steps (mean) of knmi files, 2010-08-26T04:00 .. 2010-08-26T04:15 UTC" in (
        capsys.readouterr().out)
    ds = open_paired(out)
    assert ds.attrs["radar_network"] == "knmi" and ds.attrs["rain_step_rule"] == "mean"
    assert Grid.from_dataset(ds).matches(get_region("netherlands").grid(2000.0))


def test_command_sets_the_zr(tmp_path, six_files):
    out = tmp_path / "f.zarr"
    assert main(["data", "radar", "--in", str(six_files["fmi"][2]), "--source", "fmi", "--zr", "200", "1.6",
                 "--out", str(out)]) == 0
    ds = open_paired(out)
    assert (ds.attrs["zr_a"], ds.attrs["zr_b"]) == (200.0, 1.6)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("knmi", ["--zr", "223", "1.53"], "knmi gives rain accumulations in mm"),
        ("fmi", ["--zr", "0", "1.6"], "Z-R needs two finite positive numbers"),
        ("fmi", ["--min-quality", "0.5"], "--min-quality needs a quality index, which fmi files do not have"),
        ("opera", ["--step-rule", "mean"], "--step-rule does not apply to OPERA composites"),
        ("mixed", [], "come from several radar sources"),
        ("mch", ["--source", "radolan"], "unknown radar source 'radolan'; known sources: opera, knmi, mch"),
    ],
)
def test_command_bad_settings_are_one_line(tmp_path, six_files, opera_files, capsys, name, options, message):
    inputs = {"opera": [opera_files[0]], "mixed": [six_files["knmi"][0], six_files["mch"][0]]}.get(
        name, six_files.get(name, [None])[:1])
    out = tmp_path / "x.zarr"
    assert main(["data", "radar", "--in", *map(str, inputs), *options, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qpe: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


# -- damaged files ------------------------------------------------------------------------------------
def truncated(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return dst


@pytest.mark.parametrize("name", ["knmi", "mch", "fmi"])
def test_a_damaged_file_among_good_ones_is_skipped_and_its_step_left_out(tmp_path, six_files, name):
    files = list(six_files[name])
    files[2] = truncated(files[2], tmp_path / files[2].name)
    with pytest.warns(SkippedFilesWarning, match=rf"skipped 1 of 6 {NETWORKS[name].files}.*{files[2].name}"):
        ds = read_network(files, name, step_rule="mean")
    assert list(pd.DatetimeIndex(ds["time"].values)) == [pd.Timestamp(STEP_TIMES[name][1])]
    assert files[2].name in ds.attrs["skipped_files"]
    assert ds.attrs["steps_left_out"].startswith(f"{STEP_TIMES[name][0]} lacks")


@pytest.mark.parametrize("name", ["knmi", "mch", "fmi"])
def test_a_single_damaged_file_is_one_line_naming_it(tmp_path, six_files, capsys, name):
    broken = truncated(six_files[name][2], tmp_path / six_files[name][2].name)
    out = tmp_path / "r.zarr"
    assert main(["data", "radar", "--in", str(broken), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"qpe: error: {broken} could not be read as ") and err.count("\n") == 1
    assert not out.exists()


def test_a_file_of_another_product_is_named(tmp_path, six_files):
    renamed = tmp_path / "radar.h5"
    renamed.write_bytes(six_files["knmi"][0].read_bytes())
    with pytest.raises(InputError, match=r"radar.h5 is not named like KNMI HDF5 files \(e.g. RAD_NL25"):
        read_network([renamed], "knmi")
