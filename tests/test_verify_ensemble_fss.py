"""Ensemble FSS (fraction of members above the threshold) against pysteps' excprob and scipy's uniform
filter, ensemble-mean FSS against pysteps' fss of ensemblestats.mean, and the closed forms of a
perfectly calibrated toy ensemble (flat rank histogram; member FSS < ensemble FSS everywhere, the
ensemble FSS between member and ensemble-mean FSS at the pixel scale below the median)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from pysteps.postprocessing.ensemblestats import excprob
from pysteps.postprocessing.ensemblestats import mean as ensemble_mean
from pysteps.verification.spatialscores import fss as pysteps_fss
from pysteps.verification.spatialscores import fss_accum, fss_compute, fss_init
from scipy.ndimage import uniform_filter
from scipy.stats import norm

from qpe.errors import DatasetError
from qpe.verify import verify
from qpe.verify.ensemble_fss import ensemble_fss, ensemble_fss_accum, ensemble_fss_init, ensemble_fss_merge
from qpe.verify.pairs import pair_fields
from qpe.verify.testing import as_rain_field, random_rain_fields

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:pysteps")

THRESHOLDS = (0.1, 1.0, 5.0)
SCALES_KM = (2.0, 6.0, 16.0, 40.0)  # windows of 1, 3, 8 and 20 pixels at 2 km
WINDOWS = (1, 3, 8, 20)


def _fss_of_fractions(forecast: np.ndarray, observed: np.ndarray, keep: np.ndarray | None = None) -> float:
    """FSS of two fraction fields (Roberts and Lean 2008), summed over ``keep`` (default: every pixel)."""
    keep = np.ones(forecast.shape, bool) if keep is None else keep
    f, o = forecast[keep], observed[keep]
    return 1.0 - np.sum((f - o) ** 2) / (np.sum(f**2) + np.sum(o**2))


def _probability_fractions(members: np.ndarray, obs: np.ndarray, threshold: float, window: int):
    """Window fractions of the member exceedance probability (pysteps excprob) and of the radar events."""
    forecast = uniform_filter(excprob(members, threshold), window, mode="constant")
    observed = uniform_filter((obs >= threshold).astype(float), window, mode="constant")
    return forecast, observed


@pytest.mark.parametrize("seed", [0, 1])
def test_ensemble_fss_equals_the_fss_of_the_window_mean_exceedance_probability(seed):
    est, rad = random_rain_fields((96, 80), times=1, members=5, seed=seed)
    ours = ensemble_fss(est, rad, THRESHOLDS, SCALES_KM)["FSS_ensemble"]
    assert ours.dims == ("threshold", "scale")
    for thr in THRESHOLDS:
        for scale, w in zip(SCALES_KM, WINDOWS, strict=True):
            reference = _fss_of_fractions(*_probability_fractions(est.values[:, 0], rad.values[0], thr, w))
            np.testing.assert_allclose(float(ours.sel(threshold=thr, scale=scale)), reference, rtol=1e-9)


@pytest.mark.parametrize("seed", [2, 3])
def test_ensemble_mean_fss_agrees_with_pysteps_fss_of_the_ensemble_mean(seed):
    est, rad = random_rain_fields((96, 80), times=1, members=4, seed=seed, dtype="float32")
    ours = ensemble_fss(est, rad, (0.1, 1.0), SCALES_KM)["FSS_ensemble_mean"]
    mean = ensemble_mean(est.values[:, 0])
    for thr in (0.1, 1.0):
        for scale, w in zip(SCALES_KM, WINDOWS, strict=True):
            reference = pysteps_fss(mean, rad.values[0], thr, w)
            np.testing.assert_allclose(float(ours.sel(threshold=thr, scale=scale)), reference, rtol=1e-6)


def test_accumulation_over_fields_pools_the_sums():
    est, rad = random_rain_fields((64, 64), times=3, members=3, seed=4)
    ours = ensemble_fss(est, rad, (1.0,), (10.0,))
    sums = np.zeros(3)
    obj = fss_init(1.0, 5)
    for t in range(3):
        f, o = _probability_fractions(est.values[:, t], rad.values[t], 1.0, 5)
        sums += (np.sum(f**2), np.sum(f * o), np.sum(o**2))
        fss_accum(obj, ensemble_mean(est.values[:, t]), rad.values[t])
    ff, fo, oo = sums
    np.testing.assert_allclose(
        float(ours["FSS_ensemble"].squeeze()), 1 - (ff - 2 * fo + oo) / (ff + oo), rtol=1e-9
    )
    np.testing.assert_allclose(float(ours["FSS_ensemble_mean"].squeeze()), fss_compute(obj), rtol=1e-6)


def test_invalid_pixels_are_non_events_left_out_of_the_sums_as_for_the_member_fss():
    est, rad = random_rain_fields((64, 64), times=1, members=3, seed=5)
    holed = rad.copy()
    holed.values[0, 20:30, 10:40] = np.nan
    ours = ensemble_fss(est, holed, (1.0,), (10.0,))
    valid = np.isfinite(holed.values[0])
    members = np.where(valid, est.values[:, 0], 0.0)
    forecast, observed = _probability_fractions(members, np.where(valid, rad.values[0], 0.0), 1.0, 5)
    np.testing.assert_allclose(
        float(ours["FSS_ensemble"].squeeze()), _fss_of_fractions(forecast, observed, valid), rtol=1e-9
    )


def test_identical_members_give_three_equal_fss():
    """An ensemble of copies of one field is that field: ensemble, ensemble-mean and member FSS agree."""
    est, rad = random_rain_fields((64, 72), times=2, seed=6)
    copies = xr.concat([est] * 3, dim="member").assign_attrs(est.attrs)
    scores = verify(copies, rad, thresholds=THRESHOLDS, scales_km=SCALES_KM, families=("fss", "ensemble_fss"))
    np.testing.assert_allclose(scores["FSS_ensemble"].values, scores["FSS"].isel(member=0).values, rtol=1e-12)
    np.testing.assert_allclose(
        scores["FSS_ensemble_mean"].values, scores["FSS"].isel(member=0).values, rtol=1e-12
    )


def test_merged_statistics_equal_single_pass():
    est, rad = random_rain_fields((48, 48), times=3, members=2, seed=7)
    whole = ensemble_fss_accum(ensemble_fss_init(THRESHOLDS, (4.0, 12.0)), pair_fields(est, rad))
    parts = [
        ensemble_fss_accum(
            ensemble_fss_init(THRESHOLDS, (4.0, 12.0)), pair_fields(est.isel(time=s), rad.isel(time=s))
        )
        for s in (slice(0, 2), slice(2, 3))
    ]
    merged = ensemble_fss_merge(*parts)
    for name in whole.data_vars:
        np.testing.assert_allclose(merged[name].values, whole[name].values, rtol=1e-12)


def test_deterministic_estimate_is_refused():
    field = as_rain_field(np.ones((4, 4)))
    with pytest.raises(DatasetError, match="member"):
        ensemble_fss(field, field)


# -- a perfectly calibrated toy ensemble --------------------------------------------------------------------
def _calibrated(members: int, shape=(400, 500), seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """Members and radar: independent draws of N(5, 1) mm/h at every pixel (exchangeable: calibrated)."""
    draws = 5.0 + np.random.default_rng(seed).standard_normal((members + 1, *shape))
    return as_rain_field(draws[:-1], members=True), as_rain_field(draws[-1])


def _closed_forms(threshold: float, members: int) -> tuple[float, float, float]:
    """Expected member, ensemble and ensemble-mean FSS of the N(5, 1) toy at one-pixel windows.

    With ``p = P(X >= t)`` and ``q = P(mean of M >= t) = P(Z >= (t - 5) sqrt(M))``, all independent of the
    radar: member ``1 - 2p(1-p) / 2p = p``; ensemble (P = fraction of M members)
    ``1 - p(1-p)(1 + 1/M) / (p^2 + p(1-p)/M + p)``; ensemble mean ``1 - (p + q - 2pq) / (p + q)``.
    """
    p = norm.sf(threshold - 5.0)
    q = norm.sf((threshold - 5.0) * np.sqrt(members))
    member = p
    ensemble = 1 - p * (1 - p) * (1 + 1 / members) / (p**2 + p * (1 - p) / members + p)
    mean = 1 - (p + q - 2 * p * q) / (p + q)
    return member, ensemble, mean


def test_a_calibrated_ensemble_has_a_flat_rank_histogram():
    est, rad = _calibrated(8)
    ranks = verify(est, rad, families=("ensemble",), thresholds=(5.0,))["rank_histogram"].values
    np.testing.assert_allclose(ranks, 1 / 9, atol=0.004)  # 200 000 independent pixels: sd 0.0007


@pytest.mark.parametrize("threshold", [4.0, 5.0, 6.0])
def test_a_calibrated_ensemble_has_the_closed_form_member_ensemble_and_mean_fss(threshold):
    est, rad = _calibrated(8, seed=int(threshold))
    scores = verify(est, rad, thresholds=(threshold,), scales_km=(2.0,), families=("fss", "ensemble_fss"))
    member, ensemble, mean = _closed_forms(threshold, 8)
    ours = scores.squeeze()
    assert float(ours["FSS"].mean("member")) == pytest.approx(member, abs=0.01)
    assert float(ours["FSS_ensemble"]) == pytest.approx(ensemble, abs=0.01)
    assert float(ours["FSS_ensemble_mean"]) == pytest.approx(mean, abs=0.01)


def test_calibrated_ensemble_fss_exceeds_the_members_and_lies_between_member_and_mean_at_the_pixel():
    """Ensemble FSS > member FSS at every threshold and scale (in expectation ``1 - V(1 + 1/M) / (2A + V(1 +
    1/M))`` against ``1 - V / (A + V)``, A and V the mean square and variance of the fractions). The
    ensemble mean is biased (its frequency of ``>= t`` is not the radar's): at one pixel below the median
    it places the frequent events best (member 0.84 < ensemble 0.90 < mean 0.91 at 4 mm/h), but over wider
    windows only the bias is left, ``1 - (q - p)^2 / (q^2 + p^2)`` = 0.986, under the ensemble's 1."""
    est, rad = _calibrated(8, shape=(300, 300), seed=11)
    scales = (2.0, 6.0, 18.0, 50.0)
    scores = verify(est, rad, thresholds=(4.0, 6.0), scales_km=scales, families=("fss", "ensemble_fss"))
    member = scores["FSS"].mean("member")
    assert (scores["FSS_ensemble"] > member).all()
    pixel = scores.sel(threshold=4.0, scale=2.0)
    assert (
        float(pixel["FSS"].mean("member")) < float(pixel["FSS_ensemble"]) < float(pixel["FSS_ensemble_mean"])
    )
    p, q = norm.sf(-1.0), norm.sf(-np.sqrt(8.0))
    wide = scores.sel(threshold=4.0, scale=50.0)
    assert float(wide["FSS_ensemble_mean"]) == pytest.approx(1 - (q - p) ** 2 / (q**2 + p**2), abs=0.003)
    assert float(wide["FSS_ensemble"]) > float(wide["FSS_ensemble_mean"])
    assert (scores["FSS_ensemble_mean"].sel(threshold=6.0) < member.sel(threshold=6.0)).all()
