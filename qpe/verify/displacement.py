"""Where is the error: position or amount? Optical-flow displacement from estimate to radar.

For each field pair, pysteps' optical flow (:func:`pysteps.motion.proesmans.proesmans`, the anisotropic
diffusion method of Proesmans et al. 1994) is applied to the two-frame sequence ``[estimate, radar]``
after pysteps' usual rain transform (:func:`pysteps.utils.transformation.dB_transform`: ``10 log10(R)``
for ``R >= threshold``, 5 dB below the threshold for drier pixels and for invalid ones). The flow
``V(x)`` (pixels, one vector per pixel) is the motion that carries the estimate onto the radar, as
between two radar frames: ``radar(x) ~ estimate(x - V(x))``. **Sign convention: estimate -> radar.**
A positive ``displacement_east`` means the radar's rain lies east of the estimate's (the estimate is
placed too far west).

Reported, per member (an ensemble's members are each scored, as by the other families; ``scores.csv``
averages them):

* ``displacement`` (km): mean length ``|V| * pixel`` over the *rainy* pixels, those valid pixels where
  the estimate or the radar has ``rain >= threshold`` (the pixels the transform keeps as rain);
* ``displacement_east``, ``displacement_north`` (km): the mean vector's components over the same pixels
  (x and y of the grid, whatever the orientation of its rows);
* ``RMSE_unwarped``, ``MAE_unwarped`` and ``RMSE_warped``, ``MAE_warped`` (mm/h): the error of the
  estimate before and after warping it onto the radar with ``V`` (pysteps' semi-Lagrangian
  :func:`~pysteps.extrapolation.semilagrangian.extrapolate`, one step, bilinear), both over the same
  pixels: valid, and whose warped value is defined (its departure point and the four pixels around it
  valid and inside the grid). The warped error is the amount (and shape) error left once the position
  is corrected;
* ``position_error_fraction``: ``1 - MSE_warped / MSE_unwarped``, the share of the squared error that
  the displacement removes (1: the error is all position, 0: none of it);
* ``n_displacement`` (rainy pixels) and ``n_displacement_fields`` (fields with at least one rainy
  pixel): what the means rest on. Without rainy pixels the displacement scores are NaN.

Over many fields every mean is pooled over pixels (sums of every field, then one division), so a
field with much rain weighs more than a nearly dry one. A field without rainy pixels has no flow
(nothing to move): it adds its pixels, with equal errors before and after, to the amplitude errors.

Why Proesmans: of pysteps' methods, Lucas-Kanade and Farneback need OpenCV, DARTS needs a sequence of
at least three frames; VET takes two frames and gives the same shift (to 0.01 px) but cost 2-3.4x as
much on 128-256 px fields. Proesmans gives a dense field from two frames with sub-pixel accuracy
(<= 0.007 px on the known shifts of the tests), at about 3 s per 512 x 512 field (flow and warp, one core).

Caveat: between two *different* fields the flow also deforms structures that do not correspond, so
for an imperfect estimate ``V`` is not only a position error (realistic random fields of latent
correlation 0.8, no shift: mean length 18.6 km on a 2 km grid, position_error_fraction 0.63). The mean
vector is the robust, systematic part; the mean length and the position share are upper bounds.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from pysteps.extrapolation.semilagrangian import extrapolate
from pysteps.motion.proesmans import proesmans
from pysteps.utils.transformation import dB_transform

from qpe.verify.coords import score_attrs
from qpe.verify.distribution import DEFAULT_WET_THRESHOLD
from qpe.verify.pairs import FieldPair, Region, field_levels, pair_fields
from qpe.verify.statistics import accumulate, add_statistics

#: The pysteps motion method (and its module path, written in the scores' attributes).
MOTION_METHOD = "pysteps.motion.proesmans.proesmans"
#: Pyramid levels of the flow: pysteps' default, fewer on grids too small for them (see pyramid_levels).
MAX_LEVELS = 6
#: Fewest pixels across the coarsest pyramid level; coarser levels mismatch whole rain areas (a 96 x 96
#: field shifted by 3 px got a third of its rainy pixels wrong by > 1 px with 6 levels, none with 5).
MIN_COARSE_PIXELS = 8
#: Statistics of one field, in the order of :func:`field_displacement_statistics`.
_STATISTICS = (
    "sum_east",
    "sum_north",
    "sum_length",
    "n_rain",
    "n_fields",
    "sum_squared_unwarped",
    "sum_squared_warped",
    "sum_absolute_unwarped",
    "sum_absolute_warped",
    "n_warped",
)


def rain_to_db(rain: np.ndarray, threshold: float = DEFAULT_WET_THRESHOLD) -> np.ndarray:
    """pysteps' rain transform for optical flow: dB above the threshold, 5 dB below it elsewhere.

    Parameters
    ----------
    rain : numpy.ndarray
        (..., y, x) rain rate, mm/h; NaN (invalid) pixels are taken as dry.
    threshold : float
        Rain rate below which a pixel is dry, mm/h.

    Returns
    -------
    numpy.ndarray
        (..., y, x) dBR (``10 log10(R / (1 mm/h))``), float64.
    """
    values = np.nan_to_num(np.asarray(rain, dtype="float64"), nan=0.0)
    return dB_transform(values, threshold=threshold)[0]


def pyramid_levels(shape: tuple[int, int]) -> int:
    """Levels of the flow's image pyramid: :data:`MAX_LEVELS`, fewer so that the coarsest level (the
    grid halved ``levels - 1`` times) keeps at least :data:`MIN_COARSE_PIXELS` pixels across."""
    fit = int(np.floor(np.log2(max(min(shape), 1) / MIN_COARSE_PIXELS))) + 1
    return int(np.clip(fit, 1, MAX_LEVELS))


def displacement_field(
    estimate: np.ndarray, radar: np.ndarray, threshold: float = DEFAULT_WET_THRESHOLD
) -> np.ndarray:
    """Optical flow from the estimate to the radar (pysteps Proesmans on the dB-transformed pair).

    Parameters
    ----------
    estimate, radar : numpy.ndarray
        (y, x) rain rate, mm/h; NaN pixels are taken as dry.
    threshold : float
        Rain threshold of the dB transform, mm/h.

    Returns
    -------
    numpy.ndarray
        (2, y, x) displacement in pixels along the columns (``[0]``, x index) and the rows (``[1]``, y
        index), such that ``radar(x) ~ estimate(x - V(x))``. pysteps' settings (``lam`` 50, 100
        iterations) with :func:`pyramid_levels` levels.
    """
    images = np.stack([rain_to_db(estimate, threshold), rain_to_db(radar, threshold)])
    return proesmans(images, num_levels=pyramid_levels(images.shape[1:]), verbose=False)


def warp_estimate(estimate: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The estimate carried along ``flow`` for one step (pysteps semi-Lagrangian, bilinear).

    Parameters
    ----------
    estimate : numpy.ndarray
        (y, x) rain rate, mm/h; NaN where invalid.
    flow : numpy.ndarray
        (2, y, x) displacement, pixels (:func:`displacement_field`).

    Returns
    -------
    numpy.ndarray
        (y, x) mm/h, NaN where the departure point leaves the grid or touches an invalid pixel.
    """
    return extrapolate(
        np.asarray(estimate, dtype="float64"), flow, 1, outval=np.nan, allow_nonfinite_values=True
    )[0]


