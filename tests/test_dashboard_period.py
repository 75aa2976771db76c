"""The dashboard's Period tab shows qpe evaluate's numbers: computed in the tab's code path (in the
background, with progress) or read from a ``qpe evaluate --out`` folder; score-card, intervals, series."""

from __future__ import annotations

import re

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from dashboard_testing import shown_text
from evaluation_testing import evaluation_data, save_tiny_checkpoints

from dashboard.period import PeriodPanel, interval_table, kept_period, period_job
from dashboard.session import DashboardSession, DashboardSettings
from qpe.cli import main
from qpe.evaluation.reading import open_evaluation
from qpe.verify import ScoreAccumulator

MODELS = ["ddpm_v", "flow_residual", "unet"]  # the order qpe evaluate finds them in
#: The run of qpe evaluate the tab must reproduce: 2 members, 50 resamples of days, every model against unet.
RUN = ["--members", "2", "--bootstrap", "50", "--compare-to", "unet", "--no-cache"]


hv.extension("bokeh", logo=False)  # as dashboard/app.py does (imported here only by the last test)


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Data of two UTC days, three tiny checkpoints, and ``qpe evaluate --out`` of all of them."""
    root = tmp_path_factory.mktemp("period")
    data = evaluation_data(root / "data.zarr")
    models = save_tiny_checkpoints(root / "models")
    out = root / "eval"
    assert main(["evaluate", "--data", str(data), "--checkpoints", str(models), "--out", str(out), *RUN]) == 0
    return DashboardSettings(str(data), models, root / "cache"), out


@pytest.fixture
def panel(evaluated):
    session = DashboardSession(evaluated[0])
    session.state.param.update(models=MODELS, members=2, time="2021-06-01T23:00")
    return PeriodPanel(session, start=pd.Timestamp("2021-06-01").date(), end=pd.Timestamp("2021-06-02").date(),
                       resamples=50)


def test_the_tab_computes_what_qpe_evaluate_wrote(evaluated, panel):
    """In the background with progress; the same Dataset as scores.nc, number for number; kept for a second open."""
    panel.param.reference.objects = MODELS
    panel.reference = "unet"  # the score-card's reference: the request asks for compare_to=unet
    request = panel.request()
    assert request.config.compare_to == "unet" and request.start == "2021-06-01T00:00"
    job = period_job(request, panel.session.estimates.cache)
    computed = job.future.result(timeout=600)
    assert job.progress.done == job.progress.total == 3 * 11  # three models at the 11 times with two frames
    expected = xr.open_dataset(evaluated[1] / "scores.nc").load()
    xr.testing.assert_equal(computed.scores, expected)  # every score, interval, scorecard cell and coordinate
    assert computed.scores.attrs["n_times"] == expected.attrs["n_times"] == 11
    again = panel.compute_blocking()
    assert again is computed and kept_period(request) is computed  # the second open takes the kept result
    table = pd.read_csv(evaluated[1] / "scores.csv")
    rmse = table[(table.model == "ddpm_v") & (table.metric == "RMSE")].iloc[0]
    shown = panel.table.object.loc["RMSE", "ddpm_v"]
    assert shown == f"{rmse.value:.4g} [{rmse.ci_low:.4g}, {rmse.ci_high:.4g}]"


def test_an_evaluate_folder_is_shown_with_its_scorecard_and_series(evaluated, panel):
    out = evaluated[1]
    panel.folder = str(out)
    period = panel.open_folder()
    assert period.models == MODELS and panel.reference == "unet" and panel.score == "CSI >1"
    # the score table: every headline cell is scores.csv's row, with its interval
    csv = pd.read_csv(out / "scores.csv")
    shown = interval_table(period)
    assert list(shown.columns) == MODELS and "CSI >1" in shown.index and "CRPS_fair" in shown.index
    for label, model in (("CSI >1", "flow_residual"), ("FSS ≥1 @16 km", "unet"), ("CRPS_fair", "ddpm_v")):
        metric = label.split()[0]
        rows = csv[(csv.model == model) & (csv.metric == metric)]
        rows = rows[rows.threshold == 1.0] if ">" in label or "≥" in label else rows
        rows = rows[rows.scale == 16.0] if "km" in label else rows
        value, low, high = rows[["value", "ci_low", "ci_high"]].iloc[0]
        assert shown.loc[label, model] == f"{value:.4g} [{low:.4g}, {high:.4g}]"
    assert shown.loc["CRPS_fair", "unet"] == ""  # a deterministic model has no CRPS
    # the score-card: scorecard.csv's verdicts and differences, one column per model against unet
    card = pd.read_csv(out / "scorecard.csv")
    html = panel.scorecard.object
    assert re.findall(r'<th class="pair">([^<]+)</th>', html) == ["ddpm_v − unet", "flow_residual − unet"]
    cells = re.findall(r'<td data-model="flow_residual" data-verdict="(-?\d)"[^>]*>. ([-+0-9.e]+)</td>', html)
    expected = card[card.model == "flow_residual"]
    defined = expected[expected.verdict.notna()]
    assert [int(v) for v, _ in cells] == defined.verdict.astype(int).tolist()
    np.testing.assert_allclose([float(d) for _, d in cells], defined.difference, rtol=5e-3)
    # the series: each model's CSI > 1 mm/h on each UTC day, as that day's statistics alone give it
    series = period.series(period.cards[0])
    assert series.sizes == {"model": 3, "case": 2}
    statistics = xr.open_dataset(out / "statistics" / "flow_residual.nc").load()
    for i in range(2):
        day = ScoreAccumulator.from_dataset(statistics.isel(day=[i])).compute()
        np.testing.assert_allclose(series.sel(model="flow_residual").values[i],
                                   float(day["CSI"].sel(threshold=1.0).mean("member")), rtol=1e-12)
    assert panel.plot.object is not None
    panel.score = "RMSE"
    assert "RMSE per UTC day" in str(panel.plot.object.opts.get().kwargs["title"])


def test_another_reference_is_compared_from_the_kept_statistics(evaluated, panel):
    panel.folder = str(evaluated[1])
    stored = panel.open_folder().scorecard
    panel.reference = "ddpm_v"
    rows = re.findall(r'<th class="pair">([^<]+)</th>', panel.scorecard.object)
    assert rows == ["flow_residual − ddpm_v", "unet − ddpm_v"]
    flipped = panel.period.against("ddpm_v").scorecard_against("ddpm_v").isel(pair=1)
    original = stored.isel(pair=0)  # ddpm_v − unet
    assert str(flipped["model"].values) == "unet" and str(original["model"].values) == "ddpm_v"
    np.testing.assert_allclose(flipped["difference"], -original["difference"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(flipped["ci_low"], -original["ci_high"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(flipped["dm_p_value"], original["dm_p_value"], rtol=1e-9)


@pytest.mark.parametrize(("where", "message"), [("missing", "no evaluation folder at"),
                                                 ("empty", "is not a qpe evaluate --out folder")])
def test_a_bad_folder_gives_one_message_and_keeps_what_is_shown(tmp_path, panel, where, message):
    (tmp_path / "empty").mkdir()
    panel.folder = str(tmp_path / where)
    assert panel.open_folder() is None
    assert message in panel.session.messages.items["period"] and panel.period is None


def test_the_scores_of_a_folder_without_statistics_have_no_series(evaluated, tmp_path, panel):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(evaluated[1], folder)
    shutil.rmtree(folder / "statistics")
    period = open_evaluation(folder)
    assert period.accumulators is None and period.against("unet") is period
    panel.folder = str(folder)
    panel.open_folder()
    assert "keeps no statistics/ folder" in panel.session.messages.items["period"]
    panel.reference = "ddpm_v"
    assert "compares with unet only" in shown_text(pn.pane.Markdown(panel.session.messages.items["period"]))


def test_the_app_has_the_period_tab(evaluated):
    from dashboard.app import build_app

    page = build_app(evaluated[0])
    tabs = next(o for o in page.main.objects if isinstance(o, pn.Tabs))
    assert "Period" in tabs._names
    page.session.state.tab = "period"
    assert tabs.active == tabs._names.index("Period")


def test_your_own_estimates_are_scored_over_the_period_as_qpe_evaluate_scores_them(evaluated, tmp_path):
    """A folder of estimates made elsewhere (here: 0.8 x radar), shown beside a checkpoint, is scored by the
    tab exactly as ``qpe evaluate --estimates`` scores it."""
    import shutil

    from dashboard.period import compute_period
    from qpe.data.paired import open_paired

    settings = evaluated[0]
    models = shutil.copytree(settings.models, tmp_path / "models")
    own = models / "their_rain"
    own.mkdir()
    rain = (open_paired(settings.data)["rain"].fillna(0.0) * 0.8).astype("float32")
    rain.to_dataset(name="rain").to_netcdf(own / "rain.nc")
    session = DashboardSession(DashboardSettings(settings.data, models, tmp_path / "cache"))
    session.state.param.update(models=["their_rain", "unet"], members=2, time="2021-06-01T23:00")
    panel = PeriodPanel(session, start=pd.Timestamp("2021-06-01").date(), end=pd.Timestamp("2021-06-02").date(),
                        resamples=50)
    panel.reference = "unet"
    request = panel.request()
    assert request.estimates == (("their_rain", str(own), ""),) and [m for m, _ in request.checkpoints] == ["unet"]
    computed = compute_period(request)
    out = tmp_path / "eval"
    assert main(["evaluate", "--data", str(settings.data), "--checkpoints", str(models / "unet"),
                 "--estimates", str(own), "--out", str(out), *RUN]) == 0
    xr.testing.assert_equal(computed.scores, xr.open_dataset(out / "scores.nc").load())
    rain.isel(time=[0]).to_dataset(name="rain").to_netcdf(own / "more.nc")  # new files: another computation
    assert panel.request().key != request.key
