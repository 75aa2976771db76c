"""Entirely-NaN fields: IR is refused by the validator, rain is reported by ``qpe data info`` and refused
for training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.cli import main
from qpe.data.paired import dataset_problems, make_paired_dataset, save_paired, validate_paired
from qpe.data.samples import PairedSamples, SampleConfig, chronological_split, target_indices
from qpe.errors import DatasetError

TIMES = pd.date_range("2021-06-01T12:00", periods=10, freq="15min")


@pytest.fixture
def paired(small_grid) -> xr.Dataset:
    """10 times, 2 channels, rain 0..4 mm/h everywhere."""
    rng = np.random.default_rng(1)
    ir = 230 + 40 * rng.random((10, 2, *small_grid.shape))
    rain = 4 * rng.random((10, *small_grid.shape))
    return make_paired_dataset(small_grid, TIMES, ir=ir, channels=["WV_062", "IR_108"], rain=rain)


def _with(ds: xr.Dataset, name: str, where) -> xr.Dataset:
    """``ds`` with ``name`` set to NaN at index ``where`` (bypassing validation)."""
    values = ds[name].values.copy()
    values[where] = np.nan
    return ds.assign({name: ds[name].copy(data=values)})


def _write_unvalidated(ds: xr.Dataset, path) -> str:
    """A dataset on disk as a foreign tool would write it (no validation on the way)."""
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return str(path)


# -- IR: an error ----------------------------------------------------------------------------------
def test_ir_entirely_nan_is_an_error(paired):
    message = r"^ir is entirely NaN: no brightness temperature at any of the 10 times$"
    with pytest.raises(DatasetError, match=message):
        validate_paired(_with(paired, "ir", np.s_[:]))


def test_ir_nan_at_2_of_10_times_names_both(paired):
    with pytest.raises(DatasetError) as err:
        validate_paired(_with(paired, "ir", np.s_[[3, 7]]))
    times = "(2021-06-01T12:45, 2021-06-01T13:45)"
    assert f"ir is entirely NaN (in at least one channel) at 2 of 10 times {times}" in str(err.value)


def test_ir_channel_entirely_nan_names_the_channel(paired):
    with pytest.raises(DatasetError, match="IR channel\\(s\\) WV_062 entirely NaN at all 10 times"):
        validate_paired(_with(paired, "ir", np.s_[:, 0]))


def test_ir_with_some_nan_pixels_is_valid(paired):
    validate_paired(_with(paired, "ir", np.s_[:, :, :5, :5]))


def test_info_on_nan_ir_fails_with_one_line(tmp_path, paired, capsys):
    path = _write_unvalidated(_with(paired, "ir", np.s_[1]), tmp_path / "d.zarr")
    assert main(["data", "info", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [(
        "qpe: error: ir is entirely NaN (in at least one channel) at 1 of 10 times (2021-06-01T12:15): "
        "missing scans; drop these times"
    )]


# -- rain: a problem line in qpe data info --------------------------------------------------------
def test_info_reports_rain_entirely_nan(tmp_path, paired, capsys):
    path = save_paired(_with(paired, "rain", np.s_[:]), tmp_path / "d.zarr")
    assert main(["data", "info", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  problem   rain is entirely NaN: no radar value at any of the 10 times" in out


def test_info_reports_the_times_without_radar(tmp_path, paired, capsys):
    path = save_paired(_with(paired, "rain", np.s_[[0, 9]]), tmp_path / "d.zarr")
    assert main(["data", "info", str(path), "--json"]) == 0
    assert '"rain has no valid pixel (no radar) at 2 of 10 times: 2021-06-01T12:00, 2021-06-01T14:15"' \
        in capsys.readouterr().out


def test_complete_rain_has_no_problem(paired):
    assert dataset_problems(paired) == []


# -- rain: refused for training -------------------------------------------------------------------
def test_samples_refuse_a_validation_block_without_radar(paired):
    """The last 3 times have no radar: training on the first ones works, their validation block fails."""
    ds = _with(paired, "rain", np.s_[7:])
    train, val = chronological_split(target_indices(ds["time"].values, 2), 0.3, 2)
    np.testing.assert_array_equal(val, [7, 8, 9])
    assert len(PairedSamples(ds, SampleConfig(frames=2, crop=16), targets=train)) == train.size
    with pytest.raises(DatasetError) as err:
        PairedSamples(ds, SampleConfig(frames=2, crop=16), targets=val)
    assert str(err.value) == (
        "the radar has no valid pixel at any of the 3 sample times (2021-06-01T13:45, 2021-06-01T14:00, "
        "2021-06-01T14:15): nothing to learn from or score against"
    )


def test_samples_refuse_rain_entirely_nan(paired):
    message = r"at any of the 9 sample times \(2021-06-01T12:15, .*\(9 in all\)\)"
    with pytest.raises(DatasetError, match=message):
        PairedSamples(_with(paired, "rain", np.s_[:]), SampleConfig(frames=2, crop=16))


@pytest.mark.slow
def test_train_refuses_rain_entirely_nan_and_writes_no_checkpoint(tmp_path, paired, capsys):
    data = save_paired(_with(paired, "rain", np.s_[:]), tmp_path / "d.zarr")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "name: tiny\nfamily: unet\ninput: {frames: 2}\n"
        "architecture: {base_channels: 8, channel_mults: [1, 2]}\n"
        "optim: {steps: 2, batch_size: 2, crop: 16, warmup_steps: 1, ema_decay: null}\n"
        "validation: {fraction: 0.3, every: 2, samples: 2, crop: 16, members: 1}\ncheckpoint_every: 2\n"
    )
    out = tmp_path / "model"
    assert main(["train", str(config), "--data", str(data), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qpe: error: the radar has no valid pixel at any of the")
    assert not out.exists()
