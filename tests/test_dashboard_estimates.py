"""Estimates on demand in the dashboard: a deterministic model is estimated once, whatever the seed; a folder
of your own estimates is a model (in the ensemble tab with its members, not applicable in the input-frames
tab, regridded from another grid only when chosen, as ``qpe evaluate --estimates-regrid``); a running
estimate shows its sampler steps and can be cancelled."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from dashboard_testing import make_checkpoints, make_dataset, shown_text

from dashboard.checkpoints import REGRID_CHOICES
from dashboard.ensemble import ONE_MEMBER, EnsembleBrowser, ensemble_models, ensemble_panels, stamp_panels
from dashboard.estimates import MEMORY, EstimateSettings
from dashboard.frames import NOT_APPLICABLE, FramesPanel, frames_models, frames_not_applicable
from dashboard.maps import sampling_text
from dashboard.model_picker import EstimateRunner, ModelPicker
from dashboard.session import DashboardSession, DashboardSettings
from dashboard.text import plain_html
from qpe.colours import model_colour
from qpe.data.grid import GRID_MAPPING_NAME, Grid
from qpe.data.paired import open_paired
from qpe.data.regrid import Regridder
from qpe.errors import DatasetError, InputError
from qpe.inference.engine import EstimateConfig, estimate
from qpe.inference.external import REGRID_METHODS, ExternalEstimates
from qpe.models import load

TIME = pd.Timestamp("2021-06-01T23:45")

hv.extension("bokeh", logo=False)  # the tabs' maps are holoviews plots, as in the app


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


def test_the_precision_chosen_in_the_sidebar_reaches_the_engine_and_is_kept_apart(setup):
    MEMORY.clear()
    session = DashboardSession(setup)
    auto = session.estimates.field("flow_residual", TIME, session.estimate_settings())
    session.state.precision = "bfloat16"
    assert session.estimate_settings() == EstimateSettings(members=4, precision="bfloat16")
    assert session.recall("flow_residual", TIME) is None  # not the float32 field from memory
    bf16 = session.estimates.field("flow_residual", TIME, session.estimate_settings())
    assert (auto.attrs["precision"], bf16.attrs["precision"]) == ("float32", "bfloat16")
    assert session.recall("flow_residual", TIME) is bf16
    assert sampling_text(session, "flow_residual") == "4 members, K = 2 heun, bf16"  # the card's K
    assert sampling_text(session, "unet") == "bf16"  # a deterministic model's numbers change too


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


@pytest.fixture(scope="module")
def external_ensemble(setup):
    """Two members of the residual flow at TIME, written by the library into models/my_flow/."""
    out = estimate(load(Path(setup.models) / "flow_residual"), open_paired(setup.data), [TIME],
                   EstimateConfig(members=2, steps=2), progress=False)
    folder = Path(setup.models) / "my_flow"
    folder.mkdir()
    out.to_netcdf(folder / "flow.nc")
    return out


@pytest.fixture(scope="module")
def external_coarse(setup, external) -> tuple[Path, Grid, np.ndarray]:
    """The U-Net's field at TIME averaged onto pixels twice as large, in models/my_coarse/: (folder, grid, values)."""
    target = Grid.from_dataset(open_paired(setup.data))
    coarse = Grid(target.crs, target.x0 + target.dx / 2, target.y0 - target.dy / 2, 2 * target.dx, 2 * target.dy,
                  target.nx // 2, target.ny // 2)
    rain = external["rain"].sel(time=[TIME])
    halved = Regridder(target, coarse, "mean").apply(rain.values.astype("float64")).astype("float32")
    field = xr.DataArray(halved, dims=rain.dims, attrs=rain.attrs, coords={
        "member": rain["member"], "time": rain["time"], **coarse.coords(), GRID_MAPPING_NAME: coarse.grid_mapping()})
    folder = Path(setup.models) / "my_coarse"
    folder.mkdir()
    field.to_dataset(name="rain").to_netcdf(folder / "coarse.nc")
    return folder, coarse, halved


def test_external_estimates_in_the_ensemble_and_input_frames_tabs(setup, external, external_ensemble):
    MEMORY.clear()
    session = DashboardSession(setup)
    state = session.state
    state.time, state.models = "2021-06-01T23:45", ["unet", "ddpm", "my_unet", "my_flow"]
    assert ensemble_models(session) == ["ddpm", "my_unet", "my_flow"]
    assert EstimateRunner(session).run_blocking(["my_unet", "my_flow"], [TIME]) == 0
    browser = EnsembleBrowser(session)
    assert list(browser.model.options.values()) == ["ddpm", "my_unet", "my_flow"]
    # an ensemble read from files: its own two members, whatever the members asked of the checkpoints
    state.ensemble_model = "my_flow"
    stamps = {p.slot: p for p in stamp_panels(session)}
    assert list(stamps) == ["radar", "mean", "member-0", "member-1"]
    written = external_ensemble["rain"].isel(time=0)
    np.testing.assert_array_equal(stamps["member-1"].field.values, written.isel(member=1).values)
    assert stamps["member-1"].title == "member 1" and stamps["member-1"].colour == model_colour("my_flow")
    assert browser.member.end == 1 and browser.note.object == ""
    # one member: said so, no spread and no stamps beside radar
    state.ensemble_model = "my_unet"
    panels = ensemble_panels(session)
    assert [p.slot for p in panels] == ["radar", "member"] and panels[1].note == ONE_MEMBER
    np.testing.assert_array_equal(panels[1].field.values, external["rain"].sel(time=TIME).isel(member=0).values)
    assert stamp_panels(session) == []
    assert browser.stamps.status.object == plain_html("No postage stamps (my_unet: 1 member: no ensemble view).")
    assert shown_text(browser.note) == "my_unet: 1 member: no ensemble view (its estimates are one deterministic field)."
    # input frames: the checkpoints reading past frames are offered, the files are listed as not applicable
    frames = FramesPanel(session)
    assert frames_models(session) == ["unet", "ddpm"]
    assert frames_not_applicable(session) == dict.fromkeys(["my_unet", "my_flow"], NOT_APPLICABLE["external"])
    assert shown_text(frames.skipped) == " ".join(  # (tags become spaces here)
        f"Not applicable to {m} : your own estimates, read from files: no IR inputs to replace." for m in
        ("my_unet", "my_flow"))
    assert session.messages.items == {}


def test_another_grid_is_refused_until_a_regridding_is_chosen_as_in_the_cli(setup, external_coarse):
    MEMORY.clear()
    folder, coarse, values = external_coarse
    session = DashboardSession(setup)
    data = open_paired(setup.data)
    state = session.state
    state.time, state.models = "2021-06-01T23:45", ["my_coarse"]
    picker = ModelPicker(session)
    picker.auto.value = False
    card = shown_text(picker.cards.objects[0].objects[0])
    assert "grid: on another grid (48 x 48 pixels" in card and card.endswith("refused; choose a regridding method")
    regrid = picker.cards.objects[0].objects[1]
    assert regrid.visible and regrid.options == list(REGRID_CHOICES) == ["refuse", *REGRID_METHODS]
    # refused by default, with the library's line
    assert picker.runner.run_blocking(["my_coarse"], [TIME]) == 1
    assert re.search(r"estimates 'my_coarse' are on another grid .* state a regridding method",
                     session.messages.items["estimate:my_coarse"])
    for method in ("nearest", "bilinear"):
        picker.cards.objects[0].objects[1].value = method  # what a user picks in the card's select
        assert session.failures == {} and session.messages.items == {}
        assert picker.runner.run_blocking(["my_coarse"], [TIME]) == 0
        shown = session.recall("my_coarse")
        cli = ExternalEstimates(folder, regrid=method).estimate(data, [TIME])  # qpe evaluate --estimates-regrid
        np.testing.assert_array_equal(shown.values, cli["rain"].isel(time=0).values)
        np.testing.assert_array_equal(shown.values, Regridder(coarse, Grid.from_dataset(data), method)
                                      .apply(values.astype("float64")).astype("float32")[:, 0])
        assert shown_text(picker.cards.objects[0].objects[0]).endswith(f"regridded ({method})")
    # back to refusing: the regridded field is not shown for it
    picker.choose_regrid("my_coarse", "refuse")
    assert session.recall("my_coarse") is None
    with pytest.raises(DatasetError, match="on another grid"):
        session.estimates.field("my_coarse", TIME, EstimateSettings())
    with pytest.raises(InputError, match="unknown regridding choice 'cubic'; choose one of refuse, nearest"):
        session.registry.set_regrid("my_coarse", "cubic")


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
