"""Scores of one model over many cases: the :class:`ScoreAccumulator` and :func:`verify`.

The accumulator takes (estimate, radar) pairs one call at a time — a case, a day, a batch of times —
reduces each to the small sufficient statistics of every family of scores and keeps them *per UTC
day*, never the fields. ``compute()`` sums the days and returns every score as one labelled
:class:`xarray.Dataset`; two accumulators ``merge`` (so Dask workers can each take some dates), and
the per-day statistics are what :func:`qpe.verify.bootstrap.bootstrap_ci` resamples.

Output variables (dims in brackets; ``member`` only for an ensemble estimate)::

    categorical   POD FAR SR CSI ETS HSS BIAS              [member, threshold]
    matched       CSI_matched matched_threshold matched_bias [member, threshold] (CSI at matched wet
                  fraction: the estimate thresholded where it has as many events as radar > threshold)
    continuous    ME MAE RMSE CORR                         [member]
    fss           FSS [member, threshold, scale], FSS_useful [threshold]
    spectra       rapsd [member, wavelength], rapsd_radar, rapsd_ratio [member, wavelength]
    distribution  histogram [member, bin], exceedance [member, intensity], wet_fraction, wet_p90,
                  wet_p99, wet_p999, maximum [member], each also as ``*_radar``; n_valid
    ensemble_fss  FSS_ensemble FSS_ensemble_mean [threshold, scale]   (ensemble probability; ensemble mean)
    coherence     coherence [member, wavelength], effective_resolution [member] (km)
    extremes      POD_extreme FAR_extreme CSI_extreme BIAS_extreme n_estimate_extreme n_hits_extreme
                  [member, extreme_threshold], n_radar_extreme [extreme_threshold]; ensembles also
                  twCRPS twCRPS_fair [extreme_threshold]
    ensemble      CRPS CRPS_fair spread ensemble_mean_rmse spread_skill_ratio ensemble_skill ensemble_spread,
                  rank_histogram [rank], BRIER [threshold], reliability_* [threshold, probability_bin]
    multivariate  energy_score variogram_score, variogram_score_lag [lag]
    sal           SAL_S SAL_A SAL_L [member]                (only when "sal" is in the families)
    displacement  displacement displacement_east displacement_north (km), RMSE_unwarped RMSE_warped
                  MAE_unwarped MAE_warped (mm/h), position_error_fraction, n_displacement,
                  n_displacement_fields [member]        (only when "displacement" is in the families)
    regimes       <score>_regime for the categorical, continuous and CRPS scores, n_regime
                  [member, regime, threshold] (only when "regimes" is in the families; the masks come with
                  each case: accum(estimate, radar, regimes=...), see qpe.verify.regimes)

With ``ScoreConfig(quality_weight=True)`` the pixel-wise families (categorical, matched, continuous,
distribution, extremes, ensemble, regimes) weight each pixel by the radar quality index given with each
case (``accum(estimate, radar, weight=quality_weights(quality))``); their counts (``n_*``, contingency
counts, histograms) are then sums of weights. See :mod:`qpe.verify.pairs` and :mod:`qpe.verify.regimes`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from qpe.errors import DatasetError, InputError
from qpe.settings import from_mapping, read_yaml_mapping
from qpe.verify import (
    categorical,
    coherence,
    continuous,
    displacement,
    distribution,
    ensemble,
    ensemble_fss,
    extremes,
    fss,
    matched,
    multivariate,
    regimes,
    sal,
    spectra,
)
from qpe.verify.pairs import DEFAULT_SCALES_KM, DEFAULT_THRESHOLDS, FieldPair, Region, pair_fields
from qpe.verify.statistics import add_statistics, check_compatible, group_statistics

#: Every family of scores, in output order.
FAMILIES = (
    "categorical",
    "matched",
    "continuous",
    "fss",
    "ensemble_fss",
    "spectra",
    "coherence",
    "distribution",
    "extremes",
    "ensemble",
    "multivariate",
    "sal",
    "displacement",
    "regimes",
)
#: Families computed only when asked for: slow (SAL, about a second per 512 x 512 field and scikit-image;
#: the optical flow of the displacement, seconds per field and member; the regime split, one pass of the
#: pixel-wise scores per regime, and regime masks to give with each case).
OPTIONAL_FAMILIES = ("sal", "displacement", "regimes")
#: Families computed unless told otherwise.
DEFAULT_FAMILIES = tuple(name for name in FAMILIES if name not in OPTIONAL_FAMILIES)


@dataclass(frozen=True)
class ScoreConfig:
    """Settings of every score; saved with the results (YAML-loadable).

    Parameters
    ----------
    thresholds : tuple of float
        Categorical / matched-frequency / FSS / reliability thresholds, mm/h.
    scales_km : tuple of float
        FSS neighbourhood widths, km.
    families : tuple of str
        Families to compute, from :data:`FAMILIES`. Ensemble scores are computed only for estimates
        with a member dimension.
    wet_threshold, max_rate : float
        First and last histogram edge, mm/h (wet pixel: rain > wet_threshold); the same bins serve the
        matched-frequency CSI. ``wet_threshold`` is also the rain threshold of the displacement's optical
        flow (rainy pixel: rain >= wet_threshold, pysteps' dB transform).
    bins_per_decade : int
        Histogram resolution; quantiles are good to ``10 ** (1 / bins_per_decade) - 1`` (2.3 %).
    quantiles : tuple of float
        Wet-pixel quantiles reported as ``wet_p90`` ...
    spectra_normalize : bool
        Normalise each RAPSD to sum to one (pysteps ``normalize``).
    spectra_min_coverage : float
        Leave out of the spectra fields with a smaller valid fraction of their rectangle.
    rank_min : float or None
        Rank histogram ``X_min``, mm/h (pysteps ``rankhist``).
    reliability_bins, reliability_min_count : int
        pysteps ``reldiag`` ``n_bins`` and ``min_count``.
    sal_thr_factor, sal_thr_quantile : float
        pysteps ``sal`` object threshold.
    extreme_thresholds : tuple of float
        Thresholds of the extremes family (exceedance scores with counts, twCRPS), mm/h.
    variogram_lags_km : tuple of float
        Lags of the variogram-score pixel pairs (along rows and columns), km.
    variogram_order : float
        Order p of the variogram score (Scheuerer and Hamill 2015).
    quality_weight : bool
        Weight every pixel by the radar quality index in the pixel-wise families (categorical, matched,
        continuous, distribution, extremes, ensemble, regimes; not the field scores): the weights
        (:func:`qpe.verify.regimes.quality_weights`) come with each case, ``accum(..., weight=...)``.
        Off by default: every pixel counts once.
    """

    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    scales_km: tuple[float, ...] = DEFAULT_SCALES_KM
    families: tuple[str, ...] = DEFAULT_FAMILIES
    wet_threshold: float = distribution.DEFAULT_WET_THRESHOLD
    max_rate: float = distribution.DEFAULT_MAX_RATE
    bins_per_decade: int = distribution.DEFAULT_BINS_PER_DECADE
    quantiles: tuple[float, ...] = distribution.DEFAULT_QUANTILES
    spectra_normalize: bool = False
    spectra_min_coverage: float = spectra.DEFAULT_MIN_COVERAGE
    rank_min: float | None = ensemble.DEFAULT_RANK_MIN
    reliability_bins: int = ensemble.DEFAULT_RELIABILITY_BINS
    reliability_min_count: int = ensemble.DEFAULT_RELIABILITY_MIN_COUNT
    sal_thr_factor: float = sal.DEFAULT_THR_FACTOR
    sal_thr_quantile: float = sal.DEFAULT_THR_QUANTILE
    extreme_thresholds: tuple[float, ...] = extremes.DEFAULT_EXTREME_THRESHOLDS
    variogram_lags_km: tuple[float, ...] = multivariate.DEFAULT_VARIOGRAM_LAGS_KM
    variogram_order: float = multivariate.DEFAULT_VARIOGRAM_ORDER
    quality_weight: bool = False

    def __post_init__(self) -> None:
        for name in (
            "thresholds",
            "scales_km",
            "families",
            "quantiles",
            "extreme_thresholds",
            "variogram_lags_km",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise InputError(f"unknown score families {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
        if not all(0 < q < 1 for q in self.quantiles):
            raise InputError(f"quantiles must lie in (0, 1), got {list(self.quantiles)}")
        for name, unit in (
            ("thresholds", "mm/h"),
            ("scales_km", "km"),
            ("extreme_thresholds", "mm/h"),
            ("variogram_lags_km", "km"),
        ):
            values = getattr(self, name)
            if not values or not all(isinstance(v, (int, float)) and 0 < v < float("inf") for v in values):
                raise InputError(f"{name} must be positive finite numbers ({unit}), got {list(values)}")
        if not 0 < self.variogram_order < float("inf"):
            raise InputError(f"variogram_order must be a positive number, got {self.variogram_order}")

    @classmethod
    def from_dict(cls, values: dict) -> ScoreConfig:
        """Config from a mapping (e.g. parsed YAML); raises on unknown keys."""
        return from_mapping(cls, values, "score")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ScoreConfig:
        return cls.from_dict(read_yaml_mapping(path, "score settings", empty_ok=True))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def edges(self) -> np.ndarray:
        return distribution.bin_edges(self.wet_threshold, self.max_rate, self.bins_per_decade)


@dataclass(frozen=True)
class _Family:
    statistics: Callable[[FieldPair, ScoreConfig], xr.Dataset]
    compute: Callable[[xr.Dataset, ScoreConfig], xr.Dataset]
    ensemble_only: bool = False


_FAMILY_FUNCTIONS: dict[str, _Family] = {
    "categorical": _Family(
        lambda p, c: categorical.categorical_statistics(p, c.thresholds),
        lambda s, c: categorical.categorical_compute(s),
    ),
    "matched": _Family(
        lambda p, c: matched.matched_statistics(p, c.thresholds, c.edges()),
        lambda s, c: matched.matched_compute(s),
    ),
    "continuous": _Family(
        lambda p, c: continuous.continuous_statistics(p), lambda s, c: continuous.continuous_compute(s)
    ),
    "fss": _Family(
        lambda p, c: fss.fss_statistics(p, c.thresholds, c.scales_km), lambda s, c: fss.fss_compute(s)
    ),
    "spectra": _Family(
        lambda p, c: spectra.spectra_statistics(p, c.spectra_normalize, c.spectra_min_coverage),
        lambda s, c: spectra.spectra_compute(s),
    ),
    "distribution": _Family(
        lambda p, c: distribution.distribution_statistics(p, c.edges()),
        lambda s, c: distribution.distribution_compute(s, c.quantiles),
    ),
    "ensemble": _Family(
        lambda p, c: ensemble.ensemble_statistics(p, c.thresholds, c.rank_min),
        lambda s, c: ensemble.ensemble_compute(s, c.reliability_bins, c.reliability_min_count),
        ensemble_only=True,
    ),
    "ensemble_fss": _Family(
        lambda p, c: ensemble_fss.ensemble_fss_statistics(p, c.thresholds, c.scales_km),
        lambda s, c: ensemble_fss.ensemble_fss_compute(s),
        ensemble_only=True,
    ),
    "coherence": _Family(
        lambda p, c: coherence.coherence_statistics(p, c.spectra_min_coverage),
        lambda s, c: coherence.coherence_compute(s),
    ),
    "extremes": _Family(
        lambda p, c: extremes.extremes_statistics(p, c.extreme_thresholds),
        lambda s, c: extremes.extremes_compute(s),
    ),
    "multivariate": _Family(
        lambda p, c: multivariate.multivariate_statistics(p, c.variogram_lags_km, c.variogram_order),
        lambda s, c: multivariate.multivariate_compute(s),
        ensemble_only=True,
    ),
    "sal": _Family(
        lambda p, c: sal.sal_statistics(p, c.sal_thr_factor, c.sal_thr_quantile),
        lambda s, c: sal.sal_compute(s),
    ),
    "displacement": _Family(
        lambda p, c: displacement.displacement_statistics(p, c.wet_threshold),
        lambda s, c: displacement.displacement_compute(s),
    ),
    "regimes": _Family(
        lambda p, c: regimes.regime_statistics(p, c.thresholds),
        lambda s, c: regimes.regime_compute(s),
    ),
}


def field_statistics(pair: FieldPair, config: ScoreConfig) -> dict[str, xr.Dataset]:
    """Per-field (``time`` dim) statistics of every configured family that applies to ``pair``."""
    return {
        name: _FAMILY_FUNCTIONS[name].statistics(pair, config)
        for name in FAMILIES
        if name in config.families and (pair.is_ensemble or not _FAMILY_FUNCTIONS[name].ensemble_only)
    }


def compute_scores(statistics: dict[str, xr.Dataset], config: ScoreConfig) -> xr.Dataset:
    """Scores of every family from its statistics (any extra dims, e.g. time or replicate, broadcast)."""
    parts = [_FAMILY_FUNCTIONS[name].compute(stats, config) for name, stats in statistics.items()]
    scores = xr.merge(parts, combine_attrs="override", compat="override", join="exact")
    scores.attrs = {}
    return scores


#: What an accumulator keeps its statistics per: each UTC day, or each valid time (to resample times).
RESOLUTIONS = {"day": "D", "time": "s"}


def _case_labels(times: np.ndarray, resolution: str) -> np.ndarray:
    """The case (day or time) of each field time, as datetime64 of the resolution's unit."""
    return np.asarray(times).astype(f"datetime64[{RESOLUTIONS[resolution]}]")


def _sorted_labels(keys) -> list[str]:
    """Case keys in time order, ``"NaT"`` (undated fields) last."""
    return sorted(set(keys), key=lambda k: (k == "NaT", k))


@dataclass(eq=False)
class ScoreAccumulator:
    """Accumulates every family of scores of one model over many cases, per UTC day (or per time).

    Parameters
    ----------
    config : ScoreConfig
        Thresholds, scales, families, histogram bins...
    model : str, optional
        Name of the model; becomes the scalar ``model`` coordinate of the scores.
    region : optional
        Box ``(xmin, ymin, xmax, ymax)`` in m, a :class:`qpe.data.grid.Region`, or a boolean (y, x)
        mask, applied to every case (see :mod:`qpe.verify.pairs`).
    resolution : {"day", "time"}
        Keep the statistics per UTC day (the default: small whatever the period) or per valid time
        (needed to resample times within days, :mod:`qpe.verify.bootstrap`; grows with the times).

    Examples
    --------
    >>> acc = ScoreAccumulator(ScoreConfig(), model="unet")
    >>> for day in days:                        # doctest: +SKIP
    ...     acc.accum(estimate.sel(time=day), radar.sel(time=day))
    >>> scores = acc.compute()                  # doctest: +SKIP
    """

    config: ScoreConfig = field(default_factory=ScoreConfig)
    model: str | None = None
    region: Region = None
    resolution: str = "day"
    _cases: dict[str, dict] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise InputError(f"unknown resolution {self.resolution!r}: use {' or '.join(RESOLUTIONS)}")

    def accum(
        self,
        estimate: xr.DataArray,
        radar: xr.DataArray,
        regimes: xr.DataArray | None = None,
        weight: xr.DataArray | None = None,
    ) -> ScoreAccumulator:
        """Add the fields of one (estimate, radar) pair; returns self.

        Parameters
        ----------
        estimate : xarray.DataArray
            ([member,] [time,] y, x) rain rate, mm/h, on the x/y coordinates of ``radar``.
        radar : xarray.DataArray
            ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
        regimes : xarray.DataArray, optional
            (regime, [time,] y, x) bool regime masks (:func:`qpe.verify.regimes.regime_masks`); needed
            when "regimes" is in the families.
        weight : xarray.DataArray, optional
            ([time,] y, x) pixel weights, 0..1 (:func:`qpe.verify.regimes.quality_weights`); given exactly
            when the config's ``quality_weight`` is on.
        """
        pair = pair_fields(estimate, radar, self.region, regimes, _checked_weight(self.config, weight))
        cases = _case_labels(pair.time, self.resolution)
        for name, stats in field_statistics(pair, self.config).items():
            for case, case_stats in group_statistics(stats, cases).items():
                self._add(name, case, case_stats)
        return self

    def _add(self, family: str, case: np.datetime64 | str, stats: xr.Dataset) -> None:
        cases = self._cases.setdefault(family, {})
        key = str(np.datetime64(case, RESOLUTIONS[self.resolution]))  # "YYYY-MM-DD[Thh:mm:ss]" or "NaT"
        if cases:
            check_compatible(next(iter(cases.values())), stats)
        cases[key] = add_statistics(cases[key], stats) if key in cases else stats

    def merge(self, other: ScoreAccumulator) -> ScoreAccumulator:
        """A new accumulator holding the cases of both (same config, model, region and resolution)."""
        if other.config != self.config:
            raise DatasetError("cannot merge score accumulators with different settings")
        if other.model != self.model:
            raise DatasetError(f"cannot merge scores of model {other.model!r} into {self.model!r}")
        if other.resolution != self.resolution:
            raise DatasetError(
                f"cannot merge statistics kept per {other.resolution} into those kept per {self.resolution}"
            )
        merged = ScoreAccumulator(self.config, self.model, self.region, self.resolution)
        for source in (self, other):
            for family, cases in source._cases.items():
                for case, stats in cases.items():
                    merged._add(family, case, stats)
        return merged

    @property
    def cases(self) -> np.ndarray:
        """The cases (days, or times) accumulated so far, sorted (NaT, for undated fields, last)."""
        keys = _sorted_labels(key for cases in self._cases.values() for key in cases)
        return np.array(keys, dtype=f"datetime64[{RESOLUTIONS[self.resolution]}]")

    @property
    def days(self) -> np.ndarray:
        """The UTC days accumulated so far, sorted (NaT, for undated fields, last)."""
        days = {str(d) for d in self.cases.astype("datetime64[D]")}
        return np.array(_sorted_labels(days), dtype="datetime64[D]")

    def statistics(self, by: str | None = None) -> dict[str, xr.Dataset]:
        """The sufficient statistics of each family: summed over all cases, or along a dimension.

        Parameters
        ----------
        by : {None, "day", "case"}
            None: summed. ``"day"``: summed per UTC day, dimension ``day``. ``"case"``: per kept case
            (day or time, see ``resolution``), dimension ``case`` with a ``case_day`` coordinate. Every
            family then has the same labels (zeros where it lacks a case).
        """
        if not self._cases:
            raise DatasetError("no fields have been accumulated: call accum(estimate, radar) first")
        if by is None:
            return {
                family: functools.reduce(add_statistics, cases.values())
                for family, cases in self._cases.items()
            }
        if by not in ("day", "case"):
            raise InputError(f"statistics by {by!r}: use None, 'day' or 'case'")
        labels = self.cases
        groups = labels.astype("datetime64[D]") if by == "day" else labels
        unique = self.days if by == "day" else labels
        out = {}
        for family, cases in self._cases.items():
            empty = xr.zeros_like(next(iter(cases.values())))
            per_group = []
            for group in unique:
                members = [cases.get(str(c), empty) for c, g in zip(labels, groups) if str(g) == str(group)]
                per_group.append(functools.reduce(add_statistics, members))
            stacked = xr.concat(
                per_group, dim=by, coords="minimal", compat="override", combine_attrs="override"
            )
            stacked = stacked.assign_coords({by: (by, unique.astype("datetime64[ns]"))})
            if by == "case":
                stacked = stacked.assign_coords(
                    case_day=("case", unique.astype("datetime64[D]").astype("datetime64[ns]"))
                )
            out[family] = stacked
        return out

    def compute(self) -> xr.Dataset:
        """Every score over all accumulated cases, as one labelled Dataset (see the module notes)."""
        scores = compute_scores(self.statistics(), self.config)
        return _label(scores, self.config, self.model, n_days=len(self.days))

    def to_dataset(self) -> xr.Dataset:
        """The per-case statistics as one Dataset (variables ``<family>__<name>``), e.g. to save.

        The case dimension is ``day`` for statistics kept per day, ``time`` for statistics kept per time.
        """
        parts = []
        for family, stats in self.statistics(by="case").items():
            stats = stats.drop_vars("case_day").rename(case=self.resolution)
            parts.append(stats.rename({name: f"{family}__{name}" for name in stats.data_vars}))
        ds = xr.merge(parts, combine_attrs="override", compat="override")
        ds.attrs.update({"qpe_score_config": json.dumps(self.config.to_dict()), "model": self.model or ""})
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, region: Region = None) -> ScoreAccumulator:
        """Rebuild an accumulator from :meth:`to_dataset` output."""
        try:
            config = ScoreConfig.from_dict(json.loads(ds.attrs["qpe_score_config"]))
        except (KeyError, ValueError) as err:
            raise DatasetError(f"not a qpe score-statistics dataset ({err})") from err
        resolution = next((r for r in RESOLUTIONS if r in ds.dims), None)
        if resolution is None:
            raise DatasetError(f"score statistics need a 'day' or 'time' dimension, got {sorted(ds.dims)}")
        acc = cls(config, ds.attrs.get("model") or None, region, resolution)
        for family in FAMILIES:
            names = [n for n in ds.data_vars if n.startswith(f"{family}__")]
            if not names:
                continue
            stats = ds[names].rename({n: n.split("__", 1)[1] for n in names})
            stats = stats.assign_attrs(family=family)
            for i, case in enumerate(stats[resolution].values):
                acc._add(family, case, stats.isel({resolution: i}, drop=True))
        return acc


