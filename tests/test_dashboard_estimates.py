"""Estimates on demand in the dashboard: a deterministic model is estimated once, whatever the seed; a folder
of your own estimates is a model; a running estimate shows its sampler steps and can be cancelled."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import pytest
from dashboard_testing import make_checkpoints, make_dataset, shown_text

from dashboard.estimates import MEMORY, EstimateSettings
from dashboard.model_picker import EstimateRunner
from dashboard.session import DashboardSession, DashboardSettings
from dashboard.text import plain_html
from qpe.data.paired import open_paired
from qpe.errors import DatasetError, InputError
from qpe.inference.engine import estimate
from qpe.models import load

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


# -- your own estimates as a model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def external(setup):
    """The U-Net's estimates at TIME and 15 min later, written by the library into models/my_unet/."""
    data = open_paired(setup.data)
    out = estimate(load(Path(setup.models) / "unet"), data, [TIME, TIME + pd.Timedelta("15min")], progress=False)
    folder = Path(setup.models) / "my_unet"
    folder.mkdir()
    out.to_netcdf(folder / "unet.nc")
    return out


def test_a_folder_of_estimates_is_offered_and_read_like_a_model(setup, external):
    MEMORY.clear()
    session = DashboardSession(setup)
    registry = session.registry
    assert "my_unet" in registry.keys and registry.offers("my_unet") and "my_unet" not in registry.checkpoints
    assert not registry.model("my_unet").is_ensemble
    card = shown_text(pn.pane.Markdown(registry.model("my_unet").describe()))
    assert card.startswith("my_unet — your own estimates (read from files)")
    assert "1 file(s), 2 time(s): 2021-06-01 23:45 .. 2021-06-02 00:00 UTC" in card
    field = session.estimates.field("my_unet", TIME, EstimateSettings(members=4, seed=3))
    np.testing.assert_array_equal(field.values, external["rain"].sel(time=TIME).values)
    assert field.attrs["family"] == "external"
    assert session.recall("my_unet", TIME) is field, "remembered whatever the members and seed"
    with pytest.raises(DatasetError, match="estimates 'my_unet' lack 1 of the 1 time"):
        session.estimates.field("my_unet", TIME - pd.Timedelta("15min"), EstimateSettings())


# -- progress and cancel of a running estimate ----------------------------------------------------------------
def test_the_runner_shows_sampler_steps_and_cancel_keeps_nothing(setup):
    """A long flow estimate shows 'step k/K ... left' while it runs; Cancel stops it: the line says so, no
    field is remembered or cached, no failure is reported."""
    MEMORY.clear()
    session = DashboardSession(setup)
    session.state.steps, session.state.members = 400, 4
    runner = EstimateRunner(session)
    shown: list[str] = []
    runner.status.param.watch(lambda event: shown.append(event.new), "object")
    cache_before = set(Path(setup.cache_dir).rglob("*.nc")) if Path(setup.cache_dir).exists() else set()

    async def click_cancel_once_a_step_shows():
        while not any("step " in line for line in shown):
            await asyncio.sleep(0.02)
        assert runner.cancel_button.visible
        runner.cancel_button.clicks += 1

    async def both():
        both = asyncio.gather(runner.run(["flow_residual"], [TIME]), click_cancel_once_a_step_shows())
        await asyncio.wait_for(both, timeout=120)

    asyncio.run(both())
    running = next(line for line in shown if "step " in line)
    assert re.search(r"estimating flow_residual at 2021-06-01T23:45 \(1/1\): step \d+/400, (members 1-\d of 4, )?.*s left", running)
    assert runner.status.object == plain_html("cancelled flow_residual at 2021-06-01T23:45; 0 of 1 estimate(s) done")
    assert session.recall("flow_residual", TIME) is None
    assert session.failures == {} and session.messages.items == {}
    cache_after = set(Path(setup.cache_dir).rglob("*.nc")) if Path(setup.cache_dir).exists() else set()
    assert cache_after == cache_before, "nothing of the cancelled estimate is cached"
    assert not runner.progress.visible and not runner.cancel_button.visible
    # the next run is not cancelled by the last one's click
    session.state.steps = 2
    assert runner.run_blocking(["flow_residual"], [TIME]) == 0
    assert session.recall("flow_residual", TIME) is not None
