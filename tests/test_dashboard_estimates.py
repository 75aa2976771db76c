"""Estimates on demand in the dashboard: a deterministic model is estimated once, whatever the seed."""

from __future__ import annotations

import pandas as pd
import pytest
from dashboard_testing import make_checkpoints, make_dataset

from dashboard.estimates import MEMORY, EstimateSettings
from dashboard.session import DashboardSession, DashboardSettings
from qpe.errors import InputError

TIME = pd.Timestamp("2021-06-01T23:45")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard_estimates")
    data = make_dataset(root / "data.zarr")
    return DashboardSettings(str(data), make_checkpoints(root / "models", data, steps=5), root / "cache")


def test_a_unet_is_not_estimated_again_when_only_the_seed_changes(setup):
    MEMORY.clear()
    estimates = DashboardSession(setup).estimates
    first = estimates.field("unet", TIME, EstimateSettings(members=4, seed=0))
    assert first.sizes["member"] == 1
    assert estimates.recall("unet", TIME, EstimateSettings(members=2, seed=7)) is first  # from memory
    flow = estimates.field("flow_residual", TIME, EstimateSettings(members=2, seed=0))
    assert estimates.recall("flow_residual", TIME, EstimateSettings(members=2, seed=7)) is None
    assert estimates.recall("flow_residual", TIME, EstimateSettings(members=2, seed=0)) is flow


def test_settings_a_model_cannot_take_are_not_in_memory_and_say_why(setup):
    MEMORY.clear()
    estimates = DashboardSession(setup).estimates
    assert estimates.recall("ddpm", TIME, EstimateSettings(members=2, steps=500)) is None
    with pytest.raises(InputError, match="at most 100 .the model's diffusion timesteps"):
        estimates.field("ddpm", TIME, EstimateSettings(members=2, steps=500))
