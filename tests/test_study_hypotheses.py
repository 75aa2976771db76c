"""The study's configs, plan, headline intervals and verdicts, on hand-made headline tables whose bootstrap
replicates are drawn with known noise (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.errors import InputError
from qpe.study import headline_metrics, judge, load_study
from qpe.study.config import deep_merge
from qpe.study.hypotheses import RULES, Claim, rules_table
from qpe.study.intervals import Interval, Resampling
from qpe.study.metrics import METRICS, NAME_PATTERN, Headline, psd_band
from qpe.study.plan import training_runs

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "demo.yaml"
REPLICATES = 400


@pytest.fixture(scope="module")
def study():
    return load_study(STUDY)


def row(name, csi=0.3, fss=0.5, psd=(1.0, 0.9, 1.1), wet=1.0, p99=1.0, crps=0.1, nfe=1, steps=np.nan, frames=4):
    parsed = NAME_PATTERN.match(name)
    return {"model": name, "csi_matched_1": csi, "csi_1": csi, "csi_01": csi, "fss_5_32": fss, "psd_ratio": psd[0],
            "psd_ratio_min": psd[1], "psd_ratio_max": psd[2], "wet_fraction_ratio": wet, "p99_ratio": p99,
            "crps": crps, "spread_skill": 1.0, "psd_error": abs(np.log(psd[0])), "wet_fraction_error": abs(wet - 1),
            "p99_error": abs(p99 - 1), "nfe": nfe, "family": "", "base_model": parsed["model"], "frames": frames,
            "steps": steps, "alt_sampler": parsed["sampler"] or ""}


def headline(rows, shared=0.002, own=0.002, units=12, seed=0) -> Headline:
    """Values of ``rows``; each replicate of each metric = value + a draw shared by every model (the
    resampled days: the same for all) + a draw of its own (sd ``shared`` and ``own``)."""
    values = pd.DataFrame(rows).set_index("model")
    rng = np.random.default_rng(seed)
    common = rng.normal(0, shared, (1, REPLICATES))
    data = {c: (("model", "replicate"), values[c].to_numpy(float)[:, None] + common
                + rng.normal(0, own, (len(values), REPLICATES))) for c in METRICS}
    replicates = xr.Dataset(data, coords={"model": values.index.to_numpy()})
    return Headline(values, replicates, Resampling("day", units, units, 8 * units, REPLICATES))


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
        rows.append(row(f"flow_residual_t{frames}_k{k}", csi=0.30 - shift, fss=0.49, crps=0.10 + shift,
                        nfe=k + 1, steps=k, frames=frames))
    return rows


def world(shift=0.02):
    return good_rows(4) + good_rows(1, shift=shift)


def test_all_hypotheses_hold_in_a_world_built_for_them(study):
    verdicts = judge(headline(world()), study)
    assert [v.holds for v in verdicts] == [True, True, True, True]
    assert "holds" not in verdicts[0].evidence[-1] and verdicts[0].evidence[-1].endswith("-> yes")
    decision = verdicts[0].decision[0]  # the interval that decided H1: the paired ratio at the first K
    assert decision.startswith("K = 1 (flow_residual_t4_k1): placement (CSI at matched wet fraction, 1 mm/h)")
    assert "1.000 [0.98" in decision and "needs lower bound >= 0.95: yes" in decision


def test_h1_fails_when_the_flow_loses_placement(study):
    rows = world()
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            r["csi_matched_1"] = 0.25  # < 0.95 x 0.30
    v = judge(headline(rows), study)[0]
    assert v.holds is False and len(v.decision) == 4  # the failing interval of each K <= 8
    assert all("residual flow / U-Net" in d and d.endswith(": no") for d in v.decision)


def test_h1_judges_placement_at_matched_frequency_not_the_fixed_threshold_csi(study):
    """A U-Net whose smooth, too-wide field wins the fixed-threshold CSI: H1 reads the matched CSI only."""
    rows = world()
    rows[0]["csi_1"] = 0.6
    assert judge(headline(rows), study)[0].holds is True


def test_h1_is_not_tested_against_a_unet_without_skill(study):
    rows = world()
    rows[0].update(csi_matched_1=0.01, fss_5_32=0.0)  # a U-Net that never places 1 mm/h: anything "matches" it
    h1 = judge(headline(rows), study)[0]
    assert h1.holds is None and h1.label == "not tested"
    assert h1.decision[0].startswith("not a test: U-Net placement")


def test_a_clearly_better_model_holds_and_a_within_noise_one_does_not(study):
    """T = 4 better than T = 1 by 0.02 on placement and CRPS for every family: with replicates that scatter
    by 0.002 it holds; scattering by 0.03 of their own (the point values unchanged) it does not."""
    assert judge(headline(world(shift=0.02), own=0.002), study)[3].holds is True
    noisy = judge(headline(world(shift=0.02), own=0.03), study)[3]
    assert noisy.holds is False
    assert any("T max - T min" in d and d.endswith(": no") for d in noisy.decision)


def test_paired_differences_cancel_what_every_model_shares(study):
    """Day-to-day variation common to both T (sd 0.05, far above the 0.02 gain) cancels in the paired
    difference: H4 still holds; two separate intervals would overlap."""
    h = headline(world(shift=0.02), shared=0.05, own=0.002)
    assert judge(h, study)[3].holds is True
    a, b = h.interval("unet_t4", "csi_matched_1"), h.interval("unet_t1", "csi_matched_1")
    assert a.low < b.high  # the separate intervals overlap
    d = h.compare("unet_t4", "unet_t1", "csi_matched_1")
    assert d.value == pytest.approx(0.02) and d.low > 0


def test_h3_needs_both_parts_at_the_same_k(study):
    rows = world()
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            k = r["steps"]
            if k == 1:  # beats DDPM on placement and CRPS, but unrealistic
                r.update(psd_ratio=3.0, psd_error=np.log(3.0))
            else:  # realistic and cheap, but no better than DDPM
                r.update(csi_matched_1=0.15, crps=0.15)
    v = judge(headline(rows), study)[2]
    assert v.holds is False
    assert "flow_residual_t4_k1" in v.decision[0] and "|log PSD ratio|" in v.decision[0]
    assert all("placement" in d for d in v.decision[1:])
    for r in rows:  # K = 2 now beats DDPM too: both parts at one K
        if r["model"] == "flow_residual_t4_k2":
            r.update(csi_matched_1=0.30, crps=0.10)
    v = judge(headline(rows), study)[2]
    assert v.holds is True and v.decision[0].startswith("K = 2 (flow_residual_t4_k2)")


def test_h3_needs_ten_times_fewer_evaluations(study):
    rows = world()
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            r["nfe"] = 30  # > 250 / 10
    v = judge(headline(rows), study)[2]
    assert v.holds is False and all("network evaluations" in d for d in v.decision)


@pytest.mark.parametrize(("column", "value"), [("psd_ratio_max", 1.5), ("psd_ratio_min", 0.6), ("p99_ratio", 0.8),
                                              ("wet_fraction_ratio", 1.2), ("wet_fraction_ratio", 1.145)])
def test_h2_needs_the_whole_band_and_the_amounts(study, column, value):
    """1.145 is inside the 15 % band, but its interval (sd 0.002 + 0.002) reaches past 1.15."""
    rows = world()
    for r in rows:
        if r["model"].startswith("flow_residual_t4"):
            r[column] = value
    assert judge(headline(rows, shared=0.003, own=0.003), study)[1].holds is False


def test_h2_needs_a_smooth_unet(study):
    rows = world()
    rows[0]["psd_ratio_max"] = 0.6
    v = judge(headline(rows), study)[1]
    assert v.holds is False and v.decision[0].startswith("U-Net PSD ratio")


def test_h4_needs_every_family(study):
    rows = world()
    for r in rows:
        if r["model"] == "ddpm_t1_k50":
            r["crps"] = 0.01
    v = judge(headline(rows), study)[3]
    assert v.holds is False and sum(e.endswith("yes") for e in v.evidence) == 3
    assert v.decision == [d for d in v.decision if d.startswith("ddpm K=50: fair CRPS")]


def test_without_intervals_nothing_is_decided(study):
    h = headline(world())
    one_day = Headline(h.values, h.replicates, Resampling("day", 1, 1, 12, REPLICATES))
    verdicts = judge(one_day, study)
    assert [v.holds for v in verdicts] == [None] * 4
    no_interval = ("no bootstrap interval: 12 held-out times in 1 UTC day; no interval (resampling UTC days needs "
                   "2 days or more)")
    assert verdicts[0].decision == [no_interval]
    four_days = Headline(h.values, h.replicates, Resampling("day", 4, 4, 48, REPLICATES))  # shown, not deciding
    assert [v.holds for v in judge(four_days, study)] == [None] * 4
    assert judge(four_days, study)[3].decision[0].startswith("intervals over 4 units decide nothing (needs 5)")


def test_other_samplers_are_scored_but_never_judged(study):
    rows = world()
    # the same flow with a bad sampler: were it judged, H1 (placement) and H3 (beats DDPM) would fail
    rows += [row(f"flow_residual_t4_euler_k{k}", csi=0.01, crps=0.5, nfe=k + 1, steps=k) for k in (1, 2, 4, 8, 16)]
    verdicts = judge(headline(rows), study)
    assert [v.holds for v in verdicts] == [True, True, True, True]
    assert not any("euler" in e for v in verdicts for e in v.evidence)


def test_other_samplers_are_named_and_parsed_back(study):
    from qpe.study.plan import variant_name

    assert study.model("flow_residual").sampler == "midpoint" and study.model("flow_residual").also_samplers == ("euler",)
    assert study.model("flow_gaussian").sampler == "midpoint" and study.model("flow_gaussian").also_samplers == ()
    name = variant_name("flow_residual", 4, 8, "euler")
    assert name == "flow_residual_t4_euler_k8" and variant_name("flow_residual", 4, 8) == "flow_residual_t4_k8"
    parsed = NAME_PATTERN.match(name)
    assert (parsed["model"], parsed["frames"], parsed["sampler"], parsed["steps"]) == ("flow_residual", "4", "euler", "8")
    assert NAME_PATTERN.match("unet_t1")["sampler"] is None and NAME_PATTERN.match("ddpm_t4_k50")["sampler"] is None


def test_missing_models_leave_a_hypothesis_untested(study):
    rows = [r for r in good_rows(4) if not r["model"].startswith("ddpm")]
    verdicts = judge(headline(rows), study)
    assert verdicts[2].holds is None and verdicts[3].holds is None and verdicts[2].label == "not tested"


@pytest.mark.parametrize(
    ("claim", "interval", "holds"),
    [
        (Claim(at_least=0.95), Interval(1.0, 0.95, 1.05), True),
        (Claim(at_least=0.95), Interval(1.0, 0.94, 1.05), False),
        (Claim(at_least=0.0, strict=True), Interval(0.1, 0.0, 0.2), False),
        (Claim(at_most=0.0, strict=True), Interval(-0.1, -0.2, -0.01), True),
        (Claim(0.85, 1.15), Interval(1.0, 0.86, 1.16), False),
        (Claim(0.85, 1.15), Interval(1.0, np.nan, np.nan), False),  # no interval, no claim
    ],
)
def test_a_claim_holds_only_for_the_whole_interval(claim, interval, holds):
    assert claim.holds(interval) is holds


def test_every_rule_is_printed_for_the_page():
    rows = rules_table()
    assert len(rows) == sum(len(c) for c in RULES.values())
    assert ("H1 residual flow vs U-Net", "placement (CSI at matched wet fraction, 1 mm/h) residual flow / U-Net",
            "lower bound >= 0.95") in rows


def test_intervals_print_as_value_and_bounds():
    assert Interval(0.1534, 0.1211, 0.1873).format() == "0.153 [0.121, 0.187]"
    assert Interval(0.1534).format() == "0.153" and Interval(np.nan, 0, 1).format() == "-"
    assert Interval(0.02, -0.01, 0.05).format("{:+.3f}") == "+0.020 [-0.010, +0.050]"


def test_headline_table_on_the_page_shows_intervals(study):
    from qpe.study.page import headline_frame

    frame = headline_frame(headline(world()), ["unet_t4", "flow_residual_t4_k8", "absent"])
    assert list(frame.index) == ["unet_t4", "flow_residual_t4_k8"]
    cell = frame.loc["unet_t4", "placement: CSI matched wet fraction 1 mm/h"]
    assert cell.startswith("0.300 [0.29") and cell.endswith("]")
    assert frame.loc["flow_residual_t4_k8", "NFE"] == "9"


def test_paired_table_marks_only_differences_beyond_the_noise():
    from qpe.study.page import paired_frame

    rows = [row("flow_residual_t4_k8", csi=0.30, crps=0.10), row("flow_residual_cf_t4_k8", csi=0.30, crps=0.09),
            row("flow_residual_logit_t4_k8", csi=0.2995, crps=0.1)]
    frame = paired_frame(headline(rows, shared=0.02, own=0.001),
                         ["flow_residual_t4_k8", "flow_residual_cf_t4_k8", "flow_residual_logit_t4_k8"],
                         "flow_residual_t4_k8")
    assert list(frame.index) == ["flow_residual_cf_t4_k8", "flow_residual_logit_t4_k8"]
    assert frame.index.name == "model - flow_residual_t4_k8"
    crps = frame["fair CRPS mm/h (U-Net: MAE)"]
    # a shared noise of 0.02 cancels in the paired difference: -0.01 with own noise 0.001 is beyond it
    assert crps["flow_residual_cf_t4_k8"].startswith("-0.0100 [-0.01") and crps["flow_residual_cf_t4_k8"].endswith("] *")
    placement = frame["placement: CSI matched wet fraction 1 mm/h"]["flow_residual_logit_t4_k8"]
    assert placement.startswith("-0.001 [-0.00") and placement.endswith("]")  # within the noise: no mark
    assert "NFE" not in frame and "CSI 0.1 mm/h" not in frame


def test_compare_to_must_name_a_model(study):
    import dataclasses

    assert dataclasses.replace(study, compare_to="unet").compare_to == "unet"
    with pytest.raises(InputError, match="compare_to 'nope' is not a model of the study"):
        dataclasses.replace(study, compare_to="nope")


def test_cost_figure_draws_tables_without_finite_scores(study):
    from io import BytesIO
    from types import SimpleNamespace

    from qpe.study.page import cost_figure

    rows = good_rows(4) + good_rows(1)
    empty = [{**r, **{c: np.nan for c in ("csi_matched_1", "crps", "psd_ratio", "p99_ratio")}} for r in rows]
    full, empty = headline(rows).values, headline(empty).values
    for t in (full, empty):
        fig = cost_figure(t, SimpleNamespace(config=study))
        fig.savefig(BytesIO(), format="png")  # raised "Data cannot be log-scaled" on an all-NaN table
        assert [ax.get_xscale() for ax in fig.axes[:4]] == (["log"] * 4 if t is full else ["linear"] * 4)


def test_page_renders_markdown_spans_in_html_and_escapes_the_rest():
    from qpe.study.page import inline_html

    assert inline_html("Profile **full** on `train` <b>") == "Profile <b>full</b> on <code>train</code> &lt;b&gt;"


def test_headline_metrics_read_the_score_dataset():
    wavelength = np.array([64.0, 32.0, 16.0, 8.0, 4.0])
    ratio = np.array([[[1.0, 0.5, 0.5, 0.5, 0.1]], [[1.0, 1.0, 2.0, 0.5, 3.0]]])  # (model, member, wavelength)
    scores = xr.Dataset(
        {
            "CSI": (("model", "member", "threshold"), [[[0.5, 0.2]], [[0.6, 0.3]]]),
            "CSI_matched": (("model", "member", "threshold"), [[[0.55, 0.25]], [[0.65, 0.35]]]),
            "FSS": (("model", "member", "threshold", "scale"), np.full((2, 1, 2, 2), 0.4)),
            "rapsd_ratio": (("model", "member", "wavelength"), ratio),
            "wet_fraction": (("model", "member"), [[0.1], [0.2]]),
            "wet_fraction_radar": ("model", [0.1, 0.1]),
            "wet_p99": (("model", "member"), [[5.0], [10.0]]),
            "wet_p99_radar": ("model", [10.0, 10.0]),
            "CRPS": ("model", [np.nan, 0.4]),
            "CRPS_fair": ("model", [np.nan, 0.3]),
            "spread_skill_ratio": ("model", [np.nan, 0.8]),
            "MAE": (("model", "member"), [[0.7], [0.9]]),
        },
        coords={"model": ["unet_t4", "flow_residual_t4_k8"], "threshold": [0.1, 1.0], "scale": [16.0, 32.0],
                "wavelength": wavelength, "member": [0], "network_evaluations": ("model", [1, 9]),
                "family": ("model", ["unet", "flow"])},
    )
    t = headline_metrics(scores)
    assert t.loc["unet_t4", "csi_1"] == 0.2 and t.loc["flow_residual_t4_k8", "csi_01"] == 0.6
    assert t.loc["unet_t4", "csi_matched_1"] == 0.25 and t.loc["flow_residual_t4_k8", "csi_matched_1"] == 0.35
    assert t.loc["unet_t4", "crps"] == 0.7 and t.loc["flow_residual_t4_k8", "crps"] == 0.3  # fair CRPS, else MAE
    assert np.isnan(t.loc["unet_t4", "spread_skill"]) and t.loc["flow_residual_t4_k8", "spread_skill"] == 0.8
    assert t.loc["flow_residual_t4_k8", "wet_fraction_ratio"] == 2.0 and t.loc["unet_t4", "p99_ratio"] == 0.5
    assert t.loc["flow_residual_t4_k8", "steps"] == 8 and t.loc["flow_residual_t4_k8", "frames"] == 4
    assert (t["alt_sampler"] == "").all()
    band = psd_band(scores)
    np.testing.assert_allclose(band.loc["unet_t4"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(band.loc["flow_residual_t4_k8"], [1.0, 0.5, 2.0])
    np.testing.assert_allclose(t.loc["flow_residual_t4_k8", ["psd_error", "wet_fraction_error", "p99_error"]],
                               [0.0, 1.0, 0.0], atol=1e-12)


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
        ("name: s\ntrain_data: demo\nbootstrap_unit: week\nmodels: {}\nbenchmarks: [{name: b, data: d}]\n",
         "bootstrap_unit must be auto, day or time"),
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


@pytest.mark.parametrize(("unit", "days", "expected"), [("auto", 5, "day"), ("auto", 4, "time"), ("auto", 1, "time"),
                                                        ("day", 1, "day"), ("time", 9, "time")])
def test_the_bootstrap_unit_follows_the_days_of_the_held_out_times(study, unit, days, expected):
    import dataclasses

    from qpe.study.run import bootstrap_unit

    times = pd.DatetimeIndex([f"2021-06-{d + 1:02d}T{h:02d}:00" for d in range(days) for h in (0, 12)])
    assert bootstrap_unit(dataclasses.replace(study, bootstrap_unit=unit), times) == expected


def test_a_checkpoint_trained_elsewhere_is_a_point_of_the_cost_figure_and_a_row_of_the_paired_table(study):
    import dataclasses
    from types import SimpleNamespace

    from qpe.study.config import CheckpointSpec
    from qpe.study.page import checkpoint_models, cost_figure, paired_frame

    config = dataclasses.replace(study, checkpoints=(CheckpointSpec("flow_residual_student", "models/s"),))
    rows = good_rows(4) + [row("flow_residual_student_t4_k2", csi=0.29, p99=0.9, nfe=3, steps=2)]
    scores, result = headline(rows), SimpleNamespace(config=config)
    assert checkpoint_models(scores.values, result) == ["flow_residual_student_t4_k2"]
    fig = cost_figure(scores.values, result)
    for ax, value in zip(fig.axes[:4], (0.29, 0.1, 1.0, 0.9)):  # placement, CRPS, PSD ratio, p99 ratio
        (point,) = [line for line in ax.get_lines() if line.get_label() == "flow_residual_student_t4_k2"]
        assert point.get_marker() == "*" and list(point.get_xdata()) == [3] and list(point.get_ydata()) == [value]
    assert "flow_residual_student_t4_k2" in [t.get_text() for t in fig.legends[0].get_texts()]
    paired = paired_frame(scores, ["flow_residual_t4_k8", "flow_residual_student_t4_k2"], "flow_residual_t4_k8")
    assert paired["p99 / radar"]["flow_residual_student_t4_k2"].startswith("-0.10 [")
