"""Training data that generalise: a synthetic dataset of independent scenarios (winds and weather of
their own, no input window across two), and joint IR/rain augmentation of training samples."""

from __future__ import annotations

import hashlib
import types

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from qpe.data.grid import OPERA_CRS, Grid
from qpe.data.paired import make_paired_dataset, save_paired
from qpe.data.samples import (
    DIHEDRAL,
    TRANSFORMS,
    PairedSamples,
    SampleConfig,
    apply_transform,
    target_indices,
)
from qpe.data.synthetic import SynthConfig, generate_paired, semisynthetic_paired, simulate_rain
from qpe.errors import DatasetError, InputError
from qpe.evaluation.period import usable_times
from qpe.inference.engine import input_stack
from qpe.training import TrainConfig, TrainingState, state_dir, train

#: Three scenarios of one hour on 32 x 32 pixels, two channels.
SCENARIOS = SynthConfig(hours=3, scenario_hours=1, size=32, seed=11, channels=("WV_062", "IR_108"))


@pytest.fixture(scope="module")
def scenarios():
    return generate_paired(SCENARIOS)


def _winds(ds) -> list[dict]:
    return yaml.safe_load(ds.attrs["synthetic_scenarios"])


# -- scenarios ------------------------------------------------------------------------------------------
def test_default_config_data_are_unchanged():
    """The data of a config without scenarios are bit-identical to those before scenarios existed
    (hash recorded at commit 52cbb02); a deliberate change of the generator bumps GENERATOR_VERSION."""
    ds = generate_paired(SynthConfig(hours=1, size=32, seed=11))
    h = hashlib.sha256()
    for name in ("ir", "rain"):
        h.update(np.ascontiguousarray(ds[name].values).tobytes())
    assert h.hexdigest() == "c82dc1d7c9406ddc379bec31cea2f9815ab28ffa96dc9c6917ec363a295b4e59"
    assert "synthetic_scenarios" not in ds.attrs
    assert ds.attrs["synthetic_winds_px_per_min"].startswith("Winds(")


def test_scenarios_leave_out_their_last_step(scenarios):
    times = pd.DatetimeIndex(scenarios["time"].values)
    assert SCENARIOS.scenarios == 3 and SCENARIOS.frames == times.size == 9
    assert list(times.strftime("%H:%M")) == ["00:00", "00:15", "00:30", "01:00", "01:15", "01:30",
                                             "02:00", "02:15", "02:30"]


def test_each_scenario_has_its_own_winds(scenarios):
    winds = _winds(scenarios)
    assert [w["first"] for w in winds] == ["2021-06-01T00:00", "2021-06-01T01:00", "2021-06-01T02:00"]
    assert [w["last"] for w in winds] == ["2021-06-01T00:30", "2021-06-01T01:30", "2021-06-01T02:30"]
    assert len({(w["steering_wind_ms"], w["steering_wind_from_deg"]) for w in winds}) == 3
    for w in winds:
        assert 4.0 <= w["steering_wind_ms"] <= 11.0 and 200.0 <= w["steering_wind_from_deg"] <= 320.0
    assert scenarios.attrs["synthetic_winds_px_per_min"].count("Winds(") == 3


def test_scenarios_are_seeded_by_spawning(scenarios):
    """Scenario k is seeded with child k of SeedSequence(seed): more scenarios leave the first ones as
    they were, and no scenario repeats the single-scenario data of the same seed."""
    longer = generate_paired(SCENARIOS.replace(hours=4))
    np.testing.assert_array_equal(longer["ir"].values[:9], scenarios["ir"].values)
    single = generate_paired(SCENARIOS.replace(scenario_hours=None, hours=0.75))
    assert not np.allclose(single["ir"].values, scenarios["ir"].values[:3])


@pytest.mark.parametrize("frames", [2, 3, 4, 8])
def test_no_input_window_spans_two_scenarios(scenarios, frames):
    """Training targets, evaluation times and the inference engine all refuse a window across a boundary."""
    times = scenarios["time"].values
    first_of = {0, 3, 6}  # the first frame of each scenario
    within = [i for i in range(times.size) if i % 3 >= frames - 1]
    np.testing.assert_array_equal(target_indices(times, frames), within)
    estimator = types.SimpleNamespace(name=f"t{frames}", frames=frames)
    if within:
        np.testing.assert_array_equal(
            usable_times(scenarios, pd.DatetimeIndex(times), [estimator]), pd.DatetimeIndex(times[within]))
    else:
        with pytest.raises(DatasetError, match="runs of at most 3 frames"):
            usable_times(scenarios, pd.DatetimeIndex(times), [estimator])
    for index in range(frames - 1, times.size):
        if index not in within:
            assert any(i in first_of for i in range(index - frames + 2, index + 1))
            with pytest.raises(DatasetError, match="gap"):
                input_stack(scenarios, index, frames, ["IR_108"])


