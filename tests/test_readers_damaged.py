"""Damaged input files: one line naming the file; among good files, skipped and reported, the rest read."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from qpe.cli import main
from qpe.data.paired import open_paired
from qpe.data.readers import read_crr, read_radar
from qpe.data.readers.inputs import SkippedFilesWarning
from qpe.errors import InputError

pytestmark = pytest.mark.shared_data


def truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """A copy of ``src`` cut to ``fraction`` of its bytes (an interrupted download or copy)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def bad_date(src: Path, dst: Path) -> Path:
    """A copy of an ODIM file whose ``what/date`` is not YYYYMMDD."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as h5:
        h5["what"].attrs["date"] = np.bytes_(b"2018-08-24")
    return dst


@pytest.fixture
def damaged(tmp_path, opera_files) -> dict[str, Path]:
    return {
        "truncated": truncated(opera_files[1], tmp_path / "T_PAAH21_C_EUOC_20180824181500.hdf"),
        "bad date": bad_date(opera_files[3], tmp_path / "T_PAAH21_C_EUOC_20180824184500.hdf"),
    }


def _stderr_lines(capsys) -> tuple[str, list[str]]:
    """stdout, and the ``qpe:`` lines of stderr (progress bars left out)."""
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out, [line for line in captured.err.splitlines() if line.startswith("qpe")]


@pytest.mark.parametrize(
    "case, message",
    [("truncated", "is a damaged HDF5 file (Unable to synchronously open file (truncated file"),
     ("bad date", "date='2018-08-24' time='184500' is not an ODIM time (YYYYMMDD HHMMSS)")],
)
def test_a_single_damaged_file_is_one_line_naming_it(tmp_path, damaged, capsys, case, message):
    out = tmp_path / "r.zarr"
    assert main(["data", "radar", "--in", str(damaged[case]), "--out", str(out)]) == 2
    _, err = _stderr_lines(capsys)
    assert err == [f"qpe: error: {err[0][len('qpe: error: '):]}"] and len(err) == 1
    assert str(damaged[case]) in err[0] and message in err[0]
    assert not out.exists()


@pytest.mark.parametrize("case", ["truncated", "bad date"])
def test_among_good_files_2_of_3_are_read_and_1_is_named_as_skipped(
    tmp_path, opera_files, damaged, capsys, case
):
    out = tmp_path / "r.zarr"
    inputs = [str(opera_files[0]), str(damaged[case]), str(opera_files[2])]
    assert main(["data", "radar", "--in", *inputs, "--out", str(out)]) == 0
    stdout, err = _stderr_lines(capsys)
    assert err == [err[0]] and err[0].startswith("qpe: warning: skipped 1 of 3 OPERA HDF5 files")
    assert damaged[case].name in err[0]
    assert "read 2 composites, 2018-08-24T18:00 .. 2018-08-24T18:30 UTC" in stdout
    ds = open_paired(out)
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["18:00", "18:30"]
    assert damaged[case].name in ds.attrs["skipped_files"]
    assert damaged[case].name not in ds.attrs["source_files"]


def test_library_warns_once_and_reads_the_good_files(opera_files, damaged):
    with pytest.warns(SkippedFilesWarning, match=r"skipped 2 of 4 OPERA HDF5 files") as record:
        ds = read_radar([opera_files[0], damaged["truncated"], damaged["bad date"], opera_files[2]])
    assert len([w for w in record if issubclass(w.category, SkippedFilesWarning)]) == 1
    assert ds.sizes["time"] == 2


def test_every_file_damaged_is_an_error(tmp_path, damaged, capsys):
    out = tmp_path / "r.zarr"
    assert main(["data", "radar", "--in", str(damaged["truncated"]), str(damaged["bad date"]),
                 "--out", str(out)]) == 2
    _, err = _stderr_lines(capsys)
    assert len(err) == 1
    assert err[0].startswith("qpe: error: none of the 2 OPERA HDF5 files could be read; first: ")
    assert not out.exists()


def test_semisynthetic_rain_from_skips_a_truncated_file(tmp_path, opera_files, damaged, capsys):
    out = tmp_path / "semi.zarr"
    inputs = [str(opera_files[0]), str(damaged["truncated"]), str(opera_files[2])]
    assert main(["data", "synth", "--rain-from", *inputs, "--out", str(out)]) == 0
    _, err = _stderr_lines(capsys)
    assert len(err) == 1 and err[0].startswith("qpe: warning: skipped 1 of 3 OPERA HDF5 files")
    assert damaged["truncated"].name in err[0]
    assert open_paired(out, require=("ir", "rain")).sizes["time"] == 2


def test_semisynthetic_rain_from_a_single_truncated_file_is_one_line(tmp_path, damaged, capsys):
    out = tmp_path / "semi.zarr"
    assert main(["data", "synth", "--rain-from", str(damaged["truncated"]), "--out", str(out)]) == 2
    _, err = _stderr_lines(capsys)
    assert len(err) == 1 and "is a damaged HDF5 file" in err[0] and damaged["truncated"].name in err[0]
    assert not out.exists()


def test_crr_skips_a_truncated_netcdf_among_good_ones(tmp_path, crr_dir):
    files = sorted(crr_dir.glob("*.nc"))[:3]
    broken = truncated(files[1], tmp_path / files[1].name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = read_crr([files[0], broken, files[2]], region="france")
    skipped = [w for w in record if issubclass(w.category, SkippedFilesWarning)]
    assert len(skipped) == 1 and broken.name in str(skipped[0].message)
    assert ds.sizes["time"] == 2
    with pytest.raises(InputError, match=f"{broken.name} is not a NetCDF file"):
        read_crr([broken], region="france")
