"""NWC SAF CRR as one more model: the same estimate call and layout, regridding, cache, CLI, evaluation.

Uses the real CRR files of ../shared/data/nwcsaf_crr/20180601 (12:00-14:45 UTC; skipped when absent) on a
synthetic paired dataset over France at those times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evaluation_testing import save_tiny_checkpoints, synthetic_data

from qpe.cli import main
from qpe.data.grid import Grid
from qpe.data.paired import save_paired
from qpe.data.readers.crr import read_crr
from qpe.errors import DatasetError, InputError
from qpe.evaluation import EvaluationConfig, evaluate_period, score_table
from qpe.inference.cache import EstimateCache
from qpe.inference.estimators import CheckpointEstimator, Estimator
from qpe.inference.reference import CRR_NAME, CrrReference
from qpe.verify import ScoreConfig, scores_to_frame, verify

KEYS = ["model", "metric", "threshold", "scale"]
#: FSS scales on the 8 km test grid, km (the defaults start at 2 km).
SCALES = ["16", "32", "64", "128"]


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def france():
    """13 times 2018-06-01 11:45 .. 14:45 (CRR has 12:00 .. 14:45), 48 x 48 pixels of 8 km over France."""
    return synthetic_data("2018-06-01T11:45", hours=3.25, size=48, pixel_km=8.0, seed=2)


@pytest.fixture(scope="module")
def crr_glob(crr_dir):
    return str(crr_dir / "*.nc")


def test_crr_is_an_estimator_with_the_model_layout(france, crr_glob, crr_dir):
    crr = CrrReference(crr_glob)
    assert isinstance(crr, Estimator) and crr.name == CRR_NAME and crr.frames == 1
    times = france["time"].values[1:]
    out = crr.estimate(france, times, progress=False)
    rain = out["rain"]
    assert rain.dims == ("member", "time", "y", "x") and rain.shape == (1, 12, 48, 48)
    assert rain.attrs["units"] == "mm/h"
    np.testing.assert_array_equal(out["time"].values, times)
    np.testing.assert_array_equal(out["x"].values, france["x"].values)
    assert out.attrs["model"] == CRR_NAME and out.attrs["family"] == "reference" and out.attrs["members"] == 1
    # exactly what the CRR reader gives on the same grid
    direct = read_crr(sorted(crr_dir.glob("*.nc")), Grid.from_dataset(france))["rain"]
    np.testing.assert_array_equal(rain.values[0], direct.sel(time=times).values)
    assert np.isfinite(rain.values).all(), "France lies inside the CRR Europe domain"
    assert (rain.values > 0.1).any() and rain.values.max() < 200


def test_time_without_a_crr_file_is_one_clear_error(france, crr_glob):
    with pytest.raises(
        InputError,
        match=r"NWC SAF CRR has no file for 2018-06-01T11:45 \(the CRR files cover "
        r"2018-06-01T12:00 \.\. 2018-06-01T14:45, 12 files\)",
    ):
        CrrReference(crr_glob).estimate(france, france["time"].values[:2], progress=False)


def test_time_not_in_the_data(france, crr_glob):
    with pytest.raises(DatasetError, match="time 2018-06-01T15:00 is not in the data"):
        CrrReference(crr_glob).estimate(france, ["2018-06-01T15:00"], progress=False)


def test_no_crr_files_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no NWC SAF CRR files match"):
        CrrReference(str(tmp_path / "*.nc"))


def test_regridded_fields_are_cached(tmp_path, france, crr_glob):
    cache = EstimateCache(tmp_path / "cache")
    times = france["time"].values[3:6]
    first = CrrReference(crr_glob).estimate(france, times, cache=cache, progress=False)
    files = sorted(cache.root.rglob("*.nc"))
    assert len(files) == 3
    again = CrrReference(crr_glob).estimate(france, times, cache=cache, progress=False)
    xr.testing.assert_identical(first, again)
    assert sorted(cache.root.rglob("*.nc")) == files
    coarser = france.isel(x=slice(0, None, 2), y=slice(0, None, 2))  # another grid, other entries
    CrrReference(crr_glob).estimate(coarser, times[:1], cache=cache, progress=False)
    assert len(list(cache.root.rglob("*.nc"))) == 4


def test_cli_estimate_with_crr(tmp_path, france, crr_glob, capsys):
    data = save_paired(france, tmp_path / "france.zarr")
    out = tmp_path / "crr.nc"
    code = main(
        [
            "estimate",
            "--crr",
            crr_glob,
            "--data",
            str(data),
            "--time",
            "2018-06-01T13:00",
            "--time",
            "2018-06-01T13:15",
            "--no-cache",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with xr.open_dataset(out) as ds:
        assert ds["rain"].shape == (1, 2, 48, 48) and ds.attrs["model"] == CRR_NAME
    assert "nwcsaf_crr (reference)" in capsys.readouterr().out
    code = main(
        [
            "estimate",
            "--crr",
            crr_glob,
            "--data",
            str(data),
            "--time",
            "2018-06-01T11:45",
            "--no-cache",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert (
        capsys.readouterr().err.strip().startswith("qpe: error: NWC SAF CRR has no file for 2018-06-01T11:45")
    )


def test_evaluate_scores_crr_like_a_model(tmp_path, france, crr_glob, capsys):
    data = save_paired(france, tmp_path / "france.zarr")
    models = save_tiny_checkpoints(tmp_path / "models", variants=())
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--data",
            str(data),
            "--checkpoints",
            str(models),
            "--crr",
            crr_glob,
            "--start",
            "2018-06-01T12:00",
            "--out",
            str(out),
            "--bootstrap",
            "0",
            "--no-cache",
            "--scales-km",
            *SCALES,
        ]
    )
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out / "scores.csv")
    assert sorted(table["model"].unique()) == sorted(["unet", CRR_NAME, "radar"])
    assert not table.duplicated(KEYS).any()
    # the CRR rows are qpe.verify's scores of the CRR fields, on the pixels where every model is valid
    times = france["time"].values[1:]
    crr = CrrReference(crr_glob).estimate(france, times, progress=False)["rain"].isel(member=0, drop=True)
    unet = CheckpointEstimator(models / "unet").estimate(france, times, progress=False)["rain"]
    radar = france["rain"].sel(time=times)
    valid = radar.notnull() & crr.notnull() & unet.notnull().all("member")
    expected = scores_to_frame(
        verify(crr.where(valid), radar.where(valid), scales_km=[float(s) for s in SCALES], model=CRR_NAME)
    )
    got = table[table["model"] == CRR_NAME]
    merged = expected[expected["model"] == CRR_NAME].merge(got, on=KEYS, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    np.testing.assert_allclose(merged["value_y"], merged["value_x"], rtol=1e-9, atol=1e-12, equal_nan=True)
    assert "confidence intervals: none" in capsys.readouterr().out


def test_evaluate_period_needs_crr_at_every_time(france, crr_glob):
    # CRR reads one frame, so 11:45 is in the period, and CRR has no file for it: one error before any work
    config = EvaluationConfig(scores=ScoreConfig(scales_km=(16.0, 32.0)), n_resamples=0)
    with pytest.raises(InputError, match="NWC SAF CRR has no file for 2018-06-01T11:45"):
        evaluate_period(france, [CrrReference(crr_glob)], config=config, progress=False)
    scores = evaluate_period(
        france, [CrrReference(crr_glob)], "2018-06-01T12:00", "2018-06-01T12:30", config, progress=False
    )
    assert list(scores["model"].values) == [CRR_NAME] and scores.attrs["n_times"] == 3
    assert score_table(scores)["model"].isin([CRR_NAME, "radar"]).all()
    assert "member" not in scores["POD"].dims and "CRPS" not in scores


def test_fss_scales_finer_than_the_grid_are_refused_before_any_work(france, crr_glob):
    with pytest.raises(
        InputError,
        match=r"FSS scale 2 km is shorter than half a pixel \(8 km\): give FSS scales "
        r"of at least 4 km \(--scales-km\)",
    ):
        evaluate_period(france, [CrrReference(crr_glob)], "2018-06-01T12:00", progress=False)
