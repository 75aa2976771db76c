"""The dashboard's input-frames view shows what qpe.inference.frames computes, and the app wires it as a tab."""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import pytest
from dashboard_testing import make_checkpoints, make_dataset

from dashboard.app import build_app
from dashboard.estimates import MEMORY
from dashboard.frames import FramesPanel, format_frame_table, frames_models, frames_panels
from dashboard.session import DashboardSession, DashboardSettings
from qpe.inference.engine import EstimateConfig
from qpe.inference.frames import FRAME_SCORE_FAMILIES, frame_contributions, frame_score_table
from qpe.verify import ScoreConfig

TIME = pd.Timestamp("2021-06-01T23:45")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard_frames")
    data = make_dataset(root / "data.zarr")
    models = make_checkpoints(root / "models", data)
    return DashboardSettings(str(data), models, root / "cache")


@pytest.fixture
def session(setup):
    MEMORY.clear()
    session = DashboardSession(setup)
    session.state.time = "2021-06-01T23:45"
    return session


def test_frames_view_shows_the_library_result(session):
    state = session.state
    state.models = ["unet", "ddpm"]
    state.members, state.thresholds = 2, [1.0, 5.0]
    view = FramesPanel(session)
    assert frames_models(session) == ["unet", "ddpm"] and state.frames_model == "unet"
    state.frames_model = "ddpm"
    result = view.compute_blocking()
    expected = frame_contributions(session.registry.load("ddpm"), session.dataset, [TIME],
                                   EstimateConfig(members=2, seed=0),
                                   ScoreConfig(families=FRAME_SCORE_FAMILIES, thresholds=(1.0, 5.0)))
    np.testing.assert_array_equal(result["change"].values, expected["change"].values)
    panels = {p.slot: p for p in view.grid.panels.values()}
    assert list(panels) == ["radar", "full", "frame_1", "all_past"]
    assert panels["frame_1"].kind == "change" and "frame 1 (t − 15 min) → frame 2" in panels["frame_1"].title
    assert "all past frames (1) → frame 2" in panels["all_past"].title
    np.testing.assert_array_equal(panels["frame_1"].field.values, expected["change"].sel(variant="frame_1")
                                  .isel(time=0).values)
    assert view.table.visible
    pd.testing.assert_frame_equal(view.table.object, format_frame_table(frame_score_table(expected)))
    assert "ddpm at 2021-06-01T23:45: T = 2, 2 member(s)" in view.status.object
    state.time = "2021-06-02T00:00"  # another case: nothing shown until asked for
    assert not view.table.visible and [p.slot for p in frames_panels(session, "ddpm", view.result)] == ["radar"]


def test_app_has_the_input_frames_tab(setup):
    page = build_app(setup)
    tabs = next(o for o in page.main.objects if isinstance(o, pn.Tabs))
    assert "Input frames" in tabs._names
    page.session.state.tab = "frames"
    assert tabs.active == tabs._names.index("Input frames")
