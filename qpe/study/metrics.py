"""The study's headline numbers, read from an evaluation's score Dataset (one row per scored model).

Columns (ensemble scores are averaged over members, i.e. they judge single realisations):

- ``csi_1`` — CSI at 1 mm/h; ``csi_01`` — at 0.1 mm/h; ``fss_5_32`` — FSS at 5 mm/h and 32 km;
- ``psd_ratio`` — geometric mean of the RAPSD ratio estimate / radar over wavelengths 8-32 km, with
  ``psd_ratio_min`` and ``psd_ratio_max`` over that band;
- ``wet_fraction_ratio``, ``p99_ratio`` — wet fraction (> 0.1 mm/h) and wet-pixel p99, estimate / radar;
- ``crps`` — CRPS (mm/h) of the ensemble; for a deterministic estimate its mean absolute error (the CRPS
  of a point forecast);
- ``nfe`` — network evaluations per sample; ``family``, ``frames`` (T), ``steps`` (K), ``base_model``;
  ``alt_sampler`` — the sampler named in a ``<model>_t<T>_<sampler>_k<K>`` variant ("" for a model's own).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

#: Wavelength band of the spectral realism check, km.
PSD_BAND_KM = (8.0, 32.0)
NAME_PATTERN = re.compile(r"^(?P<model>.+?)_t(?P<frames>\d+)(?:_(?P<sampler>[a-z]+))?(?:_k(?P<steps>\d+))?$")


def _member_mean(da: xr.DataArray) -> xr.DataArray:
    return da.mean("member", skipna=True) if "member" in da.dims else da


def _at(scores: xr.Dataset, name: str, **where) -> xr.DataArray:
    if name not in scores.data_vars:
        return xr.full_like(scores["model"], np.nan, dtype=float)
    da = _member_mean(scores[name])
    for dim, value in where.items():
        da = da.sel({dim: value}, method="nearest")
    return da


def psd_band(scores: xr.Dataset, band_km: tuple[float, float] = PSD_BAND_KM) -> pd.DataFrame:
    """Geometric mean, min and max of the RAPSD ratio over the wavelength band, per model."""
    ratio = _member_mean(scores["rapsd_ratio"])
    wavelength = ratio["wavelength"]
    inside = ratio.where((wavelength >= band_km[0]) & (wavelength <= band_km[1]), drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(inside.where(inside > 0))
    return pd.DataFrame({
        "psd_ratio": np.exp(log.mean("wavelength")).values,
        "psd_ratio_min": inside.min("wavelength").values,
        "psd_ratio_max": inside.max("wavelength").values,
    }, index=scores["model"].values)


def headline_metrics(scores: xr.Dataset) -> pd.DataFrame:
    """One row per model of ``scores`` (an evaluation's Dataset, ``model`` dimension) with the columns
    of the module docstring."""
    models = [str(m) for m in scores["model"].values]
    crps = _at(scores, "CRPS").values
    mae = _at(scores, "MAE").values
    table = pd.DataFrame({
        "csi_1": _at(scores, "CSI", threshold=1.0).values,
        "csi_01": _at(scores, "CSI", threshold=0.1).values,
        "fss_5_32": _at(scores, "FSS", threshold=5.0, scale=32.0).values,
        "wet_fraction_ratio": (_at(scores, "wet_fraction") / _at(scores, "wet_fraction_radar")).values,
        "p99_ratio": (_at(scores, "wet_p99") / _at(scores, "wet_p99_radar")).values,
        "crps": np.where(np.isfinite(crps), crps, mae),
    }, index=models)
    table = table.join(psd_band(scores))
    table["nfe"] = scores["network_evaluations"].values.astype(float) if "network_evaluations" in scores.coords \
        else np.nan
    table["family"] = [str(f) for f in scores["family"].values] if "family" in scores.coords else ""
    parsed = [NAME_PATTERN.match(m) for m in models]
    table["base_model"] = [p["model"] if p else m for p, m in zip(parsed, models)]
    table["frames"] = [int(p["frames"]) if p else np.nan for p in parsed]
    table["steps"] = [int(p["steps"]) if p and p["steps"] else np.nan for p in parsed]
    table["alt_sampler"] = [(p["sampler"] or "") if p else "" for p in parsed]
    table.index.name = "model"
    return table
