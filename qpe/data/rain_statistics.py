"""Summary statistics of rain fields, used to calibrate the synthetic benchmark against real radar.

Four statistics of a rain sequence ``rain(time, y, x)`` in mm/h (NaN = no radar coverage), pooled over
all its times:

1. **wet fraction** — :func:`wet_fraction`: share of valid pixels above 0.1 mm/h;
2. **wet-pixel quantiles** — :func:`wet_quantiles`: p50, p90, p99 of the rain rate of wet pixels;
3. **spectral slope** — :func:`spectral_slope`: slope of the radially averaged power spectrum of the
   rain field in dB, fitted over wavelengths 8-128 km;
4. **lag autocorrelation** — :func:`lag_autocorrelation`: correlation of the dB field with itself
   15 minutes later (Eulerian: same pixel, no motion correction).

Both spectral slope and autocorrelation work on the same transform of the rain rate (:func:`to_db`)::

    T = 10 log10(max(R, 0.1) / 0.1)     dB above the wet threshold; 0 for dry pixels and for NaN

which tames the skewed intensities (as pysteps does for its noise and autoregressive models).

Run ``python -m qpe.data.rain_statistics GLOB`` to measure OPERA composites (see docs/calibration.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.signal.windows import tukey

from qpe.data.grid import Grid
from qpe.errors import DatasetError

#: Wet threshold, mm/h.
WET_THRESHOLD = 0.1
#: Quantiles of wet-pixel rain rate reported.
WET_QUANTILES = (0.5, 0.9, 0.99)
#: Wavelength range of the spectral fit, km (8 km: the Nyquist wavelength of 4 km pixels).
SPECTRUM_WAVELENGTHS_KM = (8.0, 128.0)
#: Log-spaced wavenumber bins of the fit (three per octave over the four octaves of the range).
SPECTRUM_BINS = 12
#: Fraction of each side tapered by the Tukey window before the FFT.
SPECTRUM_TAPER = 0.25
#: Lag of the autocorrelation.
LAG = pd.Timedelta(minutes=15)

#: Rain rates (mm/h) of the positive pixels of real radar fields, pooled over a dataset, are at least
#: this: median and 99th percentile. Measured (docs/calibration.md data, ../shared/data): median 0.045
#: (OPERA France, 4 km) .. 1.35 (MeteoSwiss, convective), p99 2.3 (FMI, May) .. 25 (MeteoSwiss); the
#: synthetic benchmark 0.26 and 6.1. Fields below both bounds look like another unit (see
#: :data:`SUSPECT_RAIN_UNITS`): m/s (1 mm/h = 2.8e-7 m/s), mm/s, or 5-minute accumulations, which move
#: the median and p99 down together by 3.6e6, 3600 and 12. A 12x error is caught only on drizzle-dominated
#: fields (OPERA's median is 0.05 mm/h; in mm per 5 min it would be 0.004): a 5-minute accumulation of
#: convective rain stays plausible as a rate and is not flagged.
PLAUSIBLE_WET_MEDIAN_MM_H = 0.05
PLAUSIBLE_WET_P99_MM_H = 0.5
#: Fewest positive pixels on which the units are judged (a few showers say nothing about the unit).
MIN_PIXELS_FOR_UNIT_CHECK = 1000
#: Units that rain labelled mm/h is sometimes really in, with the factor that converts them to mm/h.
SUSPECT_RAIN_UNITS: dict[str, float] = {
    "m s-1": 3.6e6,
    "mm s-1 (kg m-2 s-1)": 3600.0,
    "mm per 5 min": 12.0,
}
#: Typical median of the positive rain rates of a radar field, mm/h (geometric middle of the measured
#: range): the suspected unit is the one that brings the median closest to it.
TYPICAL_WET_MEDIAN_MM_H = 0.25


class RainUnitWarning(UserWarning):
    """Rain labelled mm/h whose values look like another unit (m/s, mm/s, mm per 5 min)."""


def _rain_array(rain: xr.DataArray) -> np.ndarray:
    if rain.dims != ("time", "y", "x"):
        raise DatasetError(f"rain must have dims ('time', 'y', 'x'), got {rain.dims}")
    return np.asarray(rain.values, dtype="float64")


def to_db(rain: np.ndarray) -> np.ndarray:
    """``10 log10(max(R, 0.1) / 0.1)``: rain rate in dB above the wet threshold, 0 for dry and NaN pixels.

    Parameters
    ----------
    rain : numpy.ndarray
        Rain rate, mm/h, any shape, NaN where unknown.
    """
    with np.errstate(invalid="ignore"):
        r = np.where(np.isfinite(rain), np.maximum(rain, WET_THRESHOLD), WET_THRESHOLD)
    return 10.0 * np.log10(r / WET_THRESHOLD)


def wet_fraction(rain: xr.DataArray) -> float:
    """Fraction of valid (non-NaN) pixels with rain above 0.1 mm/h, pooled over all times.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN = no radar.
    """
    r = _rain_array(rain)
    valid = np.isfinite(r)
    n = int(valid.sum())
    if n == 0:
        return float("nan")
    return float((r[valid] > WET_THRESHOLD).sum() / n)


def wet_quantiles(rain: xr.DataArray, quantiles: Sequence[float] = WET_QUANTILES) -> dict[str, float]:
    """Quantiles of rain rate over the wet pixels (> 0.1 mm/h) of all times, mm/h.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN = no radar.
    quantiles : sequence of float
        Probabilities in (0, 1); linear interpolation between order statistics (numpy's default).

    Returns
    -------
    dict
        ``{"p50": ..., "p90": ..., "p99": ...}`` (keys ``p`` + percent), NaN when nothing is wet.
    """
    r = _rain_array(rain)
    wet = r[np.isfinite(r) & (r > WET_THRESHOLD)]
    keys = [f"p{100 * q:g}" for q in quantiles]
    if wet.size == 0:
        return {k: float("nan") for k in keys}
    return dict(zip(keys, (float(v) for v in np.quantile(wet, list(quantiles)))))


def rain_unit_problem(positive: np.ndarray, units: str = "mm/h") -> str | None:
    """Evidence that rain labelled mm/h is in another unit, as one line; None when it looks like mm/h.

    The rule: with at least :data:`MIN_PIXELS_FOR_UNIT_CHECK` positive values, a median below
    :data:`PLAUSIBLE_WET_MEDIAN_MM_H` *and* a 99th percentile below :data:`PLAUSIBLE_WET_P99_MM_H` are
    not a radar rain rate in mm/h. The line gives both numbers and, for the unit of
    :data:`SUSPECT_RAIN_UNITS` that brings the median closest to :data:`TYPICAL_WET_MEDIAN_MM_H`, what
    the median would be read in that unit.

    Parameters
    ----------
    positive : numpy.ndarray
        Rain rates above 0 (any shape, e.g. a sample of a dataset's wet pixels), in the dataset's unit.
    units : str
        The unit the data are labelled with, for the message.
    """
    values = np.asarray(positive, dtype="float64").ravel()
    if values.size < MIN_PIXELS_FOR_UNIT_CHECK:
        return None
    median, p99 = (float(v) for v in np.quantile(values, [0.5, 0.99]))
    if median >= PLAUSIBLE_WET_MEDIAN_MM_H or p99 >= PLAUSIBLE_WET_P99_MM_H:
        return None
    unit, factor = min(
        SUSPECT_RAIN_UNITS.items(), key=lambda item: abs(np.log(median * item[1] / TYPICAL_WET_MEDIAN_MM_H))
    )
    return (
        f"rain is labelled {units} but looks like {unit}: its positive values have median {median:.3g} and "
        f"99th percentile {p99:.3g} {units} (radar rain rates: median >= {PLAUSIBLE_WET_MEDIAN_MM_H:g}, "
        f"p99 >= {PLAUSIBLE_WET_P99_MM_H:g} mm/h); read as {unit} the median would be "
        f"{median * factor:.3g} mm/h and the p99 {p99 * factor:.3g} mm/h: check the units of the source"
    )


def radial_power_spectrum(
    rain: xr.DataArray,
    bins: int = SPECTRUM_BINS,
    wavelengths_km: tuple[float, float] = SPECTRUM_WAVELENGTHS_KM,
) -> xr.DataArray:
    """Radially averaged power spectrum of the dB-transformed rain, averaged over time.

    Each time step: ``T = to_db(R)`` (NaN -> 0, i.e. treated as dry), minus its spatial mean, times a
    2-D Tukey window (tapering ``SPECTRUM_TAPER`` of each side, against the leakage of the domain's
    edges); power ``|FFT|^2 / (ny nx)`` at the physical wavenumbers ``k = sqrt(kx^2 + ky^2)`` (cycles/km,
    from the pixel size, so non-square grids and any pixel size work). The 2-D power is averaged over
    time, then over the ``bins`` log-spaced wavenumber bins between ``1/wavelengths_km[1]`` and
    ``1/wavelengths_km[0]``.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN = no radar, on a regular projected grid (x/y in m).
    bins : int
        Number of wavenumber bins.
    wavelengths_km : (float, float)
        Shortest and longest wavelength, km.

    Returns
    -------
    xarray.DataArray
        (wavenumber,) mean power, dB² km² per bin; coordinate ``wavenumber`` (geometric bin centre,
        cycles/km) and ``wavelength`` (km). Bins without any Fourier mode are dropped.
    """
    r = _rain_array(rain)
    dy_km, dx_km = _pixel_km(rain)
    nt, ny, nx = r.shape
    window = np.outer(tukey(ny, SPECTRUM_TAPER), tukey(nx, SPECTRUM_TAPER))
    power = np.zeros((ny, nx))
    for t in range(nt):
        field = to_db(r[t])
        field = (field - field.mean()) * window
        power += np.abs(np.fft.fft2(field)) ** 2 / field.size
    power /= nt
    k = np.hypot(np.fft.fftfreq(ny, d=dy_km)[:, None], np.fft.fftfreq(nx, d=dx_km)[None, :])
    edges = np.geomspace(1.0 / wavelengths_km[1], 1.0 / wavelengths_km[0], bins + 1)
    which = np.digitize(k.ravel(), edges) - 1
    inside = (which >= 0) & (which < bins)
    counts = np.bincount(which[inside], minlength=bins)
    sums = np.bincount(which[inside], weights=power.ravel()[inside], minlength=bins)
    keep = counts > 0
    centres = np.sqrt(edges[:-1] * edges[1:])[keep]
    return xr.DataArray(
        sums[keep] / counts[keep], dims="wavenumber",
        coords={"wavenumber": ("wavenumber", centres, {"units": "cycles/km"}),
                "wavelength": ("wavenumber", 1.0 / centres, {"units": "km"})},
        attrs={"units": "dB2 km2", "long_name": "radially averaged power spectrum of 10 log10(R / 0.1)"},
    )


def spectral_slope(rain: xr.DataArray) -> float:
    """Slope of the radially averaged power spectrum of the dB rain, log-log, over 8-128 km wavelengths.

    The least-squares slope of ``log10(power)`` against ``log10(wavenumber)`` over the bins of
    :func:`radial_power_spectrum` (negative: ``P(k) ∝ k^slope``). The wavelength range is fixed in km, so
    fields of any pixel size (up to 4 km) and domain size (from 256 km) are compared on the same scales.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN = no radar.
    """
    spectrum = radial_power_spectrum(rain)
    positive = spectrum.values > 0
    if positive.sum() < 3:
        return float("nan")
    k = spectrum["wavenumber"].values[positive]
    return float(np.polyfit(np.log10(k), np.log10(spectrum.values[positive]), 1)[0])


def lag_autocorrelation(rain: xr.DataArray, lag: pd.Timedelta = LAG) -> float:
    """Pearson correlation of the dB rain (:func:`to_db`) at the same pixel ``lag`` apart.

    All pairs of times exactly ``lag`` apart are pooled; in each pair only pixels valid (non-NaN) at
    both times count. NaN when there is no such pair.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN = no radar.
    lag : pandas.Timedelta
        Time lag (15 minutes: one SEVIRI/OPERA step).
    """
    r = _rain_array(rain)
    times = pd.DatetimeIndex(rain["time"].values)
    position = {t: i for i, t in enumerate(times)}
    sums = np.zeros(5)  # n, sum a, sum b, sum a^2, sum b^2 ... and sum ab below
    sum_ab = 0.0
    for i, t in enumerate(times):
        j = position.get(t + lag)
        if j is None:
            continue
        both = np.isfinite(r[i]) & np.isfinite(r[j])
        a, b = to_db(r[i][both]), to_db(r[j][both])
        sums += (a.size, a.sum(), b.sum(), (a * a).sum(), (b * b).sum())
        sum_ab += (a * b).sum()
    n, sa, sb, saa, sbb = sums
    if n < 2:
        return float("nan")
    cov = sum_ab / n - sa / n * sb / n
    var_a, var_b = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
    if var_a <= 0 or var_b <= 0:
        return float("nan")
    return float(cov / np.sqrt(var_a * var_b))


def rain_statistics(rain: xr.DataArray) -> dict[str, float]:
    """The four calibration statistics of a rain sequence.

    Parameters
    ----------
    rain : xarray.DataArray
        (time, y, x) rain rate, mm/h, NaN = no radar.

    Returns
    -------
    dict
        ``wet_fraction``, ``wet_p50``, ``wet_p90``, ``wet_p99`` (mm/h), ``spectral_slope``,
        ``lag15_autocorrelation``.
    """
    quantiles = wet_quantiles(rain)
    return {
        "wet_fraction": wet_fraction(rain),
        "wet_p50": quantiles["p50"],
        "wet_p90": quantiles["p90"],
        "wet_p99": quantiles["p99"],
        "spectral_slope": spectral_slope(rain),
        "lag15_autocorrelation": lag_autocorrelation(rain),
    }


def _pixel_km(rain: xr.DataArray) -> tuple[float, float]:
    """(dy, dx) in km from the x/y coordinates (m)."""
    if "x" not in rain.coords or "y" not in rain.coords:
        raise DatasetError("rain has no x/y coordinates (m): the pixel size for the spectrum is unknown")
    grid = Grid.from_coords("unknown", rain["x"].values, rain["y"].values)
    return grid.dy / 1000.0, grid.dx / 1000.0


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the calibration statistics of OPERA composites over a region and print them as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m qpe.data.rain_statistics",
        description="Rain statistics (wet fraction, wet quantiles, spectral slope, 15-min autocorrelation) "
        "of OPERA ODIM HDF5 composites over a region, outliers above --max-rate masked.",
    )
    parser.add_argument("paths", nargs="+", help="OPERA HDF5 files or glob patterns")
    parser.add_argument("--region", default="france", help="named region (default: france)")
    parser.add_argument("--max-rate", type=float, default=300.0, help="outlier threshold, mm/h (default 300)")
    args = parser.parse_args(argv)
    from qpe.data.readers import read_radar
    from qpe.errors import QpeError

    try:
        radar = read_radar(args.paths, region=args.region, max_rate=args.max_rate, outliers="mask")
    except QpeError as err:
        print(f"qpe: error: {err}", file=sys.stderr)
        return 2
    stats = rain_statistics(radar["rain"])
    times = pd.DatetimeIndex(radar["time"].values)
    print(json.dumps({
        "region": args.region,
        "times": f"{times[0]:%Y-%m-%dT%H:%M}..{times[-1]:%Y-%m-%dT%H:%M} ({times.size})",
        "outliers_masked": int(radar.attrs.get("qc_outliers_flagged", 0)),
        **{k: round(v, 4) for k, v in stats.items()},
    }, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
