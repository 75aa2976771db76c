"""``qpe evaluate`` end to end: every output, numbers equal to qpe.verify, a Dask cluster equals local,
and one clear error per bad input."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evaluation_testing import evaluation_data, save_tiny_checkpoints
from models_testing import tiny_card

from qpe.cli import main
from qpe.data.paired import open_paired
from qpe.data.times import has_frames
from qpe.evaluation import EvaluationConfig, evaluate_period, open_scores, score_table, split_scores
from qpe.evaluation.figures import (
    FIGURES,
    exceedance_curves,
    fss_vs_scale,
    performance_diagram,
    power_spectrum_ratio,
    rank_histogram,
)
from qpe.evaluation.period import plan_tasks
from qpe.inference.engine import EstimateConfig
from qpe.inference.estimators import find_estimators
from qpe.models import build_model, save_checkpoint
from qpe.verify import ScoreAccumulator, ScoreConfig, bootstrap_ci, scores_to_frame, verify
from qpe.verify.comparison import SCORECARD_COLUMNS

#: Settings of every CLI run here (the estimate cache is off so that each run really estimates).
RUN = ["--members", "3", "--steps", "2", "--bootstrap", "50", "--no-cache"]
MODELS = ["ddpm_v", "flow_residual", "unet"]
KEYS = ["model", "metric", "threshold", "scale"]


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def data_path(workdir):
    return evaluation_data(workdir / "data.zarr")


@pytest.fixture(scope="module")
def models_dir(workdir):
    return save_tiny_checkpoints(workdir / "models")


@pytest.fixture(scope="module")
def local_run(workdir, data_path, models_dir):
    out = workdir / "local"
    code = main(
        ["evaluate", "--data", str(data_path), "--checkpoints", str(models_dir), "--out", str(out), *RUN]
    )
    assert code == 0
    return out


def _expected_times(data_path):
    """Every time but the first of each run of frames (T = 2): 22:30..23:30 and 00:15..01:30."""
    times = pd.DatetimeIndex(open_paired(data_path)["time"].values)
    return times.drop([pd.Timestamp("2021-06-01T22:15"), pd.Timestamp("2021-06-02T00:00")])


def test_writes_every_output(local_run):
    for name in ("scores.nc", "scores.csv", "report.html", "evaluation.yaml"):
        assert (local_run / name).is_file(), name
    pngs = sorted(p.stem for p in (local_run / "figures").glob("*.png"))
    assert pngs == sorted(set(FIGURES) - {"scores_by_regime"})  # that one with --regimes (_check_regimes)
    for png in (local_run / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert sorted(p.stem for p in (local_run / "statistics").glob("*.nc")) == MODELS
    table = pd.read_csv(local_run / "scores.csv")
    assert list(table.columns) == ["model", "metric", "threshold", "scale", "value", "ci_low", "ci_high"]
    assert sorted(table["model"].unique()) == sorted([*MODELS, "radar"])
    assert not table.duplicated(KEYS).any(), "one row per model, metric, threshold and scale"
    rmse = table[(table["model"] == "unet") & (table["metric"] == "RMSE")]
    assert len(rmse) == 1 and np.isnan(rmse["threshold"]).all() and np.isnan(rmse["scale"]).all()
    text = (local_run / "scores.csv").read_text()
    assert re.search(r"^unet,RMSE,,,[0-9.e-]+,[0-9.e-]+,[0-9.e-]+$", text, re.MULTILINE), (
        "empty cells where n/a"
    )
    assert not ((table["model"] == "unet") & (table["metric"] == "CRPS")).any(), (
        "no ensemble rows for a U-Net"
    )
    assert {"CRPS", "FSS", "CSI", "wet_p99"} <= set(table[table["model"] == "ddpm_v"]["metric"])
    scores = open_scores(local_run / "scores.nc")
    assert list(scores["model"].values) == MODELS
    assert list(scores["family"].values) == ["ddpm", "flow", "unet"]
    assert scores["FSS"].dims == ("model", "member", "threshold", "scale")
    assert scores["FSS__ci"].dims == ("model", "bound", "member", "threshold", "scale")
    assert scores.attrs["n_times"] == 11 and scores.attrs["n_days"] == 2
    card = pd.read_csv(local_run / "scorecard.csv")
    assert list(card.columns) == list(SCORECARD_COLUMNS)
    pairs = [("flow_residual", "ddpm_v"), ("unet", "ddpm_v"), ("unet", "flow_residual")]
    assert list(dict.fromkeys(zip(card["model"], card["reference"]))) == pairs, "every pair once"
    rmse = card.query("model == 'unet' and reference == 'ddpm_v' and metric == 'RMSE'").iloc[0]
    values = table.query("metric == 'RMSE'").set_index("model")["value"]
    np.testing.assert_allclose(rmse["difference"], values["unet"] - values["ddpm_v"], rtol=1e-9)
    assert rmse["ci_low"] <= rmse["difference"] <= rmse["ci_high"] and rmse["better"] == "lower"
    assert rmse["dm_cases"] == 2 and np.isnan(rmse["dm_p_value"]), "2 days: too few for a DM test"
    assert card.query("model == 'unet' and metric == 'CRPS_fair'")["difference"].isna().all(), (
        "no CRPS for a U-Net"
    )


def test_scores_csv_equals_qpe_verify_on_the_same_estimates(local_run, data_path, models_dir):
    ds = open_paired(data_path)
    times = _expected_times(data_path)
    estimators = find_estimators([models_dir])
    rain = {
        e.name: e.estimate(ds, times, EstimateConfig(members=3, steps=2), progress=False)["rain"]
        for e in estimators
    }
    radar = ds["rain"].sel(time=times)
    valid = radar.notnull()
    for field in rain.values():
        valid &= field.notnull().all("member")
    frames = []
    for name, field in rain.items():
        field = field.isel(member=0, drop=True) if field.sizes["member"] == 1 else field
        est, rad = field.where(valid), radar.where(valid)
        scores = verify(est, rad, model=name)
        ci = bootstrap_ci(ScoreAccumulator(ScoreConfig(), model=name).accum(est, rad), 50, seed=0)
        frames.append(scores_to_frame(scores, ci))
    expected = pd.concat(frames).drop_duplicates(KEYS)
    table = pd.read_csv(local_run / "scores.csv")
    merged = expected.merge(table, on=KEYS, how="outer", suffixes=("_verify", "_csv"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][KEYS].to_string()
    for column in ("value", "ci_low", "ci_high"):
        np.testing.assert_allclose(
            merged[f"{column}_csv"],
            merged[f"{column}_verify"],
            rtol=1e-9,
            atol=1e-12,
            equal_nan=True,
            err_msg=column,
        )
    assert np.isfinite(merged["ci_low_csv"]).sum() > 100


def test_local_cluster_gives_identical_scores(data_path, models_dir, local_run):
    distributed = pytest.importorskip("distributed")
    config = EvaluationConfig(estimate=EstimateConfig(members=3, steps=2), n_resamples=50)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:
        on_cluster = evaluate_period(
            data_path,
            find_estimators([models_dir]),
            config=config,
            scheduler=cluster.scheduler_address,
            progress=False,
        )
    local = open_scores(local_run / "scores.nc")  # what `qpe evaluate` wrote, computed on local threads
    xr.testing.assert_identical(on_cluster.drop_attrs(), local.drop_attrs())


def test_scores_do_not_depend_on_the_task_size(local_run, data_path, models_dir, capsys):
    config = EvaluationConfig(estimate=EstimateConfig(members=3, steps=2), chunk_times=1, n_resamples=0)
    small_tasks = evaluate_period(data_path, find_estimators([models_dir]), config=config, progress=True)
    reference, _ = split_scores(open_scores(local_run / "scores.nc"))
    intervals = ["scorecard_ci_low", "scorecard_ci_high"]  # the scorecard's intervals need resamples
    assert small_tasks[intervals].isnull().all() and reference[intervals].notnull().any()
    xr.testing.assert_allclose(small_tasks.drop_vars(intervals).drop_attrs(),
                               reference.drop_vars(intervals).drop_attrs(), rtol=1e-9, atol=1e-12)
    # the bar counts estimates (model x time), not tasks, and ends full
    estimates = len(MODELS) * small_tasks.attrs["n_times"]
    bar = rf"evaluate: 100%.*\b{estimates}/{estimates} \[.*(estimate/s|s/estimate)"
    assert re.search(bar, capsys.readouterr().err)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # SAL objects
def test_times_resampled_within_days_give_intervals_and_statistics_per_time(
    local_run, data_path, models_dir, tmp_path
):
    """The same scores with bootstrap_unit 'time': intervals over the 11 times (stratified by the 2 days),
    statistics kept and written per time, and the files say which unit was used. The optional families
    (SAL, displacement) ride along: in scores.nc with units, in scores.csv and side by side in the report;
    so do the scores by regime (scores.nc, scores.csv's regime column, figure and report section)."""
    from qpe.evaluation import accumulate_period, summarize_scores, write_outputs
    from qpe.evaluation.summary import SCORECARD_PREFIX
    from qpe.verify import DEFAULT_FAMILIES

    config = EvaluationConfig(
        estimate=EstimateConfig(members=3, steps=2),
        n_resamples=50,
        bootstrap_unit="time",
        scores=ScoreConfig(families=(*DEFAULT_FAMILIES, "sal", "displacement", "regimes")),
    )
    estimators = find_estimators([models_dir])
    accumulators, info = accumulate_period(data_path, estimators, config=config, progress=False)
    scores = summarize_scores(accumulators, info, config)
    reference, _ = split_scores(open_scores(local_run / "scores.nc"))
    values, ci = split_scores(scores)
    # the scores; the scorecard's intervals and DM test depend on the unit resampled (cases: days or times)
    names = [n for n in reference.data_vars if not str(n).startswith(SCORECARD_PREFIX)]
    xr.testing.assert_allclose(
        values[names].drop_attrs(), reference[names].drop_attrs(), rtol=1e-9, atol=1e-12
    )
    assert scores.attrs["bootstrap_unit"] == "time"
    assert "times within UTC days (11 times in 2 days)" in scores.attrs["confidence_interval"]
    low, high = (float(ci["CRPS_fair"].sel(model="ddpm_v", bound=b)) for b in ("ci_low", "ci_high"))
    assert low <= float(values["CRPS_fair"].sel(model="ddpm_v")) <= high and low < high
    written = write_outputs(scores, tmp_path / "out", accumulators=accumulators)
    with xr.open_dataset(written.statistics["unet"]) as ds:
        back = ScoreAccumulator.from_dataset(ds.load())
    assert back.resolution == "time" and back.cases.size == 11 and back.days.size == 2
    _check_position_and_amount(written.folder)
    _check_regimes(written.folder)
    with pytest.raises(ValueError, match="bootstrap_unit must be day or time"):
        EvaluationConfig(bootstrap_unit="week")


def _check_position_and_amount(folder):
    """The displacement family and SAL in the written outputs of a run that computed them."""
    units = {
        "displacement": "km",
        "displacement_east": "km",
        "displacement_north": "km",
        "RMSE_unwarped": "mm/h",
        "RMSE_warped": "mm/h",
        "MAE_warped": "mm/h",
        "position_error_fraction": "1",
        "n_displacement": "1",
    }
    scores = open_scores(folder / "scores.nc")
    for name, unit in units.items():
        assert scores[name].dims == ("model", "member") and scores[name].attrs["units"] == unit, name
        assert f"{name}__ci" in scores, name
    assert (scores["n_displacement"].sel(member=0) > 0).all()
    table = pd.read_csv(folder / "scores.csv")
    rows = table[table["metric"].isin([*units, "SAL_L"])]
    assert len(rows) == len(MODELS) * (len(units) + 1) and rows["value"].notna().all()
    page = (folder / "report.html").read_text()
    section = page.split("Where is the error: position or amount?")[1].split("</table>")[0]
    for column in ("displacement_east", "RMSE_unwarped", "RMSE_warped", "SAL_A", "SAL_L"):
        assert f"<th>{column}</th>" in section, column
    unet = table.query("model == 'unet' and metric == 'RMSE_warped'").iloc[0]
    assert f"<td>{unet['value']:.3g} " in section


def _check_regimes(folder):
    """The scores by regime in the written outputs: each group's pixels add up to the unsplit count."""
    scores = open_scores(folder / "scores.nc")
    assert scores["CSI_regime"].dims == ("model", "member", "regime", "threshold")
    assert "CSI_regime__ci" in scores and "CRPS_fair_regime" in scores
    groups = set(scores["regime_group"].values)
    assert groups == {"cloud_top", "daylight", "rain_type"}  # the synthetic data have no radar quality
    n = scores["n_regime"].isel(model=0)
    totals = [float(n.where(scores["regime_group"] == g, drop=True).sum()) for g in groups]
    np.testing.assert_allclose(totals, totals[0])
    table = pd.read_csv(folder / "scores.csv", keep_default_na=False, na_values=[""])
    csi = table.query("metric == 'CSI_regime' and model == 'unet' and threshold == 1")
    assert len(csi) == scores.sizes["regime"] and "cloud_top: <210 K" in set(csi["regime"])
    assert (folder / "figures" / "scores_by_regime.png").is_file()
    page = (folder / "report.html").read_text()
    assert "<h2>Scores by regime</h2>" in page and "Radar quality is not split" in page
    assert "<th>rain_type: convective</th>" in page


def test_evaluate_flags_add_the_optional_families():
    from qpe.cli import build_parser
    from qpe.cli.evaluate import _score_config

    args = build_parser().parse_args(["evaluate", "--data", "d", "--out", "o", "--displacement", "--sal"])
    assert _score_config(args).families[-2:] == ("sal", "displacement")
    args = build_parser().parse_args(["evaluate", "--data", "d", "--out", "o", "--regimes"])
    assert _score_config(args).families[-1] == "regimes"
    args = build_parser().parse_args(["evaluate", "--data", "d", "--out", "o"])
    assert "displacement" not in _score_config(args).families


@pytest.fixture(scope="module")
def bad_checkpoints(workdir):
    root = workdir / "bad"
    for name, card in (
        ("wrong_channels", tiny_card("unet", channels=("WV_073", "IR_108"))),
        ("long_history", tiny_card("unet", frames=8)),
    ):
        save_checkpoint(build_model(card), card, root / name)
    return root


@pytest.mark.parametrize(
    "case, extra, message",
    [
        (
            "time not in data",
            ["--start", "2021-07-01T00:00", "--end", "2021-07-02T00:00"],
            (
                "period 2021-07-01T00:00 .. 2021-07-02T00:00 is not in the data (the data cover "
                "2021-06-01T22:15 .. 2021-06-02T01:30)"
            ),
        ),
        (
            "empty period",
            ["--start", "2021-06-01T23:40", "--end", "2021-06-01T23:50"],
            "empty period: no time of the data lies in 2021-06-01T23:40 .. 2021-06-01T23:50",
        ),
        ("channels", ["wrong_channels"], "checkpoint 'unet' needs IR channel(s) WV_073, which the data lack"),
        (
            "scorecard reference",
            ["--compare-to", "nope"],
            "--compare-to 'nope' is not among the models: ddpm_v, flow_residual, unet",
        ),
        (
            "frames T",
            ["long_history"],
            (
                "model 'unet' needs T=8 successive 15-min IR frames, but no time of the period has them "
                "(the data hold runs of at most 7 frames)"
            ),
        ),
    ],
)
def test_bad_inputs_give_one_clear_line(
    capsys, workdir, data_path, models_dir, bad_checkpoints, case, extra, message
):
    out = workdir / f"bad_{case.replace(' ', '_')}"
    if extra[0].startswith("--"):
        args = ["--checkpoints", str(models_dir), *extra]
    else:
        args = ["--checkpoints", str(bad_checkpoints / extra[0])]
    capsys.readouterr()
    code = main(["evaluate", "--data", str(data_path), *args, "--out", str(out), *RUN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("qpe: error: "), err
    assert message in err[0]
    assert not out.exists(), "nothing is written for a bad input"


def test_unknown_dataset_name_and_nothing_to_evaluate(capsys, workdir, models_dir):
    assert (
        main(
            [
                "evaluate",
                "--data",
                "no_such_dataset",
                "--checkpoints",
                str(models_dir),
                "--out",
                str(workdir / "x"),
            ]
        )
        == 2
    )
    assert "no dataset 'no_such_dataset' in the catalog" in capsys.readouterr().err
    assert main(["evaluate", "--data", "demo", "--out", str(workdir / "x")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


def test_figures_draw_every_model_and_the_radar(local_run):
    scores, _ = split_scores(open_scores(local_run / "scores.nc"))
    fig = exceedance_curves(scores)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines) == [*MODELS, "radar"]
    radar = scores["exceedance_radar"].isel(model=0).values
    np.testing.assert_allclose(lines["radar"].get_ydata(), np.where(radar > 0, radar, np.nan), equal_nan=True)
    ddpm = scores["exceedance"].sel(model="ddpm_v").mean("member").values
    np.testing.assert_allclose(lines["ddpm_v"].get_ydata(), np.where(ddpm > 0, ddpm, np.nan), equal_nan=True)

    spectra, ratio = power_spectrum_ratio(scores).axes
    assert [line.get_label() for line in spectra.get_lines()] == [*MODELS, "radar"]
    unet_ratio = next(line for line in ratio.get_lines() if line.get_label() == "unet")
    expected = scores["rapsd_ratio"].sel(model="unet", member=0).values[1:]  # frequency 0 is left out
    np.testing.assert_allclose(unet_ratio.get_ydata(), expected)
    assert spectra.get_xlim()[0] > spectra.get_xlim()[1], "large wavelengths on the left"

    bars = rank_histogram(scores).axes[0].containers
    assert [b.get_label() for b in bars] == ["ddpm_v", "flow_residual"], "ensembles only"
    np.testing.assert_allclose(
        [r.get_height() for r in bars[0]], scores["rank_histogram"].sel(model="ddpm_v")
    )

    legend = [t.get_text() for t in performance_diagram(scores).legends[0].get_texts()]
    assert legend[0::2] == [*MODELS, " "] and legend[1::2] == [
        "> 0.1 mm/h",
        "> 1 mm/h",
        "> 5 mm/h",
        "> 10 mm/h",
    ]
    panels = [ax for ax in fss_vs_scale(scores).axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [
        "rain >= 0.1 mm/h",
        "rain >= 1 mm/h",
        "rain >= 5 mm/h",
        "rain >= 10 mm/h",
    ]
    unet_fss = next(line for line in panels[1].get_lines() if line.get_label() == "unet")
    np.testing.assert_allclose(unet_fss.get_ydata(), scores["FSS"].sel(model="unet", threshold=1.0, member=0))


def test_figures_take_the_scores_of_one_model():
    from qpe.verify.testing import random_rain_fields

    est, rad = random_rain_fields((48, 48), times=2, seed=1)
    scores = verify(est, rad, model="alone")
    assert [line.get_label() for line in exceedance_curves(scores).axes[0].get_lines()] == ["alone", "radar"]
    assert "no ensemble model" in rank_histogram(scores).axes[0].texts[0].get_text()


def _two_models():
    """Scores of an ensemble ("flow") and a deterministic model ("unet") along ``model``, as evaluate makes."""
    from qpe.evaluation.summary import summarize_scores
    from qpe.verify.testing import random_rain_fields

    kwargs = {"times": 4, "start": "2021-06-01T00:00", "freq": "12h", "wet_fraction": 0.3, "min_rate": 1.0}
    ens, rad = random_rain_fields((64, 64), members=3, seed=2, **kwargs)
    det, _ = random_rain_fields((64, 64), seed=3, **kwargs)
    accumulators = {
        "flow": ScoreAccumulator(model="flow").accum(ens, rad),
        "unet": ScoreAccumulator(model="unet").accum(det, rad),
    }
    return summarize_scores(accumulators, {}, EvaluationConfig(n_resamples=0))


def test_ensemble_fss_figure_draws_the_three_fss_of_the_ensembles():
    from qpe.evaluation.figures import ensemble_fss

    scores = _two_models()
    fig = ensemble_fss(scores)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    # colour = model, style = which FSS: the legend lists them once each, not their product
    legend = [h.get_label() for h in fig.legends[0].legend_handles]
    assert legend == ["flow", "ensemble", "ensemble mean", "members", "useful (0.5 + f_o/2)"]
    assert [ax.get_title() for ax in panels] == [f"rain >= {t:g} mm/h" for t in (0.1, 1, 5, 10)]
    lines = {line.get_label(): line for line in panels[1].get_lines()}
    assert {"flow, ensemble", "flow, ensemble mean", "flow, members"} <= set(lines)
    assert not any(label.startswith("unet") for label in lines), "ensembles only"
    np.testing.assert_allclose(
        lines["flow, ensemble"].get_ydata(), scores["FSS_ensemble"].sel(model="flow", threshold=1.0)
    )
    from qpe.verify.testing import random_rain_fields

    alone = verify(*random_rain_fields((48, 48), times=2, seed=1), model="alone")
    assert "no ensemble model" in ensemble_fss(alone).axes[0].texts[0].get_text()


def test_coherence_figure_marks_each_effective_resolution():
    from qpe.evaluation.figures import spectral_coherence

    scores = _two_models()
    ax = spectral_coherence(scores).axes[0]
    curves = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    for model in ("flow", "unet"):
        resolution = float(scores["effective_resolution"].sel(model=model).mean("member"))
        label = f"{model} ({resolution:.3g} km)"
        assert label in curves
        coherence = scores["coherence"].sel(model=model).mean("member").values[1:]  # the mean is left out
        np.testing.assert_allclose(curves[label].get_ydata(), coherence)
    assert ax.get_xlim()[0] > ax.get_xlim()[1], "large wavelengths on the left"


def test_report_extremes_table_has_each_score_at_each_extreme_threshold():
    from qpe.evaluation.report import extremes_frame

    table = score_table(_two_models())
    frame = extremes_frame(table)
    assert list(frame.index) == ["flow", "unet"]
    assert [c for c in frame.columns if c.startswith("CSI")] == ["CSI >10", "CSI >20", "CSI >50"]
    assert frame.loc["unet", "fair twCRPS >10"] == "–", "no twCRPS for a deterministic model"
    radar = table.query("model == 'flow' and metric == 'n_radar_extreme' and threshold == 20").iloc[0]
    assert frame.loc["flow", "radar pixels >20"] == f"{radar['value']:.3g}"


def test_report_shows_the_figures_and_headline_scores(local_run):
    page = (local_run / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(FIGURES) - 1  # every figure but the scores by regime (--regimes)
    assert all(base64.b64decode(img)[:4] == b"\x89PNG" for img in images)
    headline = page.split("<h2>Headline scores</h2>")[1].split("<h2>")[0]
    for model in [*MODELS, "radar"]:
        assert f"<th>{model}</th>" in headline
    table = score_table(open_scores(local_run / "scores.nc"))
    csi = table[(table["model"] == "unet") & (table["metric"] == "CSI") & (table["threshold"] == 1.0)].iloc[0]
    assert (
        f'{csi["value"]:.3g} <span class="ci">[{csi["ci_low"]:.3g}, {csi["ci_high"]:.3g}]</span>' in headline
    )
    assert 'href="scores.csv"' in page and "2021-06-01, 2021-06-02" in page
    section = page.split("<h2>Is A better than B? Paired differences</h2>")[1].split("<h2>")[0]
    for pair in ("flow_residual − ddpm_v", "unet − ddpm_v", "unet − flow_residual"):
        assert f"<th>{pair}</th>" in section
    assert "<th>RMSE (RMSE, lower is better)</th>" in section and 'href="scorecard.csv"' in section


def test_has_frames_and_tasks_respect_gaps_and_days():
    times = pd.DatetimeIndex(
        [
            "2021-06-01T23:15",
            "2021-06-01T23:30",
            "2021-06-01T23:45",
            "2021-06-02T00:00",
            "2021-06-02T00:30",
            "2021-06-02T00:45",
        ]
    )
    np.testing.assert_array_equal(has_frames(times, 1), [True] * 6)
    np.testing.assert_array_equal(has_frames(times, 2), [False, True, True, True, False, True])
    np.testing.assert_array_equal(has_frames(times, 4), [False, False, False, True, False, False])
    tasks = plan_tasks(times, 2)
    assert [list(t.strftime("%H:%M")) for t in tasks] == [
        ["23:15", "23:30"],
        ["23:45"],
        ["00:00", "00:30"],
        ["00:45"],
    ]
    day = pd.date_range("2021-06-03T00:00", periods=12, freq="15min")
    assert [t.size for t in plan_tasks(day, 8)] == [6, 6]  # balanced, not 8 + 4
    assert [t.size for t in plan_tasks(day, 5)] == [4, 4, 4]
    assert [t.size for t in plan_tasks(day, 12)] == [12]


def test_find_estimators_dedupes_and_names_checkpoints(tmp_path, models_dir):
    import shutil

    from qpe.errors import CheckpointError

    twice = find_estimators([models_dir, models_dir / "unet"])
    assert [e.name for e in twice] == MODELS
    for folder in ("a", "b"):
        shutil.copytree(models_dir / "unet", tmp_path / "two" / folder)
    assert [e.name for e in find_estimators([tmp_path / "two"])] == ["unet (a)", "unet (b)"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint .* at or below"):
        find_estimators([tmp_path / "empty"])
