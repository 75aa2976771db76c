"""Your own estimates as a model: a folder of NetCDF / Zarr fields scored by ``qpe evaluate --estimates``
exactly like the checkpoint that made them, their units, grid, times and values checked with one clear
line each (qpe.inference.external)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.cli import main
from qpe.data.catalog import ensure_dataset
from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.paired import open_paired
from qpe.data.regrid import Regridder
from qpe.errors import DatasetError, InputError
from qpe.evaluation import open_scores
from qpe.inference.external import ExternalEstimates, find_estimate_folders

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "data" / "demo" / "demo.zarr"
FLOW = REPO / "models" / "demo" / "flow_residual"
#: Two times of the demo case, each written by ``qpe estimate`` into its own file.
TIMES = ("2021-06-01T12:00", "2021-06-01T12:15")
SAMPLING = ["--members", "2", "--steps", "2", "--sampler", "euler", "--device", "cpu", "--seed", "3"]

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module", "demo_data")


@pytest.fixture(scope="module")
def demo_data() -> Path:
    """The demo case, built from its catalog entry on a clean clone (``data/`` is not in git)."""
    path = ensure_dataset("demo")
    assert path == DEMO_DATA
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("external")


@pytest.fixture(scope="module")
def written(workdir) -> Path:
    """``qpe estimate`` of the demo residual flow at TIMES, one NetCDF file per time, in ``my_flow/``."""
    folder = workdir / "my_flow"
    folder.mkdir()
    for i, time in enumerate(TIMES):
        code = main(["estimate", "--checkpoint", str(FLOW), "--data", str(DEMO_DATA), "--time", time,
                     *SAMPLING, "--no-cache", "--out", str(folder / f"part{i}.nc")])
        assert code == 0
    return folder


@pytest.fixture(scope="module")
def demo():
    return open_paired(DEMO_DATA)


def _fields(folder: Path) -> xr.DataArray:
    return xr.concat([xr.open_dataset(p)["rain"].load() for p in sorted(folder.glob("*.nc"))], "time")


def _write(folder: Path, rain: xr.DataArray, name: str = "part.nc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rain.to_dataset(name="rain").to_netcdf(folder / name, encoding={"time": {"units": "minutes since 2000-01-01"}})
    return folder


def test_external_estimates_score_identically_to_the_checkpoint(capsys, workdir, written):
    out = workdir / "scores"
    # the period has a third time, 12:30, that the folder lacks: named in one line, scored for no model
    code = main(["evaluate", "--data", str(DEMO_DATA), "--checkpoints", str(FLOW), "--estimates", str(written),
                 "--start", TIMES[0], "--end", "2021-06-01T12:30", *SAMPLING, "--bootstrap", "10",
                 "--workers", "1", "--no-cache", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "scored 2 times" in printed
    assert "my_flow: no estimate at 1 time(s) of the period (2021-06-01T12:30), left out for every model" in printed
    scores = open_scores(out / "scores.nc")
    assert scores.attrs["n_times"] == 2
    assert list(scores["model"].values) == ["flow_residual", "my_flow"]
    assert list(scores["family"].values) == ["flow", "external"]
    compared = 0
    for name, var in scores.data_vars.items():
        if "model" not in var.dims:
            continue
        np.testing.assert_array_equal(var.sel(model="my_flow").values, var.sel(model="flow_residual").values,
                                      err_msg=name)
        compared += 1
    assert compared > 50
    assert {"CRPS", "FSS", "RMSE"} <= set(scores.data_vars)
    rmse = scores["RMSE"].sel(model="my_flow").values
    assert np.all(np.isfinite(rmse)) and np.all(rmse > 0), "the compared scores are real numbers"
    table = pd.read_csv(out / "scores.csv")
    ours = table[table["model"] == "my_flow"].drop(columns="model").reset_index(drop=True)
    theirs = table[table["model"] == "flow_residual"].drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs)


def test_fields_are_read_as_written_and_only_the_times_asked_for(demo, written):
    est = ExternalEstimates(written)
    assert (est.name, est.members, est.is_ensemble, est.family) == ("my_flow", 2, True, "external")
    assert list(est.times) == list(pd.to_datetime(TIMES))
    out = est.estimate(demo, [TIMES[1]])
    expected = _fields(written).sel(time=[pd.Timestamp(TIMES[1])])
    assert out["rain"].dims == ("member", "time", "y", "x") and out["rain"].dtype == np.float32
    np.testing.assert_array_equal(out["rain"].values, expected.values)
    assert out.attrs["source_files"] == "part1.nc" and out["rain"].attrs["units"] == "mm/h"
    assert list(est.available(pd.to_datetime([TIMES[0], "2021-06-01T13:00"]))) == [True, False]


def test_other_units_are_converted_only_when_stated(demo, written, workdir):
    rain = _fields(written)
    base = ExternalEstimates(written).estimate(demo, TIMES)["rain"].values
    flux = _write(workdir / "flux", (rain / 3600).assign_attrs(units="kg m-2 s-1"))
    np.testing.assert_allclose(ExternalEstimates(flux).estimate(demo, TIMES)["rain"].values, base, rtol=1e-6)
    quarter = _write(workdir / "quarter", (rain / 4).assign_attrs(units="mm", accumulation_period="15 min"))
    np.testing.assert_allclose(ExternalEstimates(quarter).estimate(demo, TIMES)["rain"].values, base, rtol=1e-6)
    unstated = _write(workdir / "unstated", (rain / 4).assign_attrs(units="mm"))
    with pytest.raises(DatasetError, match=r"is in 'mm' with no accumulation_period attribute"):
        ExternalEstimates(unstated)


def test_a_deterministic_field_without_member_is_one_member(demo, written, workdir):
    rain = _fields(written).isel(member=0, drop=True)
    folder = _write(workdir / "deterministic", rain)
    est = ExternalEstimates(folder)
    assert (est.members, est.is_ensemble) == (1, False)
    np.testing.assert_array_equal(est.estimate(demo, TIMES)["rain"].values[0], rain.values)


def test_another_grid_is_regridded_only_with_a_stated_method(demo, written, workdir):
    rain = _fields(written)
    target = Grid.from_dataset(demo)
    coarse = Grid(target.crs, target.x0 + target.dx / 2, target.y0 - target.dy / 2, 2 * target.dx,
                  2 * target.dy, target.nx // 2, target.ny // 2)
    halved = Regridder(target, coarse, "mean").apply(rain.values.astype("float64")).astype("float32")
    field = xr.DataArray(halved, dims=rain.dims, coords={
        "member": rain["member"], "time": rain["time"], **coarse.coords(), GRID_MAPPING_NAME: coarse.grid_mapping()},
        attrs=rain.attrs)
    folder = _write(workdir / "coarse", field)
    with pytest.raises(DatasetError, match="on another grid .* state a regridding method"):
        ExternalEstimates(folder).check(demo)
    out = ExternalEstimates(folder, regrid="nearest").estimate(demo, TIMES)
    expected = Regridder(coarse, target, "nearest").apply(halved.astype("float64")).astype("float32")
    np.testing.assert_array_equal(out["rain"].values, expected)
    assert out.attrs["regrid"] == "nearest"


def test_negative_and_implausible_values_are_refused_with_the_file_and_time(demo, written, workdir):
    rain = _fields(written).copy()
    rain[0, 1, 5, 5] = -0.5
    folder = _write(workdir / "negative", rain)
    with pytest.raises(DatasetError, match=r"part.nc at 2021-06-01T12:15: values \[-0.5, .*must lie in \[0, 500\]"):
        ExternalEstimates(folder).estimate(demo, TIMES)


def test_a_zarr_store_is_read_like_netcdf(demo, written, workdir):
    folder = workdir / "zarr_model"
    folder.mkdir()
    _fields(written).to_dataset(name="rain").to_zarr(
        folder / "all.zarr", encoding={"time": {"units": "minutes since 2000-01-01"}}, consolidated=False
    )
    out = ExternalEstimates(folder).estimate(demo, TIMES)
    np.testing.assert_array_equal(out["rain"].values, _fields(written).values)


def _bad_folders(workdir: Path, written: Path) -> dict[str, Path]:
    rain = _fields(written)
    folders = {
        "units": _write(workdir / "bad_units", rain.assign_attrs(units="mm/day")),
        "grid": _write(workdir / "bad_grid", rain.assign_coords(x=rain["x"] + 1000.0)),
        "times": _write(workdir / "bad_times", rain.assign_coords(time=rain["time"] + np.timedelta64(365, "D"))),
    }
    corrupt = workdir / "bad_file"
    corrupt.mkdir(exist_ok=True)
    (corrupt / "part0.nc").write_bytes((written / "part0.nc").read_bytes()[:5000])
    folders["corrupt"] = corrupt
    folders["empty"] = workdir / "bad_empty"
    folders["empty"].mkdir(exist_ok=True)
    (folders["empty"] / "notes.txt").write_text("no estimates here")
    return folders


@pytest.mark.parametrize("case, message", [
    ("units", "variable 'rain' is in 'mm/day'; expected a rain rate in mm/h"),
    ("grid", "estimates 'bad_grid' are on another grid (256 x 256 pixels of 2 x 2 km"),
    ("times", ("model 'bad_times' holds no estimate at any time of the period (2021-06-01T12:00 .. "
               "2021-06-01T12:15); it holds 2022-06-01T12:00, 2022-06-01T12:15")),
    ("corrupt", "part0.nc is not a readable NetCDF file"),
    ("empty", "no estimate files in"),
])
def test_bad_estimates_give_one_clear_line(capsys, workdir, written, case, message):
    folder = _bad_folders(workdir, written)[case]
    out = workdir / f"out_{case}"
    capsys.readouterr()
    code = main(["evaluate", "--data", str(DEMO_DATA), "--estimates", str(folder), "--start", TIMES[0],
                 "--end", TIMES[-1], "--no-cache", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("qpe: error: "), err
    assert message in err[0]
    assert not out.exists(), "nothing is written for bad estimates"


def test_an_unknown_regridding_method_is_refused(written):
    with pytest.raises(InputError, match="unknown regridding method 'cubic'"):
        ExternalEstimates(written, regrid="cubic")


def test_paired_datasets_beside_estimates_are_data_not_a_model(demo, written, workdir):
    """A models folder may hold the data too: a paired dataset is neither an estimate file nor a model."""
    root = workdir / "mixed"
    (root / "data").mkdir(parents=True)
    demo.isel(time=[0], x=slice(0, 8), y=slice(0, 8)).to_netcdf(root / "data" / "case.nc")
    ours = _write(root / "ours", _fields(written))
    demo.isel(time=[0], x=slice(0, 8), y=slice(0, 8)).to_netcdf(ours / "case.nc")
    assert find_estimate_folders(root) == [ours]
    assert [p.name for p in ExternalEstimates(ours).files] == ["part.nc"]
