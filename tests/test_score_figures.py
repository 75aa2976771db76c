"""Score figures for review meetings, in ``qpe evaluate`` (matplotlib) and in the dashboard's Scores tab
(HoloViews/Bokeh), without a browser: a model's colour is its own whatever the other models, legends sit
outside the data area, the rank histogram is drawn as bars, the QQ plot reads the library's quantiles, and
the score table lists every score the library returns, with its unit. The browser checks (boxes as drawn,
1280x800 and 1920x1080) are in tests/browser/test_dashboard_browser.py.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest
import xarray as xr
from bokeh.models import Legend
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from dashboard.scores import (
    figure_makers,
    format_table,
    rank_plot,
    score_descriptions_of,
    score_figures,
    score_frame,
    score_table,
)
from qpe.colours import RADAR_COLOUR, model_colour
from qpe.evaluation.config import EvaluationConfig
from qpe.evaluation.figures import FIGURES, quantile_quantile
from qpe.evaluation.summary import summarize_scores
from qpe.verify import ScoreAccumulator, figure_data, verify
from qpe.verify.distribution import QQ_LEVELS, quantile_tolerance, wet_quantile_curve
from qpe.verify.tables import ORIENTATION, score_descriptions
from qpe.verify.testing import random_rain_fields

hv.extension("bokeh", logo=False)

THRESHOLDS = [0.1, 1.0, 5.0]
#: (name, members) of the models of the larger set; the smaller set is its last two in the other order.
MODELS = (("unet", None), ("flow_residual", 3), ("ddpm", 3), ("crr", None))
KWARGS = {"times": 2, "start": "2021-06-01T00:00", "freq": "12h", "wet_fraction": 0.3, "min_rate": 1.0}


def _fields(members: int | None, seed: int) -> tuple[xr.DataArray, xr.DataArray]:
    estimate, _ = random_rain_fields((48, 48), members=members, seed=seed, **KWARGS)
    _, radar = random_rain_fields((48, 48), seed=1, **KWARGS)
    return estimate, radar


@pytest.fixture(scope="module")
def case_scores() -> dict[str, xr.Dataset]:
    """verify() of each model at one time, as the dashboard computes them (name -> scores)."""
    out = {}
    for seed, (name, members) in enumerate(MODELS):
        estimate, radar = _fields(members, seed + 2)
        out[name] = verify(estimate.isel(time=0), radar.isel(time=0), thresholds=THRESHOLDS, model=name)
    return out


def _period(names: list[str]) -> xr.Dataset:
    """Scores of a period along ``model``, as qpe evaluate makes them."""
    accumulators = {}
    for name in names:
        seed, members = next((i, m) for i, (n, m) in enumerate(MODELS) if n == name)
        estimate, radar = _fields(members, seed + 2)
        accumulators[name] = ScoreAccumulator(model=name).accum(estimate, radar)
    return summarize_scores(accumulators, {}, EvaluationConfig(n_resamples=0))


@pytest.fixture(scope="module")
def period_scores() -> tuple[xr.Dataset, xr.Dataset]:
    """Four models, and two of them in the other order."""
    return _period([m for m, _ in MODELS]), _period(["crr", "ddpm"])


# -- the library: the QQ plot's quantiles ----------------------------------------------------------------------
def test_qq_quantiles_are_the_tables_wet_quantiles_and_numpys(case_scores):
    scores = case_scores["ddpm"]
    data = figure_data(scores)["quantile_quantile"]
    assert data["quantile"].dims == ("member", "level") and data["quantile_radar"].dims == ("level",)
    np.testing.assert_allclose(data["quantile"].sel(level=0.99), scores["wet_p99"], rtol=1e-12)
    np.testing.assert_allclose(data["quantile_radar"].sel(level=0.9), scores["wet_p90_radar"], rtol=1e-12)
    _, radar = _fields(None, 0)
    wet = radar.isel(time=0).values
    wet = wet[np.isfinite(wet) & (wet > 0.1)]
    levels, tol = np.array(QQ_LEVELS), quantile_tolerance()
    body = levels <= 0.95  # the tail of ~700 wet pixels: between its bracketing order statistics, one bin wide
    np.testing.assert_allclose(data["quantile_radar"][body], np.quantile(wet, levels[body]), rtol=tol + 1e-9)
    ordered = np.sort(wet)
    ranks = levels * wet.size
    low = ordered[np.clip(np.floor(ranks).astype(int) - 1, 0, wet.size - 1)] / (1 + tol)
    high = ordered[np.clip(np.ceil(ranks).astype(int), 0, wet.size - 1)] * (1 + tol)
    assert ((data["quantile_radar"].values >= low) & (data["quantile_radar"].values <= high)).all()
    assert data["quantile_radar"].attrs["units"] == "mm/h"


def test_qq_quantiles_refuse_levels_outside_0_1(case_scores):
    scores = case_scores["unet"]
    with pytest.raises(Exception, match=r"quantile levels must lie in \(0, 1\)"):
        wet_quantile_curve(scores["exceedance"], scores["maximum"], levels=[0.5, 1.0])


def test_descriptions_give_units_counts_and_the_better_direction(case_scores):
    info = score_descriptions(case_scores["ddpm"]).set_index("metric")
    assert info.loc["RMSE", "units"] == "mm/h" and info.loc["RMSE", "better"] == "lower"
    assert info.loc["BIAS", "better"] == "near 1" and info.loc["BIAS", "level"] == "threshold"
    assert info.loc["CSI_extreme", "level"] == "extreme_threshold" and info.loc["FSS", "per_scale"]
    assert info.loc["n_radar_extreme", "count"] and not info.loc["CSI", "count"]
    assert ORIENTATION["ensemble_skill"].better == "lower", "the mean member RMSE is better lower"


# -- qpe evaluate's figures (matplotlib) -------------------------------------------------------------------------
def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("name", ["performance_diagram", "fss_vs_scale", "ensemble_fss", "power_spectrum_ratio",
                                  "spectral_coherence", "exceedance_curves", "histograms", "quantile_quantile", "rank_histogram",
                                  "reliability_diagram"])
def test_evaluate_figures_keep_legends_off_the_axes_and_colours_by_name(period_scores, name):
    drawn = {}
    for scores in period_scores:
        fig = FIGURES[name][0](scores)
        canvas = FigureCanvasAgg(fig)  # as savefig draws it
        canvas.draw()
        renderer = canvas.get_renderer()
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends, f"{name} has no legend"
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in axes:
                assert not _overlaps(box, ax.get_window_extent(renderer)), f"{name}: legend over {ax.get_title()}"
        for legend in legends:
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                label = text.get_text().split(" (")[0]
                colour = handle.get_facecolor() if hasattr(handle, "get_height") else handle.get_color()
                drawn.setdefault(label, set()).add(to_hex(colour))
    for model in ("crr", "ddpm", "unet", "flow_residual"):
        if model in drawn:
            assert drawn[model] == {model_colour(model).lower()}, (name, model, drawn[model])
    if "radar" in drawn:
        assert drawn["radar"] == {RADAR_COLOUR}


def test_evaluate_qq_figure_draws_the_library_quantiles(period_scores):
    scores = period_scores[0]
    fig = quantile_quantile(scores)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    data = figure_data(scores)["quantile_quantile"]
    expected = data["quantile"].sel(model="ddpm").mean("member").values
    radar = data["quantile_radar"].sel(model="ddpm").values
    keep = np.isfinite(expected) & np.isfinite(radar)
    np.testing.assert_allclose(lines["ddpm"].get_ydata(), expected[keep])
    np.testing.assert_allclose(lines["ddpm"].get_xdata(), radar[keep])
    assert "radar (1:1)" in lines


# -- the dashboard's figures (Bokeh models) -----------------------------------------------------------------------
def _legend_colours(plot) -> dict[str, str]:
    out = {}
    for legend in plot.select(type=Legend):
        for item in legend.items:
            glyph = item.renderers[0].glyph
            colour = getattr(glyph, "fill_color", None) if hasattr(glyph, "fill_color") else glyph.line_color
            out[item.label["value"] if isinstance(item.label, dict) else item.label.value] = colour
    return out


def test_dashboard_figures_legends_beside_the_frame_colours_by_name(case_scores):
    sets = [case_scores, {m: case_scores[m] for m in ("crr", "ddpm")}]
    for scores in sets:
        figures = score_figures(scores, THRESHOLDS, 1.0)
        titles = [f.opts.get().kwargs["title"] for f in figures]
        assert [t for t in titles if t.startswith("FSS")] == [f"FSS, rain ≥ {t:g} mm/h (dashed: useful)"
                                                               for t in THRESHOLDS], "FSS at every threshold"
        assert "quantile-quantile, wet pixels" in titles and "reliability, rain ≥ 1 mm/h" in titles
        for figure, title in zip(figures, titles):
            if scores is sets[1] and not title.startswith(("performance", "quantile", "exceedance")):
                continue  # the second set: enough to see the same colours (rendering costs ~0.3 s a figure)
            plot = hv.render(figure)
            legends = plot.select(type=Legend)
            assert legends and all(legend in plot.right for legend in legends), f"{title}: legend in the data area"
            for name, colour in _legend_colours(plot).items():
                expected = RADAR_COLOUR if name.startswith(("radar", "perfect")) else model_colour(name)
                assert colour.lower() == expected.lower(), (title, name)


def test_dashboard_rank_histogram_is_bars_side_by_side(case_scores):
    plot = hv.render(rank_plot(case_scores))
    bars = {i: r for i, r in enumerate(plot.renderers) if type(getattr(r, "glyph", None)).__name__ == "Quad"}
    assert len(bars) == 2, "one set of bars per ensemble (flow_residual, ddpm)"
    widths = [np.asarray(r.data_source.data["right"]) - np.asarray(r.data_source.data["left"]) for r in bars.values()]
    np.testing.assert_allclose(np.concatenate(widths), 0.4)
    heights = [np.asarray(r.data_source.data["top"]) for r in bars.values()]
    expected = figure_data(case_scores["ddpm"])["rank_histogram"]["rank_histogram"]
    np.testing.assert_allclose(heights[1], expected / float(expected.sum()))
    assert all(h.size == 4 for h in heights), "every rank a full bar (3 members: 4 ranks)"


def test_dashboard_figures_only_for_ensembles_when_there_are_some(case_scores):
    deterministic = {m: case_scores[m] for m in ("unet", "crr")}
    names = [getattr(make, "func", make).__name__ for make in figure_makers(deterministic, THRESHOLDS, 1.0)]
    assert "rank_plot" not in names and "reliability_plot" not in names and "quantile_plot" in names


# -- the dashboard's table -------------------------------------------------------------------------------------
def test_table_lists_every_library_score_with_units_and_counts_as_integers(case_scores):
    scores = {m: case_scores[m] for m in ("unet", "ddpm")}
    descriptions = score_descriptions_of(scores)
    table = score_table(score_frame(scores), descriptions)
    assert list(table.columns) == ["unit", "unet", "ddpm", "radar", "better", "definition"]
    for label, unit in (("CRPS_fair", "mm/h"), ("energy_score", "mm/h"), ("variogram_score", "mm/h"),
                        ("effective_resolution", "km"), ("twCRPS_fair > 10 mm/h", "mm/h"),
                        ("CSI_extreme > 20 mm/h", ""), ("n_radar_extreme > 50 mm/h", ""),
                        ("FSS_ensemble ≥ 1 mm/h @ 16 km", "")):
        assert table.loc[label, "unit"] == unit, label
    np.testing.assert_allclose(table.loc["CRPS_fair", "ddpm"], float(scores["ddpm"]["CRPS_fair"]))
    assert np.isnan(table.loc["CRPS_fair", "unet"])
    np.testing.assert_allclose(table.loc["FSS ≥ 5 mm/h @ 16 km", "unet"],
                               float(scores["unet"]["FSS"].sel(threshold=5.0, scale=16.0)))
    shown = format_table(table, descriptions)
    n_valid = int(scores["unet"]["n_valid"])
    assert n_valid >= 1000 and shown.loc["n_valid", "unet"] == f"{n_valid:,}"
    assert shown.loc["RMSE", "unet"] == f"{float(scores['unet']['RMSE']):.4g}"


def test_a_score_added_to_the_library_shows_without_a_dashboard_change(case_scores):
    new = xr.DataArray(np.array([2.5, 3.5, 4.5]), dims="member",
                       attrs={"long_name": "a new score", "units": "km"})
    scores = {"ddpm": case_scores["ddpm"].assign(new_score=new)}
    table = score_table(score_frame(scores), score_descriptions_of(scores))
    row = table.loc["new_score"]
    assert row["ddpm"] == 3.5 and row["unit"] == "km" and row["definition"] == "a new score" and row["better"] == ""