def field_displacement_statistics(
    estimate: np.ndarray,
    radar: np.ndarray,
    valid: np.ndarray,
    pixel_km: tuple[float, float],
    threshold: float = DEFAULT_WET_THRESHOLD,
) -> np.ndarray:
    """Sums of one field pair: displacement over rainy pixels, errors before and after warping.

    Parameters
    ----------
    estimate, radar : numpy.ndarray
        (y, x) rain rate, mm/h.
    valid : numpy.ndarray
        (y, x) bool, pixels scored.
    pixel_km : (float, float)
        Signed pixel steps (east per column, north per row), km: e.g. ``(2, -2)`` for a 2 km grid whose
        rows run from north to south.
    threshold : float
        Rainy pixel: ``rain >= threshold`` in the estimate or the radar, mm/h.

    Returns
    -------
    numpy.ndarray
        (10,) east, north and length sums (km) over the rainy pixels and their count, 1 if there is a
        rainy pixel (else 0), sums of squared and absolute errors unwarped and warped ((mm/h)^2, mm/h)
        over the pixels where the warped estimate is defined, and their count.
    """
    level = field_levels([threshold], radar)[0]
    estimate = np.where(valid, estimate, np.nan)
    rainy = valid & ((estimate >= level) | (radar >= level))
    out = np.zeros(len(_STATISTICS))
    warped = estimate
    if rainy.any():
        flow = displacement_field(estimate, np.where(valid, radar, np.nan), threshold)
        east, north = flow[0][rainy] * pixel_km[0], flow[1][rainy] * pixel_km[1]
        out[:5] = east.sum(), north.sum(), np.hypot(east, north).sum(), rainy.sum(), 1.0
        warped = warp_estimate(estimate, flow)
    scored = valid & np.isfinite(warped)
    before, after = (estimate - radar)[scored], (warped - radar)[scored]
    out[5:] = (before**2).sum(), (after**2).sum(), np.abs(before).sum(), np.abs(after).sum(), scored.sum()
    return out


