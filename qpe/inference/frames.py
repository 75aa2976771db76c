"""What do the past IR frames contribute? Estimates with past frames replaced by the latest one.

A model with T > 1 reads frames 1 .. T, oldest first: frame T is the valid time, frame k the scan
``(T - k) * 15`` min before it. :func:`frame_contributions` estimates each time again with frame k
(k = 1 .. T - 1) replaced by a copy of frame T — *persistence*: the model sees a scene that did not
change between those two scans — and with every past frame replaced (``all_past``: a still scene),
with the same seed, so that an ensemble draws the same noise and any change is due to the input only.
The change of the estimate (mm/h) against the full input, and the scores against radar with and
without frame k, say what the frame contributes.

Variants (``variant`` dimension, in this order)::

    full        the input as it is (the reference)
    frame_k     frame k replaced by frame T, for k = 1 .. T - 1
    all_past    frames 1 .. T - 1 replaced by frame T

Intervals
    The score changes (variant minus full input) get percentile bootstrap intervals over the times
    (:mod:`qpe.verify.bootstrap`): the statistics are kept per time, and each replicate draws the times
    (within each UTC day; whole days from :data:`~qpe.verify.bootstrap.MIN_DAYS` days on,
    :func:`~qpe.verify.bootstrap.choose_unit`) once and scores *every* variant on that draw
    (:func:`qpe.verify.comparison.paired_replicates`), so the interval is that of the paired change
    ``persisted - original``: what the times share cancels. A variant identical to the full input has
    the interval [0, 0]. With fewer than two times that can be redrawn there is no interval.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from qpe.errors import DatasetError, InputError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig, estimate, find_times
from qpe.inference.products import ensemble_mean
from qpe.verify import ScoreAccumulator, ScoreConfig
from qpe.verify.bootstrap import UNIT_NAMES, case_weights, choose_unit, n_units, percentile_bounds
from qpe.verify.comparison import paired_replicates
from qpe.verify.tables import preferred_level

#: Label of the unchanged input, and of the input with every past frame replaced.
FULL, ALL_PAST = "full", "all_past"
#: Score families computed per variant by default (fast, and what the table shows).
FRAME_SCORE_FAMILIES = ("categorical", "continuous", "fss")
#: Suffix of the bootstrap bounds of each score's change (``RMSE_change_ci`` ...; dim ``bound``).
CHANGE_CI_SUFFIX = "_change_ci"
#: Fewest times that can be redrawn for an interval of the changes.
MIN_CI_TIMES = 2


def persistence_variants(frames: int) -> dict[str, tuple[int, ...]]:
    """The variants of a T-frame input: label -> frames replaced by frame T (1-based, oldest first).

    Parameters
    ----------
    frames : int
        T, the successive IR frames the model reads (at least 2).

    Returns
    -------
    dict
        ``{"full": (), "frame_1": (1,), ..., "frame_<T-1>": (T - 1,), "all_past": (1, ..., T - 1)}``.
    """
    if frames < 2:
        raise InputError(f"an input of {frames} frame(s) has no past frame to replace")
    variants: dict[str, tuple[int, ...]] = {FULL: ()}
    variants.update({f"frame_{k}": (k,) for k in range(1, frames)})
    variants[ALL_PAST] = tuple(range(1, frames))
    return variants


def check_past_frames(card) -> int:
    """T of a model card (:class:`qpe.models.ModelCard`); raises :class:`InputError` when T = 1 (no past frame)."""
    frames = card.input.frames
    if frames < 2:
        raise InputError(f"model {card.name!r} reads one IR frame (T = 1): it has no past frame to replace")
    return frames


def persisted_input(ds: xr.Dataset, index: int, frames: int, replaced: Sequence[int]) -> xr.Dataset:
    """The T frames a model reads at ``ds.time[index]``, with frames ``replaced`` copied from frame T.

    Parameters
    ----------
    ds : xarray.Dataset
        Paired dataset with ``ir`` (time, channel, y, x), K.
    index : int
        Position of the valid time in ``ds.time``; it must have T - 1 predecessors.
    frames : int
        T.
    replaced : sequence of int
        Frames (1 .. T - 1, oldest first) whose IR is replaced by that of frame T.

    Returns
    -------
    xarray.Dataset
        ``ds`` at the T times ``index - T + 1 .. index`` (IR in memory, K), the replaced frames equal
        to the last one; the other variables unchanged.
    """
    first = index - frames + 1
    if first < 0:
        raise DatasetError(f"time index {index} has fewer than {frames - 1} frames before it")
    bad = [k for k in replaced if not 1 <= k < frames]
    if bad:
        raise InputError(f"frame(s) {bad} are not past frames of a {frames}-frame input (1 .. {frames - 1})")
    window = ds.isel(time=slice(first, index + 1))
    ir = np.array(window["ir"].values)  # a copy: the dataset itself is never changed
    for k in replaced:
        ir[k - 1] = ir[frames - 1]
    return window.assign(ir=window["ir"].copy(data=ir))


def frame_contributions(
    model,
    ds: xr.Dataset,
    times: Sequence | pd.DatetimeIndex,
    config: EstimateConfig | None = None,
    scores: ScoreConfig | None = None,
    *,
    cache: EstimateCache | None = None,
    progress: bool = False,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    bootstrap_seed: int = 0,
) -> xr.Dataset:
    """Estimates with each past IR frame replaced by the latest one, their change and their scores.

    Parameters
    ----------
    model : LoadedModel or path-like
        A model from :func:`qpe.models.load` reading T > 1 frames, or its checkpoint folder.
    ds : xarray.Dataset
        Paired dataset with ``ir`` (K) and ``rain`` (mm/h, the radar the estimates are scored against).
    times : sequence of datetime-like
        Valid times (UTC), each with its T - 1 predecessors at 15-minute steps in ``ds``.
    config : EstimateConfig, optional
        Members, steps, sampler, seed (the same for every variant), device and tiling; default
        :class:`~qpe.inference.engine.EstimateConfig`.
    scores : ScoreConfig, optional
        Score settings; default :class:`~qpe.verify.ScoreConfig` with the families
        :data:`FRAME_SCORE_FAMILIES`. Scores pool every time.
    cache : EstimateCache, optional
        Inference cache (each variant's input has its own key).
    progress : bool
        Show progress bars (full-input estimates, then the variants time by time).
    n_resamples, confidence, bootstrap_seed
        Bootstrap of the score changes over the times (see the module notes): replicates (0: no
        intervals), coverage and seed.

    Returns
    -------
    xarray.Dataset
        Dims ``variant`` (see the module notes), ``member``, ``time``, ``y``, ``x`` (and the scores'
        ``threshold``, ``scale``). Variables:

        - ``rain (variant, member, time, y, x)``: the estimates, mm/h;
        - ``change (variant, time, y, x)``: ensemble mean of the variant minus that of the full input, mm/h
          (zero for ``full``);
        - ``mean_absolute_change (variant, time)``: mean of ``|change|`` over the valid pixels, mm/h;
        - ``member_mean_absolute_change (variant, member, time)``: the same for each member, mm/h;
        - the scores of :func:`qpe.verify.verify` of each variant against radar (``RMSE``, ``CSI``,
          ``FSS`` ...), with a ``member`` dimension for an ensemble;
        - ``<score>_change_ci (bound, variant, ...)``: the bootstrap interval of each score's change
          (variant minus full input; members averaged), ``bound`` = ``ci_low``, ``ci_high``; absent when
          there is no interval (attribute ``change_ci`` says which and why).

        Coordinate ``replaced_frames (variant)`` lists the replaced frames (``"1"``, ``"1,2,3"``, ``""``).

    Raises
    ------
    InputError
        The model reads one frame (T = 1): it has no past frame to replace.
    DatasetError
        The data lack ``rain``, a time, or a time's T - 1 predecessors.
    """
    from qpe.models import load

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    frames = check_past_frames(model.card)
    if "rain" not in ds.data_vars:
        raise DatasetError("dataset has no 'rain' (radar): the variants cannot be scored")
    config = config or EstimateConfig()
    scores = scores or ScoreConfig(families=FRAME_SCORE_FAMILIES)
    variants = persistence_variants(frames)
    full = estimate(model, ds, times, config, cache=cache, progress=progress)  # checks times and frames
    positions = find_times(ds, times)
    fields: dict[str, list[xr.DataArray]] = {label: [] for label in variants if label != FULL}
    bar = tqdm(positions, desc=f"past frames of {model.card.name}", unit="time", disable=not progress, leave=False)
    for index in bar:
        for label, parts in fields.items():
            window = persisted_input(ds, int(index), frames, variants[label])
            parts.append(estimate(model, window, [ds["time"].values[index]], config, cache=cache,
                                  progress=False)["rain"])
    rain = {FULL: full["rain"], **{label: xr.concat(parts, dim="time") for label, parts in fields.items()}}
    stacked = xr.concat(list(rain.values()), dim="variant").assign_coords(variant=_labels(rain))
    stacked.attrs = full["rain"].attrs
    out = xr.Dataset({"rain": stacked}, attrs=full.attrs)
    out = out.assign_coords(
        replaced_frames=("variant", _labels(",".join(map(str, v)) for v in variants.values())))
    out.update(_changes(stacked))
    accumulators = _variant_statistics(stacked, ds["rain"].sel(time=full["time"]), scores)
    out.update(_variant_scores(accumulators))
    intervals, described = _change_intervals(accumulators, n_resamples, confidence, bootstrap_seed)
    out.update(intervals)
    out.attrs.update({
        "change_ci": described,
        "frames": frames,
        "frame_step_min": model.card.input.frame_step_min,
        "replacement": "persistence: frame k (1 = oldest) replaced by frame T (the valid time), same seed",
    })
    return out


def _labels(labels) -> np.ndarray:
    """Labels as a fixed-width string array (what NetCDF writes), not pandas' string dtype."""
    return np.array([str(label) for label in labels], dtype=str)


def _changes(rain: xr.DataArray) -> dict[str, xr.DataArray]:
    """Change fields and their mean absolute values, mm/h, of each variant against ``full``."""
    difference = rain - rain.sel(variant=FULL)
    change = ensemble_mean(rain) - ensemble_mean(rain.sel(variant=FULL))
    units = {"units": "mm/h"}
    return {
        "change": change.assign_attrs(
            units="mm/h", long_name="ensemble-mean rain rate minus that of the full input"),
        "mean_absolute_change": abs(change).mean(("y", "x")).assign_attrs(
            units, long_name="mean absolute change of the ensemble mean over valid pixels"),
        "member_mean_absolute_change": abs(difference).mean(("y", "x")).assign_attrs(
            units, long_name="mean absolute change of each member over valid pixels (same seed)"),
    }


def _variant_statistics(
    rain: xr.DataArray, radar: xr.DataArray, config: ScoreConfig
) -> dict[str, ScoreAccumulator]:
    """The score statistics of each variant against radar, kept per time (variant label -> accumulator)."""
    accumulators = {}
    for label in rain["variant"].values:
        field = rain.sel(variant=label, drop=True)
        if field.sizes["member"] == 1:
            field = field.isel(member=0, drop=True)
        accumulators[str(label)] = ScoreAccumulator(config, model=str(label), resolution="time").accum(field, radar)
    return accumulators


def _variant_scores(accumulators: dict[str, ScoreAccumulator]) -> xr.Dataset:
    """Scores of each variant, pooled over the times (``variant`` dim)."""
    parts = [acc.compute() for acc in accumulators.values()]
    scored = xr.concat(parts, dim="variant", coords="minimal", compat="override", combine_attrs="override")
    return scored.drop_vars(["model"], errors="ignore").assign_coords(variant=_labels(accumulators))


def _change_intervals(
    accumulators: dict[str, ScoreAccumulator], n_resamples: int, confidence: float, seed: int
) -> tuple[dict[str, xr.DataArray], str]:
    """Paired bootstrap bounds of each score's change from the full input (members averaged), and what
    they are (or why there are none)."""
    if n_resamples < 0:
        raise InputError(f"n_resamples must be 0 (no intervals) or more, got {n_resamples}")
    cases = accumulators[FULL].cases
    days = np.unique(cases.astype("datetime64[D]")).size
    unit = choose_unit(days)
    units = n_units(cases, unit)
    if n_resamples == 0:
        return {}, "none (no bootstrap asked for)"
    if units < MIN_CI_TIMES:  # unit "time" here: "day" is chosen from MIN_DAYS (5) days on
        return {}, (f"none: {cases.size} time(s), {units} of them in UTC days with two or more (the bootstrap "
                    f"redraws {UNIT_NAMES[unit]}; it needs at least {MIN_CI_TIMES} such times)")
    replicates = paired_replicates(accumulators, case_weights(cases, unit, n_resamples, seed))
    change = replicates - replicates.sel(model=FULL)
    if "member" in change.dims:
        change = change.mean("member")
    bounds = percentile_bounds(change, confidence).rename(model="variant")
    described = (f"{confidence:.0%} percentile bootstrap of the change (variant - full input), paired: each of "
                 f"{n_resamples} replicates draws {UNIT_NAMES[unit]} once for every variant ({units} units, "
                 f"seed {seed})")
    return {f"{name}{CHANGE_CI_SUFFIX}": bounds[name].assign_attrs(
        long_name=f"bootstrap interval of the change of {name} (variant - full input)",
        units=bounds[name].attrs.get("units", ""), confidence=confidence) for name in bounds.data_vars}, described


def frame_score_table(result: xr.Dataset, threshold: float = 1.0, scale_km: float = 16.0) -> pd.DataFrame:
    """One row per variant: mean absolute change, RMSE, CSI and FSS, and the score changes.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`frame_contributions`.
    threshold : float
        CSI and FSS threshold, mm/h (the middle one computed when it was not).
    scale_km : float
        FSS scale, km (the middle one computed when it was not).

    Returns
    -------
    pandas.DataFrame
        Index ``variant``; columns ``replaced frames``, ``mean |change| (mm/h)``, ``RMSE (mm/h)``,
        ``ΔRMSE (mm/h)``, ``CSI ≥ t``, ``ΔCSI``, ``FSS t, s km``, ``ΔFSS`` (differences: variant minus full
        input); members averaged, times pooled. When ``result`` has bootstrap intervals, each difference
        is followed by its bounds, ``ΔRMSE 2.5%`` and ``ΔRMSE 97.5%`` (for 95 %) ...
    """
    def members_mean(da: xr.DataArray) -> xr.DataArray:
        return da.mean("member") if "member" in da.dims else da

    columns: dict[str, np.ndarray] = {
        "replaced frames": result["replaced_frames"].values,
        "mean |change| (mm/h)": result["mean_absolute_change"].mean("time").values,
    }
    picked = []
    if "RMSE" in result:
        picked.append(("RMSE (mm/h)", "ΔRMSE (mm/h)", "RMSE", {}))
    t = preferred_level(result["threshold"].values, threshold) if "threshold" in result.coords else None
    if "CSI" in result and t is not None:
        picked.append((f"CSI ≥ {t:g} mm/h", "ΔCSI", "CSI", {"threshold": t}))
    if "FSS" in result and t is not None:
        s = preferred_level(result["scale"].values, scale_km)
        picked.append((f"FSS {t:g} mm/h, {s:g} km", "ΔFSS", "FSS", {"threshold": t, "scale": s}))
    for name, delta, score, levels in picked:
        values = members_mean(result[score]).sel(levels)
        columns[name] = values.values
        columns[delta] = (values - values.sel(variant=FULL)).values
        bounds = result.get(f"{score}{CHANGE_CI_SUFFIX}")
        if bounds is not None:
            tail = 50.0 * (1.0 - float(bounds.attrs["confidence"]))
            short = delta.split(" (")[0]
            columns[f"{short} {tail:g}%"] = bounds.sel(levels).sel(bound="ci_low").values
            columns[f"{short} {100 - tail:g}%"] = bounds.sel(levels).sel(bound="ci_high").values
    return pd.DataFrame(columns, index=pd.Index(result["variant"].values, name="variant"))


__all__ = [
    "ALL_PAST",
    "CHANGE_CI_SUFFIX",
    "FRAME_SCORE_FAMILIES",
    "FULL",
    "check_past_frames",
    "frame_contributions",
    "frame_score_table",
    "persisted_input",
    "persistence_variants",
]
