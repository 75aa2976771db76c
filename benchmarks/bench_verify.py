"""Scoring throughput of qpe.verify against a plain per-field pysteps loop, in the same run.

    python benchmarks/bench_verify.py                 # 64 fields of 512 x 512 (about 2 minutes)
    python benchmarks/bench_verify.py --fields 16     # quicker

Both sides score the same realistic random fields (qpe.verify.testing) at 4 thresholds x 6 FSS scales
and accumulate over all fields; qpe.verify goes through its public API (``verify``: input checks,
NaN mask, labelled output), pysteps through its ``*_init / *_accum / *_compute`` objects, one field at
a time. qpe.verify counts its fastest of ``--repeat`` runs (3), pysteps one pass (tens of seconds, which
averages out the machine's load). Printed per family: fields/s of each (wall clock), the speed-up in
wall and in CPU time of this process (which other load on the machine disturbs less), and the largest
absolute difference between the two sets of scores (relative for the RAPSD).

Then the families of issue 15 (ensemble FSS, extremes, multivariate, coherence, displacement): their cost
per field (ms of wall and CPU time, fastest of ``--repeat``), on the ensemble fields where they need
members, and the largest difference from a reference where one exists (pysteps ``fss`` of the ensemble
mean, pysteps ``det_cat_fct`` at the extreme thresholds, ``scores.probability.tw_crps_for_ensemble``).
The displacement (an optical flow per member and field, seconds each at 512 x 512) is timed once on its
first ``DISPLACEMENT_FIELDS`` fields. Last, the scores by regime (:mod:`qpe.verify.regimes`): the cost of
the masks (cloud-top bins of a BT field made from the radar, solar zenith, Steiner's rule, QIND bins: 15
regimes) and of the split scores per field, and the largest difference between a group's summed
statistics and the unsplit ones.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import xarray as xr
from pysteps.postprocessing import ensemblestats
from pysteps.postprocessing.ensemblestats import excprob
from pysteps.utils.spectral import rapsd
from pysteps.verification import detcatscores, detcontscores, ensscores, probscores, spatialscores

from qpe.verify import ScoreConfig, verify, window_sizes
from qpe.verify.extremes import DEFAULT_EXTREME_THRESHOLDS
from qpe.verify.regimes import quality_weights, regime_masks
from qpe.verify.testing import random_rain_fields

THRESHOLDS = (0.1, 1.0, 5.0, 10.0)
SCALES_KM = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
PIXEL_KM = 2.0
CAT_SCORES = ("POD", "FAR", "CSI", "ETS", "HSS", "BIAS")
CONT_SCORES = {"ME": "ME", "MAE": "MAE", "RMSE": "RMSE", "CORR": "corr_p"}
#: Fields of each displacement row (timed once: seconds per member field at 512 x 512).
DISPLACEMENT_FIELDS = 2


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float, object]:
    """Wall and CPU seconds of the fastest of ``repeat`` calls, and its result."""
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


# -- pysteps: a plain loop over fields, accumulating pysteps' own objects ---------------------------------
def pysteps_categorical(est: np.ndarray, rad: np.ndarray) -> dict:
    tables = {thr: detcatscores.det_cat_fct_init(thr) for thr in THRESHOLDS}
    for f, o in zip(est, rad, strict=True):
        for thr in THRESHOLDS:
            detcatscores.det_cat_fct_accum(tables[thr], f, o)
    return {
        (name, thr): detcatscores.det_cat_fct_compute(tables[thr], name)[name]
        for thr in THRESHOLDS
        for name in CAT_SCORES
    }


def pysteps_continuous(est: np.ndarray, rad: np.ndarray) -> dict:
    err = detcontscores.det_cont_fct_init()
    for f, o in zip(est, rad, strict=True):
        detcontscores.det_cont_fct_accum(err, f, o)
    result = detcontscores.det_cont_fct_compute(err, list(CONT_SCORES.values()))
    return {(ours,): result[theirs] for ours, theirs in CONT_SCORES.items()}


def pysteps_fss(est: np.ndarray, rad: np.ndarray) -> dict:
    windows = window_sizes(SCALES_KM, PIXEL_KM)
    objects = {
        (thr, s): spatialscores.fss_init(thr, int(w))
        for thr in THRESHOLDS
        for s, w in zip(SCALES_KM, windows, strict=True)
    }
    for f, o in zip(est, rad, strict=True):
        for obj in objects.values():
            spatialscores.fss_accum(obj, f, o)
    return {("FSS", *key): spatialscores.fss_compute(obj) for key, obj in objects.items()}


def pysteps_spectra(est: np.ndarray, rad: np.ndarray) -> dict:
    spectra_e = np.mean([rapsd(f, np.fft) for f in est], axis=0)
    spectra_o = np.mean([rapsd(o, np.fft) for o in rad], axis=0)
    return {("rapsd",): spectra_e, ("rapsd_radar",): spectra_o}


def pysteps_ensemble(est: np.ndarray, rad: np.ndarray) -> dict:
    crps = probscores.CRPS_init()
    ranks = ensscores.rankhist_init(est.shape[0], None)
    rel = {thr: probscores.reldiag_init(thr, 10, min_count=0) for thr in THRESHOLDS}
    for t in range(rad.shape[0]):
        probscores.CRPS_accum(crps, est[:, t], rad[t])
        ensscores.rankhist_accum(ranks, est[:, t], rad[t])
        for thr in THRESHOLDS:
            probscores.reldiag_accum(rel[thr], excprob(est[:, t], thr), rad[t])
    out = {("CRPS",): probscores.CRPS_compute(crps), ("rank_histogram",): ensscores.rankhist_compute(ranks)}
    for thr in THRESHOLDS:
        forecast, observed = probscores.reldiag_compute(rel[thr])
        out[("reliability_forecast", thr)], out[("reliability_observed", thr)] = forecast, observed
    return out


def pysteps_ensemble_mean_fss(est: np.ndarray, rad: np.ndarray) -> dict:
    """FSS of the ensemble mean (pysteps ``ensemblestats.mean``), accumulated over fields."""
    windows = window_sizes(SCALES_KM, PIXEL_KM)
    objects = {
        (thr, s): spatialscores.fss_init(thr, int(w))
        for thr in THRESHOLDS
        for s, w in zip(SCALES_KM, windows, strict=True)
    }
    for t in range(rad.shape[0]):
        mean = ensemblestats.mean(est[:, t])
        for obj in objects.values():
            spatialscores.fss_accum(obj, mean, rad[t])
    return {("FSS_ensemble_mean", *key): spatialscores.fss_compute(obj) for key, obj in objects.items()}


def pysteps_extremes(est: np.ndarray, rad: np.ndarray) -> dict:
    """POD, FAR, CSI and BIAS of every member at the extreme thresholds (pysteps ``det_cat_fct``)."""
    names = ("POD", "FAR", "CSI", "BIAS")
    out = {}
    for thr in DEFAULT_EXTREME_THRESHOLDS:
        tables = [detcatscores.det_cat_fct_init(thr) for _ in range(est.shape[0])]
        for m, table in enumerate(tables):
            for f, o in zip(est[m], rad, strict=True):
                detcatscores.det_cat_fct_accum(table, f, o)
        for name in names:
            out[(f"{name}_extreme", thr)] = [detcatscores.det_cat_fct_compute(t, name)[name] for t in tables]
    return out


def scores_twcrps(est: xr.DataArray, rad: xr.DataArray) -> dict:
    """twCRPS (empirical and fair) of the ``scores`` package at the extreme thresholds."""
    from scores.probability import tw_crps_for_ensemble

    return {
        (name, thr): float(
            tw_crps_for_ensemble(est, rad, "member", lambda z, t=thr: np.maximum(z, t), method=method)
        )
        for thr in DEFAULT_EXTREME_THRESHOLDS
        for name, method in (("twCRPS", "ecdf"), ("twCRPS_fair", "fair"))
    }


# -- qpe.verify: the public API, one call over all fields ---------------------------------------------------
def qpe_values(scores: xr.Dataset, keys: list[tuple]) -> dict:
    out = {}
    for key in keys:
        name, *where = key
        da = scores[name]
        if where and "scale" in da.dims:
            da = da.sel(threshold=where[0], scale=where[1])
        elif where and "extreme_threshold" in da.dims:
            da = da.sel(extreme_threshold=where[0])
        elif where:
            da = da.sel(threshold=where[0])
        out[key] = da.values
    return out


def max_difference(ours: dict, theirs: dict, relative: bool = False) -> float:
    """Largest |ours - theirs| over all scores (relative to |theirs| if asked), NaN where both are NaN."""
    worst = 0.0
    for key, ref in theirs.items():
        ref = np.asarray(ref, float)
        mine = np.asarray(ours[key], float)
        if not np.array_equal(np.isnan(mine), np.isnan(ref)):
            return float("inf")  # a score defined on one side only
        diff = np.abs(mine - ref)
        worst = max(worst, float(np.nanmax(diff / np.abs(ref) if relative else diff, initial=0.0)))
    return worst


COLUMNS = (
    f"{'family':36s} {'qpe f/s':>9s} {'pysteps f/s':>12s} {'speed-up':>9s} {'(cpu)':>7s} {'max |diff|':>11s}"
)


def row(
    label: str,
    n: int,
    qpe: tuple[float, float],
    ref: tuple[float, float] | None = None,
    diff: float | None = None,
) -> str:
    """One table line: fields/s of both, wall-clock and CPU speed-up, largest difference."""
    line = f"{label:36s} {n / qpe[0]:9.1f}"
    if ref is None:
        return line + f" {'-':>12s} {'-':>9s} {'-':>7s} {'-':>11s}"
    return line + f" {n / ref[0]:12.2f} {ref[0] / qpe[0]:8.1f}x {ref[1] / qpe[1]:6.1f}x {diff:11.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=64, help="number of fields (default 64)")
    parser.add_argument("--size", type=int, default=512, help="field size in pixels (default 512)")
    parser.add_argument("--members", type=int, default=8, help="ensemble members of the ensemble row")
    parser.add_argument("--ensemble-fields", type=int, default=8, help="fields of the ensemble row")
    parser.add_argument(
        "--repeat", type=int, default=3, help="qpe.verify runs, the fastest counts (default 3)"
    )
    args = parser.parse_args()
    n, size = args.fields, args.size

    est, rad = random_rain_fields((size, size), times=n, seed=0, pixel_m=PIXEL_KM * 1000)
    e, r = est.values, rad.values
    windows = tuple(window_sizes(SCALES_KM, PIXEL_KM).tolist())
    print(f"qpe.verify vs pysteps {importlib.metadata.version('pysteps')}, {n} fields of {size} x {size} px")
    print(
        f"thresholds {THRESHOLDS} mm/h; FSS scales {SCALES_KM} km = windows {windows} px at {PIXEL_KM:g} km"
    )
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}; f/s = fields per second of "
        f"wall time; speed-up in wall and (CPU) time;\nqpe.verify: fastest of {args.repeat} runs through "
        "verify(); pysteps: one pass of a per-field loop (tens of seconds, averaging out the machine's load)"
    )
    print(COLUMNS)

    def qpe(families: tuple[str, ...], **settings) -> tuple[float, float, xr.Dataset]:
        config = ScoreConfig(thresholds=THRESHOLDS, scales_km=SCALES_KM, families=families, **settings)
        return timed(lambda: verify(est, rad, config=config), repeat=args.repeat)

    references = {
        "categorical": ("categorical (4 thresholds)", pysteps_categorical),
        "continuous": ("continuous (ME MAE RMSE corr)", pysteps_continuous),
        "fss": ("FSS (4 thresholds x 6 scales)", pysteps_fss),
    }
    reference_times, diffs = {}, {}
    for family, (label, reference) in references.items():
        q_wall, q_cpu, scores = qpe((family,))
        r_wall, r_cpu, values = timed(lambda reference=reference: reference(e, r))
        reference_times[family] = (r_wall, r_cpu)
        diffs[family] = max_difference(qpe_values(scores, list(values)), values)
        print(row(label, n, (q_wall, q_cpu), (r_wall, r_cpu), diffs[family]), flush=True)
    for label, families in (
        ("FSS + categorical", ("categorical", "fss")),
        ("categorical + continuous + FSS", ("categorical", "continuous", "fss")),
    ):
        q_wall, q_cpu, _ = qpe(families)
        ref = tuple(sum(reference_times[f][i] for f in families) for i in (0, 1))
        print(row(label, n, (q_wall, q_cpu), ref, max(diffs[f] for f in families)), flush=True)

    q_wall, q_cpu, scores = qpe(("spectra",))
    r_wall, r_cpu, values = timed(lambda: pysteps_spectra(e, r))
    diff = max_difference({k: scores[k[0]].values for k in values}, values, relative=True)
    print(row("RAPSD (relative difference)", n, (q_wall, q_cpu), (r_wall, r_cpu), diff), flush=True)

    q_wall, q_cpu, _ = qpe(("distribution",))
    print(row("distribution (no pysteps equivalent)", n, (q_wall, q_cpu)), flush=True)

    ens, ens_rad = random_rain_fields(
        (size, size), times=args.ensemble_fields, members=args.members, seed=1, pixel_m=PIXEL_KM * 1000
    )
    ens = (ens + 0.01 * np.random.default_rng(1).random(ens.shape)).assign_attrs(ens.attrs)  # no tie with obs
    config = ScoreConfig(
        thresholds=THRESHOLDS, families=("ensemble",), rank_min=None, reliability_min_count=0
    )
    q_wall, q_cpu, scores = timed(lambda: verify(ens, ens_rad, config=config), repeat=args.repeat)
    r_wall, r_cpu, values = timed(lambda: pysteps_ensemble(ens.values, ens_rad.values))
    ours = {
        k: scores[k[0]].values if len(k) == 1 else scores[k[0]].sel(threshold=k[1]).values for k in values
    }
    label = f"ensemble CRPS/rank/reliab. ({args.members} m)"
    print(row(label, args.ensemble_fields, (q_wall, q_cpu), (r_wall, r_cpu), max_difference(ours, values)))
    new_families(ens, ens_rad, est, rad, args.repeat)
    regime_rows(ens, ens_rad, est, rad, args.repeat)
    quality_weight_rows(ens, ens_rad, est, rad, args.repeat)


def new_families(ens: xr.DataArray, ens_rad: xr.DataArray, est: xr.DataArray, rad: xr.DataArray, repeat: int):
    """Cost per field of the issue-15 families, and their largest difference from a reference (the
    displacement: one run on its first DISPLACEMENT_FIELDS fields)."""
    members = ens.sizes["member"]
    size = f"{rad.sizes['y']} x {rad.sizes['x']}"
    print(
        f"\nissue-15 families: cost per {size} field (fastest of {repeat}), ensemble rows {members} members"
    )
    print(f"{'family':44s} {'ms/field':>9s} {'(cpu)':>8s} {'max |diff|':>11s}  reference")
    config = {"thresholds": THRESHOLDS, "scales_km": SCALES_KM}
    cases = (
        (
            "ensemble FSS + ensemble-mean FSS",
            "ensemble_fss",
            ens,
            ens_rad,
            pysteps_ensemble_mean_fss,
            "pysteps fss(ensemblestats.mean)",
        ),
        (
            "extremes (10/20/50 mm/h, twCRPS)",
            "extremes",
            ens,
            ens_rad,
            pysteps_extremes,
            "pysteps det_cat_fct",
        ),
        ("extremes, deterministic", "extremes", est, rad, None, ""),
        ("multivariate (energy, variogram 6 lags)", "multivariate", ens, ens_rad, None, ""),
        ("coherence + effective resolution", "coherence", ens, ens_rad, None, ""),
        ("coherence, deterministic", "coherence", est, rad, None, ""),
    )
    first = {"time": slice(0, DISPLACEMENT_FIELDS)}
    slow = (
        (
            "displacement (Proesmans flow, warp)",
            "displacement",
            ens.isel(first),
            ens_rad.isel(first),
            None,
            "",
        ),
        ("displacement, deterministic", "displacement", est.isel(first), rad.isel(first), None, ""),
    )
    for label, family, estimate, radar, reference, name in (*cases, *slow):
        score_config = ScoreConfig(families=(family,), **config)
        runs = 1 if family == "displacement" else repeat
        wall, cpu, scores = timed(lambda e=estimate, r=radar, c=score_config: verify(e, r, config=c), runs)
        n = radar.sizes["time"]
        diff = "-"
        if reference is not None:
            values = reference(estimate.values, radar.values)
            diff = f"{max_difference(qpe_values(scores, list(values)), values):.1e}"
        print(f"{label:44s} {1000 * wall / n:9.1f} {1000 * cpu / n:8.1f} {diff:>11s}  {name}", flush=True)
    values = scores_twcrps(ens, ens_rad)
    scores = verify(ens, ens_rad, config=ScoreConfig(families=("extremes",), **config))
    diff = max_difference(qpe_values(scores, list(values)), values)
    print(
        f"{'twCRPS (empirical, fair) vs scores':44s} {'':>9s} {'':>8s} {diff:11.1e}  scores tw_crps_for_ensemble"
    )


def _masks(radar: xr.DataArray) -> xr.DataArray:
    """Regime masks of realistic fields: BT colder where the radar rains, lon/lat over Europe, a QIND field."""
    rng = np.random.default_rng(2)
    ny, nx = radar.sizes["y"], radar.sizes["x"]
    ir = radar.copy(data=275.0 - 20.0 * np.log1p(radar.values) + rng.normal(0.0, 4.0, radar.shape))
    lon = xr.DataArray(np.broadcast_to(np.linspace(-5.0, 15.0, nx), (ny, nx)), dims=("y", "x"))
    lat = xr.DataArray(np.broadcast_to(np.linspace(55.0, 42.0, ny)[:, None], (ny, nx)), dims=("y", "x"))
    quality = radar.copy(data=rng.uniform(0.0, 1.0, radar.shape)).where(radar > 0)
    return regime_masks(radar, ir, lon, lat, quality)


def regime_rows(ens: xr.DataArray, ens_rad: xr.DataArray, est: xr.DataArray, rad: xr.DataArray, repeat: int):
    """Cost per field of the regime masks and of the scores by regime; a group's sums against the unsplit."""
    print(f"\nscores by regime: cost per {rad.sizes['y']} x {rad.sizes['x']} field (fastest of {repeat})")
    print(f"{'family':44s} {'ms/field':>9s} {'(cpu)':>8s} {'max |diff|':>11s}  reference")
    wall, cpu, masks = timed(lambda: _masks(rad), repeat)
    n = rad.sizes["time"]
    label = f"regime masks ({masks.sizes['regime']} regimes)"
    print(f"{label:44s} {1000 * wall / n:9.1f} {1000 * cpu / n:8.1f} {'-':>11s}", flush=True)
    cases = (("scores by regime, ensemble", ens, ens_rad), ("scores by regime, deterministic", est, rad))
    config = ScoreConfig(thresholds=THRESHOLDS, families=("regimes",))
    for label, estimate, radar in cases:
        masks = _masks(radar)
        wall, cpu, scores = timed(lambda e=estimate, r=radar, m=masks: verify(e, r, config=config, regimes=m),
                                  repeat)
        unsplit = verify(estimate, radar, config=ScoreConfig(thresholds=THRESHOLDS, families=("continuous",)))
        group = scores.where(scores["regime_group"] == "cloud_top", drop=True)  # pooled back from its classes
        pooled = np.sqrt((group["n_regime"] * group["RMSE_regime"] ** 2).sum("regime") / group["n_regime"].sum())
        diff = float(abs(pooled - unsplit["RMSE"]).max())
        n = radar.sizes["time"]
        reference = "unsplit RMSE (pooled over the cloud-top bins)"
        print(f"{label:44s} {1000 * wall / n:9.1f} {1000 * cpu / n:8.1f} {diff:11.1e}  {reference}", flush=True)


