"""What the past IR frames contribute (qpe.inference.frames, ``qpe frames``): past frames replaced by the latest."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from models_testing import variant_card

from qpe.cli import main
from qpe.data.catalog import ensure_dataset
from qpe.data.paired import open_paired, save_paired
from qpe.errors import InputError
from qpe.inference.engine import EstimateConfig
from qpe.inference.frames import (
    ALL_PAST,
    CHANGE_CI_SUFFIX,
    FULL,
    frame_contributions,
    frame_score_table,
    persisted_input,
    persistence_variants,
)
from qpe.models import build_model, save_checkpoint

DEMO_UNET = "models/demo/unet"
#: Demo times (UTC) with rain in the radar.
DEMO_TIMES = ["2021-06-01T10:00", "2021-06-01T15:00", "2021-06-02T12:00"]


def _checkpoint(tmp_path, variant: str, frames: int):
    directory = tmp_path / f"{variant}_t{frames}"
    card = variant_card(variant, frames=frames)
    model = build_model(card)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # untrained output layers start at zero: give every frame a visible effect
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    save_checkpoint(model, card, directory)
    return directory


def _run_cli(argv: list[str]) -> tuple[int, list[str]]:
    """Exit status and the non-empty stderr lines of ``qpe argv`` (progress bars left out)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    lines = [line for line in re.split(r"[\r\n]+", err.getvalue()) if line.strip() and not re.search(r"\d+%\|", line)]
    return status, lines


def test_variants_of_a_four_frame_input():
    assert persistence_variants(4) == {FULL: (), "frame_1": (1,), "frame_2": (2,), "frame_3": (3,),
                                       ALL_PAST: (1, 2, 3)}
    with pytest.raises(InputError, match="no past frame"):
        persistence_variants(1)


def test_persisted_input_copies_the_latest_frame_and_leaves_the_data(small_paired):
    before = small_paired["ir"].values.copy()
    window = persisted_input(small_paired, 3, 3, (1,))
    ir = small_paired["ir"].values
    np.testing.assert_array_equal(window["ir"].values[0], ir[3])
    np.testing.assert_array_equal(window["ir"].values[1:], ir[2:4])
    np.testing.assert_array_equal(small_paired["ir"].values, before)


def test_a_one_frame_model_is_refused_in_one_line(tmp_path, small_paired):
    checkpoint = _checkpoint(tmp_path, "unet", frames=1)
    with pytest.raises(InputError, match=r"reads one IR frame \(T = 1\)"):
        frame_contributions(checkpoint, small_paired, small_paired["time"].values[3:], progress=False)
    data = save_paired(small_paired, tmp_path / "small.zarr")
    out = tmp_path / "frames.nc"
    status, lines = _run_cli(["frames", "--checkpoint", str(checkpoint), "--data", str(data),
                              "--time", "2021-06-01T12:45", "--device", "cpu", "--no-cache", "--out", str(out)])
    assert status == 2 and len(lines) == 1 and "T = 1" in lines[0] and lines[0].startswith("qpe: error: ")
    assert not out.exists()


@pytest.mark.parametrize("variant, members", [("unet", 1), ("ddpm_v", 3)])
def test_replacing_a_frame_by_an_equal_one_changes_nothing(tmp_path, small_paired, variant, members):
    """Frame 2 of the time 12:45 made equal to frame T: its variant is bit-identical, the others are not."""
    checkpoint = _checkpoint(tmp_path, variant, frames=3)
    ir = small_paired["ir"].values.copy()
    ir[2] = ir[3]  # frames 1, 2, 3 of 12:45 are the times 12:15, 12:30, 12:45
    ds = small_paired.assign(ir=small_paired["ir"].copy(data=ir))
    config = EstimateConfig(members=members, steps=2, device="cpu", seed=5)
    out = frame_contributions(checkpoint, ds, ds["time"].values[3:], config)
    assert list(out["variant"].values) == [FULL, "frame_1", "frame_2", ALL_PAST]
    np.testing.assert_array_equal(out["rain"].sel(variant="frame_2").values, out["rain"].sel(variant=FULL).values)
    assert float(abs(out["change"].sel(variant="frame_2")).max()) == 0.0
    assert float(out["member_mean_absolute_change"].sel(variant="frame_2").max()) == 0.0
    assert float(out["mean_absolute_change"].sel(variant="frame_1").min()) > 0.0
    assert out.sizes["member"] == members


