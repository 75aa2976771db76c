"""The study's configs, plan and verdicts, on hand-made headline tables (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.errors import InputError
from qpe.study import headline_metrics, judge, load_study
from qpe.study.config import deep_merge
from qpe.study.metrics import NAME_PATTERN, psd_band
from qpe.study.plan import training_runs

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def study():
    return load_study(STUDY)


def row(name, csi=0.3, fss=0.5, psd=(1.0, 0.9, 1.1), wet=1.0, p99=1.0, crps=0.1, nfe=1, steps=np.nan, frames=4):
    parsed = NAME_PATTERN.match(name)
    return {"model": name, "csi_1": csi, "csi_01": csi, "fss_5_32": fss, "psd_ratio": psd[0], "psd_ratio_min": psd[1],
            "psd_ratio_max": psd[2], "wet_fraction_ratio": wet, "p99_ratio": p99, "crps": crps, "nfe": nfe,
            "family": "", "base_model": parsed["model"], "frames": frames, "steps": steps,
            "alt_sampler": parsed["sampler"] or ""}


def table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows).set_index("model")


def good_rows(frames=4, shift=0.0):
    """A world where every hypothesis holds (``shift`` makes T=1 worse)."""
    rows = [row(f"unet_t{frames}", csi=0.30 - shift, psd=(0.3, 0.2, 0.4), wet=0.8, p99=0.4, crps=0.2 + shift,
                frames=frames)]
    for k, nfe in ((10, 10), (50, 50), (250, 250)):
        rows.append(row(f"ddpm_t{frames}_k{k}", csi=0.15 - shift, psd=(1.0, 0.8, 1.2), crps=0.15 + shift, nfe=nfe,
                        steps=k, frames=frames))
    for k in (1, 2, 4, 8, 16):
        rows.append(row(f"flow_gaussian_t{frames}_k{k}", csi=0.16 - shift, crps=0.14 + shift, nfe=k, steps=k,
                        frames=frames))
        rows.append(row(f"flow_residual_t{frames}_k{k}", csi=0.29 - shift, fss=0.49, crps=0.10 + shift,
                        nfe=k + 1, steps=k, frames=frames))
    return rows


def test_all_hypotheses_hold_in_a_world_built_for_them(study):
    verdicts = judge(table(good_rows(4) + good_rows(1, shift=0.02)), study)
    assert [v.holds for v in verdicts] == [True, True, True, True]
    assert "holds at K = [1, 2, 4, 8]" in verdicts[0].evidence[-1]


def test_h1_fails_when_the_flow_loses_placement(study):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            r["csi_1"] = 0.25  # < 0.95 x 0.30
    assert judge(table(rows), study)[0].holds is False


def test_h1_is_not_tested_against_a_unet_without_skill(study):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    rows[0].update(csi_1=0.0, fss_5_32=0.0)  # a U-Net that never reaches 1 mm/h: anything "matches" it
    h1 = judge(table(rows), study)[0]
    assert h1.holds is None and h1.label == "not tested"
    assert "without skill" in h1.evidence[-1]


@pytest.mark.parametrize(("column", "value"), [("psd_ratio_max", 1.5), ("psd_ratio_min", 0.6), ("p99_ratio", 0.8),
                                              ("wet_fraction_ratio", 1.2)])
def test_h2_needs_the_whole_band_and_the_amounts(study, column, value):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            r[column] = value
    assert judge(table(rows), study)[1].holds is False


def test_h2_needs_a_smooth_unet(study):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    rows[0]["psd_ratio_max"] = 0.6
    assert judge(table(rows), study)[1].holds is False


def test_h3_needs_ten_times_fewer_evaluations(study):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            r["nfe"] = 30  # > 250 / 10
    v = judge(table(rows), study)[2]
    assert v.holds is False and "matches DDPM@250 realism at K = []" in v.evidence[-1]


def test_h4_needs_every_family(study):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    for r in rows:
        if r["model"] == "ddpm_t1_k50":
            r["crps"] = 0.01
    v = judge(table(rows), study)[3]
    assert v.holds is False and sum(e.endswith("yes") for e in v.evidence) == 3


def test_other_samplers_are_scored_but_never_judged(study):
    rows = good_rows(4) + good_rows(1, shift=0.02)
    # the same flow with a bad sampler: were it judged, H1 (placement) and H3 (beats DDPM) would fail
    rows += [row(f"flow_residual_t4_euler_k{k}", csi=0.01, crps=0.5, nfe=k + 1, steps=k) for k in (1, 2, 4, 8, 16)]
    verdicts = judge(table(rows), study)
    assert [v.holds for v in verdicts] == [True, True, True, True]
    assert not any("euler" in e for v in verdicts for e in v.evidence)


def test_other_samplers_are_named_and_parsed_back(study):
    from qpe.study.plan import variant_name

    for model in ("flow_gaussian", "flow_residual"):
        assert study.model(model).sampler == "midpoint" and study.model(model).also_samplers == ("euler",)
    name = variant_name("flow_residual", 4, 8, "euler")
    assert name == "flow_residual_t4_euler_k8" and variant_name("flow_residual", 4, 8) == "flow_residual_t4_k8"
    parsed = NAME_PATTERN.match(name)
    assert (parsed["model"], parsed["frames"], parsed["sampler"], parsed["steps"]) == ("flow_residual", "4", "euler", "8")
    assert NAME_PATTERN.match("unet_t1")["sampler"] is None and NAME_PATTERN.match("ddpm_t4_k50")["sampler"] is None


def test_missing_models_leave_a_hypothesis_untested(study):
    rows = [r for r in good_rows(4) if not r["model"].startswith("ddpm")]
    verdicts = judge(table(rows), study)
    assert verdicts[2].holds is None and verdicts[3].holds is None and verdicts[2].label == "not tested"


def test_cost_figure_draws_tables_without_finite_scores(study):
    from io import BytesIO
    from types import SimpleNamespace

    from qpe.study.page import cost_figure

    rows = good_rows(4) + good_rows(1)
    empty = table([{**r, **{c: np.nan for c in ("csi_1", "crps", "psd_ratio", "p99_ratio")}} for r in rows])
    for t in (table(rows), empty):
        fig = cost_figure(t, SimpleNamespace(config=study))
        fig.savefig(BytesIO(), format="png")  # raised "Data cannot be log-scaled" on an all-NaN table
        assert [ax.get_xscale() for ax in fig.axes[:4]] == (["log"] * 4 if t is not empty else ["linear"] * 4)


def test_page_renders_markdown_spans_in_html_and_escapes_the_rest():
    from qpe.study.page import inline_html

    assert inline_html("Profile **full** on `train` <b>") == "Profile <b>full</b> on <code>train</code> &lt;b&gt;"


def test_headline_metrics_read_the_score_dataset():
    wavelength = np.array([64.0, 32.0, 16.0, 8.0, 4.0])
    ratio = np.array([[[1.0, 0.5, 0.5, 0.5, 0.1]], [[1.0, 1.0, 2.0, 0.5, 3.0]]])  # (model, member, wavelength)
    scores = xr.Dataset(
        {
            "CSI": (("model", "member", "threshold"), [[[0.5, 0.2]], [[0.6, 0.3]]]),
            "FSS": (("model", "member", "threshold", "scale"), np.full((2, 1, 2, 2), 0.4)),
            "rapsd_ratio": (("model", "member", "wavelength"), ratio),
            "wet_fraction": (("model", "member"), [[0.1], [0.2]]),
            "wet_fraction_radar": ("model", [0.1, 0.1]),
            "wet_p99": (("model", "member"), [[5.0], [10.0]]),
            "wet_p99_radar": ("model", [10.0, 10.0]),
            "CRPS": ("model", [np.nan, 0.3]),
            "MAE": (("model", "member"), [[0.7], [0.9]]),
        },
        coords={"model": ["unet_t4", "flow_residual_t4_k8"], "threshold": [0.1, 1.0], "scale": [16.0, 32.0],
                "wavelength": wavelength, "member": [0], "network_evaluations": ("model", [1, 9]),
                "family": ("model", ["unet", "flow"])},
    )
    t = headline_metrics(scores)
    assert t.loc["unet_t4", "csi_1"] == 0.2 and t.loc["flow_residual_t4_k8", "csi_01"] == 0.6
    assert t.loc["unet_t4", "crps"] == 0.7 and t.loc["flow_residual_t4_k8", "crps"] == 0.3  # MAE when no CRPS
    assert t.loc["flow_residual_t4_k8", "wet_fraction_ratio"] == 2.0 and t.loc["unet_t4", "p99_ratio"] == 0.5
    assert t.loc["flow_residual_t4_k8", "steps"] == 8 and t.loc["flow_residual_t4_k8", "frames"] == 4
    assert (t["alt_sampler"] == "").all()
    band = psd_band(scores)
    np.testing.assert_allclose(band.loc["unet_t4"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(band.loc["flow_residual_t4_k8"], [1.0, 0.5, 2.0])


def test_quick_profile_merges_and_plans_every_model(study):
    quick = load_study(STUDY, quick=True)
    assert quick.profile == "quick" and study.profile == "full"
    assert quick.training["optim"]["steps"] < study.training["optim"]["steps"]
    assert quick.benchmarks[0].max_times == 2 and quick.benchmarks[0].stride == study.benchmarks[0].stride
    runs = training_runs(quick, "/tmp/m")
    names = [r.config.name for r in runs]
    assert names == [f"{m}_t{t}" for t in (1, 4) for m in ("unet", "ddpm", "flow_gaussian", "flow_residual")]
    residual = next(r for r in runs if r.config.name == "flow_residual_t4")
    assert residual.config.base_checkpoint == "/tmp/m/unet_t4" and residual.config.input.frames == 4
    assert next(r for r in runs if r.config.name == "unet_t1").config.optim.ema_decay is None


def test_deep_merge_replaces_lists_and_matches_benchmarks_by_name():
    base = {"a": {"b": 1, "c": [1, 2]}, "benchmarks": [{"name": "x", "stride": 2}, {"name": "y", "stride": 3}]}
    merged = deep_merge(base, {"a": {"c": [3]}, "benchmarks": [{"name": "y", "stride": 9}]})
    assert merged == {"a": {"b": 1, "c": [3]}, "benchmarks": [{"name": "x", "stride": 2}, {"name": "y", "stride": 9}]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: s\ntrain_data: demo\nmodels: {u: {family: unet, steps: [2]}}\nbenchmarks: [{name: b, data: d}]\n",
         "a U-Net has no sampler steps"),
        ("name: s\ntrain_data: demo\nmodels: {f: {family: flow, steps: [2], sampler: ddim}}\n"
         "benchmarks: [{name: b, data: d}]\n", "give steps and a flow sampler"),
        ("name: s\ntrain_data: demo\nmodels: {f: {family: flow, base: nope, steps: [2], sampler: euler}}\n"
         "benchmarks: [{name: b, data: d}]\n", "is not a model of the study"),
        ("name: s\ntrain_data: demo\nmodels: {f: {family: flow, steps: [2], sampler: euler, also_samplers: [euler, "
         "ddim]}}\nbenchmarks: [{name: b, data: d}]\n", r"also_samplers \['euler', 'ddim'\] must be other flow"),
        ("name: s\ntrain_data: demo\nmodels: {}\nbenchmarks: []\n", "at least one benchmark"),
        ("name: s\ntrain_data: demo\ncolour: red\nmodels: {}\nbenchmarks: [{name: b, data: d}]\n", "unknown study"),
    ],
)
def test_bad_study_configs_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_study(path)


@pytest.mark.parametrize("name", ["demo", "gpu"])
def test_committed_studies_plan_eight_models_with_their_residual_bases(name):
    study = load_study(REPO / "studies" / f"{name}.yaml")
    runs = training_runs(study, "/tmp/m")
    assert len(runs) == 8 and {r.frames for r in runs} == {1, 4}
    order = [r.config.name for r in runs]
    assert order.index("unet_t4") < order.index("flow_residual_t4")
