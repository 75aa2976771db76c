"""Torch samples: T successive IR frames -> rain, crops, masks and stored normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from qpe.data.normalization import IRNormalization, compute_ir_normalization, read_ir_normalization
from qpe.data.paired import make_paired_dataset, open_paired, save_paired
from qpe.data.samples import PairedSamples, SampleConfig, chronological_split, target_indices
from qpe.errors import DatasetError

CHANNELS = ["WV_062", "IR_108", "IR_120"]


@pytest.fixture
def coded(small_grid):
    """IR = 200 + time index + 10 * channel index (K), so every frame says where it came from."""
    times = pd.date_range("2021-06-01T12:00", periods=10, freq="15min").delete(6)  # gap: 13:30 missing
    nt, (ny, nx) = len(times), small_grid.shape
    ir = 200.0 + np.arange(nt)[:, None, None, None] + 10.0 * np.arange(3)[None, :, None, None]
    ir = np.broadcast_to(ir, (nt, 3, ny, nx)).copy()
    rain = np.tile(np.linspace(0, 20, nx), (nt, ny, 1))
    rain[:, :, :8] = np.nan  # no radar in the 8 western columns
    ds = make_paired_dataset(small_grid, times, ir=ir, channels=CHANNELS, rain=rain)
    return ds


def test_targets_need_consecutive_frames(coded):
    # times 0..5 regular, then 7..9 after the gap (renumbered 6..8)
    np.testing.assert_array_equal(target_indices(coded["time"].values, 1), np.arange(9))
    np.testing.assert_array_equal(target_indices(coded["time"].values, 3), [2, 3, 4, 5, 8])
    np.testing.assert_array_equal(target_indices(coded["time"].values, 4), [3, 4, 5])


def test_sample_holds_oldest_first_normalised_frames(tmp_path, coded):
    ds = open_paired(save_paired(coded, tmp_path / "c.zarr"))
    samples = PairedSamples(ds, SampleConfig(frames=3, crop=16))
    assert len(samples) == 5
    item = samples[4]  # target index 8, frames 6, 7, 8 in file order
    assert item["ir"].shape == (3, 3, 16, 16) and item["ir"].dtype == torch.float32
    norm = read_ir_normalization(ds)
    kelvin = item["ir"].numpy() * np.array(norm.std)[None, :, None, None] + np.array(norm.mean)[None, :, None, None]
    np.testing.assert_allclose(kelvin[:, :, 0, 0], 200 + np.array([6, 7, 8])[:, None] + 10 * np.arange(3), atol=1e-3)
    assert samples.target_time(4) == pd.Timestamp("2021-06-01T14:15")


def test_nan_radar_becomes_masked_zero(coded):
    samples = PairedSamples(coded, SampleConfig(frames=1, crop=None))
    item = samples[0]
    assert not item["mask"][:, :8].any() and item["mask"][:, 8:].all()
    assert (item["rain"][:, :8] == 0).all()
    np.testing.assert_allclose(item["rain"][0, 8:].numpy(), np.linspace(0, 20, 48)[8:], rtol=1e-6)


def test_crops_are_reproducible_and_change_with_epoch(coded):
    config = SampleConfig(frames=2, crop=16, min_radar_fraction=0.0)
    a, b = PairedSamples(coded, config, seed=1), PairedSamples(coded, config, seed=1)
    np.testing.assert_array_equal(a[0]["rain"], b[0]["rain"])
    firsts = set()
    for epoch in range(8):
        a.set_epoch(epoch)
        firsts.add(float(a[0]["rain"][0, 0]))
    assert len(firsts) > 1, "random crops must move between epochs"
    fixed = PairedSamples(coded, SampleConfig(frames=2, crop=16, random_crop=False, min_radar_fraction=0.0))
    before = fixed[0]["rain"].clone()
    fixed.set_epoch(5)
    np.testing.assert_array_equal(before, fixed[0]["rain"])


def test_crops_prefer_radar_coverage(coded):
    samples = PairedSamples(coded, SampleConfig(frames=1, crop=24, min_radar_fraction=1.0))
    for epoch in range(5):
        samples.set_epoch(epoch)
        assert all(bool(samples[i]["mask"].all()) for i in range(len(samples)))


def test_channel_subset_and_order(coded):
    samples = PairedSamples(coded, SampleConfig(frames=1, crop=None, channels=("IR_120", "WV_062")))
    item = samples[0]
    norm = samples.normalization
    kelvin = item["ir"][0, :, 0, 0].numpy() * np.array(norm.std) + np.array(norm.mean)
    np.testing.assert_allclose(kelvin, [220.0, 200.0], atol=1e-3)
    with pytest.raises(DatasetError, match="lacks IR channel"):
        PairedSamples(coded, SampleConfig(channels=("IR_134",)))


def test_dataloader_batches(coded):
    loader = torch.utils.data.DataLoader(PairedSamples(coded, SampleConfig(frames=2, crop=16)), batch_size=4)
    batch = next(iter(loader))
    assert batch["ir"].shape == (4, 2, 3, 16, 16)
    assert batch["rain"].shape == batch["mask"].shape == (4, 16, 16)


def test_chronological_split_leaves_a_gap():
    targets = np.arange(3, 40)
    train, val = chronological_split(targets, 0.2, frames=4)
    assert val[0] - train[-1] >= 4 and len(val) == 7 and train[0] == 3
    with pytest.raises(DatasetError, match="too few samples"):
        chronological_split(np.array([5]), 0.5, frames=4)


def test_normalisation_matches_numpy_and_is_stored(tmp_path, small_paired):
    norm = compute_ir_normalization(small_paired["ir"])
    ir = small_paired["ir"].values.astype("float64")
    np.testing.assert_allclose(norm.mean, ir.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(norm.std, ir.std(axis=(0, 2, 3)), rtol=1e-8)
    stored = read_ir_normalization(open_paired(save_paired(small_paired, tmp_path / "s.zarr")))
    np.testing.assert_allclose(stored.mean, norm.mean, rtol=1e-10)
    assert IRNormalization.from_dict(norm.to_dict()) == norm


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(frames=9), "between 1 and 8"),
        (dict(frames=0), "between 1 and 8"),
        (dict(crop=4), "at least 8 pixels"),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(DatasetError, match=message):
        SampleConfig(**config)


def test_crop_larger_than_grid_and_missing_rain(coded):
    with pytest.raises(DatasetError, match="larger than the grid"):
        PairedSamples(coded, SampleConfig(crop=64))
    with pytest.raises(DatasetError, match="lacks required variable"):
        PairedSamples(coded.drop_vars("rain"))
