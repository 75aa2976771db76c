"""OPERA ODIM HDF5 composites -> radar dataset: values against a direct pysteps read, QC, bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from qpe.cli import main
from qpe.data.grid import Grid, get_region
from qpe.data.paired import open_paired
from qpe.data.readers import get_reader, read_radar
from qpe.errors import InputError, QpeError

pytestmark = pytest.mark.shared_data


def pysteps_read(path: Path):
    from pysteps.io import import_opera_hdf5

    return import_opera_hdf5(str(path))


def opera_index(meta: dict, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OPERA (row, col) of projected coordinates, from the pysteps metadata (y origin upper)."""
    col = np.rint((x - meta["x1"]) / meta["xpixelsize"] - 0.5).astype(int)
    row = np.rint((meta["y2"] - y) / meta["ypixelsize"] - 0.5).astype(int)
    return row, col


@pytest.fixture(scope="module")
def france_zarr(opera_dir, tmp_path_factory) -> Path:
    """The documented command, on all 24 files: qpe data radar --in '<dir>/*.hdf' --region france."""
    out = tmp_path_factory.mktemp("radar") / "r.zarr"
    assert main(["data", "radar", "--in", f"{opera_dir}/*.hdf", "--region", "france", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def radar(france_zarr):
    return open_paired(france_zarr).load()


#: Reference times (indices into the 24 files): the three with outliers over France (18:00 x2, 18:45, 22:15
#: with 8647 mm/h) and three without, read directly with pysteps (all 24 would double the test time).
REFERENCE_TIMES = [0, 1, 3, 4, 17, 23]


@pytest.fixture(scope="module")
def reference(opera_files, radar):
    """Direct pysteps reads at REFERENCE_TIMES, cut to the France grid by coordinates: (rain, quality)."""
    _, _, meta = pysteps_read(opera_files[0])
    xx, yy = np.meshgrid(radar["x"].values, radar["y"].values)
    rows, cols = opera_index(meta, xx, yy)
    rain, quality = [], []
    for t in REFERENCE_TIMES:
        r, q, _ = pysteps_read(opera_files[t])
        rain.append(r[rows, cols])
        quality.append(q[rows, cols])
    return np.stack(rain), np.stack(quality)


@pytest.fixture(scope="module")
def at_1900(opera_files):
    """The whole 19:00 composite read directly with pysteps: (rain, quality, metadata)."""
    return pysteps_read(opera_files[4])


def test_command_writes_24_times_on_the_france_grid(radar):
    times = pd.DatetimeIndex(radar["time"].values)
    assert list(times) == list(pd.date_range("2018-08-24T18:00", "2018-08-24T23:45", freq="15min"))
    assert Grid.from_dataset(radar).matches(get_region("france").grid(2000.0))
    assert radar["rain"].shape == (24, 600, 624)
    assert radar["rain"].attrs["units"] == "mm/h"


@pytest.mark.parametrize("kind", ["zero", "rain", "nan", "heaviest"])
def test_values_equal_pysteps_at_chosen_pixels(radar, at_1900, kind):
    t = 4  # 19:00
    r, _, meta = at_1900
    crop_rows, crop_cols = opera_index(meta, radar["x"].values[[0, -1]], radar["y"].values[[0, -1]])
    crop = r[crop_rows[0]: crop_rows[1] + 1, crop_cols[0]: crop_cols[1] + 1]
    pick = {
        "zero": crop == 0,
        "rain": (crop > 1) & (crop < 50),
        "nan": np.isnan(crop),
        "heaviest": crop >= np.nanpercentile(crop[crop <= 300], 99.99),
    }[kind] & (np.nan_to_num(crop) <= 300)
    ii, jj = np.nonzero(pick)
    chosen = np.linspace(0, ii.size - 1, 6).astype(int)
    for i, j in zip(ii[chosen], jj[chosen], strict=True):
        # map the France pixel to the OPERA pixel by coordinates, independently of the crop above
        row, col = opera_index(meta, radar["x"].values[j], radar["y"].values[i])
        got = float(radar["rain"].values[t, i, j])
        np.testing.assert_allclose(got, r[row, col], rtol=1e-6, atol=1e-6, equal_nan=True)
    assert ii.size >= 6


def test_whole_field_equals_pysteps_except_outliers(radar, reference):
    rain, _ = reference
    expected = np.where(rain > 300, np.nan, rain)
    got = radar["rain"].values[REFERENCE_TIMES]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_outliers_are_counted_per_time_exactly(radar, reference):
    rain, _ = reference
    counts = np.sum(rain > 300, axis=(1, 2))
    assert counts.tolist() == [2, 0, 1, 0, 1, 0]
    np.testing.assert_array_equal(radar["qc_outliers"].values[REFERENCE_TIMES], counts)
    # no other time has any: the total over all 24 is the reference times' total
    assert radar.attrs["qc_outliers_flagged"] == int(radar["qc_outliers"].sum()) == counts.sum() == 4
    assert radar.attrs["qc_max_rate"] == 300.0
    assert np.isnan(radar["rain"].values[REFERENCE_TIMES][rain > 300]).all()
    assert float(radar["rain"].max()) <= 300.0


def test_quality_index_range_and_nan_agree_with_pysteps(radar, reference):
    _, quality = reference
    q = radar["rain_quality"].values[REFERENCE_TIMES]
    assert 0.0 <= np.nanmin(q) and np.nanmax(q) <= 1.0
    np.testing.assert_array_equal(np.isnan(q), np.isnan(quality))
    np.testing.assert_allclose(q, quality, atol=1e-6, equal_nan=True)  # QIND gain 1, offset 0 in these files
    # the composite gives a quality index wherever rain was detected (and not where it was undetected)
    rain = radar["rain"].values[REFERENCE_TIMES]
    assert np.isfinite(q[rain > 0]).all()
    assert np.isnan(q[np.isnan(rain) & ~(reference[0] > 300)]).all()


def test_info_prints_the_qc_summary(france_zarr, capsys):
    assert main(["data", "info", str(france_zarr)]) == 0
    assert "QC: 4 outlier pixels above 300.0 mm/h flagged" in capsys.readouterr().out


def test_clip_keeps_outliers_at_the_threshold(opera_files):
    ds = read_radar(opera_files[:1], region="france", outliers="clip")
    r, _, meta = pysteps_read(opera_files[0])
    rows, cols = opera_index(meta, *np.meshgrid(ds["x"].values, ds["y"].values))
    expected = np.minimum(r[rows, cols], 300.0)
    np.testing.assert_allclose(ds["rain"].values[0], expected, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert int(ds["qc_outliers"][0]) == 2 and ds.attrs["qc_outlier_action"] == "clip"


def test_europe_grid_flags_the_1205_mm_h_clutter(opera_files):
    ds = read_radar(opera_files[:1], region="europe")
    r, _, _ = pysteps_read(opera_files[0])
    assert np.nanmax(r) > 1200
    assert int(ds["qc_outliers"][0]) == int(np.sum(r > 300)) == 3
    np.testing.assert_allclose(ds["rain"].values[0], np.where(r > 300, np.nan, r), atol=1e-6, equal_nan=True)


def test_four_km_is_the_nan_aware_block_mean(opera_files):
    ds = read_radar(opera_files[:1], region="france", pixel_km=4.0)
    r, _, meta = pysteps_read(opera_files[0])
    r = np.where(r > 300, np.nan, r)
    assert ds["rain"].shape == (1, 300, 312)
    for i, j in [(0, 0), (150, 156), (100, 40), (299, 311)]:
        # the 4 km pixel centre is the shared corner of four 2 km OPERA pixels
        row, col = opera_index(meta, ds["x"].values[j] - 1000, ds["y"].values[i] + 1000)
        block = r[row: row + 2, col: col + 2]
        expected = np.nanmean(block) if np.isfinite(block).sum() >= 2 else np.nan
        np.testing.assert_allclose(float(ds["rain"].values[0, i, j]), expected, rtol=1e-6, equal_nan=True)


def test_min_quality_masks_low_quality_rain(opera_files):
    ds = read_radar(opera_files[:1], region="france", min_quality=0.3)
    r, q, meta = pysteps_read(opera_files[0])
    rows, cols = opera_index(meta, *np.meshgrid(ds["x"].values, ds["y"].values))
    r, q = np.where(r[rows, cols] > 300, np.nan, r[rows, cols]), q[rows, cols]
    poor = (q < 0.3) & np.isfinite(r)
    assert int(ds["qc_low_quality"][0]) == int(poor.sum()) > 0
    assert np.isnan(ds["rain"].values[0][poor]).all()
    kept = ~poor & np.isfinite(r)
    np.testing.assert_allclose(ds["rain"].values[0][kept], r[kept], rtol=1e-6, atol=1e-6)


def test_files_out_of_order_are_sorted(opera_files):
    ds = read_radar(opera_files[2::-1], region="france")
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["18:00", "18:15", "18:30"]
    assert list(ds["qc_outliers"].values) == [2, 0, 0]


def test_registry_gives_the_same_reader():
    assert get_reader("opera_hdf5") is read_radar
    with pytest.raises(InputError, match="unknown reader 'radar'; known readers: opera_hdf5"):
        get_reader("radar")


# -- bad inputs: one clear line each -------------------------------------------------------------------
def _copy(src: Path, dst: Path, edit=None) -> Path:
    shutil.copy(src, dst)
    if edit is not None:
        with h5py.File(dst, "r+") as h5:
            edit(h5)
    return dst


def _bad_inputs(case: str, tmp: Path, files: list[Path]) -> list[str]:
    if case == "empty glob":
        return [str(tmp / "nothing" / "*.hdf")]
    if case == "missing file":
        return [str(tmp / "T_PAAH21_C_EUOC_20180824180000.hdf")]
    if case == "not hdf5":
        fake = tmp / "T_PAAH21_C_EUOC_20180824190000.hdf"
        fake.write_bytes(b"GRIB" + bytes(200))
        return [str(fake)]
    if case == "hdf5 not odim":
        with h5py.File(tmp / "other.hdf", "w") as h5:
            h5["data"] = np.zeros((4, 4))
        return [str(tmp / "other.hdf")]
    if case == "reflectivity not rain rate":
        def to_dbzh(h5):
            h5["dataset1/what"].attrs["quantity"] = np.bytes_(b"DBZH")
        return [str(_copy(files[0], tmp / "dbzh.hdf", to_dbzh))]
    if case == "duplicated time":
        return [str(files[0]), str(_copy(files[0], tmp / "copy_of_1800.hdf"))]
    if case == "mismatched grids":
        def coarser(h5):
            h5["where"].attrs["xscale"] = 4000.0
            h5["where"].attrs["yscale"] = 4000.0
        return [str(files[0]), str(_copy(files[1], tmp / "coarse.hdf", coarser))]
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty glob", "no radar files match '"),
        ("missing file", "no such file: "),
        ("not hdf5", "T_PAAH21_C_EUOC_20180824190000.hdf is not an HDF5 file"),
        ("hdf5 not odim", "other.hdf is not an ODIM HDF5 composite"),
        ("reflectivity not rain rate", "dbzh.hdf holds DBZH, QIND, not RATE (rain rate in mm/h)"),
        ("duplicated time", "copy_of_1800.hdf have the same time 2018-08-24T18:00"),
        ("mismatched grids", "coarse.hdf is on 2200 x 1900 pixels of 4 x 4 km"),
    ],
)
def test_bad_input_gives_one_error_line(tmp_path, opera_files, capsys, case, message):
    inputs = _bad_inputs(case, tmp_path, opera_files)
    out = tmp_path / "r.zarr"
    assert main(["data", "radar", "--in", *inputs, "--region", "france", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qpe: error: ") and message in err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert not out.exists()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_rate": 1000.0}, "max_rate must be in (0, 500] mm/h"),
        ({"outliers": "drop"}, "outliers must be one of mask, clip"),
        ({"min_quality": 2.0}, "min_quality must be in [0, 1]"),
        ({"region": "atlantis"}, "unknown region 'atlantis'"),
        ({"region": "france", "grid": get_region("france").grid()}, "either a target grid or a region"),
    ],
)
def test_bad_settings_give_one_error_line(opera_files, options, message):
    with pytest.raises(QpeError) as err:
        read_radar(opera_files[:1], **options)
    assert message in str(err.value) and "\n" not in str(err.value)
