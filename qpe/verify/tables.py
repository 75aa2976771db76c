"""Scores as a tidy table, and the data of each standard figure.

``scores_to_frame`` turns the score Dataset of one model (scalar ``model`` coordinate) or of several
(``model`` dimension) into rows ``model, metric, threshold, scale, value, ci_low, ci_high`` — the
``scores.csv`` layout. Only scores indexed by nothing but threshold and/or scale become rows; curves
(histogram, exceedance, RAPSD, rank histogram, reliability) stay in the Dataset (``scores.nc``).
Ensemble members are averaged. ``*_radar`` variables (distribution, spectra) become rows of the model
``"radar"``. Scores at the extreme thresholds (``extreme_threshold``, :mod:`~qpe.verify.extremes`) fill
the ``threshold`` column, under their own metric names (``POD_extreme``, ``twCRPS`` ...). Scores split by
regime (``CSI_regime`` ..., :mod:`~qpe.verify.regimes`) add a last column ``regime`` (``"cloud_top: <210 K"``
...), empty on the other rows; it is there only when the scores hold such a split.

:data:`ORIENTATION` says, once for every layer (scorecard, report, figures), whether a score is better
higher, lower or closer to a target value; :func:`preferred_level` picks the headline threshold or scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from qpe.errors import InputError
from qpe.verify.distribution import wet_quantile_curve

COLUMNS = ("model", "metric", "threshold", "scale", "value", "ci_low", "ci_high")
#: The column added after :data:`COLUMNS` when the scores are split by regime.
REGIME_COLUMN = "regime"
_TABLE_DIMS = {"model", "threshold", "scale", "member", "extreme_threshold", REGIME_COLUMN}
#: Dimensions written in the ``threshold`` column (mm/h).
_THRESHOLD_DIMS = ("threshold", "extreme_threshold")
RADAR_SUFFIX = "_radar"


def scores_to_frame(scores: xr.Dataset, ci: xr.Dataset | None = None) -> pd.DataFrame:
    """Tidy table of the scalar scores (per threshold / scale) of one or several models.

    Parameters
    ----------
    scores : xarray.Dataset
        Output of :func:`qpe.verify.verify` or ``ScoreAccumulator.compute()``, possibly concatenated
        along a ``model`` dimension.
    ci : xarray.Dataset, optional
        Output of :func:`qpe.verify.bootstrap.bootstrap_ci` for the same scores (``bound`` dim).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, metric, threshold (mm/h), scale (km), value, ci_low, ci_high``; NaN where a
        column does not apply (written as empty cells by ``to_csv``).
    """
    frames = []
    for name, da in scores.data_vars.items():
        if not set(da.dims) <= _TABLE_DIMS:
            continue
        columns = {"value": _tidy(da)}
        if ci is not None and name in ci.data_vars:
            bounds = ci[name]
            columns["ci_low"] = _tidy(bounds.sel(bound="ci_low", drop=True))
            columns["ci_high"] = _tidy(bounds.sel(bound="ci_high", drop=True))
        frame = pd.concat(columns, axis=1)
        frame.columns = list(columns)
        frame = frame.reset_index()
        is_radar = name.endswith(RADAR_SUFFIX)
        frame["metric"] = name[: -len(RADAR_SUFFIX)] if is_radar else name
        if is_radar:
            frame["model"] = "radar"
        elif "model" not in frame:
            frame["model"] = str(scores["model"].values) if "model" in scores.coords else ""
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.concat(frames, ignore_index=True)
    for column in COLUMNS:
        if column not in table:
            table[column] = np.nan
    columns = list(COLUMNS)
    if REGIME_COLUMN in table:
        table[REGIME_COLUMN] = table[REGIME_COLUMN].fillna("").astype(str)
        columns.append(REGIME_COLUMN)
    table = table[columns].drop_duplicates(ignore_index=True)
    return table.astype(
        {
            "threshold": "float64",
            "scale": "float64",
            "value": "float64",
            "ci_low": "float64",
            "ci_high": "float64",
        }
    )


#: Table rows that are counts (pixels, fields, samples): shown as whole numbers.
COUNTS = frozenset({"n_valid", "n_radar_extreme", "n_estimate_extreme", "n_hits_extreme", "n_displacement",
                    "n_displacement_fields", "n_regime", "reliability_count"})
#: Columns of :func:`score_descriptions`.
DESCRIPTION_COLUMNS = ("metric", "long_name", "units", "level", "per_scale", "count", "better")


def score_descriptions(scores: xr.Dataset) -> pd.DataFrame:
    """What each row metric of :func:`scores_to_frame` is, in the order of the score variables.

    Parameters
    ----------
    scores : xarray.Dataset
        Scores of one model or several (``model`` dimension), as :func:`scores_to_frame` takes them.

    Returns
    -------
    pandas.DataFrame
        One row per metric (``*_radar`` variables under their metric): ``long_name`` and ``units`` from
        the variable's attributes (units ``"1"`` for a number without unit); ``level``: the dimension of
        the ``threshold`` column (``"threshold"``: rain >= t, ``"extreme_threshold"``: rain > t, or ``""``);
        ``per_scale``: indexed by scale (km); ``count``: a count (:data:`COUNTS`); ``better``: ``"higher"``,
        ``"lower"``, ``"near <target>"`` (:data:`ORIENTATION`) or ``""``.
    """
    rows = {}
    for name, da in scores.data_vars.items():
        if not set(da.dims) <= _TABLE_DIMS:
            continue
        metric = name.removesuffix(RADAR_SUFFIX)
        if metric in rows:
            continue
        level = next((d for d in _THRESHOLD_DIMS if d in da.dims), "")
        rule = ORIENTATION.get(metric)
        better = "" if rule is None else f"near {rule.target:g}" if rule.target is not None else rule.better
        rows[metric] = (metric, str(da.attrs.get("long_name", metric)), str(da.attrs.get("units", "1")), level,
                        "scale" in da.dims, metric in COUNTS, better)
    return pd.DataFrame(list(rows.values()), columns=list(DESCRIPTION_COLUMNS))


def _tidy(da: xr.DataArray) -> pd.Series:
    """Average members; index by the remaining table dims (model, regime, threshold, scale)."""
    if "member" in da.dims:
        da = da.mean("member")
    for dim in _THRESHOLD_DIMS[1:]:
        if dim in da.dims:
            da = da.drop_vars("threshold", errors="ignore").rename({dim: "threshold"})
    keep = [d for d in ("model", REGIME_COLUMN, "threshold", "scale") if d in da.dims]
    da = (
        da.reset_coords(drop=True)
        if not keep
        else da.drop_vars([c for c in da.coords if c not in keep], errors="ignore")
    )
    if not keep:
        return pd.Series([float(da.values)], index=pd.RangeIndex(1, name="_row"))
    return da.transpose(*keep).to_series()


#: Figure name -> the score variables it draws (the ones present are returned).
FIGURES: dict[str, tuple[str, ...]] = {
    "performance_diagram": ("POD", "SR", "CSI", "BIAS"),
    "fss_vs_scale": ("FSS", "FSS_useful"),
    "ensemble_fss": ("FSS_ensemble", "FSS_ensemble_mean", "FSS", "FSS_useful"),
    "power_spectrum_ratio": ("rapsd", "rapsd_radar", "rapsd_ratio"),
    "spectral_coherence": ("coherence", "effective_resolution"),
    "exceedance_curves": ("exceedance", "exceedance_radar"),
    "histograms": ("histogram", "histogram_radar"),
    "rank_histogram": ("rank_histogram",),
    "reliability_diagram": ("reliability_forecast", "reliability_observed", "reliability_count"),
    "scorecard": ("scorecard_difference",),
    "scores_by_regime": ("CSI_regime", "RMSE_regime", "n_regime"),
    "quantile_quantile": ("exceedance", "exceedance_radar", "maximum", "maximum_radar"),
}


def quantile_quantile(scores: xr.Dataset) -> xr.Dataset:
    """Wet-pixel quantiles of the estimate (``quantile``, [member,] level) and of the radar
    (``quantile_radar``, level), mm/h, at :data:`~qpe.verify.distribution.QQ_LEVELS`, from the exceedance
    curves (:func:`~qpe.verify.distribution.wet_quantile_curve`); a variable whose curves are absent is left out."""
    out = {}
    for suffix in ("", RADAR_SUFFIX):
        if f"exceedance{suffix}" in scores and f"maximum{suffix}" in scores:
            out[f"quantile{suffix}"] = wet_quantile_curve(scores[f"exceedance{suffix}"], scores[f"maximum{suffix}"])
    return xr.Dataset(out)


#: Figures whose data are derived from the score variables, not the variables themselves.
_DERIVED_FIGURES = {"quantile_quantile": quantile_quantile}


def figure_data(scores: xr.Dataset) -> dict[str, xr.Dataset]:
    """The variables of each standard figure present in ``scores`` (see :data:`FIGURES`).

    Performance diagram: POD against success ratio SR = 1 - FAR per threshold; FSS against scale
    (km) per threshold with the useful level; ensemble, ensemble-mean and member FSS against scale;
    RAPSD ratio against wavelength (km); coherence against wavelength with the effective resolution;
    exceedance curves P(rain > intensity) of estimate and radar; rank histogram; reliability diagram
    per threshold; wet-pixel quantiles of estimate and radar (quantile-quantile plot, mm/h, derived from
    the exceedance curves: :func:`quantile_quantile`).
    """
    out = {}
    for figure, names in FIGURES.items():
        present = [n for n in names if n in scores.data_vars]
        if present:
            out[figure] = _DERIVED_FIGURES[figure](scores) if figure in _DERIVED_FIGURES else scores[present]
    return {figure: data for figure, data in out.items() if data.data_vars}


@dataclass(frozen=True)
class Orientation:
    """Which way a score is better: ``"higher"``, ``"lower"``, or closer to ``target`` (``"target"``).

    A score with a target (frequency bias 1, mean error 0 mm/h, spread-skill ratio 1) is compared through
    its distance to the target, ``|score - target|``, which is better lower.
    """

    better: str
    target: float | None = None

    def __post_init__(self) -> None:
        with_target = self.target is not None
        if self.better not in ("higher", "lower", "target") or (self.better == "target") != with_target:
            raise InputError(f"orientation {self.better!r} with target {self.target!r}: use higher, lower or "
                             "target with a target value")

    @property
    def higher_is_better(self) -> bool:
        """Whether more of the compared quantity (:meth:`compared`) is better."""
        return self.better == "higher"

    def compared(self, values: xr.DataArray) -> xr.DataArray:
        """The quantity compared between models: the score itself, or its distance to the target."""
        return abs(values - self.target) if self.target is not None else values

    def compared_name(self, metric: str) -> str:
        """How the compared quantity is written: ``CSI``, or ``|BIAS - 1|``."""
        return f"|{metric} - {self.target:g}|" if self.target is not None else metric


HIGHER, LOWER = Orientation("higher"), Orientation("lower")
#: The orientation of every scalar score that has one (the one table every layer reads). Scores whose
#: best value is the radar's own (wet fraction, quantiles, maximum) or that are counts have none.
ORIENTATION: dict[str, Orientation] = {
    **dict.fromkeys(("POD", "SR", "CSI", "ETS", "HSS", "CSI_matched", "CORR", "FSS", "FSS_ensemble",
                     "FSS_ensemble_mean", "POD_extreme", "CSI_extreme"), HIGHER),
    **dict.fromkeys(("FAR", "MAE", "RMSE", "effective_resolution", "CRPS", "CRPS_fair", "ensemble_mean_rmse",
                     "ensemble_skill",  # pysteps' ensemble_skill with RMSE: the mean member RMSE, mm/h
                     "BRIER", "FAR_extreme", "twCRPS", "twCRPS_fair", "energy_score", "variogram_score",
                     "SAL_L"), LOWER),
    **dict.fromkeys(("BIAS", "matched_bias", "BIAS_extreme", "spread_skill_ratio"), Orientation("target", 1.0)),
    **dict.fromkeys(("ME", "SAL_S", "SAL_A"), Orientation("target", 0.0)),
}


def orientation(metric: str) -> Orientation:
    """The orientation of ``metric`` (:data:`ORIENTATION`); an :class:`InputError` for a score without one."""
    if metric not in ORIENTATION:
        raise InputError(f"score {metric!r} has no orientation (better higher, lower or near a target)")
    return ORIENTATION[metric]


def preferred_level(values: Sequence[float] | np.ndarray, preferred: float) -> float | None:
    """The level shown when one must be picked (a headline threshold, mm/h, or scale, km): ``preferred``
    when it is among ``values``, else the middle finite value; None when there is none."""
    values = np.asarray(values, dtype=float)
    values = np.unique(values[np.isfinite(values)])
    if values.size == 0:
        return None
    return float(preferred) if preferred in values else float(values[values.size // 2])