def _checked_weight(config: ScoreConfig, weight: xr.DataArray | None) -> xr.DataArray | None:
    """The pixel weights, refused unless the settings (saved with the scores) say the scores are weighted."""
    if config.quality_weight and weight is None:
        raise InputError(
            "the scores are weighted by radar quality (quality_weight): give the weights with each case, "
            "weight=quality_weights(rain_quality)"
        )
    if weight is not None and not config.quality_weight:
        raise InputError("pixel weights were given but quality_weight is off in the score settings")
    return weight


def _label(scores: xr.Dataset, config: ScoreConfig, model: str | None, **attrs) -> xr.Dataset:
    scores = scores.assign_attrs({"qpe_score_config": json.dumps(config.to_dict()), **attrs})
    if model is not None:
        scores = scores.assign_coords(model=model)
    return scores


def verify(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    thresholds: Sequence[float] | None = None,
    scales_km: Sequence[float] | None = None,
    region: Region = None,
    *,
    families: Sequence[str] | None = None,
    per_time: bool = False,
    config: ScoreConfig | None = None,
    model: str | None = None,
    regimes: xr.DataArray | None = None,
    weight: xr.DataArray | None = None,
) -> xr.Dataset:
    """Every score of an estimate against radar, as one labelled Dataset.

    Parameters
    ----------
    estimate : xarray.DataArray
        (y, x), (time, y, x) or (member, [time,] y, x) rain rate, mm/h, on the x/y grid of ``radar``.
    radar : xarray.DataArray
        (y, x) or (time, y, x) rain rate, mm/h, NaN where there is no radar.
    thresholds : sequence of float, optional
        mm/h, for categorical scores, FSS and reliability; default (0.1, 1, 5, 10) or the config's.
    scales_km : sequence of float, optional
        FSS neighbourhood widths, km; default (2, 4, 8, 16, 32, 64) or the config's.
    region : optional
        Box ``(xmin, ymin, xmax, ymax)`` in m, a Region or a boolean (y, x) mask.
    families : sequence of str, optional
        Families to compute (default :data:`DEFAULT_FAMILIES`; add ``"sal"`` for SAL, ``"displacement"``
        for the optical-flow displacement).
    per_time : bool
        Keep a ``time`` dimension (scores of each field) instead of pooling all fields.
    config : ScoreConfig, optional
        Full settings; ``thresholds``/``scales_km``/``families`` override its fields.
    model : str, optional
        Name stored as the scalar ``model`` coordinate.
    regimes : xarray.DataArray, optional
        (regime, [time,] y, x) bool regime masks, for the ``"regimes"`` family.
    weight : xarray.DataArray, optional
        ([time,] y, x) pixel weights (:func:`qpe.verify.regimes.quality_weights`); when given, the
        pixel-wise families are weighted by them (``quality_weight`` is set in the config).

    Returns
    -------
    xarray.Dataset
        See :mod:`qpe.verify.aggregate` for the variables and their dims.
    """
    base = config or ScoreConfig()
    config = dataclasses.replace(
        base,
        thresholds=tuple(thresholds) if thresholds is not None else base.thresholds,
        scales_km=tuple(scales_km) if scales_km is not None else base.scales_km,
        families=tuple(families) if families is not None else base.families,
        quality_weight=base.quality_weight or weight is not None,
    )
    if not per_time:
        return ScoreAccumulator(config, model, region).accum(estimate, radar, regimes, weight).compute()
    pair = pair_fields(estimate, radar, region, regimes, _checked_weight(config, weight))
    scores = compute_scores(field_statistics(pair, config), config)
    return _label(scores, config, model)
