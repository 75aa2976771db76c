"""Scores by regime: the pixel-wise scores split by cloud-top temperature, daylight, rain type and radar quality.

A *regime* is a boolean pixel mask per time. Regimes come in *groups*; the classes of a group partition
the pixels that the group can classify, so the statistics of a group's classes add up to the unsplit
statistics (exactly for counts, to rounding for sums):

==============  ====================================================================================
group           classes and rule (constants in :data:`REGIME_RULES`, the one table)
==============  ====================================================================================
cloud_top       10.8 um brightness temperature of the valid time in bins ``<210``, ``210-230``,
                ``230-250``, ``250-270``, ``>=270`` K (edges :attr:`RegimeRules.cloud_top_edges_k`;
                a pixel with no BT is in no class).
daylight        solar zenith angle Z from the time and the pixel's lon/lat (:func:`solar_zenith_angle`,
                NOAA's solar calculator after Meeus 1998): ``day`` Z < 90 deg, ``twilight``
                90 <= Z < 96 deg (civil twilight), ``night`` Z >= 96 deg. Refraction is ignored.
rain_type       the radar's texture by Steiner, Houze and Yuter (1995) (:func:`convective_mask`):
                ``convective``, ``stratiform`` (radar rain >= ``rain_min``, not convective) and ``dry``
                (radar rain < ``rain_min``, where an estimate's false alarms fall).
radar_quality   OPERA's quality index QIND (``rain_quality`` of the paired data, 0..1) in bins
                ``<0.5``, ``0.5-0.8``, ``>=0.8`` and ``no QIND`` (OPERA gives it only where rain was
                detected). **Skipped** when the data have no ``rain_quality`` (the synthetic data, the
                national networks): the masks' ``skipped`` attribute says so.
==============  ====================================================================================

**Weighting by radar quality** (optional, ``ScoreConfig.quality_weight``, ``qpe evaluate
--quality-weight``): instead of (or besides) splitting by QIND bins, every pixel of the pixel-wise
families counts with the weight :func:`quality_weights` gives it: its QIND (0..1), and
:attr:`RegimeRules.no_quality_weight` (1) where OPERA gives no QIND. OPERA leaves QIND out where it
detected no rain (``undetect``): those pixels are measured dry, and dropping them (weight 0) would drop
every correct negative and every false alarm over dry radar from the scores; weight 1 keeps them as
measured, as ``--min-quality`` keeps them when it masks low-quality rain (:mod:`qpe.data.readers.opera`).
Which scores take the weight, and why the others cannot: :mod:`qpe.verify.pairs` and
``docs/verification.md``.

Scores split (pixel-wise, so a mask restricts them exactly): the categorical contingency table at every
threshold (POD, FAR, SR, CSI, ETS, HSS, BIAS), the continuous errors (ME, MAE, RMSE, CORR) and, for an
ensemble, the empirical and fair CRPS; each as ``<score>_regime`` with a ``regime`` dimension, and the
pixels each rests on, ``n_regime``. **FSS is not split**: over a masked region the neighbourhood
fractions near the mask's edge see rain outside it as absent, so a regime FSS would measure the mask's
shape as much as the estimate (and a regime's pixels of one time are seldom a rectangle). Neither are
the field scores (spectra, SAL, displacement, energy and variogram scores), for the same reason.

Statistics are per field and add across times, so a regime split is mergeable per UTC day like every
other family. Cost: one pass of the split families per regime (15 regimes with the quality group,
11 without): per 512 x 512 field 80 ms for the masks, 0.11 s deterministic and 0.62 s for 8 members for
the split scores (``benchmarks/bench_verify.py``); so it is optional (``qpe evaluate --regimes``).

References: Steiner, M., R. A. Houze and S. E. Yuter, 1995: Climatological characterization of
three-dimensional storm structure from operational radar and rain gauge data. *J. Appl. Meteor.* 34,
1978-2007. Meeus, J., 1998: *Astronomical Algorithms*, 2nd ed., Willmann-Bell (chapters 25 and 28), as
in the NOAA Global Monitoring Laboratory's solar calculator.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from qpe.errors import DatasetError, InputError
from qpe.verify import categorical, continuous, ensemble
from qpe.verify.pairs import FieldPair, Region, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

#: Suffix of the split scores in the score Dataset (``CSI_regime`` ...).
SUFFIX = "_regime"


@dataclass(frozen=True)
class RegimeRules:
    """Every constant of the regime rules (the one table); see the module notes.

    Parameters
    ----------
    cloud_top_edges_k : tuple of float
        Inner edges of the 10.8 um brightness-temperature bins, K (increasing).
    daylight_edges_deg : tuple of float
        Solar zenith angles separating day, twilight and night, degrees.
    daylight_classes : tuple of str
        Names of the daylight classes, one more than the edges.
    rain_min : float
        Radar rain rate of a rainy pixel, mm/h (``rain >= rain_min``; drier pixels are ``dry``).
    zr_a, zr_b : float
        Z-R relation ``Z = a R^b`` (Marshall-Palmer, pysteps' default), mm^6 m^-3 and mm/h.
    background_radius_km : float
        Radius of the Steiner background (mean linear Z of the rainy pixels within it), km.
    convective_dbz : float
        Reflectivity that is convective whatever its background, dBZ.
    peakedness_dbz, peakedness_scale_dbz2 : float
        Steiner's peakedness criterion: convective when ``Z - Z_bg > peakedness_dbz - Z_bg^2 /
        peakedness_scale_dbz2`` (10 dB and 180 dB^2; the margin is floored at 0), dBZ.
    radius_edges_dbz, radius_km : tuple of float
        Convective radius around a convective centre by its background reflectivity: ``radius_km[i]``
        for ``Z_bg`` in bin ``i`` of ``radius_edges_dbz`` (Steiner et al. 1995 Fig. 7, as in Py-ART), km.
    quality_edges : tuple of float
        Inner edges of the radar quality index bins (0..1).
    no_quality_weight : float
        Weight of a pixel without a quality index when the scores are weighted by it
        (:func:`quality_weights`; see the module notes for why 1).
    """

    cloud_top_edges_k: tuple[float, ...] = (210.0, 230.0, 250.0, 270.0)
    daylight_edges_deg: tuple[float, ...] = (90.0, 96.0)
    daylight_classes: tuple[str, ...] = ("day", "twilight", "night")
    rain_min: float = 0.1
    zr_a: float = 200.0
    zr_b: float = 1.6
    background_radius_km: float = 11.0
    convective_dbz: float = 40.0
    peakedness_dbz: float = 10.0
    peakedness_scale_dbz2: float = 180.0
    radius_edges_dbz: tuple[float, ...] = (20.0, 25.0, 30.0, 35.0)
    radius_km: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
    quality_edges: tuple[float, ...] = (0.5, 0.8)
    no_quality_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cloud_top_edges_k", "daylight_edges_deg", "radius_edges_dbz", "quality_edges"):
            edges = np.asarray(getattr(self, name), dtype=float)
            if edges.size == 0 or (np.diff(edges) <= 0).any():
                raise InputError(f"{name} must be increasing, got {list(edges)}")
        if len(self.daylight_classes) != len(self.daylight_edges_deg) + 1:
            raise InputError("daylight_classes needs one name more than daylight_edges_deg")
        if len(self.radius_km) != len(self.radius_edges_dbz) + 1:
            raise InputError("radius_km needs one value more than radius_edges_dbz")
        if not 0.0 <= self.no_quality_weight <= 1.0:
            raise InputError(f"no_quality_weight must lie in [0, 1], got {self.no_quality_weight}")


#: The regime rules used by the evaluation.
REGIME_RULES = RegimeRules()
#: Groups of regimes, in output order.
GROUPS = ("cloud_top", "daylight", "rain_type", "radar_quality")
RAIN_TYPES = ("convective", "stratiform", "dry")


def bin_labels(edges: Sequence[float], unit: str = "") -> list[str]:
    """Class names of bins with inner ``edges``: ``<e0``, ``e0-e1``, ..., ``>=eN`` (with ``unit``)."""
    unit = f" {unit}" if unit else ""
    inner = [f"{a:g}-{b:g}{unit}" for a, b in itertools.pairwise(edges)]
    return [f"<{edges[0]:g}{unit}", *inner, f">={edges[-1]:g}{unit}"]


def _binned(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """(class, ...) masks of the bins ``[-inf, e0), [e0, e1) ... [eN, inf)``; NaN in none."""
    index = np.digitize(values, edges)
    known = np.isfinite(values)
    return np.stack([(index == k) & known for k in range(len(edges) + 1)])


# -- solar zenith angle -----------------------------------------------------------------------------------
def solar_zenith_angle(time: np.datetime64 | pd.Timestamp, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Solar zenith angle at a UTC time, degrees: NOAA's solar calculator (after Meeus 1998).

    With ``T`` the Julian centuries since J2000: the sun's geometric mean longitude ``L0`` and mean
    anomaly ``M``, its equation of centre, apparent longitude ``lambda`` and the corrected obliquity
    ``eps`` give the declination ``decl = asin(sin(eps) sin(lambda))`` and the equation of time (min);
    true solar time ``t = UTC minutes of the day + eqtime + 4 lon``, hour angle ``h = t / 4 - 180`` deg,
    ``cos Z = sin(lat) sin(decl) + cos(lat) cos(decl) cos(h)``. Geometric (no refraction); 0.002 deg at
    the subsolar point of the 2021 March equinox, and within 0.02 deg of pyorbital (tests).

    Parameters
    ----------
    time : numpy.datetime64 or pandas.Timestamp
        UTC time.
    lon, lat : numpy.ndarray
        Longitude (east positive) and latitude, degrees, same shape.

    Returns
    -------
    numpy.ndarray
        Zenith angle, degrees (0: sun overhead, 90: centre of the sun on the horizon), shape of ``lon``.
    """
    when = pd.Timestamp(time)
    if when.tzinfo is not None:
        when = when.tz_convert("UTC").tz_localize(None)
    minutes = (when - when.normalize()) / pd.Timedelta(minutes=1)
    t = (when.to_julian_date() - 2451545.0) / 36525.0
    mean_long = np.deg2rad((280.46646 + t * (36000.76983 + t * 0.0003032)) % 360.0)
    anomaly = np.deg2rad(357.52911 + t * (35999.05029 - 0.0001537 * t))
    eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    centre = (np.sin(anomaly) * (1.914602 - t * (0.004817 + 0.000014 * t))
              + np.sin(2 * anomaly) * (0.019993 - 0.000101 * t) + np.sin(3 * anomaly) * 0.000289)
    omega = np.deg2rad(125.04 - 1934.136 * t)
    apparent_long = np.deg2rad(np.rad2deg(mean_long) + centre - 0.00569 - 0.00478 * np.sin(omega))
    obliquity = np.deg2rad(23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0
                           + 0.00256 * np.cos(omega))
    decl = np.arcsin(np.sin(obliquity) * np.sin(apparent_long))
    y = np.tan(obliquity / 2.0) ** 2
    eqtime = 4.0 * np.rad2deg(
        y * np.sin(2 * mean_long) - 2 * eccentricity * np.sin(anomaly)
        + 4 * eccentricity * y * np.sin(anomaly) * np.cos(2 * mean_long)
        - 0.5 * y * y * np.sin(4 * mean_long) - 1.25 * eccentricity**2 * np.sin(2 * anomaly)
    )
    hour_angle = np.deg2rad((minutes + eqtime + 4.0 * np.asarray(lon, dtype=float)) / 4.0 - 180.0)
    phi = np.deg2rad(np.asarray(lat, dtype=float))
    cos_zenith = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    return np.rad2deg(np.arccos(np.clip(cos_zenith, -1.0, 1.0)))


# -- convective / stratiform (Steiner et al. 1995) ---------------------------------------------------------
def _disk(radius_px: float) -> np.ndarray:
    r = int(np.floor(radius_px))
    i, j = np.mgrid[-r : r + 1, -r : r + 1]
    return (i * i + j * j) <= radius_px * radius_px + 1e-9


def convective_mask(rain: np.ndarray, pixel_km: float, rules: RegimeRules = REGIME_RULES) -> np.ndarray:
    """Convective pixels of a radar rain field by Steiner, Houze and Yuter (1995).

    Reflectivity ``Z = 10 log10(a R^b)`` dBZ of the rainy pixels (``R >= rain_min``); background
    ``Z_bg`` = the mean *linear* Z of the rainy pixels within ``background_radius_km`` (11 km) in dBZ. A
    rainy pixel is a convective centre when ``Z >= 40 dBZ`` or ``Z - Z_bg > max(10 - Z_bg^2 / 180, 0)``;
    every rainy pixel within the convective radius of a centre (1-5 km, growing with ``Z_bg``) is
    convective. Dry and NaN pixels are never convective.

    Parameters
    ----------
    rain : numpy.ndarray
        (y, x) radar rain rate, mm/h, NaN where there is no radar.
    pixel_km : float
        Pixel size, km.
    rules : RegimeRules

    Returns
    -------
    numpy.ndarray
        (y, x) bool.
    """
    rain = np.asarray(rain, dtype="float64")
    rainy = np.isfinite(rain) & (rain >= rules.rain_min)
    if not rainy.any():
        return np.zeros(rain.shape, dtype=bool)
    z_linear = np.where(rainy, rules.zr_a * np.where(rainy, rain, 1.0) ** rules.zr_b, 0.0)
    disk = _disk(rules.background_radius_km / pixel_km).astype("float64")
    total = ndimage.correlate(z_linear, disk, mode="constant", cval=0.0)
    count = ndimage.correlate(rainy.astype("float64"), disk, mode="constant", cval=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 10.0 * np.log10(z_linear)
        background = 10.0 * np.log10(total / count)
    margin = np.maximum(rules.peakedness_dbz - background**2 / rules.peakedness_scale_dbz2, 0.0)
    margin = np.where(background >= 0, margin, rules.peakedness_dbz)  # below 0 dBZ: the full 10 dB
    centre = rainy & ((z >= rules.convective_dbz) | (z - background > margin))
    radius_class = np.digitize(background, rules.radius_edges_dbz)
    convective = np.zeros(rain.shape, dtype=bool)
    for k, radius in enumerate(rules.radius_km):
        centres = centre & (radius_class == k)
        if centres.any():
            convective |= ndimage.binary_dilation(centres, _disk(radius / pixel_km))
    return convective & rainy


# -- masks ---------------------------------------------------------------------------------------------------
def _group_masks(group: str, labels: Sequence[str], masks: np.ndarray) -> xr.DataArray:
    """(regime, time, y, x) masks of one group, labelled ``"<group>: <class>"``."""
    return xr.DataArray(
        masks,
        dims=("regime", "time", "y", "x"),
        coords={
            "regime": ("regime", [f"{group}: {label}" for label in labels]),
            "regime_group": ("regime", [group] * len(labels)),
        },
    )


def regime_masks(
    radar: xr.DataArray,
    ir_108: xr.DataArray,
    lon: xr.DataArray,
    lat: xr.DataArray,
    quality: xr.DataArray | None = None,
    rules: RegimeRules = REGIME_RULES,
) -> xr.DataArray:
    """The regime masks of each time: cloud top, daylight, rain type and (with a quality field) radar quality.

    Parameters
    ----------
    radar : xarray.DataArray
        (time, y, x) radar rain rate, mm/h, NaN where there is no radar; its x/y (m) set the pixel size.
    ir_108 : xarray.DataArray
        (time, y, x) 10.8 um brightness temperature at the same times, K.
    lon, lat : xarray.DataArray
        (y, x) longitude and latitude of the pixel centres, degrees.
    quality : xarray.DataArray, optional
        (time, y, x) radar quality index, 0..1 (OPERA QIND), NaN where not given; without it the
        ``radar_quality`` group is skipped (attribute ``skipped``).
    rules : RegimeRules

    Returns
    -------
    xarray.DataArray
        (regime, time, y, x) bool, coordinates ``regime`` (``"cloud_top: <210 K"`` ...) and
        ``regime_group``, and the time/y/x of ``radar``.
    """
    for name, da, dims in (("radar", radar, ("time", "y", "x")), ("ir_108", ir_108, ("time", "y", "x")),
                           ("lon", lon, ("y", "x")), ("lat", lat, ("y", "x"))):
        if set(da.dims) != set(dims):
            raise DatasetError(f"{name} has dims {tuple(da.dims)}; expected {dims}")
    radar = radar.transpose("time", "y", "x")
    shape = radar.shape
    ir = np.asarray(ir_108.transpose("time", "y", "x").values, dtype="float64")
    lon_values = np.asarray(lon.transpose("y", "x").values, dtype="float64")
    lat_values = np.asarray(lat.transpose("y", "x").values, dtype="float64")
    if ir.shape != shape or lon_values.shape != shape[1:] or lat_values.shape != shape[1:]:
        raise DatasetError(f"regime inputs are not on the radar's {shape[1]} x {shape[2]} grid and times")
    pixel_km = float(np.abs(np.diff(radar["x"].values)).mean()) / 1000.0
    rain = np.asarray(radar.values, dtype="float64")
    zenith = np.stack([solar_zenith_angle(t, lon_values, lat_values) for t in radar["time"].values])
    convective = np.stack([convective_mask(field, pixel_km, rules) for field in rain])
    rainy = np.isfinite(rain) & (rain >= rules.rain_min)
    dry = np.isfinite(rain) & ~rainy
    parts = [
        _group_masks("cloud_top", bin_labels(rules.cloud_top_edges_k, "K"), _binned(ir, rules.cloud_top_edges_k)),
        _group_masks("daylight", rules.daylight_classes, _binned(zenith, rules.daylight_edges_deg)),
        _group_masks("rain_type", RAIN_TYPES, np.stack([convective, rainy & ~convective, dry])),
    ]
    skipped = ""
    if quality is None:
        skipped = "radar_quality: the paired data have no rain_quality (OPERA QIND)"
    else:
        values = np.asarray(quality.transpose("time", "y", "x").values, dtype="float64")
        if values.shape != shape:
            raise DatasetError("rain_quality is not on the radar's grid and times")
        masks = np.concatenate([_binned(values, rules.quality_edges), ~np.isfinite(values)[None]])
        parts.append(_group_masks("radar_quality", [*bin_labels(rules.quality_edges), "no QIND"], masks))
    masks = xr.concat(parts, dim="regime")
    masks = masks.assign_coords(time=radar["time"].values, y=radar["y"], x=radar["x"])
    return masks.assign_attrs(
        long_name="regime of each pixel", skipped=skipped,
        rules=", ".join(f"{k}={v}" for k, v in vars(rules).items()),
    )


# -- weights ----------------------------------------------------------------------------------------------
def quality_weights(quality: xr.DataArray, rules: RegimeRules = REGIME_RULES) -> xr.DataArray:
    """Pixel weights of the scores from the radar quality index: QIND, and ``no_quality_weight`` without one.

    Parameters
    ----------
    quality : xarray.DataArray
        ([time,] y, x) radar quality index, 0..1 (OPERA QIND, ``rain_quality`` of the paired data), NaN
        where not given.
    rules : RegimeRules

    Returns
    -------
    xarray.DataArray
        The weights (dimensionless, 0..1), same dims and coordinates; for
        ``ScoreAccumulator.accum(..., weight=...)``.

    Raises
    ------
    DatasetError
        A quality index outside [0, 1].
    """
    values = np.asarray(quality.values, dtype="float64")
    given = np.isfinite(values)
    if ((values[given] < 0) | (values[given] > 1)).any():
        raise DatasetError("the radar quality index (rain_quality) must lie in [0, 1]")
    weights = quality.copy(data=np.where(given, values, rules.no_quality_weight))
    return weights.assign_attrs(
        long_name="pixel weight of the scores: radar quality index (QIND)",
        units="1",
        no_quality_weight=rules.no_quality_weight,
    )


def paired_quality_weights(
    ds: xr.Dataset, times: Sequence, rules: RegimeRules = REGIME_RULES
) -> xr.DataArray:
    """The pixel weights (:func:`quality_weights`) of a paired dataset at some of its times.

    Raises
    ------
    InputError
        The dataset has no ``rain_quality`` (only OPERA gives a quality index).
    """
    if "rain_quality" not in ds.data_vars:
        raise InputError(
            "weighting by radar quality needs the quality index rain_quality (OPERA QIND) in the paired "
            "data; these data have none (the synthetic data and the national networks give none)"
        )
    return quality_weights(ds["rain_quality"].sel(time=times), rules)


# -- statistics ----------------------------------------------------------------------------------------------
#: The split families: name -> (statistics of a pair, scores of its statistics).
_SPLIT = {
    "categorical": (lambda pair, thresholds: categorical.categorical_statistics(pair, thresholds),
                    categorical.categorical_compute),
    "continuous": (lambda pair, thresholds: continuous.continuous_statistics(pair),
                   continuous.continuous_compute),
    "crps": (lambda pair, thresholds: ensemble.crps_statistics(pair), ensemble.crps_compute),
}


def regime_statistics(pair: FieldPair, thresholds: Sequence[float]) -> xr.Dataset:
    """Statistics of the split families in every regime of ``pair`` (which must carry regime masks).

    Returns
    -------
    xarray.Dataset
        ``<family>__<statistic>`` (family: categorical, continuous and, for an ensemble, crps), each with
        a ``regime`` dimension after ``([member,] time)``.
    """
    if pair.regimes is None:
        raise InputError("scores by regime need the regime masks: accum(estimate, radar, regimes=regime_masks(...))")
    families = [f for f in _SPLIT if f != "crps" or pair.is_ensemble]
    per_regime = []
    for k in range(pair.regimes.shape[0]):
        restricted = pair.restricted(pair.regimes[k])
        parts = []
        for family in families:
            stats = _SPLIT[family][0](restricted, thresholds)
            parts.append(stats.rename({name: f"{family}__{name}" for name in stats.data_vars}))
        per_regime.append(xr.merge(parts, combine_attrs="drop_conflicts"))
    stats = xr.concat(per_regime, dim="regime", coords="minimal", compat="override", combine_attrs="override")
    stats = stats.assign_coords(regime=("regime", pair.regime), regime_group=("regime", pair.regime_group))
    order = [d for d in ("member", "time", "regime") if d in stats.dims]
    return stats.transpose(*order, ...).assign_attrs(family="regimes")


def regime_compute(stats: xr.Dataset) -> xr.Dataset:
    """The split scores ``<score>_regime`` (dims ``([member,] regime[, threshold])``) and ``n_regime``."""
    out = {}
    for family, (_, compute) in _SPLIT.items():
        names = [n for n in stats.data_vars if str(n).startswith(f"{family}__")]
        if not names:
            continue
        scores = compute(stats[names].rename({n: n.split("__", 1)[1] for n in names}))
        out.update({f"{name}{SUFFIX}": da for name, da in scores.data_vars.items()})
    n = stats["continuous__n"]
    out[f"n{SUFFIX}"] = (n.isel(member=0, drop=True) if "member" in n.dims else n).assign_attrs(
        long_name="valid pixels in the regime", units="1")
    return xr.Dataset(out)


def regime_init() -> xr.Dataset:
    """Empty regime statistics."""
    return xr.Dataset(attrs={"family": "regimes"})


def regime_accum(stats: xr.Dataset, pair: FieldPair, thresholds: Sequence[float]) -> xr.Dataset:
    """Add the fields of ``pair`` (with regime masks); returns the new statistics."""
    return accumulate(stats, regime_statistics(pair, thresholds))


def regime_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    """Sum of two regime statistics (e.g. two days, two Dask workers)."""
    return add_statistics(stats_1, stats_2)


def regime_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    regimes: xr.DataArray,
    thresholds: Sequence[float],
    region: Region = None,
) -> xr.Dataset:
    """The pixel-wise scores of an estimate in each regime, over all its fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    regimes : xarray.DataArray
        (regime, [time,] y, x) bool masks, e.g. from :func:`regime_masks`.
    thresholds : sequence of float
        Categorical thresholds, mm/h (event: rain > threshold).
    region : optional
        Box or mask, see :func:`qpe.verify.pairs.pair_fields`.
    """
    pair = pair_fields(estimate, radar, region, regimes=regimes)
    return regime_compute(regime_accum(regime_init(), pair, thresholds))


def paired_regime_masks(ds: xr.Dataset, times: Sequence, rules: RegimeRules = REGIME_RULES) -> xr.DataArray:
    """The regime masks of a paired dataset at some of its times (:func:`regime_masks` of its fields).

    Parameters
    ----------
    ds : xarray.Dataset
        Paired layout (:mod:`qpe.data.paired`): ``rain`` (mm/h), ``ir`` with the ``IR_108`` channel (K),
        optionally ``rain_quality`` (OPERA QIND, 0..1), and a CF grid mapping for the pixels' lon/lat.
    times : sequence of datetime-like
        Valid times (the cloud top is the BT of the valid time).
    rules : RegimeRules
    """
    from qpe.data.grid import Grid

    radar = ds["rain"].sel(time=times)
    lon, lat = (xr.DataArray(v, dims=("y", "x")) for v in Grid.from_dataset(ds).lonlat())
    quality = ds["rain_quality"].sel(time=times) if "rain_quality" in ds.data_vars else None
    ir_108 = ds["ir"].sel(time=times, channel="IR_108", drop=True)
    return regime_masks(radar, ir_108, lon, lat, quality, rules)