def test_a_frame_that_cannot_matter_has_a_change_interval_of_zero(tmp_path, small_paired):
    """IR of 12:15, 12:30 and 12:45 equal: at both scored times (12:30, 12:45) frame 2 equals frame T, so its
    change is 0 in every replicate; frame 1 differs at 12:30 only, so its interval has a width."""
    checkpoint = _checkpoint(tmp_path, "unet", frames=3)
    ir = small_paired["ir"].values.copy()
    ir[1:] = ir[3]
    ds = small_paired.assign(ir=small_paired["ir"].copy(data=ir))
    out = frame_contributions(checkpoint, ds, ds["time"].values[2:], EstimateConfig(device="cpu"), n_resamples=200)
    assert "times within UTC days" in out.attrs["change_ci"] and "(2 units" in out.attrs["change_ci"]
    for score in ("RMSE", "MAE", "CSI", "FSS"):
        bounds = out[f"{score}{CHANGE_CI_SUFFIX}"]
        assert bounds.dims[:2] == ("bound", "variant")
        np.testing.assert_array_equal(bounds.sel(variant=["full", "frame_2"]).fillna(0.0).values, 0.0)
    rmse = out[f"RMSE{CHANGE_CI_SUFFIX}"].sel(variant="frame_1")
    change = float(out["RMSE"].sel(variant="frame_1") - out["RMSE"].sel(variant=FULL))
    assert change != 0.0 and float(rmse.sel(bound="ci_low")) <= change <= float(rmse.sel(bound="ci_high"))
    assert float(rmse.sel(bound="ci_high") - rmse.sel(bound="ci_low")) > 0.0
    one_time = frame_contributions(checkpoint, ds, ds["time"].values[3:], EstimateConfig(device="cpu"))
    assert not [v for v in one_time.data_vars if str(v).endswith(CHANGE_CI_SUFFIX)]
    assert one_time.attrs["change_ci"].startswith("none: 1 time(s), 0 of them in UTC days with two or more")
    assert "ΔRMSE 2.5%" not in frame_score_table(one_time)


@pytest.fixture(scope="module")
def demo_frames():
    ds = open_paired(ensure_dataset("demo"))
    return frame_contributions(DEMO_UNET, ds, DEMO_TIMES, EstimateConfig(device="cpu"), n_resamples=200)


def test_demo_change_intervals_hold_each_change_and_are_paired(demo_frames):
    """Every variant's score change lies in its interval; the full input's interval is [0, 0] (paired: each
    replicate scores every variant on the same draw of times); the table shows the same bounds."""
    out = demo_frames
    table = frame_score_table(out)
    for score, column, levels in (("RMSE", "ΔRMSE", {}), ("CSI", "ΔCSI", {"threshold": 1.0}),
                                  ("FSS", "ΔFSS", {"threshold": 1.0, "scale": 16.0})):
        values = out[score].sel(levels)
        change = (values - values.sel(variant=FULL)).values
        bounds = out[f"{score}{CHANGE_CI_SUFFIX}"].sel(levels)
        low, high = bounds.sel(bound="ci_low").values, bounds.sel(bound="ci_high").values
        assert (low <= change + 1e-12).all() and (change <= high + 1e-12).all(), score
        assert low[0] == high[0] == 0.0 and (high[1:] > low[1:]).all(), score
        np.testing.assert_array_equal(table[f"{column} 2.5%"].values, low)
        np.testing.assert_array_equal(table[f"{column} 97.5%"].values, high)


