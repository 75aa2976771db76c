"""No command writes over one of its inputs; a wrong kind of output path is one clear line, before any
work."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpe.cli import main
from qpe.data.grid import Grid
from qpe.data.output_paths import check_dataset_output, check_file_output, check_folder_output
from qpe.data.paired import make_paired_dataset, open_paired, save_paired
from qpe.errors import InputError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def _ir(grid: Grid, n: int) -> object:
    times = pd.date_range("2021-06-01T00:00", periods=n, freq="15min")
    ir = 220.0 + np.arange(n)[:, None, None, None] + np.zeros((n, 2, *grid.shape))
    return make_paired_dataset(grid, times, ir=ir, channels=["WV_062", "IR_108"])


def _rain(grid: Grid, n: int) -> object:
    times = pd.date_range("2021-06-01T00:00", periods=n, freq="30min")  # every other IR time
    return make_paired_dataset(grid, times, rain=np.full((n, *grid.shape), 1.5))


@pytest.fixture
def pair_inputs(tmp_path, small_grid) -> tuple[Path, Path]:
    """An IR dataset of 8 times and a rain dataset matching 4 of them."""
    ir = save_paired(_ir(small_grid, 8), tmp_path / "ir.zarr")
    return ir, save_paired(_rain(small_grid, 4), tmp_path / "r.zarr")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qpe: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("spelling", ["same", "dot-slash", "trailing-slash", "symlink"])
def test_pair_refuses_to_write_over_its_ir_input_and_8_times_stay_8(
    tmp_path, pair_inputs, capsys, monkeypatch, spelling
):
    ir, rain = pair_inputs
    monkeypatch.chdir(tmp_path)
    out = {
        "same": str(ir),
        "dot-slash": "./ir.zarr",
        "trailing-slash": "ir.zarr/",
        "symlink": "link.zarr",
    }[spelling]
    if spelling == "symlink":
        os.symlink(ir, tmp_path / "link.zarr")
    assert main(["data", "pair", "--ir", str(ir), "--rain", str(rain), "--out", out]) == 2
    assert "is the input" in _one_error_line(capsys)
    assert open_paired(ir).sizes["time"] == 8


def test_pair_refuses_to_write_over_its_rain_input(tmp_path, pair_inputs, capsys):
    ir, rain = pair_inputs
    assert main(["data", "pair", "--ir", str(ir), "--rain", str(rain), "--out", str(rain)]) == 2
    _one_error_line(capsys)
    assert open_paired(rain).sizes["time"] == 4


def test_pair_still_writes_a_new_output(tmp_path, pair_inputs, capsys):
    ir, rain = pair_inputs
    out = tmp_path / "paired.zarr"
    assert main(["data", "pair", "--ir", str(ir), "--rain", str(rain), "--out", str(out)]) == 0
    assert open_paired(out).sizes["time"] == 4 and open_paired(ir).sizes["time"] == 8


def test_grid_like_input_is_not_overwritten(tmp_path, pair_inputs, capsys):
    """``--grid-like X --out X``: the dataset whose grid is borrowed is an input too."""
    ir, rain = pair_inputs
    assert main(["data", "pair", "--ir", str(ir), "--rain", str(rain), "--grid-like", str(rain),
                 "--out", str(rain)]) == 2
    _one_error_line(capsys)
    assert open_paired(rain).sizes["time"] == 4


def test_seviri_refuses_to_write_over_its_netcdf_input(tmp_path, capsys):
    source = tmp_path / "seviri.nc"
    source.write_bytes((DATA / "seviri_cf_20180824T1800.nc").read_bytes())
    before = source.read_bytes()
    assert main(["data", "seviri", "--in", str(source), "--region", "france", "--out", str(source)]) == 2
    assert "is the input" in _one_error_line(capsys)
    assert source.read_bytes() == before


def test_synth_refuses_an_output_folder_that_holds_its_config(tmp_path, capsys):
    folder = tmp_path / "settings.zarr"
    folder.mkdir()
    (folder / ".zgroup").write_text("{}")  # looks like a Zarr store, so only the input check can stop it
    config = folder / "synth.yaml"
    config.write_text("hours: 1\nsize: 16\n")
    assert main(["data", "synth", "--config", str(config), "--out", str(folder)]) == 2
    assert "holds the input" in _one_error_line(capsys)
    assert config.read_text() == "hours: 1\nsize: 16\n"


def test_dataset_output_never_replaces_a_foreign_folder(tmp_path):
    folder = tmp_path / "photos.zarr"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(InputError, match="exists and is not a Zarr dataset: will not replace it"):
        check_dataset_output(folder)
    assert (folder / "holiday.jpg").exists()


@pytest.mark.parametrize(
    "check, make, message",
    [
        (check_file_output, "dir", "is a directory; give a file name"),
        (check_folder_output, "file", "is an existing file; give a folder"),
        (check_dataset_output, "under-file", "is not a writable directory"),
    ],
)
def test_wrong_kind_of_output_path_is_one_line(tmp_path, check, make, message):
    thing = tmp_path / ("out.nc" if make != "under-file" else "plain.txt")
    if make == "dir":
        thing.mkdir()
    else:
        thing.write_text("x")
    out = thing if make != "under-file" else thing / "x.zarr"
    with pytest.raises(InputError) as err:
        check(out)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- estimate / evaluate: the output is checked before any model is loaded ----------------------------
def _estimate(data: Path, out: Path, *extra: str) -> list[str]:
    return ["estimate", "--checkpoint", str(REPO / "models" / "demo" / "unet"), "--data", str(data),
            "--time", "2021-06-01T01:00", "--out", str(out), "--no-cache", *extra]


def test_estimate_out_pointing_to_a_directory_is_one_line(tmp_path, small_paired, capsys):
    data = save_paired(small_paired, tmp_path / "d.zarr")
    folder = tmp_path / "estimates"
    folder.mkdir()
    assert main(_estimate(data, folder)) == 2
    assert f"--out {folder} is a directory" in _one_error_line(capsys)
    assert list(folder.iterdir()) == []


def test_estimate_out_equal_to_its_netcdf_data_is_refused(tmp_path, small_paired, capsys):
    data = save_paired(small_paired, tmp_path / "d.nc")
    before = data.read_bytes()
    assert main(_estimate(data, data)) == 2
    assert "is the input" in _one_error_line(capsys)
    assert data.read_bytes() == before


def test_evaluate_out_pointing_to_an_existing_file_is_one_line(tmp_path, small_paired, capsys):
    data = save_paired(small_paired, tmp_path / "d.zarr")
    report = tmp_path / "scores.txt"
    report.write_text("keep me")
    argv = ["evaluate", "--data", str(data), "--checkpoints", str(REPO / "models" / "demo" / "unet"),
            "--out", str(report), "--bootstrap", "0", "--no-cache"]
    assert main(argv) == 2
    assert f"--out {report} is an existing file" in _one_error_line(capsys)
    assert report.read_text() == "keep me"