#: The families that take a pixel weight (``ScoreConfig.quality_weight``).
WEIGHTED_FAMILIES = ("categorical", "matched", "continuous", "distribution", "extremes", "ensemble")


def quality_weight_rows(ens: xr.DataArray, ens_rad: xr.DataArray, est: xr.DataArray, rad: xr.DataArray,
                        repeat: int):
    """Cost per field of the pixel-wise families unweighted and weighted by a QIND field; weights of 1
    against the unweighted scores (their largest relative difference)."""
    print(f"\nweighting by radar quality: cost per {rad.sizes['y']} x {rad.sizes['x']} field of "
          f"{', '.join(WEIGHTED_FAMILIES)} (fastest of {repeat})")
    print(f"{'family':44s} {'ms/field':>9s} {'(cpu)':>8s} {'max |diff|':>11s}  reference")
    config = ScoreConfig(thresholds=THRESHOLDS, families=WEIGHTED_FAMILIES)
    for label, estimate, radar in (("ensemble", ens, ens_rad), ("deterministic", est, rad)):
        qind = quality_weights(_masks_quality(radar))
        n = radar.sizes["time"]
        for mode, weight in (("unweighted", None), ("QIND-weighted", qind)):
            wall, cpu, _ = timed(lambda e=estimate, r=radar, w=weight: verify(e, r, config=config, weight=w), repeat)
            print(f"{f'{mode}, {label}':44s} {1000 * wall / n:9.1f} {1000 * cpu / n:8.1f} {'-':>11s}", flush=True)
        plain = verify(estimate, radar, config=config)
        ones = verify(estimate, radar, config=config, weight=xr.ones_like(radar))
        with np.errstate(invalid="ignore"):
            diff = max(float(np.nanmax(np.abs(ones[k].values - plain[k].values)
                                       / np.maximum(np.abs(plain[k].values), 1e-12), initial=0.0))
                       for k in plain.data_vars)
        print(f"{f'weights of 1, {label}':44s} {'':>9s} {'':>8s} {diff:11.1e}  unweighted scores", flush=True)


def _masks_quality(radar: xr.DataArray) -> xr.DataArray:
    """The QIND field of :func:`_masks`: uniform 0..1 where the radar rains, none elsewhere."""
    rng = np.random.default_rng(2)
    return radar.copy(data=rng.uniform(0.0, 1.0, radar.shape)).where(radar > 0)


if __name__ == "__main__":
    main()