def test_scenarios_are_reproducible_and_rain_only_matches(scenarios):
    again = generate_paired(SCENARIOS)
    np.testing.assert_array_equal(again["ir"].values, scenarios["ir"].values)
    np.testing.assert_array_equal(again["rain"].values, scenarios["rain"].values)
    np.testing.assert_array_equal(simulate_rain(SCENARIOS).values, scenarios["rain"].values)
    assert yaml.safe_load(scenarios.attrs["synthetic_config"])["scenario_hours"] == 1


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(hours=3, scenario_hours=0.5), "multiple of 0.25 from 0.75"),
        (dict(hours=3, scenario_hours=1.1), "multiple of 0.25"),
        (dict(hours=3, scenario_hours=6), "to hours"),
        (dict(hours=3, scenario_hours=float("nan")), "scenario_hours"),
        (dict(hours=3, scenario_hours="1"), "scenario_hours"),
        (dict(hours=3, scenario_hours=1.25), "whole number of scenarios"),
    ],
)
def test_bad_scenario_settings_are_one_line(changes, message):
    with pytest.raises(InputError, match=message):
        SynthConfig(**changes)


def test_semi_synthetic_mode_refuses_scenarios():
    with pytest.raises(InputError, match="fully synthetic"):
        semisynthetic_paired("nothing/*.hdf", SynthConfig(hours=2, scenario_hours=1))


# -- joint augmentation ---------------------------------------------------------------------------------
@pytest.fixture
def marked():
    """A square 32 x 32 field whose IR frames (t, channel) and rain carry the same off-centre mark.

    IR = 200 K + 10 t + channel, plus 50 K on a 3 x 5 block near the north-west corner; rain 5 mm/h on
    the same block, NaN in a 4-pixel band along the east edge.
    """
    times = pd.date_range("2021-06-01T12:00", periods=5, freq="15min")
    grid = Grid(OPERA_CRS, 1_201_000.0, -2_901_000.0, 2000.0, 2000.0, 32, 32)
    ir = 200.0 + 10.0 * np.arange(5)[:, None, None, None] + np.arange(2)[None, :, None, None]
    ir = np.broadcast_to(ir, (5, 2, 32, 32)).copy()
    ir[:, :, 2:5, 4:9] += 50.0
    rain = np.zeros((5, 32, 32))
    rain[:, 2:5, 4:9] = 5.0
    rain[:, :, -4:] = np.nan
    return make_paired_dataset(grid, times, ir=ir, channels=["WV_062", "IR_108"], rain=rain)


def test_transforms_are_the_eight_symmetries_of_a_square():
    field = np.arange(12.0).reshape(3, 4)
    images = {name: apply_transform(field, name) for name in TRANSFORMS}
    assert len({im.tobytes() + bytes(im.shape) for im in images.values()}) == 8
    np.testing.assert_array_equal(images["flip_x"], field[:, ::-1])
    np.testing.assert_array_equal(images["flip_y"], field[::-1])
    np.testing.assert_array_equal(images["transpose"], field.T)
    np.testing.assert_array_equal(images["rot90"], np.rot90(field))
    assert all(im.flags.c_contiguous for im in images.values())


@pytest.mark.parametrize("name", DIHEDRAL)
def test_augmentation_moves_ir_rain_and_mask_together(marked, name):
    plain = PairedSamples(marked, SampleConfig(frames=3, crop=None))[0]
    samples = PairedSamples(marked, SampleConfig(frames=3, crop=None, augment=(name,)))
    samples.transform = lambda item, epoch=None: name  # this sample draws ``name``
    item = samples[0]
    for key in ("ir", "rain", "mask"):
        np.testing.assert_array_equal(item[key].numpy(), apply_transform(plain[key].numpy(), name))
    ir, rain, mask = item["ir"].numpy(), item["rain"].numpy(), item["mask"].numpy()
    hot = ir > ir.mean(axis=(2, 3), keepdims=True)
    assert all((hot[t, c] == (rain > 0)).all() for t in range(3) for c in range(2))  # every frame, channel
    assert mask[rain > 0].all() and (rain[~mask] == 0).all() and (~mask).sum() == 4 * 32