def test_change_intervals_round_trip_through_netcdf(demo_frames, tmp_path):
    path = tmp_path / "frames.nc"
    demo_frames.drop_vars("rain").to_netcdf(path, engine="netcdf4")
    with xr.open_dataset(path) as written:
        assert written[f"CSI{CHANGE_CI_SUFFIX}"].dims == ("bound", "variant", "threshold")
        assert list(written["bound"].values) == ["ci_low", "ci_high"]
        xr.testing.assert_equal(written[f"FSS{CHANGE_CI_SUFFIX}"], demo_frames[f"FSS{CHANGE_CI_SUFFIX}"])
        assert "paired" in written.attrs["change_ci"]


def test_demo_unet_past_frames_change_the_estimate(demo_frames):
    out = demo_frames
    assert out.attrs["frames"] == 4
    assert list(out["variant"].values) == [FULL, "frame_1", "frame_2", "frame_3", ALL_PAST]
    assert list(out["replaced_frames"].values) == ["", "1", "2", "3", "1,2,3"]
    change = out["mean_absolute_change"]
    assert float(change.sel(variant=FULL).max()) == 0.0
    past = change.drop_sel(variant=FULL)
    assert np.isfinite(past.values).all() and (past.values > 0).all()
    assert np.isfinite(out["change"].sel(variant="frame_3").values).any()
    for score in ("RMSE", "CSI", "FSS"):
        assert np.isfinite(out[score].values).all(), score
    table = frame_score_table(out)
    assert list(table.index) == list(out["variant"].values)
    assert table.loc[FULL, "ΔRMSE (mm/h)"] == 0.0
    np.testing.assert_allclose(table["RMSE (mm/h)"].values, out["RMSE"].values)
    np.testing.assert_allclose(table["CSI ≥ 1 mm/h"].values, out["CSI"].sel(threshold=1.0).values)


def test_cli_writes_the_frames_netcdf_and_refuses_its_input_as_output(tmp_path):
    data = ensure_dataset("demo")
    out = tmp_path / "frames.nc"
    table = tmp_path / "frames.csv"
    argv = ["frames", "--checkpoint", DEMO_UNET, "--data", "demo", "--time", DEMO_TIMES[0], "--device", "cpu",
            "--no-cache", "--thresholds", "1", "5", "--csv", str(table), "--out"]
    status, lines = _run_cli(argv + [str(out)])
    assert status == 0, lines
    written_table = pd.read_csv(table, index_col="variant")  # one time: the table without interval columns
    assert list(written_table.index) == [FULL, "frame_1", "frame_2", "frame_3", ALL_PAST]
    assert "ΔRMSE (mm/h)" in written_table.columns and not written_table.columns.str.endswith("%").any()
    with xr.open_dataset(out) as written:
        assert written["rain"].dims == ("variant", "member", "time", "y", "x")
        assert written["change"].dims == ("variant", "time", "y", "x")
        assert written["CSI"].dims == ("variant", "threshold")
        assert written["FSS"].dims == ("variant", "threshold", "scale")
        assert list(written["variant"].values) == [FULL, "frame_1", "frame_2", "frame_3", ALL_PAST]
        assert list(written["threshold"].values) == [1.0, 5.0]
        assert written["change"].attrs["units"] == "mm/h"
        assert pd.Timestamp(written["time"].values[0]) == pd.Timestamp(DEMO_TIMES[0])
        assert written.attrs["change_ci"].startswith("none: 1 time(s)")
        np.testing.assert_allclose(written["RMSE"].values, written_table["RMSE (mm/h)"].values, rtol=1e-12)
    for target in (data, data / "zarr.json"):
        status, lines = _run_cli(argv + [str(target)])
        assert status == 2 and len(lines) == 1 and lines[0].startswith("qpe: error: "), lines