def displacement_statistics(pair: FieldPair, threshold: float = DEFAULT_WET_THRESHOLD) -> xr.Dataset:
    """Per-field sums of every member, dims ``([member,] time)`` (see :func:`field_displacement_statistics`)."""
    n_members, n_times = pair.estimate.shape[:2]
    steps = (
        pair.pixel_km * float(np.sign(pair.x[1] - pair.x[0])),
        pair.pixel_km * float(np.sign(pair.y[1] - pair.y[0])),
    )
    values = np.zeros((len(_STATISTICS), n_members, n_times))
    for t in range(n_times):
        valid = pair.valid[t]
        if not valid.any():
            continue
        for m in range(n_members):
            values[:, m, t] = field_displacement_statistics(
                pair.estimate[m, t], pair.radar[t], valid, steps, threshold
            )
    return xr.Dataset(
        {name: pair.labelled(values[i], ()) for i, name in enumerate(_STATISTICS)},
        attrs={"family": "displacement"},
    )


def displacement_init() -> xr.Dataset:
    return xr.Dataset(attrs={"family": "displacement"})


def displacement_accum(
    stats: xr.Dataset, pair: FieldPair, threshold: float = DEFAULT_WET_THRESHOLD
) -> xr.Dataset:
    """Add the fields of ``pair``; returns the new statistics."""
    return accumulate(stats, displacement_statistics(pair, threshold))


def displacement_merge(stats_1: xr.Dataset, stats_2: xr.Dataset) -> xr.Dataset:
    return add_statistics(stats_1, stats_2)


def _attrs(long_name: str, units: str) -> dict:
    return score_attrs(long_name, units, reference=MOTION_METHOD, convention="estimate -> radar")


def displacement_compute(stats: xr.Dataset) -> xr.Dataset:
    """Mean displacement (km) over rainy pixels, errors before and after warping (mm/h), and counts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n_rain, n_warped = stats["n_rain"], stats["n_warped"]
        mse_unwarped = stats["sum_squared_unwarped"] / n_warped
        mse_warped = stats["sum_squared_warped"] / n_warped
        scores = {
            "displacement": (
                stats["sum_length"] / n_rain,
                "mean displacement length over rainy pixels",
                "km",
            ),
            "displacement_east": (stats["sum_east"] / n_rain, "mean displacement, east component", "km"),
            "displacement_north": (stats["sum_north"] / n_rain, "mean displacement, north component", "km"),
            "RMSE_unwarped": (np.sqrt(mse_unwarped), "RMSE before warping (pixels of RMSE_warped)", "mm/h"),
            "RMSE_warped": (np.sqrt(mse_warped), "RMSE after warping the estimate onto the radar", "mm/h"),
            "MAE_unwarped": (stats["sum_absolute_unwarped"] / n_warped, "MAE before warping", "mm/h"),
            "MAE_warped": (stats["sum_absolute_warped"] / n_warped, "MAE after warping", "mm/h"),
            "position_error_fraction": (
                1.0 - mse_warped / mse_unwarped,
                "share of the squared error removed by the displacement, 1 - MSE_warped / MSE_unwarped",
                "1",
            ),
            "n_displacement": (n_rain, "rainy pixels (estimate or radar) of the displacement", "1"),
            "n_displacement_fields": (stats["n_fields"], "fields with rainy pixels", "1"),
        }
    return xr.Dataset(
        {
            name: value.assign_attrs(_attrs(long_name, units))
            for name, (value, long_name, units) in scores.items()
        }
    )


def displacement_scores(
    estimate: xr.DataArray,
    radar: xr.DataArray,
    region: Region = None,
    threshold: float = DEFAULT_WET_THRESHOLD,
) -> xr.Dataset:
    """Displacement from estimate to radar and the error before and after warping, over all fields.

    Parameters
    ----------
    estimate : xarray.DataArray
        ([member,] [time,] y, x) rain rate, mm/h.
    radar : xarray.DataArray
        ([time,] y, x) rain rate, mm/h, NaN where there is no radar.
    region : optional
        Box or mask; the flow is computed on its bounding rectangle, pixels outside it are dry.
    threshold : float
        Rainy pixel (``rain >= threshold``) and the dB transform's threshold, mm/h.

    Returns
    -------
    xarray.Dataset
        See the module notes; ``([member])`` per variable.
    """
    pair = pair_fields(estimate, radar, region)
    return displacement_compute(displacement_accum(displacement_init(), pair, threshold))
