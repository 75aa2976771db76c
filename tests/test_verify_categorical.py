"""Categorical scores: hand-computed contingency tables, degenerate cases, agreement with pysteps."""

from __future__ import annotations

import numpy as np
import pytest
from pysteps.verification.detcatscores import (
    det_cat_fct,
    det_cat_fct_accum,
    det_cat_fct_compute,
    det_cat_fct_init,
)

from qpe.verify.categorical import (
    CATEGORICAL_SCORES,
    categorical_accum,
    categorical_compute,
    categorical_init,
    categorical_merge,
    categorical_scores,
)
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields

# pysteps warns about its own 0/0 in degenerate tables
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:pysteps")

PYSTEPS_NAMES = {"POD": "POD", "FAR": "FAR", "CSI": "CSI", "ETS": "ETS", "HSS": "HSS", "BIAS": "BIAS"}
PYSTEPS_SCORES = list(PYSTEPS_NAMES.values())

# Each case: estimate, radar (2 x 3 pixels, mm/h), threshold 1 mm/h, and every score computed by hand
# from its table (H, M, F, R): POD = H/(H+M), FAR = F/(H+F), CSI = H/(H+M+F), BIAS = (H+F)/(H+M),
# ETS = (H - Hr)/(H+M+F-Hr) with Hr = (H+M)(H+F)/N, HSS = 2(HR-FM)/((H+M)(M+R)+(H+F)(F+R)).
HAND_CASES = {
    # H=2 (0,1),(1,2); F=1 (0,2); M=1 (1,0); R=2. Hr = 3*3/6 = 1.5
    "mixed": (
        [[0, 2, 3], [0.5, 0, 6]],
        [[0, 1.5, 0], [2, 0, 7]],
        {
            "hits": 2,
            "misses": 1,
            "false_alarms": 1,
            "correct_negatives": 2,
            "POD": 2 / 3,
            "FAR": 1 / 3,
            "SR": 2 / 3,
            "CSI": 0.5,
            "BIAS": 1.0,
            "ETS": 0.5 / 2.5,
            "HSS": 6 / 18,
        },
    ),
    # a value equal to the threshold is not an event (rain > threshold); H=1, F=1, M=1, R=3. Hr = 2*2/6
    "equal_to_threshold": (
        [[1.0, 2, 0], [3, 0, 0]],
        [[2, 1.0, 0], [4, 0, 5]],
        {
            "hits": 1,
            "misses": 2,
            "false_alarms": 1,
            "correct_negatives": 2,
            "POD": 1 / 3,
            "FAR": 0.5,
            "SR": 0.5,
            "CSI": 0.25,
            "BIAS": 2 / 3,
            "ETS": (1 - 1.0) / (4 - 1.0),
            "HSS": 2 * (2 - 2) / (3 * 4 + 2 * 3),
        },
    ),
    "perfect": (
        [[0, 2, 0], [3, 0, 0]],
        [[0, 5, 0], [9, 0, 0]],
        {
            "hits": 2,
            "misses": 0,
            "false_alarms": 0,
            "correct_negatives": 4,
            "POD": 1.0,
            "FAR": 0.0,
            "SR": 1.0,
            "CSI": 1.0,
            "BIAS": 1.0,
            "ETS": 1.0,
            "HSS": 1.0,
        },
    ),
    # degenerate: no event anywhere -> every ratio is 0/0 = NaN, no error
    "no_events": (
        [[0, 0.5, 0], [0, 0, 0.2]],
        [[0, 0, 0.9], [0, 0, 0]],
        {
            "hits": 0,
            "misses": 0,
            "false_alarms": 0,
            "correct_negatives": 6,
            "POD": np.nan,
            "FAR": np.nan,
            "SR": np.nan,
            "CSI": np.nan,
            "BIAS": np.nan,
            "ETS": np.nan,
            "HSS": np.nan,
        },
    ),
    # degenerate: forecast events, none observed. BIAS = 2/0 = inf and ETS NaN (no base rate), as pysteps
    "only_false_alarms": (
        [[0, 2, 0], [3, 0, 0]],
        [[0, 0, 0], [0, 0, 0]],
        {
            "hits": 0,
            "misses": 0,
            "false_alarms": 2,
            "correct_negatives": 4,
            "POD": np.nan,
            "FAR": 1.0,
            "SR": 0.0,
            "CSI": 0.0,
            "BIAS": np.inf,
            "ETS": np.nan,
            "HSS": 0.0,
        },
    ),
    # degenerate: observed events, none forecast
    "only_misses": (
        [[0, 0, 0], [0, 0, 0]],
        [[0, 2, 0], [3, 0, 0]],
        {
            "hits": 0,
            "misses": 2,
            "false_alarms": 0,
            "correct_negatives": 4,
            "POD": 0.0,
            "FAR": np.nan,
            "SR": np.nan,
            "CSI": 0.0,
            "BIAS": 0.0,
            "ETS": 0.0,
            "HSS": 0.0,
        },
    ),
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_computed_contingency_table(case):
    estimate, radar, expected = HAND_CASES[case]
    pair = pair_fields(as_rain_field(estimate), as_rain_field(radar))
    table = categorical_accum(categorical_init([1.0]), pair)
    for name in ("hits", "misses", "false_alarms", "correct_negatives"):
        assert int(table[name].sel(threshold=1.0)) == expected[name], name
    scores = categorical_compute(table).sel(threshold=1.0)
    for name in CATEGORICAL_SCORES:
        np.testing.assert_allclose(float(scores[name]), expected[name], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_cases_agree_with_pysteps(case):
    estimate, radar, _ = HAND_CASES[case]
    ours = categorical_scores(as_rain_field(estimate), as_rain_field(radar), [1.0]).sel(threshold=1.0)
    ref = det_cat_fct(np.array(estimate, float), np.array(radar, float), 1.0, PYSTEPS_SCORES)
    for name, ps_name in PYSTEPS_NAMES.items():
        np.testing.assert_allclose(float(ours[name]), ref[ps_name], rtol=1e-12, err_msg=name)


def test_nan_pixels_are_not_counted():
    estimate, radar, _ = HAND_CASES["mixed"]
    radar = np.array(radar, float)
    radar[0, 0] = np.nan  # a correct negative
    radar[1, 0] = np.nan  # a miss
    table = categorical_accum(
        categorical_init([1.0]), pair_fields(as_rain_field(estimate), as_rain_field(radar))
    )
    counts = [
        int(table[n].sel(threshold=1.0)) for n in ("hits", "misses", "false_alarms", "correct_negatives")
    ]
    assert counts == [2, 0, 1, 1]


@pytest.mark.parametrize("seed", [0, 1])
def test_single_field_agrees_with_pysteps(seed):
    est, rad = random_rain_fields((96, 128), times=1, seed=seed)
    thresholds = (0.1, 1.0, 5.0, 10.0)
    ours = categorical_scores(est, rad, thresholds)
    for thr in thresholds:
        ref = det_cat_fct(est.values[0], rad.values[0], thr, PYSTEPS_SCORES)
        for name, ps_name in PYSTEPS_NAMES.items():
            np.testing.assert_allclose(
                float(ours[name].sel(threshold=thr)),
                ref[ps_name],
                rtol=1e-6,
                atol=1e-12,
                err_msg=f"{name} at {thr}",
            )


def test_accumulation_over_fields_agrees_with_pysteps_accum():
    est, rad = random_rain_fields((64, 64), times=5, seed=3)
    ours = categorical_scores(est, rad, (0.1, 1.0, 5.0))
    for thr in (0.1, 1.0, 5.0):
        contab = det_cat_fct_init(thr)
        for t in range(5):
            det_cat_fct_accum(contab, est.values[t], rad.values[t])
        ref = det_cat_fct_compute(contab, PYSTEPS_SCORES)
        for name, ps_name in PYSTEPS_NAMES.items():
            np.testing.assert_allclose(
                float(ours[name].sel(threshold=thr)), ref[ps_name], rtol=1e-6, err_msg=f"{name} at {thr}"
            )


def test_ensemble_members_are_scored_one_by_one():
    est, rad = random_rain_fields((64, 64), times=2, members=3, seed=4)
    ours = categorical_scores(est, rad, (1.0,))
    assert ours["CSI"].dims == ("member", "threshold")
    for m in range(3):
        contab = det_cat_fct_init(1.0)
        for t in range(2):
            det_cat_fct_accum(contab, est.values[m, t], rad.values[t])
        np.testing.assert_allclose(
            float(ours["CSI"].isel(member=m, threshold=0)),
            det_cat_fct_compute(contab, "CSI")["CSI"],
            rtol=1e-6,
        )


def test_merged_tables_equal_single_pass():
    est, rad = random_rain_fields((64, 64), times=4, seed=5)
    whole = categorical_accum(categorical_init(), pair_fields(est, rad))
    first = categorical_accum(categorical_init(), pair_fields(est.isel(time=[0, 1]), rad.isel(time=[0, 1])))
    second = categorical_accum(categorical_init(), pair_fields(est.isel(time=[2, 3]), rad.isel(time=[2, 3])))
    merged = categorical_merge(first, second)
    for name in whole.data_vars:
        np.testing.assert_array_equal(merged[name].values, whole[name].values)


def test_float32_fields_compare_in_their_own_precision():
    """float32(0.3) > 0.3 in float64: the stored 0.3 mm/h must still not exceed a 0.3 mm/h threshold."""
    values = np.array([[0.1, 0.3, 0.7], [1.0, 5.0, 0.0]], dtype="float32")
    radar = as_rain_field(values).astype("float32")
    estimate = as_rain_field(values[::-1]).astype("float32")
    thresholds = (0.1, 0.3, 0.7, 5.0)
    ours = categorical_scores(estimate, radar, thresholds)
    table = categorical_accum(categorical_init(thresholds), pair_fields(estimate, radar))
    for thr in thresholds:
        assert int(table["hits"].sel(threshold=thr) + table["misses"].sel(threshold=thr)) == int(
            (values > np.float32(thr)).sum()
        )
        ref = det_cat_fct(values[::-1], values, thr, ["CSI", "POD"])
        np.testing.assert_allclose(float(ours["CSI"].sel(threshold=thr)), ref["CSI"], rtol=1e-12)