def test_augmentation_is_reproducible_and_changes_with_epoch(marked):
    config = SampleConfig(frames=1, crop=16, augment=DIHEDRAL, min_radar_fraction=0.0)
    a, b = PairedSamples(marked, config, seed=4), PairedSamples(marked, config, seed=4)
    drawn = {(epoch, item): a.transform(item, epoch) for epoch in range(6) for item in range(len(a))}
    assert drawn == {(epoch, item): b.transform(item, epoch) for epoch in range(6) for item in range(len(b))}
    assert len(set(drawn.values())) >= 5
    np.testing.assert_array_equal(a[(3, 2)]["ir"], b[(3, 2)]["ir"])
    # The crops do not depend on the augmentation (their own random stream).
    unaugmented = PairedSamples(marked, SampleConfig(frames=1, crop=16, min_radar_fraction=0.0), seed=4)
    for epoch, item in [(0, 0), (2, 3), (5, 1)]:
        np.testing.assert_array_equal(
            a[(epoch, item)]["rain"].numpy(),
            apply_transform(unaugmented[(epoch, item)]["rain"].numpy(), a.transform(item, epoch)))


def test_augmentation_is_off_by_default_and_fixed_without_random_crops(marked):
    assert PairedSamples(marked, SampleConfig(frames=1, crop=16)).transform(0, 3) == "identity"
    fixed = PairedSamples(marked, SampleConfig(frames=1, crop=16, random_crop=False, augment=DIHEDRAL))
    assert len({fixed.transform(item, epoch) for epoch in range(8) for item in [1]}) == 1


def test_bad_augmentations_are_refused(marked):
    with pytest.raises(DatasetError, match="unknown augmentation"):
        SampleConfig(augment=("mirror",))
    with pytest.raises(DatasetError, match="needs square samples"):
        PairedSamples(marked.isel(x=slice(0, 24)), SampleConfig(frames=1, crop=None, augment=("rot90",)))
    flips = SampleConfig(frames=1, crop=None, augment=("flip_x", "flip_y"))
    assert PairedSamples(marked.isel(x=slice(0, 24)), flips)[0]["ir"].shape == (1, 2, 32, 24)
    with pytest.raises(InputError, match="unknown transform"):
        _tiny_config(augment=["spin"])


# -- training -------------------------------------------------------------------------------------------
def _silent(line: str) -> None:
    """A training ``log`` that prints nothing."""


def _tiny_config(**optim) -> TrainConfig:
    return TrainConfig.from_dict({
        "name": "unet", "family": "unet", "input": {"frames": 2},
        "architecture": {"base_channels": 8, "channel_mults": [1, 2], "groups": 4},
        "optim": {"steps": 4, "batch_size": 4, "crop": 16, "lr": 3e-3, "warmup_steps": 1, **optim},
        "validation": {"fraction": 0.25, "every": 1, "samples": 2, "crop": 32},
        "checkpoint_every": 2, "seed": 3,
    })


@pytest.fixture(scope="module")
def scenario_data(tmp_path_factory):
    ds = generate_paired(SCENARIOS.replace(hours=4))
    return save_paired(ds, tmp_path_factory.mktemp("data") / "scenarios.zarr")


def test_training_augments_its_samples_only(scenario_data, monkeypatch):
    """optim.augment reaches the training samples; validation samples are never augmented."""
    from qpe.training import loop

    seen = []
    original = loop.PairedSamples.__init__

    def spy(self, ds, config, **kwargs):
        seen.append(config.augment)
        original(self, ds, config, **kwargs)

    monkeypatch.setattr(loop.PairedSamples, "__init__", spy)
    loop._samples(_tiny_config(augment=["flip_x", "rot90"]), scenario_data, None, False)
    assert seen == [("flip_x", "rot90"), ()]
    assert _tiny_config().optim.augment == ()


def test_an_augmented_run_resumes_exactly(tmp_path, scenario_data):
    """Stopped after its step-2 checkpoint and resumed, an augmented run reaches the same weights."""
    config = _tiny_config(augment=list(DIHEDRAL))
    straight = train(config, data=scenario_data, out=tmp_path / "straight", progress=False, log=_silent)

    def stop_at_step_3(line: str) -> None:
        if " step 3:" in line:
            raise KeyboardInterrupt(line)

    with pytest.raises(KeyboardInterrupt):
        train(config, data=scenario_data, out=tmp_path / "resumed", progress=False, log=stop_at_step_3)
    assert TrainingState.load(state_dir(tmp_path / "resumed")).step == 2
    resumed = train(config, data=scenario_data, out=tmp_path / "resumed", resume=True, progress=False,
                    log=_silent)
    a, b = (TrainingState.load(state_dir(p)) for p in (straight, resumed))
    assert a.step == b.step == 4
    for key, value in a.model.items():
        torch.testing.assert_close(value, b.model[key], rtol=0, atol=0, msg=key)
