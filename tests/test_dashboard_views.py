"""Dashboard views without a browser: estimates, maps, scores, ensemble browser and exports.

Every number the dashboard shows is compared with the library computing it directly.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.plotting import figure
from dashboard_testing import make_checkpoints, make_dataset, shown_text
from PIL import Image

from dashboard.app import build_app
from dashboard.checkpoints import CheckpointRegistry
from dashboard.ensemble import ensemble_panels, stamp_layout, stamp_panels
from dashboard.estimates import MEMORY
from dashboard.export import map_grid_png, scores_csv
from dashboard.maps import MapGrid, map_panels
from dashboard.model_picker import EstimateRunner, ModelPicker
from dashboard.scores import (
    POSITION_FAMILIES,
    ScoresPanel,
    case_scores,
    score_descriptions_of,
    score_frame,
    score_table,
    scored_field,
)
from dashboard.session import DashboardSession, DashboardSettings
from qpe.data.paired import open_paired
from qpe.errors import CheckpointError
from qpe.inference.engine import EstimateConfig, estimate
from qpe.inference.products import ensemble_mean, ensemble_spread, exceedance_probability
from qpe.models import load
from qpe.verify import DEFAULT_FAMILIES, scores_to_frame, verify

TIME = pd.Timestamp("2021-06-01T23:45")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    data = make_dataset(root / "data.zarr")
    models = make_checkpoints(root / "models", data)
    return DashboardSettings(str(data), models, root / "cache")


@pytest.fixture
def session(setup):
    MEMORY.clear()
    session = DashboardSession(setup)
    session.state.time = "2021-06-01T23:45"
    return session


def _library_estimate(setup, model: str, members: int = 4) -> xr.DataArray:  # noqa: F821
    ds = open_paired(setup.data)
    out = estimate(load(setup.models / model), ds, [TIME], EstimateConfig(members=members), progress=False)
    return out["rain"].isel(time=0)


def test_registry_lists_checkpoints_and_why_others_are_unusable(setup):
    registry = CheckpointRegistry(setup.models)
    assert registry.keys == ["broken", "ddpm", "flow_residual", "needs_ir134", "unet"]
    assert "not a qpe model card" in registry.problems["bad_card"]
    card = shown_text(pn.pane.Markdown(registry["ddpm"].describe()))
    assert "ddpm" in card and "T = 2 frames x WV_062, IR_108" in card
    with pytest.raises(CheckpointError, match="weights modified or replaced"):
        registry.load("broken")
    with pytest.raises(CheckpointError, match="no checkpoint 'nope'"):
        registry["nope"]


def test_runner_estimates_like_the_library_and_reports_failures(setup, session):
    runner = EstimateRunner(session)
    models = ["unet", "ddpm", "broken", "needs_ir134"]
    assert runner.run_blocking(models, [TIME]) == 2
    np.testing.assert_allclose(session.recall("ddpm").values, _library_estimate(setup, "ddpm").values, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(session.recall("unet").values, _library_estimate(setup, "unet").values, rtol=1e-5,
                               atol=1e-6)
    assert session.recall("unet").sizes["member"] == 1 and session.recall("ddpm").sizes["member"] == 4
    messages = session.messages.items
    assert "Checkpoint broken failed to load" in messages["checkpoint:broken"]
    assert "needs IR channel(s) IR_134" in messages["estimate:needs_ir134"]
    assert session.recall("broken") is None and ("broken", "2021-06-01T23:45") in session.failures


def test_estimates_come_back_from_the_disk_cache(setup, session):
    EstimateRunner(session).run_blocking(["flow_residual"], [TIME])
    first = session.recall("flow_residual")
    files = sorted(setup.cache_dir.rglob("*.nc"))
    MEMORY.clear()
    assert session.recall("flow_residual") is None
    again = session.estimates.field("flow_residual", TIME, session.estimate_settings())
    np.testing.assert_array_equal(again.values, first.values)
    assert sorted(setup.cache_dir.rglob("*.nc")) == files  # read, not recomputed


def test_map_panels_for_each_view(session):
    EstimateRunner(session).run_blocking(["unet", "ddpm"], [TIME])
    state = session.state
    state.models = ["unet", "ddpm"]
    estimate_ddpm = session.recall("ddpm")
    panels = {p.slot: p for p in map_panels(session)}
    assert list(panels) == ["ir", "radar", "unet", "ddpm"]
    np.testing.assert_array_equal(panels["radar"].field.values, session.radar(TIME).values)
    np.testing.assert_allclose(panels["ddpm"].field.values, ensemble_mean(estimate_ddpm).values)
    assert panels["ddpm"].title == "ddpm mean of 4" and panels["unet"].title == "unet"
    state.view, state.member = "member", 2
    panels = {p.slot: p for p in map_panels(session)}
    np.testing.assert_array_equal(panels["ddpm"].field.values, estimate_ddpm.isel(member=2).values)
    state.view, state.threshold, state.difference = "probability", 0.5, True
    panels = {p.slot: p for p in map_panels(session)}
    assert panels["ddpm"].kind == "probability"
    np.testing.assert_array_equal(panels["ddpm"].field.values, exceedance_probability(estimate_ddpm, 0.5).values)
    difference = panels["ddpm-radar"].field  # probability view: the mean is compared with radar
    np.testing.assert_allclose(difference.values, (ensemble_mean(estimate_ddpm) - session.radar(TIME)).values)


def test_missing_and_failed_estimates_are_shown_as_such(session):
    state = session.state
    state.models = ["unet", "broken"]
    panels = {p.slot: p for p in map_panels(session)}
    assert panels["unet"].field is None and "press Run" in panels["unet"].heading
    EstimateRunner(session).run_blocking(["broken"], [TIME])
    panels = {p.slot: p for p in map_panels(session)}
    assert "failed" in panels["broken"].heading


def test_map_grid_is_rasterised_linked_and_follows_the_case(session):
    EstimateRunner(session).run_blocking(["ddpm"], [TIME, TIME + pd.Timedelta("15min")])
    session.state.models = ["ddpm"]
    grid = MapGrid(session, width=120)
    root = pn.Column(grid).get_root()  # as served: Panel links the axes of the maps' panes
    figures = sorted(root.select({"type": figure}), key=lambda f: f.id)
    assert len(figures) == 3
    assert len({id(f.x_range) for f in figures}) == 1 and len({id(f.y_range) for f in figures}) == 1  # linked
    images = [r for f in figures for r in f.renderers if type(r.glyph).__name__ == "Image"]
    shown = images[1].data_source.data["image"][0]
    assert shown.shape[1] <= 120 < session.grid.nx * 2  # datashader sent about the frame, not the grid
    before = np.nan_to_num(shown).copy()
    session.state.time = "2021-06-02T00:00"
    after = np.nan_to_num(images[1].data_source.data["image"][0])
    assert not np.array_equal(before, after), "the radar map must follow the time"


def test_scores_equal_qpe_verify(setup, session):
    EstimateRunner(session).run_blocking(["unet", "ddpm"], [TIME])
    state = session.state
    state.models = ["unet", "ddpm"]
    state.thresholds = [0.1, 1.0, 2.0]
    scores, waiting = case_scores(session)
    assert waiting == [] and list(scores) == ["unet", "ddpm"]
    radar = session.radar(TIME)
    expected = {
        "unet": verify(_library_estimate(setup, "unet").isel(member=0, drop=True), radar, thresholds=[0.1, 1.0, 2.0]),
        "ddpm": verify(_library_estimate(setup, "ddpm"), radar, thresholds=[0.1, 1.0, 2.0]),
    }
    table = score_table(score_frame(scores), score_descriptions_of(scores))
    for model, ds in expected.items():
        frame = scores_to_frame(ds)
        for metric, threshold, label in (("POD", 1.0, "POD ≥ 1 mm/h"), ("CSI", 0.1, "CSI ≥ 0.1 mm/h"),
                                         ("BIAS", 2.0, "BIAS ≥ 2 mm/h"), ("RMSE", None, "RMSE")):
            rows = frame[(frame.metric == metric) & (frame.threshold.isna() if threshold is None else
                                                     frame.threshold == threshold)]
            np.testing.assert_allclose(table.loc[label, model], rows.value.iloc[0], rtol=1e-5, equal_nan=True)
    assert np.isnan(table.loc["CRPS", "unet"]) and np.isfinite(table.loc["CRPS", "ddpm"])
    assert table.loc["RMSE", "unit"] == "mm/h" and table.loc["CSI ≥ 0.1 mm/h", "better"] == "↑ higher"
    assert table.loc["wet_fraction", "radar"] == pytest.approx(
        float(expected["ddpm"]["wet_fraction_radar"]))


def test_score_table_shows_extremes_multivariate_and_resolution_rows(setup, session):
    EstimateRunner(session).run_blocking(["unet", "ddpm"], [TIME])
    session.state.models = ["unet", "ddpm"]
    scores, _ = case_scores(session)
    table = score_table(score_frame(scores), score_descriptions_of(scores))
    for label in ("energy_score", "variogram_score"):
        assert np.isnan(table.loc[label, "unet"]) and np.isfinite(table.loc[label, "ddpm"]), label
    expected = verify(_library_estimate(setup, "ddpm"), session.radar(TIME), thresholds=session.state.thresholds)
    np.testing.assert_allclose(table.loc["effective_resolution", "ddpm"],
                               float(expected["effective_resolution"].mean("member")), rtol=1e-5)
    assert table.loc["effective_resolution", "unit"] == "km"
    radar_pixels = table.loc["n_radar_extreme > 10 mm/h"]
    assert radar_pixels["unet"] == radar_pixels["ddpm"] == float(expected["n_radar_extreme"].sel(extreme_threshold=10.0))


def test_position_error_rows_come_when_asked(session):
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    state = session.state
    state.models, state.tab = ["ddpm"], "scores"
    panel = ScoresPanel(session)
    assert "RMSE" in panel.table.object.index and "displacement" not in panel.table.object.index
    panel.position.value = True
    table = panel.table.object
    expected = verify(session.recall("ddpm"), session.radar(TIME), thresholds=sorted(state.thresholds),
                      families=(*DEFAULT_FAMILIES, *POSITION_FAMILIES))
    for metric, unit in (("displacement", "km"), ("RMSE_warped", "mm/h"), ("SAL_S", "")):
        assert table.loc[metric, "unit"] == unit, metric
        np.testing.assert_allclose(float(table.loc[metric, "ddpm"]), float(expected[metric].mean("member")),
                                   rtol=6e-4, err_msg=metric)


def test_region_restricts_the_scores(session):
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    state = session.state
    state.models = ["ddpm"]
    x, y = session.grid.x, session.grid.y
    box = [float(x[10]), float(y[40]), float(x[30]), float(y[20])]  # 21 x 21 pixel centres
    state.region = box
    scores, _ = case_scores(session)
    radar = session.radar(TIME)
    expected = verify(session.recall("ddpm"), radar, region=tuple(box))
    inside = np.isfinite(radar.values[20:41, 10:31]).sum()
    assert int(scores["ddpm"]["n_valid"]) == inside == int(expected["n_valid"])
    np.testing.assert_allclose(scores["ddpm"]["CSI"].values, expected["CSI"].values, equal_nan=True)
    state.region = []
    whole, _ = case_scores(session)
    assert int(whole["ddpm"]["n_valid"]) == int(np.isfinite(radar.values).sum())


def test_scores_panel_waits_then_shows_and_reports_bad_regions(session):
    state = session.state
    state.tab = "scores"
    panel = ScoresPanel(session)
    state.models = ["ddpm", "broken"]
    assert "Waiting for the estimate of ddpm, broken" in shown_text(panel.message)
    EstimateRunner(session).run_blocking(["ddpm", "broken"], [TIME])
    assert "No scores for broken" in shown_text(panel.message) and "Waiting" not in shown_text(panel.message)
    assert "POD ≥ 0.1 mm/h" in panel.table.object.index
    state.region = [0.0, 0.0, 1000.0, 1000.0]  # far from the grid
    assert "region contains no pixel" in session.messages.items["scores"]
    state.region = []
    assert "scores" not in session.messages.items


def test_ensemble_browser_panels(session):
    EstimateRunner(session).run_blocking(["flow_residual"], [TIME])
    state = session.state
    state.models, state.ensemble_model, state.member = ["flow_residual"], "flow_residual", 3
    panels = {p.slot: p for p in ensemble_panels(session)}
    rain = session.recall("flow_residual")
    np.testing.assert_array_equal(panels["member"].field.values, rain.isel(member=3).values)
    np.testing.assert_allclose(panels["spread"].field.values, ensemble_spread(rain).values)
    assert panels["member"].title == "flow_residual member 3 of 4"


def test_csv_export_holds_the_verify_rows(session):
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    session.state.models = ["ddpm"]
    session.state.region = [float(session.grid.x[5]), float(session.grid.y[60]), float(session.grid.x[70]),
                            float(session.grid.y[5])]
    table = pd.read_csv(io.StringIO(scores_csv(session)))
    assert list(table.columns[:4]) == ["time", "region", "model", "metric"]
    assert (table.time == "2021-06-01T23:45").all() and table.region.nunique() == 1
    expected = scores_to_frame(verify(scored_field(session.recall("ddpm")), session.radar(TIME),
                                      region=session.state.region_box, model="ddpm"))
    merged = table.merge(expected, on=["model", "metric", "threshold", "scale"], suffixes=("", "_verify"))
    assert len(merged) == len(expected)
    np.testing.assert_allclose(merged.value, merged.value_verify, rtol=1e-9, equal_nan=True)


def test_png_export_draws_every_map(session):
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    session.state.models, session.state.difference = ["ddpm"], True
    png = map_grid_png(map_panels(session), session, columns=2, region=(1.25e6, -3.05e6, 1.3e6, -3.0e6))
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape[0] > 500 and image.shape[1] > 500
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # maps, colour bars and text, not a blank page


def test_model_picker_explains_an_empty_models_folder(tmp_path, setup):
    (tmp_path / "empty").mkdir()
    session = DashboardSession(DashboardSettings(setup.data, tmp_path / "empty", tmp_path / "cache"))
    picker = ModelPicker(session)
    assert picker.problems.visible and "No checkpoint found under" in shown_text(picker.problems)
    assert not picker.choice.options


def test_model_picker_drops_unknown_models_of_a_link(setup):
    session = DashboardSession(setup)
    session.state.models = ["unet", "gone"]
    ModelPicker(session)
    assert session.state.models == ["unet"]
    assert "gone" in session.messages.items["models"]


def test_app_page_on_bad_data_shows_the_cause(tmp_path):
    page = build_app(DashboardSettings(str(tmp_path / "missing.zarr"), tmp_path, tmp_path))
    alert = page.objects[1]
    assert "cannot start" in shown_text(alert) and "missing.zarr not found" in shown_text(alert)


def test_several_case_changes_at_once_update_every_view(session):
    """A link or a script may change many parameters in one go (batched param events)."""
    EstimateRunner(session).run_blocking(["ddpm"], [TIME + pd.Timedelta("15min")])
    state = session.state
    state.tab = "scores"
    grid, scores = MapGrid(session, width=120), ScoresPanel(session)
    picker = ModelPicker(session)
    picker.auto.value = False
    state.param.update(models=["ddpm"], time="2021-06-02T00:00", view="member", member=1, difference=True)
    assert [p.slot for p in grid.panels.values()] == ["ir", "radar", "ddpm", "ddpm-radar"]
    assert grid.panels["ddpm"].title == "ddpm member 1"
    assert list(scores.scores) == ["ddpm"] and "Scores at 2021-06-02T00:00" in shown_text(scores.header)


def test_ensemble_browser_steps_through_members_and_wraps(session):
    from dashboard.ensemble import EnsembleBrowser

    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    session.state.models = ["ddpm"]
    browser = EnsembleBrowser(session)
    assert session.state.ensemble_model == "ddpm" and list(browser.model.options.values()) == ["ddpm"]
    browser.step(1)
    assert session.state.member == 1
    browser.step(-2)
    assert session.state.member == 3  # wraps around the 4 members


@pytest.mark.parametrize("count, rows_columns", [(1, (1, 1)), (4, (2, 2)), (6, (2, 3)), (10, (3, 4)), (18, (4, 5)),
                                                 (66, (11, 6))])
def test_postage_stamps_wrap_into_rows(count, rows_columns):
    rows, columns = stamp_layout(count)
    assert (rows, columns) == rows_columns and (rows - 1) * columns < count <= rows * columns


def test_postage_stamps_show_radar_mean_and_every_member_on_the_rain_colours(session):
    from dashboard.ensemble import EnsembleBrowser
    from qpe.colours import RADAR_COLOUR, model_colour

    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    session.state.models = ["ddpm"]
    browser = EnsembleBrowser(session)
    rain = session.recall("ddpm")
    panels = list(browser.stamps.panels.values())
    assert [p.title for p in panels] == ["radar", "mean of 4", "member 0", "member 1", "member 2", "member 3"]
    assert {p.kind for p in panels} == {"rain"}, "the rain maps' colours (log scale or pysteps levels)"
    assert [p.colour for p in panels] == [RADAR_COLOUR] + [model_colour("ddpm")] * 5
    assert panels[2].details == "ddpm · 2021-06-01T23:45 UTC"
    np.testing.assert_allclose(panels[1].field.values, ensemble_mean(rain).values)
    for i, panel in enumerate(panels[2:]):
        np.testing.assert_array_equal(panel.field.values, rain.isel(member=i).values)
    assert len(browser.stamps.maps.objects) == 6 and "repeat(3, minmax(0, 1fr))" in browser.stamps.maps.stylesheets[0]
    session.state.members = 8  # another ensemble size: the stamps follow
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    assert [p.slot for p in stamp_panels(session)][-1] == "member-7"
    assert len(browser.stamps.maps.objects) == 10 and "repeat(4, minmax(0, 1fr))" in browser.stamps.maps.stylesheets[0]


# -- maps for review meetings --------------------------------------------------------------------------------
def test_map_titles_name_model_time_and_sampling_in_the_models_colour(session):
    from qpe.colours import RADAR_COLOUR, model_colour

    EstimateRunner(session).run_blocking(["ddpm", "unet"], [TIME])
    state = session.state
    state.models, state.difference = ["ddpm", "unet"], True
    panels = {p.slot: p for p in map_panels(session)}
    assert panels["ddpm"].details == "2021-06-01T23:45 UTC · 4 members, K = 4 ddim"  # the card's sampler
    assert panels["unet"].details == "2021-06-01T23:45 UTC"  # deterministic: nothing sampled
    assert panels["ddpm"].title_lines == "ddpm mean of 4\n2021-06-01T23:45 UTC · 4 members, K = 4 ddim"
    assert panels["radar"].title == "radar 2021-06-01T23:45" and panels["radar"].colour == RADAR_COLOUR
    assert panels["ddpm"].colour == panels["ddpm-radar"].colour == model_colour("ddpm")
    grid = MapGrid(session, width=120)
    root = pn.Column(grid).get_root()
    titles = {f.title.text: f.title.text_color for f in root.select({"type": figure})}
    assert titles[panels["ddpm"].title_lines] == model_colour("ddpm")
    assert titles[panels["unet-radar"].title_lines] == model_colour("unet")
    state.steps, state.models = 2, ["unet", "ddpm"]  # another order, other steps: the same colour
    panels = {p.slot: p for p in map_panels(session)}
    assert panels["ddpm"].colour == model_colour("ddpm") and panels["ddpm"].details.endswith("K = 2 ddim")


@pytest.mark.parametrize(("kind", "scale"), [("rain", "levels"), ("probability", "log"), ("difference", "log")])
def test_discrete_levels_colour_as_pysteps_boundary_norm(kind, scale):
    """The browser's palette, read as Bokeh's colour mapper reads it (equal steps between the limits, log
    steps for rain), gives each value the colour matplotlib's BoundaryNorm gives it (pysteps' levels)."""
    import matplotlib.colors as mcolors

    from dashboard.maps import level_palette, map_style

    style = map_style(kind, scale)
    palette = level_palette(style)
    levels = np.asarray(style.levels)
    norm, cmap = mcolors.BoundaryNorm(levels, len(style.cmap)), mcolors.ListedColormap(list(style.cmap))
    inside = np.concatenate([levels[:-1] + 0.01 * np.diff(levels), levels[:-1] + 0.5 * np.diff(levels),
                             levels[1:] - 0.01 * np.diff(levels)])
    scale_of = np.log10 if style.log else np.asarray
    position = (scale_of(inside) - scale_of(levels[0])) / (scale_of(levels[-1]) - scale_of(levels[0]))
    shown = [palette[min(int(p * len(palette)), len(palette) - 1)] for p in position]
    expected = [mcolors.to_hex(cmap(norm(v))) for v in inside]
    assert shown == expected
    if kind == "rain":  # pysteps' own levels and colours
        from pysteps.visualization.precipfields import get_colormap

        pysteps_cmap, _, pysteps_levels, _ = get_colormap("intensity", "mm/h", "pysteps")
        assert list(levels) == pysteps_levels and mcolors.to_hex(pysteps_cmap(0)) == style.cmap[0]


def test_probability_zero_is_white_and_differences_sit_beside_their_model(session):
    from dashboard.export import map_grid_figure
    from dashboard.maps import grid_stylesheet

    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    state = session.state
    state.models, state.view, state.difference = ["ddpm"], "probability", True
    panels = map_panels(session)
    assert [p.slot for p in panels] == ["ir", "radar", "ddpm", "ddpm-radar"]  # two columns: a model beside its map
    figure = map_grid_figure(panels, session)
    axes = [ax for ax in figure.axes if ax.get_title()]
    assert len(figure.axes) == 8 and len(axes) == 4  # four maps with colour bars
    probability = axes[2].images[0]
    assert probability.to_rgba(np.array([0.0, 1.0]), bytes=True)[:, :3].tolist() == [[255, 255, 255], [127, 0, 0]]
    assert axes[2].get_subplotspec().rowspan == axes[3].get_subplotspec().rowspan  # the same row
    difference = axes[3].images[0]
    shown = difference.to_rgba(np.array([-0.05, 0.2, -0.5, 20.0]), bytes=True)[:, :3].tolist()
    assert shown[0] == [255, 255, 255] and shown[1][2] > shown[1][0] and shown[2][0] > shown[2][2]  # drizzle
    assert len({tuple(c) for c in shown}) == 4  # 0.2, -0.5 and 20 mm/h apart
    assert [ax.get_xlabel() for ax in axes] == ["x (km)"] * 4 and all(ax.get_ylabel() == "y (km)" for ax in axes)
    assert "Lambert Azimuthal Equal Area (lat 55°, lon 10°)" in figure.get_suptitle()
    assert axes[2].get_title() == panels[2].title_lines and axes[2].title.get_color() == panels[2].colour
    grid = MapGrid(session, width=120)
    assert grid.grid_mode() == "pairs" and "repeat(2, " in grid.maps.stylesheets[0]
    assert "repeat(2, " in grid_stylesheet(grid.layout, "pairs", 1.0)


def test_one_map_is_enlarged_and_back(session):
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])
    state = session.state
    state.models = ["ddpm"]
    grid = MapGrid(session, width=120, focus=True)
    assert len(grid.maps.objects) == 3 and grid.grid_mode() == "auto"
    assert grid.focus_choice.options == {"all maps": "", "IR_108": "ir", "radar": "radar", "ddpm": "ddpm"}
    grid.focus_choice.value = "radar"  # as a user picks it
    assert state.focus == "radar" and len(grid.maps.objects) == 1 and grid.grid_mode() == "focus"
    assert grid.back.visible
    grid._toggle_focus("radar")  # a double click on the enlarged map
    assert state.focus == "" and len(grid.maps.objects) == 3 and not grid.back.visible
    state.focus = "gone"  # a link naming a map that is not shown: all maps
    assert len(grid.maps.objects) == 3 and grid.focused is None


def test_hover_table_gives_the_grid_longitude_and_latitude(session):
    from dashboard.maps import lonlat_table

    grid = session.grid
    table = lonlat_table(grid, points=5)
    lon, lat = grid.lonlat()
    xmin, ymin, xmax, ymax = grid.bounds
    assert (table["x0"], table["y0"], table["n"]) == (xmin, ymin, 5)
    assert table["x0"] + 4 * table["dx"] == pytest.approx(xmax) and table["y0"] + 4 * table["dy"] == pytest.approx(ymax)
    # the first row is the southern edge; pixel centres lie half a pixel inside the table's corners
    assert np.array(table["lat"])[0].mean() < np.array(table["lat"])[-1].mean()
    np.testing.assert_allclose(table["lon"][2][2], lon[grid.ny // 2 - 1: grid.ny // 2 + 1,
                                                    grid.nx // 2 - 1: grid.nx // 2 + 1].mean(), atol=0.01)
    np.testing.assert_allclose(table["lat"][2][2], lat[grid.ny // 2 - 1: grid.ny // 2 + 1,
                                                    grid.nx // 2 - 1: grid.nx // 2 + 1].mean(), atol=0.01)


# -- the case for slides, and the zoom in the link -----------------------------------------------------------
def test_slides_zip_holds_every_map_score_figure_curve_setting_and_the_animation(session, tmp_path):
    import zipfile

    import yaml

    from dashboard.case_picker import times_on
    from dashboard.slides import slides_name, write_slides

    EstimateRunner(session).run_blocking(["ddpm", "unet"], [TIME, TIME - pd.Timedelta("15min")])
    state = session.state
    state.models, state.difference, state.steps = ["ddpm", "unet"], True, 3
    EstimateRunner(session).run_blocking(["ddpm"], [TIME])  # K = 3 now
    grid = session.grid
    state.zoom = [float(grid.x[10]), float(grid.y[80]), float(grid.x[80]), float(grid.y[10])]
    path = write_slides(session, map_panels(session), tmp_path)
    assert path.name == slides_name(session) == "qpe_slides_data_20210601T2345.zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "written atomically: no temporary left"
    archive = zipfile.ZipFile(path)
    names = archive.namelist()
    maps = ["maps/01_ir.png", "maps/02_radar.png", "maps/03_ddpm.png", "maps/04_ddpm-radar.png", "maps/05_unet.png",
            "maps/06_unet-radar.png", "maps/all_maps.png"]
    figures = [f"scores/{n}.png" for n in ("performance_diagram", "fss_vs_scale", "ensemble_fss",
                                            "power_spectrum_ratio", "spectral_coherence", "exceedance_curves",
                                            "histograms", "quantile_quantile", "rank_histogram",
                                            "reliability_diagram")]
    assert names == ["README.txt", *maps, *figures, "scores_and_curves.csv", "animation.gif", "settings.yaml"]
    readme = archive.read("README.txt").decode()
    assert all(name in readme for name in names) and "ddpm mean of 4 · 2021-06-01T23:45 UTC · 4 members, K = 3" in readme
    for name in maps + figures:
        image = Image.open(io.BytesIO(archive.read(name)))
        image.load()
        assert image.format == "PNG" and image.width >= 900 and image.height >= 500, name
        assert image.info["dpi"][0] == pytest.approx(150, abs=1), name

    table = pd.read_csv(io.BytesIO(archive.read("scores_and_curves.csv")))
    assert list(table.columns) == ["model", "score", "threshold", "x", "x_unit", "value", "unit", "figure"]
    radar = session.radar(TIME)
    expected = verify(scored_field(session.recall("ddpm")), radar, thresholds=sorted(state.thresholds), model="ddpm")
    rows = table.set_index(["model", "score"])
    fss = rows.loc[("ddpm", "FSS")].query("threshold == 1.0")
    assert (fss.x_unit == "km").all() and (fss.figure == "fss_vs_scale").all()
    np.testing.assert_allclose(fss.value, expected["FSS"].mean("member").sel(threshold=1.0).values, rtol=1e-9)
    np.testing.assert_allclose(fss.x, expected["scale"].values)
    spectrum = rows.loc[("ddpm", "rapsd")]
    assert (spectrum.x_unit == "km").all() and (spectrum.unit == "(mm/h)^2").all() and len(spectrum) > 5
    assert len(rows.loc[("radar", "rapsd")]) == len(spectrum), "the radar's curve once"
    histogram = rows.loc[("ddpm", "histogram")]
    assert (histogram.x_unit == "mm/h").all() and (histogram.figure == "histograms").all()
    np.testing.assert_allclose(histogram.value, expected["histogram"].mean("member").values, rtol=1e-9)
    np.testing.assert_allclose(histogram.x, expected["bin"].values)
    ranks = rows.loc[("ddpm", "rank_histogram")]
    assert list(ranks.x) == [0, 1, 2, 3, 4] and (ranks.x_unit == "rank").all()
    np.testing.assert_allclose(ranks.value, expected["rank_histogram"].values, rtol=1e-9)
    pod = rows.loc[("unet", "POD")]
    assert (pod.x == pod.threshold).all() and (pod.x_unit == "mm/h").all() and (pod.figure == "performance_diagram").all()
    rmse = table.query("model == 'ddpm' and score == 'RMSE'")
    assert len(rmse) == 1 and rmse.unit.iloc[0] == "mm/h" and rmse.x.isna().all() and rmse.threshold.isna().all()
    assert rmse.value.iloc[0] == pytest.approx(float(expected["RMSE"].mean("member")), rel=1e-9)
    assert ("unet", "rank_histogram") not in rows.index, "a deterministic model has no rank histogram"

    settings = yaml.safe_load(archive.read("settings.yaml"))
    assert settings["time_utc"] == "2021-06-01T23:45" and settings["data"] == str(session.data_path)
    assert settings["thresholds_mm_h"] == sorted(state.thresholds) and settings["zoom_m"] == state.zoom
    ddpm = settings["models"][0]
    assert (ddpm["key"], ddpm["card_name"], ddpm["members"], ddpm["steps_K"], ddpm["sampler"]) == (
        "ddpm", "ddpm", 4, 3, "ddim")
    assert settings["models"][1] == {**settings["models"][1], "key": "unet", "members": 1} and "steps_K" not in settings["models"][1]
    assert "zoom=" in settings["link_query"] and settings["layout"] == "normal"

    gif = Image.open(io.BytesIO(archive.read("animation.gif")))
    day = times_on(session.times, TIME.date())
    assert gif.format == "GIF" and gif.n_frames == len(day) == settings["animation_period_utc"]["times"]
    frames = []
    for k in (0, len(day) - 1):  # 22:30 (no estimate: grey) and 23:45 (estimated)
        gif.seek(k)
        frames.append(np.asarray(gif.convert("RGB")))
    assert frames[0].shape == frames[1].shape and not np.array_equal(frames[0], frames[1])


def test_slide_figures_are_readable_and_plain_text(session):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from dashboard.export import map_figure
    from dashboard.maps import MapPanel
    from qpe.evaluation.figures import fss_vs_scale, performance_diagram, rain_histogram
    from qpe.evaluation.slides import SMALLEST_PT, combine_models, readable

    EstimateRunner(session).run_blocking(["ddpm", "unet"], [TIME])
    session.state.models = ["ddpm", "unet"]
    scores, _ = case_scores(session)
    combined = combine_models({r"$\frac$": scores["ddpm"], "unet": scores["unet"]})  # a name that is bad math
    # two of the figures (the zip test draws them all), with 8-pt text at first
    figures = {draw.__name__: readable(draw(combined)) for draw in (performance_diagram, fss_vs_scale, rain_histogram)}
    figures["map"] = map_figure(MapPanel("x", "$x$ <b>model</b>", "rain", session.radar(TIME), details="K = 2"),
                                session)
    for name, fig in figures.items():
        FigureCanvasAgg(fig).draw()
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
        assert min(sizes) >= SMALLEST_PT, name
    titles = [t.get_text() for t in figures["map"].findobj(Text)]
    assert "$x$ <b>model</b>\nK = 2" in titles  # shown as written (no math, no markup)
    legend = [t.get_text() for t in figures["performance_diagram"].legends[0].get_texts()]
    assert r"$\frac$" in legend  # drawn above as written: as math it would not draw at all
    ax = figures["rain_histogram"].axes[0]
    powers = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if "$" in t.get_text()]
    assert powers and all(t.get_parse_math() for t in powers), "log-axis ticks (10^-3) stay math"


def test_zoom_goes_into_the_link_and_the_maps_open_at_it(setup, session):
    from dashboard.maps import zoom_extent
    from dashboard.sharing import apply_query, query_values
    from dashboard.state import CaseState

    grid = session.grid
    xmin, ymin, xmax, ymax = grid.bounds
    assert zoom_extent((xmin, xmax), (ymin, ymax), grid) == []  # the whole grid: no zoom in the link
    assert zoom_extent((xmin, float("nan")), (ymin, ymax), grid) is None
    assert zoom_extent((5.0, 1.0), (ymin, ymax), grid) is None
    maps = MapGrid(session, width=120)
    pn.Column(maps).get_root()
    zoom = [1_250_123.4, -3_010_000.0, 1_300_000.0, -2_980_000.6]
    maps.range_streams[1].event(x_range=(zoom[0], zoom[2]), y_range=(zoom[1], zoom[3]))
    assert session.state.zoom == [], "the other maps' own ranges do not count (they follow the first map's)"
    maps.range_streams[0].event(x_range=(zoom[0], zoom[2]), y_range=(zoom[1], zoom[3]))  # the shared range
    assert session.state.zoom == [1_250_123.0, -3_010_000.0, 1_300_000.0, -2_980_001.0]
    query = query_values(session.state)
    assert query["zoom"] == "[1250123.0, -3010000.0, 1300000.0, -2980001.0]"

    opened = DashboardSession(setup)
    assert apply_query(opened.state, query) == []
    assert opened.state.zoom == session.state.zoom
    root = pn.Column(MapGrid(opened, width=120)).get_root()
    for fig in root.select({"type": figure}):
        assert (fig.x_range.start, fig.x_range.end) == (1_250_123.0, 1_300_000.0)
        assert (fig.y_range.start, fig.y_range.end) == (-3_010_000.0, -2_980_001.0)
        assert (fig.x_range.reset_start, fig.x_range.reset_end) == (xmin, xmax)  # reset: the whole grid
    assert apply_query(CaseState(), {"zoom": "[1100000, -3200000, 1400000, -2900000]"}) == [], "whole metres"
    for bad in ("[1, 2, 0, 3]", "[1, 2, 3]", '["a", 0, 1, 2]', "[0, 0, NaN, 1]", "[true, 0, 1, 1]"):
        assert apply_query(opened.state, {"zoom": bad}) == [f"zoom={bad}"]
        assert opened.state.zoom == session.state.zoom
