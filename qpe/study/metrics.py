"""The study's headline numbers, read from an evaluation's scores, with their bootstrap intervals.

Columns (ensemble scores are averaged over members, i.e. they judge single realisations):

- ``csi_matched_1`` — **the placement score**: CSI at matched wet fraction for radar > 1 mm/h (each
  member, or the U-Net's field, thresholded where it is as often wet as radar is above 1 mm/h over the
  held-out times; :mod:`qpe.verify.matched`). A CSI at a fixed threshold rewards a smooth field for
  covering more area and charges a realistic member twice (miss and false alarm) for a displaced cell;
  at matched frequency only the placement of the rain area is scored, at the pixel scale the hypotheses
  speak of. (FSS at 1 mm/h and 16-32 km forgives displacement too but not frequency bias; it stays in
  the evaluation outputs.) H1, H3 and H4 judge placement with it: :data:`PLACEMENT`.
- ``csi_1`` — CSI at 1 mm/h (fixed threshold, for reference); ``csi_01`` — at 0.1 mm/h; ``fss_5_32`` —
  FSS at 5 mm/h and 32 km;
- ``psd_ratio`` — geometric mean of the RAPSD ratio estimate / radar over wavelengths 8-32 km, with
  ``psd_ratio_min`` and ``psd_ratio_max`` over that band;
- ``wet_fraction_ratio``, ``p99_ratio`` — wet fraction (> 0.1 mm/h) and wet-pixel p99, estimate / radar;
- ``psd_error``, ``wet_fraction_error``, ``p99_error`` — the realism errors ``|log psd_ratio|``,
  ``|wet_fraction_ratio - 1|``, ``|p99_ratio - 1|``;
- ``crps`` — the **fair** CRPS (mm/h) of an ensemble (unbiased for its few members, Ferro 2014); for a
  deterministic estimate its mean absolute error (the CRPS of a point forecast);
- ``spread_skill`` — the fair spread-skill ratio of an ensemble (1 = calibrated; NaN for a U-Net);
- ``nfe`` — network evaluations per sample; ``family``, ``frames`` (T), ``steps`` (K), ``base_model``;
  ``alt_sampler`` — the sampler named in a ``<model>_t<T>_<sampler>_k<K>`` variant ("" for a model's own).

Every metric column is also computed on each bootstrap replicate of the evaluation's statistics (the same
draws for every model, so differences and ratios between models are paired): :func:`measure_headline`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from qpe.evaluation.config import EvaluationConfig
from qpe.study.intervals import Interval, Resampling
from qpe.verify import ScoreAccumulator
from qpe.verify.bootstrap import case_weights, n_units
from qpe.verify.comparison import paired_replicates

#: Wavelength band of the spectral realism check, km.
PSD_BAND_KM = (8.0, 32.0)
#: The headline placement score (see the module notes): what H1, H3 and H4 call placement.
PLACEMENT = "csi_matched_1"
NAME_PATTERN = re.compile(r"^(?P<model>.+?)_t(?P<frames>\d+)(?:_(?P<sampler>[a-z]+))?(?:_k(?P<steps>\d+))?$")


def _member_mean(da: xr.DataArray) -> xr.DataArray:
    return da.mean("member", skipna=True) if "member" in da.dims else da


def _at(scores: xr.Dataset, name: str, **where) -> xr.DataArray:
    if name not in scores.data_vars:
        return xr.DataArray(np.nan)
    da = _member_mean(scores[name])
    for dim, value in where.items():
        da = da.sel({dim: value}, method="nearest")
    return da.drop_vars([c for c in da.coords if da[c].ndim == 0])  # the selected threshold, scale...


def _psd_band(scores: xr.Dataset, band_km: tuple[float, float]) -> xr.Dataset:
    ratio = _member_mean(scores["rapsd_ratio"])
    wavelength = ratio["wavelength"]
    inside = ratio.where((wavelength >= band_km[0]) & (wavelength <= band_km[1]), drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(inside.where(inside > 0))
    return xr.Dataset({
        "psd_ratio": np.exp(log.mean("wavelength")),
        "psd_ratio_min": inside.min("wavelength"),
        "psd_ratio_max": inside.max("wavelength"),
    })


def psd_band(scores: xr.Dataset, band_km: tuple[float, float] = PSD_BAND_KM) -> pd.DataFrame:
    """Geometric mean, min and max of the RAPSD ratio over the wavelength band, per model."""
    band = _psd_band(scores, band_km)
    return pd.DataFrame({name: band[name].values for name in band.data_vars}, index=scores["model"].values)


def headline_dataset(scores: xr.Dataset) -> xr.Dataset:
    """The metric columns of the module notes from a score Dataset, keeping its other dimensions
    (``model``, ``replicate``)."""
    crps_fair, mae = _at(scores, "CRPS_fair"), _at(scores, "MAE")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xr.Dataset({
            "csi_matched_1": _at(scores, "CSI_matched", threshold=1.0),
            "csi_1": _at(scores, "CSI", threshold=1.0),
            "csi_01": _at(scores, "CSI", threshold=0.1),
            "fss_5_32": _at(scores, "FSS", threshold=5.0, scale=32.0),
            "wet_fraction_ratio": _at(scores, "wet_fraction") / _at(scores, "wet_fraction_radar"),
            "p99_ratio": _at(scores, "wet_p99") / _at(scores, "wet_p99_radar"),
            "crps": crps_fair.where(np.isfinite(crps_fair), mae),
            "spread_skill": _at(scores, "spread_skill_ratio"),
        }).assign(_psd_band(scores, PSD_BAND_KM).data_vars)
        out["psd_error"] = np.abs(np.log(out["psd_ratio"]))
        out["wet_fraction_error"] = np.abs(out["wet_fraction_ratio"] - 1)
        out["p99_error"] = np.abs(out["p99_ratio"] - 1)
    drop = [c for c in out.coords if c not in out.dims]
    return out.drop_vars(drop)


#: Metric columns (everything :func:`headline_dataset` computes), in table order.
METRICS = ("csi_matched_1", "csi_1", "csi_01", "fss_5_32", "wet_fraction_ratio", "p99_ratio", "crps",
           "spread_skill", "psd_ratio", "psd_ratio_min", "psd_ratio_max", "psd_error", "wet_fraction_error",
           "p99_error")


def headline_metrics(scores: xr.Dataset) -> pd.DataFrame:
    """One row per model of ``scores`` (an evaluation's Dataset, ``model`` dimension) with the columns
    of the module notes."""
    models = [str(m) for m in scores["model"].values]
    metrics = headline_dataset(scores).transpose("model", ...)
    table = pd.DataFrame({name: np.broadcast_to(metrics[name].values, (len(models),)) for name in METRICS},
                         index=models)
    nfe = scores["network_evaluations"].values if "network_evaluations" in scores.coords else np.nan
    table["nfe"] = pd.to_numeric(pd.Series(np.broadcast_to(nfe, (len(models),)), index=models), errors="coerce")
    table["family"] = [str(f) for f in scores["family"].values] if "family" in scores.coords else ""
    parsed = [NAME_PATTERN.match(m) for m in models]
    table["base_model"] = [p["model"] if p else m for p, m in zip(parsed, models)]
    table["frames"] = [int(p["frames"]) if p else np.nan for p in parsed]
    table["steps"] = [int(p["steps"]) if p and p["steps"] else np.nan for p in parsed]
    table["alt_sampler"] = [(p["sampler"] or "") if p else "" for p in parsed]
    table.index.name = "model"
    return table


def headline_replicates(accumulators: dict[str, ScoreAccumulator], weights: xr.DataArray) -> xr.Dataset:
    """Every metric column of every model on each bootstrap replicate, dims (model, replicate).

    Parameters
    ----------
    accumulators : dict
        Model name -> statistics of the same cases (days or times) for every model.
    weights : xarray.DataArray
        (replicate, case) draws (:func:`qpe.verify.bootstrap.case_weights`), shared by all models: the
        replicates are paired (:func:`qpe.verify.comparison.paired_replicates`).
    """
    # a metric a model lacks (a U-Net's spread-skill) is NaN on every replicate
    return paired_replicates(accumulators, weights, headline_dataset)[list(METRICS)].transpose("model", "replicate")


@dataclass
class Headline:
    """The headline table of one benchmark with its bootstrap replicates.

    Attributes
    ----------
    values : pandas.DataFrame
        :func:`headline_metrics` (point values on all held-out data).
    replicates : xarray.Dataset or None
        :func:`headline_replicates`, dims (model, replicate); None without intervals.
    resampling : Resampling
        What was resampled, and the held-out times and days.
    """

    values: pd.DataFrame
    replicates: xr.Dataset | None
    resampling: Resampling

    def _replicates(self, model: str, column: str) -> xr.DataArray | None:
        """Replicates of a metric; a column that is not resampled (a count such as ``nfe``) is exact: its
        replicates are its value."""
        if self.replicates is None or not self.resampling.has_intervals:
            return None
        if column not in self.replicates:
            return xr.DataArray(np.full(self.replicates.sizes["replicate"], float(self.values.loc[model, column])),
                                dims="replicate")
        return self.replicates[column].sel(model=model, drop=True)

    def interval(self, model: str, column: str) -> Interval:
        """The value of ``column`` for ``model`` with its interval (exact for a count such as ``nfe``)."""
        return Interval.of(self.values.loc[model, column], self._replicates(model, column),
                           self.resampling.confidence)

    def compare(self, model: str, other: str, column: str, how: str = "difference") -> Interval:
        """``model - other`` (``how="difference"``) or ``model / other`` (``"ratio"``) of ``column``, with
        the interval of the paired replicates (both drawn on the same days or times)."""
        ops = {"difference": np.subtract, "ratio": np.divide}
        if how not in ops:
            raise ValueError(f"compare how={how!r}: use difference or ratio")
        op = ops[how]
        a, b = self._replicates(model, column), self._replicates(other, column)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = op(self.values.loc[model, column], self.values.loc[other, column])
            replicates = None if a is None else op(a, b)
        if replicates is not None:
            replicates = replicates.where(np.isfinite(replicates))  # a ratio to 0: no value in that replicate
        return Interval.of(value, replicates, self.resampling.confidence)


def measure_headline(scores: xr.Dataset, accumulators: dict[str, ScoreAccumulator],
                     config: EvaluationConfig) -> Headline:
    """The headline of an evaluation: values from ``scores``, replicates from the ``accumulators``
    drawn as the evaluation drew its intervals (same unit, resamples and seed).

    Parameters
    ----------
    scores : xarray.Dataset
        :func:`qpe.evaluation.summarize_scores` output.
    accumulators : dict
        The statistics it was computed from (:func:`qpe.evaluation.accumulate_period`).
    config : EvaluationConfig
        Its settings (bootstrap unit, resamples, confidence, seed).
    """
    cases = next(iter(accumulators.values())).cases
    resampling = Resampling(config.bootstrap_unit, n_units(cases, config.bootstrap_unit),
                            int(np.unique(cases.astype("datetime64[D]")).size), int(scores.attrs.get("n_times", 0)),
                            config.n_resamples, config.confidence, config.bootstrap_seed)
    replicates = None
    if resampling.has_intervals:
        weights = case_weights(cases, config.bootstrap_unit, config.n_resamples, config.bootstrap_seed)
        replicates = headline_replicates(accumulators, weights)
    return Headline(headline_metrics(scores), replicates, resampling)
