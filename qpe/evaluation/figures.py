"""The standard verification figures, drawn with matplotlib from :func:`qpe.verify.figure_data`.

Every function takes the scores of one model (scalar ``model`` coordinate) or of several (``model``
dimension), as :func:`qpe.evaluation.runner.evaluate_period` returns them, and gives a
:class:`matplotlib.figure.Figure` (no pyplot: no global state, safe in threads and servers). Each model
has its own colour (:func:`qpe.colours.model_colours`, by name: the same in every figure and every
model set); the radar reference (``*_radar`` variables) is drawn in black. Legends sit outside the axes.
Ensemble members are averaged, as in the score table; deterministic models are left out of the
ensemble figures (rank histogram, reliability).

=====================  ====================================================================
figure                 what it shows
=====================  ====================================================================
performance_diagram    POD against success ratio per threshold, CSI contours, bias lines
fss_vs_scale           FSS against neighbourhood width, one panel per threshold, useful level
ensemble_fss           ensemble, ensemble-mean and member FSS of the ensembles against width
power_spectrum_ratio   RAPSD of each model and of the radar, and their ratio, vs wavelength
spectral_coherence     coherence with the radar vs wavelength, effective resolution marked
exceedance_curves      P(rain > r) of each model and of the radar
histograms             fraction of valid pixels per rain-rate bin, each model and the radar
quantile_quantile      wet-pixel quantiles of each model against the radar's
rank_histogram         rank histograms of the ensembles, flat line of a reliable ensemble
scorecard              paired differences of each pair of models per score, their significance
scores_by_regime       CSI (headline threshold) and RMSE of each model in each regime
reliability_diagram    observed frequency against forecast probability per threshold
=====================  ====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle as _Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from qpe.colours import RADAR_COLOUR, model_colours
from qpe.errors import InputError
from qpe.evaluation.summary import scorecard_of
from qpe.verify import figure_data
from qpe.verify.comparison import HEADLINE_THRESHOLD, verdicts
from qpe.verify.tables import preferred_level

#: The radar reference curves.
RADAR_STYLE = {"color": RADAR_COLOUR, "linewidth": 2.2, "label": "radar", "zorder": 5}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def model_names(scores: xr.Dataset) -> list[str]:
    """Names of the models in ``scores`` (one model: its scalar coordinate, or ``"model"``)."""
    if "model" in scores.dims:
        return [str(m) for m in scores["model"].values]
    return [str(scores["model"].values)] if "model" in scores.coords else ["model"]


def _legend_below(fig: Figure, handles: list, ncols: int = 6, fontsize: float = 9) -> None:
    """One legend for the whole figure, below the axes (never over the data), at most ``ncols`` a row."""
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, min(len(handles), ncols)),
               fontsize=fontsize, frameon=False)


def _by_model(scores: xr.Dataset) -> xr.Dataset:
    if "model" in scores.dims:
        return scores
    return scores.expand_dims(model=model_names(scores))


def _member_mean(da: xr.DataArray) -> xr.DataArray:
    return da.mean("member", skipna=True) if "member" in da.dims else da


def _radar(da: xr.DataArray) -> xr.DataArray | None:
    """The radar curve of a ``*_radar`` variable: the first model's that has values."""
    if "model" not in da.dims:
        return da
    for i in range(da.sizes["model"]):
        curve = da.isel(model=i, drop=True)
        if np.isfinite(curve.values).any():
            return curve
    return None


def _data(scores: xr.Dataset, figure: str) -> xr.Dataset:
    data = figure_data(_by_model(scores)).get(figure)
    if data is None:
        raise InputError(f"the scores hold none of the variables of the {figure.replace('_', ' ')}")
    return data


def _threshold_label(value: float) -> str:
    return f"{value:g} mm/h"


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def _has_values(da: xr.DataArray) -> bool:
    return bool(np.isfinite(da.values).any())


# -- figures ----------------------------------------------------------------------------------------------
def performance_diagram(scores: xr.Dataset) -> Figure:
    """POD against success ratio (1 - FAR) per threshold (Roebber 2009), one colour per model.

    Grey shading: CSI; dashed lines: frequency bias. A perfect estimate sits at the top right.
    """
    data = _data(scores, "performance_diagram")
    models = model_names(data)
    colors = model_colours(models)
    fig = Figure(figsize=(7.2, 7.0), layout="constrained")
    ax = fig.add_subplot()
    sr, pod = np.meshgrid(np.linspace(1e-3, 1, 300), np.linspace(1e-3, 1, 300))
    csi = 1.0 / (1.0 / sr + 1.0 / pod - 1.0)
    filled = ax.contourf(sr, pod, csi, levels=np.linspace(0, 1, 11), cmap="Greys", alpha=0.45)
    fig.colorbar(filled, ax=ax, label="critical success index (CSI)", shrink=0.85)
    for bias in (0.25, 0.5, 0.8, 1.0, 1.25, 1.5, 2.0, 4.0):
        x = np.linspace(0, 1, 50)
        ax.plot(x, bias * x, color="0.35", linestyle="--", linewidth=0.8)
        xe, ye = (1.0, bias) if bias <= 1 else (1.0 / bias, 1.0)
        offset = (3, -3) if bias <= 1 else (-4, -10)
        ax.annotate(
            f"{bias:g}",
            (xe, ye),
            textcoords="offset points",
            xytext=offset,
            fontsize=8,
            color="0.25",
            ha="left" if bias <= 1 else "right",
            va="top" if bias <= 1 else "bottom",
        )
    thresholds = data["threshold"].values
    never = []  # (model, thresholds it never exceeds): POD 0, success ratio undefined, no point to draw
    for model in models:
        pod_m = _member_mean(data["POD"].sel(model=model)).values
        sr_m = _member_mean(data["SR"].sel(model=model)).values
        ok = np.isfinite(pod_m) & np.isfinite(sr_m)
        silent = np.isfinite(pod_m) & (pod_m == 0) & ~np.isfinite(sr_m)
        if silent.any():
            never.append(f"{model}: {', '.join(f'{v:g}' for v in thresholds[silent])} mm/h")
        ax.plot(sr_m[ok], pod_m[ok], color=colors[model], linewidth=1.2, alpha=0.8)
        for i in np.flatnonzero(ok):
            ax.plot(
                sr_m[i],
                pod_m[i],
                marker=_MARKERS[i % len(_MARKERS)],
                color=colors[model],
                markersize=8,
                markeredgecolor="black",
                markeredgewidth=0.6,
                linestyle="none",
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("success ratio (1 - FAR)")
    ax.set_ylabel("probability of detection (POD)")
    ax.set_title("Performance diagram (dashed: frequency bias)")
    if never:
        ax.text(
            0.98,
            0.02,
            "never above\n" + "\n".join(never),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.2",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"},
        )
    model_handles = [Line2D([], [], color=colors[m], linewidth=2.5, label=m) for m in models]
    threshold_handles = [
        Line2D(
            [],
            [],
            marker=_MARKERS[i % len(_MARKERS)],
            color="0.4",
            markeredgecolor="black",
            linestyle="none",
            markersize=8,
            label=f"> {_threshold_label(t)}",
        )
        for i, t in enumerate(thresholds)
    ]
    # one legend: models on the first rows, thresholds on the next, at most 4 a row to fit the width;
    # legends fill column by column, so the rows are padded and read out column-major
    ncols = min(4, max(len(model_handles), len(threshold_handles)))
    blank = Line2D([], [], linestyle="none", label=" ")
    rows = [
        group[k : k + ncols]
        for group in (model_handles, threshold_handles)
        for k in range(0, len(group), ncols)
    ]
    rows = [r + [blank] * (ncols - len(r)) for r in rows]
    handles = [row[c] for c in range(ncols) for row in rows]
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    return fig


def fss_vs_scale(scores: xr.Dataset) -> Figure:
    """FSS against neighbourhood width, one panel per threshold; dotted: useful level 0.5 + f_o/2."""
    data = _data(scores, "fss_vs_scale")
    models = model_names(data)
    colors = model_colours(models)
    thresholds = data["threshold"].values
    scales = data["scale"].values
    ncols = min(len(thresholds), 4)
    nrows = int(np.ceil(len(thresholds) / ncols))
    fig = Figure(figsize=(3.6 * ncols, 3.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax, thr in zip(axes, thresholds, strict=False):
        for model in models:
            fss = _member_mean(data["FSS"].sel(model=model, threshold=thr)).values
            ax.plot(scales, fss, marker="o", markersize=4, color=colors[model], label=model)
        _fss_panel(ax, data, thr, scales)
    _fss_axes_done(axes, len(thresholds), ncols)
    _legend_below(fig, axes[0].get_legend_handles_labels()[0])
    fig.suptitle("Fractions skill score against scale (ensembles: member mean)")
    return fig


def _fss_panel(ax, data: xr.Dataset, threshold: float, scales: np.ndarray) -> None:
    """One FSS-against-scale panel's useful level (dotted), log-2 width axis (km), limits and title."""
    if "FSS_useful" in data:
        useful = _radar(data["FSS_useful"].sel(threshold=threshold))
        if useful is not None:
            ax.axhline(float(useful), color="black", linestyle=":", linewidth=1.2, label="useful (0.5 + f_o/2)")
    ax.set_xscale("log", base=2)
    ax.set_xlim(scales.min() / 1.25, scales.max() * 1.25)  # also when every FSS is undefined (no events)
    ax.set_xticks(scales, [f"{s:g}" for s in scales])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1)
    ax.set_title(f"rain >= {_threshold_label(threshold)}")
    ax.set_xlabel("neighbourhood width (km)")
    ax.grid(alpha=0.3)


def _fss_axes_done(axes: np.ndarray, used: int, ncols: int) -> None:
    """Hide the panels past the ``used`` thresholds; label the y axis of each row's first panel."""
    for ax in axes[used:]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("fractions skill score (FSS)")


def ensemble_fss(scores: xr.Dataset) -> Figure:
    """Ensemble FSS (solid), ensemble-mean FSS (dashed) and member FSS (dotted, member mean) against
    neighbourhood width, one panel per threshold, for each ensemble model."""
    data = figure_data(_by_model(scores)).get("ensemble_fss")
    models = _ensemble_models(data, "FSS_ensemble") if data is not None else []
    if not models:
        fig = Figure(figsize=(7.0, 4.8), layout="constrained")
        ax = fig.add_subplot()
        _note(ax, "no ensemble model in these scores:\nthe ensemble FSS needs several members")
        ax.set_title("Ensemble FSS")
        return fig
    colors = model_colours(model_names(data))
    thresholds, scales = data["threshold"].values, data["scale"].values
    ncols = min(len(thresholds), 4)
    nrows = int(np.ceil(len(thresholds) / ncols))
    fig = Figure(figsize=(3.6 * ncols, 3.4 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    curves = (
        ("FSS_ensemble", "-", "ensemble"),
        ("FSS_ensemble_mean", "--", "ensemble mean"),
        ("FSS", ":", "members"),
    )
    for ax, thr in zip(axes, thresholds, strict=False):
        for model in models:
            for name, style, what in curves:
                if name in data:
                    values = _member_mean(data[name].sel(model=model, threshold=thr)).values
                    ax.plot(
                        scales,
                        values,
                        linestyle=style,
                        marker="o",
                        markersize=3,
                        color=colors[model],
                        label=f"{model}, {what}",
                    )
        _fss_panel(ax, data, thr, scales)
    _fss_axes_done(axes, len(thresholds), ncols)
    # colour = model, line style = which FSS: a legend of models + 3 styles, not of their product
    handles = [Line2D([], [], color=colors[m], linewidth=2.5, label=m) for m in models]
    handles += [Line2D([], [], color="grey", linestyle=style, label=what) for _, style, what in curves]
    handles += [h for h in axes[0].get_legend_handles_labels()[0] if h.get_label().startswith("useful")]
    _legend_below(fig, handles, ncols=4, fontsize=8)
    fig.suptitle("Ensemble FSS (fraction of members above the threshold), ensemble-mean and member FSS")
    return fig


def power_spectrum_ratio(scores: xr.Dataset) -> Figure:
    """Mean RAPSD of each model and of the radar (left) and their ratio (right) against wavelength.

    A ratio below 1 at short wavelengths is an estimate smoother than the radar.
    """
    data = _data(scores, "power_spectrum_ratio")
    models = model_names(data)
    colors = model_colours(models)
    data = data.sel(wavelength=np.isfinite(data["wavelength"].values))  # drop the mean (frequency 0)
    wavelength = data["wavelength"].values
    fig = Figure(figsize=(11.5, 4.6), layout="constrained")
    ax_psd, ax_ratio = fig.subplots(1, 2)
    for model in models:
        if "rapsd" in data:
            ax_psd.plot(
                wavelength,
                _member_mean(data["rapsd"].sel(model=model)).values,
                color=colors[model],
                label=model,
            )
        if "rapsd_ratio" in data:
            ax_ratio.plot(
                wavelength,
                _member_mean(data["rapsd_ratio"].sel(model=model)).values,
                color=colors[model],
                label=model,
            )
    if "rapsd_radar" in data:
        radar = _radar(data["rapsd_radar"])
        if radar is not None:
            ax_psd.plot(wavelength, radar.values, **RADAR_STYLE)
    ax_ratio.axhline(1.0, color="black", linewidth=1.5, linestyle="--", label="radar (ratio 1)")
    if not any(_has_values(data[n]) for n in ("rapsd", "rapsd_radar") if n in data):
        for ax in (ax_psd, ax_ratio):
            _note(ax, "no power spectra: no field had enough valid pixels")
        return fig
    ticks = [
        w
        for w in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
        if wavelength.min() <= w <= wavelength.max()
    ]
    for ax in (ax_psd, ax_ratio):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(wavelength.max(), wavelength.min())  # large scales on the left
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("wavelength (km)")
        ax.grid(alpha=0.3, which="both")
    handles = {h.get_label(): h for ax in (ax_psd, ax_ratio) for h in ax.get_legend_handles_labels()[0]}
    _legend_below(fig, list(handles.values()), fontsize=8)
    units = data["rapsd"].attrs.get("units", "") if "rapsd" in data else ""
    ax_psd.set_ylabel(f"radially averaged power spectral density ({units})")
    ax_psd.set_title("Power spectra (mean over fields)")
    ax_ratio.set_ylabel("power ratio estimate / radar")
    ax_ratio.set_title("Power-spectrum ratio")
    return fig


def spectral_coherence(scores: xr.Dataset) -> Figure:
    """Coherence of each model with the radar against wavelength; dashed: 1 / sqrt(2); the effective
    resolution (where the coherence first falls below it) marked and given in the legend."""
    data = _data(scores, "spectral_coherence")
    models = model_names(data)
    colors = model_colours(models)
    fig = Figure(figsize=(7.6, 5.0), layout="constrained")
    ax = fig.add_subplot()
    if "coherence" not in data or not _has_values(data["coherence"]):
        _note(ax, "no coherence: no field had enough valid pixels")
        ax.set_title("Spectral coherence with the radar")
        return fig
    data = data.sel(wavelength=np.isfinite(data["wavelength"].values))  # drop the mean (frequency 0)
    wavelength = data["wavelength"].values
    level = 1.0 / np.sqrt(2.0)
    for model in models:
        coherence = _member_mean(data["coherence"].sel(model=model)).values
        label = model
        if "effective_resolution" in data:
            resolution = float(_member_mean(data["effective_resolution"].sel(model=model)))
            label += f" ({resolution:.3g} km)" if np.isfinite(resolution) else " (none)"
            if np.isfinite(resolution):
                ax.plot([resolution], [level], marker="v", markersize=9, color=colors[model], zorder=6)
        ax.plot(wavelength, coherence, color=colors[model], label=label)
    ax.axhline(level, color="black", linestyle="--", linewidth=1.2, label="1/√2")
    ticks = [
        w
        for w in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
        if wavelength.min() <= w <= wavelength.max()
    ]
    ax.set_xscale("log")
    ax.set_xlim(wavelength.max(), wavelength.min())  # large scales on the left
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("wavelength (km)")
    ax.set_ylabel("coherence |<E R*>| / sqrt(<|E|²><|R|²>)")
    ax.set_title("Spectral coherence with the radar (ensembles: member mean); effective resolution ▼")
    ax.grid(alpha=0.3, which="both")
    _legend_below(fig, ax.get_legend_handles_labels()[0], ncols=4)
    return fig


def exceedance_curves(scores: xr.Dataset) -> Figure:
    """P(rain > r) over the valid pixels, of each model and of the radar (log-log)."""
    data = _data(scores, "exceedance_curves")
    models = model_names(data)
    colors = model_colours(models)
    intensity = data["intensity"].values
    fig = Figure(figsize=(7.0, 5.2), layout="constrained")
    ax = fig.add_subplot()
    curves = []

    def draw(values, **style):
        values = np.where(values > 0, values, np.nan)
        curves.append(values)
        ax.plot(intensity, values, **style)

    _each_curve(data, "exceedance", models, colors, draw)
    ax.set_xscale("log")
    ax.set_yscale("log")
    top = np.nanmax([np.nanmax(c) if np.isfinite(c).any() else np.nan for c in curves] + [1e-6])
    last = max(
        (intensity[np.isfinite(c)].max() for c in curves if np.isfinite(c).any()), default=intensity[-1]
    )
    ax.set_xlim(intensity[0], min(intensity[-1], last * 1.5))
    ax.set_ylim(top * 1e-5 if np.isfinite(top) else 1e-6, 1.5 * top if np.isfinite(top) else 1)
    ax.set_xlabel(f"rain rate r ({data['intensity'].attrs.get('units', 'mm/h')})")
    ax.set_ylabel("exceedance probability P(rain > r)")
    ax.set_title("Exceedance curves (fraction of valid pixels)")
    ax.grid(alpha=0.3, which="both")
    _legend_below(fig, ax.get_legend_handles_labels()[0], ncols=4)
    return fig


def _each_curve(data: xr.Dataset, name: str, models: list[str], colors: dict[str, str], draw) -> None:
    """``draw(values, **style)`` each model's member-mean curve ``name``, then the radar's ``<name>_radar``."""
    if name in data:
        for model in models:
            draw(_member_mean(data[name].sel(model=model)).values, color=colors[model], label=model)
    if f"{name}_radar" in data:
        radar = _radar(data[f"{name}_radar"])
        if radar is not None:
            draw(radar.values, **RADAR_STYLE)


def rain_histogram(scores: xr.Dataset) -> Figure:
    """Fraction of the valid pixels in each rain-rate bin (log bins), of each model and of the radar
    (log-log, steps over the bins; ensembles: member mean)."""
    data = _data(scores, "histograms")
    models = model_names(data)
    colors = model_colours(models)
    fig = Figure(figsize=(7.0, 5.2), layout="constrained")
    ax = fig.add_subplot()
    bins = data["bin"].values
    drawn = []

    def draw(values, **style):
        values = np.where(values > 0, values, np.nan)  # an empty bin has no place on a log axis
        drawn.append(values)
        ax.step(bins, values, where="mid", **style)

    _each_curve(data, "histogram", models, colors, draw)
    ax.set_title("Histogram of rain rate (fraction of valid pixels per bin)")
    if not any(np.isfinite(v).any() for v in drawn):
        _note(ax, "no rain in the radar or the estimates")
        return fig
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"rain rate ({data['bin'].attrs.get('units', 'mm/h')}, bin centre)")
    ax.set_ylabel("fraction of valid pixels")
    ax.grid(alpha=0.3, which="both")
    _legend_below(fig, ax.get_legend_handles_labels()[0], ncols=4)
    return fig


def quantile_quantile(scores: xr.Dataset) -> Figure:
    """Wet-pixel quantiles of each model against the radar's at the same levels (log-log, ensembles:
    member mean of each member's quantiles, as ``wet_p99`` in the table); on the diagonal, the radar's
    distribution; below it, too little rain at that level. Levels 0.5, 0.9, 0.99, 0.999 are marked."""
    data = _data(scores, "quantile_quantile")
    models = model_names(data)
    colours = model_colours(models)
    fig = Figure(figsize=(6.4, 6.6), layout="constrained")
    ax = fig.add_subplot()
    radar = _radar(data["quantile_radar"]) if "quantile_radar" in data else None
    wet = data["quantile_radar"].attrs.get("wet_threshold") if "quantile_radar" in data else None
    title = "Quantile-quantile plot of wet-pixel rain rate" + (f" (> {wet:g} mm/h)" if wet else "")
    if radar is None or "quantile" not in data or not _has_values(data["quantile"]):
        _note(ax, "no wet pixel in the radar or the estimates:\nno quantiles to compare")
        ax.set_title(title)
        return fig
    levels, reference = data["level"].values, radar.values
    drawn = [reference[np.isfinite(reference)]]
    for model in models:
        values = _member_mean(data["quantile"].sel(model=model)).values
        ok = np.isfinite(values) & np.isfinite(reference)
        ax.plot(reference[ok], values[ok], marker="o", markersize=4, color=colours[model], label=model)
        drawn.append(values[ok])
    every = np.concatenate(drawn)
    low, high = every.min() / 1.3, every.max() * 1.3
    ax.plot([low, high], [low, high], color=RADAR_COLOUR, linestyle="--", linewidth=1.2, label="radar (1:1)")
    for level in (0.5, 0.9, 0.99, 0.999):
        at = np.flatnonzero(np.isclose(levels, level))
        if at.size and np.isfinite(reference[at[0]]):
            ax.annotate(f"p{100 * level:g}", (reference[at[0]], reference[at[0]]), textcoords="offset points",
                        xytext=(6, -12), fontsize=8, color="0.3")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("radar quantile (mm/h)")
    ax.set_ylabel("estimate quantile (mm/h)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    _legend_below(fig, ax.get_legend_handles_labels()[0], ncols=4)
    return fig


def _ensemble_models(data: xr.Dataset, name: str) -> list[str]:
    return [m for m in model_names(data) if name in data and _has_values(data[name].sel(model=m))]


def rank_histogram(scores: xr.Dataset) -> Figure:
    """Rank of the radar among the members, per ensemble model; flat (dashed) for a reliable ensemble.

    U-shaped: under-dispersive; peaked: over-dispersive; sloped: biased.
    """
    fig = Figure(figsize=(7.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    data = figure_data(_by_model(scores)).get("rank_histogram")
    models = _ensemble_models(data, "rank_histogram") if data is not None else []
    if not models:
        _note(ax, "no ensemble model in these scores:\na rank histogram needs several members")
        ax.set_title("Rank histogram")
        return fig
    colors = model_colours(model_names(data))
    width = 0.8 / len(models)
    flat = set()
    for i, model in enumerate(models):
        hist = data["rank_histogram"].sel(model=model)
        hist = hist[np.isfinite(hist.values)]
        ranks = hist["rank"].values
        ax.bar(ranks - 0.4 + width * (i + 0.5), hist.values, width=width, color=colors[model], label=model)
        if ranks.size not in flat:  # one line per ensemble size
            ax.hlines(
                1.0 / ranks.size,
                ranks[0] - 0.5,
                ranks[-1] + 0.5,
                color="black",
                linestyle="--",
                linewidth=1.2,
                label=f"flat, {ranks.size - 1} members",
            )
            flat.add(ranks.size)
    ax.set_xlabel("rank of the radar among the members (0: below all)")
    ax.set_ylabel("relative frequency")
    ax.set_title("Rank histogram (dashed: flat histogram of a reliable ensemble)")
    ax.set_xticks(np.arange(int(data["rank"].values.max()) + 1))
    tallest = float(np.nanmax(data["rank_histogram"].sel(model=models).values))
    ax.set_ylim(0, 1.08 * tallest)
    _legend_below(fig, ax.get_legend_handles_labels()[0], ncols=4)
    return fig


def reliability_diagram(scores: xr.Dataset) -> Figure:
    """Observed frequency against forecast probability of rain >= threshold, per ensemble model."""
    data = figure_data(_by_model(scores)).get("reliability_diagram")
    models = _ensemble_models(data, "reliability_observed") if data is not None else []
    if not models:
        fig = Figure(figsize=(7.0, 4.8), layout="constrained")
        ax = fig.add_subplot()
        _note(ax, "no ensemble model in these scores:\nreliability needs exceedance probabilities")
        ax.set_title("Reliability diagram")
        return fig
    colors = model_colours(model_names(data))
    thresholds = data["threshold"].values
    ncols = min(len(thresholds), 4)
    nrows = int(np.ceil(len(thresholds) / ncols))
    fig = Figure(figsize=(3.5 * ncols, 3.5 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, thr in zip(axes, thresholds, strict=False):
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect reliability")
        for model in models:
            forecast = data["reliability_forecast"].sel(model=model, threshold=thr).values
            observed = data["reliability_observed"].sel(model=model, threshold=thr).values
            ok = np.isfinite(forecast) & np.isfinite(observed)
            ax.plot(forecast[ok], observed[ok], marker="o", markersize=4, color=colors[model], label=model)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(f"rain >= {_threshold_label(thr)}")
        ax.set_xlabel("forecast probability")
        ax.grid(alpha=0.3)
    for ax in axes[len(thresholds) :]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("observed frequency")
    _legend_below(fig, axes[0].get_legend_handles_labels()[0])
    fig.suptitle("Reliability diagram")
    return fig


#: Scorecard cell colours by verdict (:func:`qpe.verify.comparison.verdicts`): significantly better, better,
#: equal, worse, significantly worse; grey: undefined.
_VERDICT_COLORS = {2: "#1a9641", 1: "#c7e9c0", 0: "#ffffff", -1: "#fdd0c9", -2: "#d7191c"}
VERDICT_MARKS = {2: "▲", 1: "△", 0: "=", -1: "▽", -2: "▼"}


def scorecard_grid(scores: xr.Dataset) -> Figure:
    """The scorecard: one row per pair (model − reference), one column per score; green where the model
    is better (dark, ▲: significantly), red where worse (dark, ▼: significantly); in each cell the paired
    difference of the compared quantity and the Diebold-Mariano p-value."""
    card = scorecard_of(scores)
    if card is None:
        raise InputError("the scores hold no scorecard (it needs two models or more)")
    verdict = verdicts(card).values
    n_pairs, n_scores = verdict.shape
    fig = Figure(figsize=(1.0 + 1.05 * n_scores, 1.4 + 0.62 * n_pairs), layout="constrained")
    ax = fig.subplots()
    for i in range(n_pairs):
        for j in range(n_scores):
            v = verdict[i, j]
            color = _VERDICT_COLORS[int(v)] if np.isfinite(v) else "#e0e0e0"
            ax.add_patch(_Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=color, edgecolor="white", linewidth=1.5))
            difference, p_value = card["difference"].values[i, j], card["dm_p_value"].values[i, j]
            if not np.isfinite(v):
                ax.text(j, i, "–", ha="center", va="center", fontsize=9, color="0.4")
                continue
            text = f"{VERDICT_MARKS[int(v)]} {difference:+.2g}"
            text += f"\np={p_value:.2g}" if np.isfinite(p_value) else ""
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5,
                    color="white" if abs(v) == 2 else "black")
    labels = [f"{m} − {r}" for m, r in zip(card["model"].values, card["reference"].values)]
    compared = [f"{label}\n({'↑' if better == 'higher' else '↓'} better)" if str(c) == str(m) else
                f"{label}\n({c} ↓ better)"
                for label, c, m, better in zip(card["score"].values, card["compared"].values,
                                               card["metric"].values, card["better"].values)]
    ax.set_xlim(-0.5, n_scores - 0.5)
    ax.set_ylim(n_pairs - 0.5, -0.5)
    ax.set_xticks(np.arange(n_scores), compared, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n_pairs), labels, fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    level = float(card.attrs.get("confidence", 0.95))
    ax.set_title(f"Scorecard: model − reference, paired over the same days; ▲▼ significant ({level:.0%} "
                 "interval excludes 0), △▽ not; p: Diebold-Mariano", fontsize=9)
    return fig


def scores_by_regime(scores: xr.Dataset) -> Figure:
    """CSI at the headline threshold and RMSE of each model in each regime (:mod:`qpe.verify.regimes`):
    horizontal bars, one row per regime (grouped by cloud top, daylight, rain type, radar quality), one
    bar per model; the regime's valid pixels beside each row."""
    data = _data(scores, "scores_by_regime")
    models = model_names(data)
    colors = model_colours(models)
    regimes = [str(r) for r in data["regime"].values]
    threshold = preferred_level(data["threshold"].values, HEADLINE_THRESHOLD) if "threshold" in data.dims else None
    panels = [(f"CSI (rain > {threshold:g} mm/h), higher is better", data["CSI_regime"].sel(threshold=threshold))]
    panels.append(("RMSE (mm/h), lower is better", data["RMSE_regime"]))
    fig = Figure(figsize=(11, 1.6 + 0.32 * len(regimes)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    height = 0.8 / max(len(models), 1)
    rows = np.arange(len(regimes))
    for ax, (title, values) in zip(axes, panels):
        for k, model in enumerate(models):
            bar = _member_mean(values.sel(model=model)).values
            ax.barh(rows - 0.4 + (k + 0.5) * height, np.nan_to_num(bar), height, color=colors[model], label=model)
        groups = [str(g) for g in data["regime_group"].values]
        for i in range(1, len(groups)):
            if groups[i] != groups[i - 1]:
                ax.axhline(i - 0.5, color="0.6", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    pixels = _member_mean(data["n_regime"]).max("model").values
    counts = [f"{n / 1e6:.3g} M" if n >= 1e6 else f"{n / 1e3:.3g} k" if n >= 1e3 else f"{n:.0f}" for n in pixels]
    axes[0].set_yticks(rows, [f"{r}  ({c} px)" for r, c in zip(regimes, counts)], fontsize=8)
    axes[0].set_ylim(len(regimes) - 0.5, -0.5)
    _legend_below(fig, axes[1].get_legend_handles_labels()[0], fontsize=8)
    return fig


#: Figure name -> (function, caption), in report order.
FIGURES: dict[str, tuple[Callable[[xr.Dataset], Figure], str]] = {
    "performance_diagram": (
        performance_diagram,
        (
            "Performance diagram: POD against success ratio at each threshold (marker), CSI shaded, "
            "frequency bias dashed. Top right is perfect."
        ),
    ),
    "fss_vs_scale": (
        fss_vs_scale,
        (
            "Fractions skill score against neighbourhood width; dotted: the useful level 0.5 + f_o/2 "
            "(Roberts and Lean 2008)."
        ),
    ),
    "ensemble_fss": (
        ensemble_fss,
        (
            "Ensemble FSS (solid: forecast fraction = fraction of members above the threshold, Necker et al. "
            "2024), FSS of the ensemble mean (dashed) and of the members (dotted, member mean), ensembles "
            "only; dotted black: the useful level."
        ),
    ),
    "power_spectrum_ratio": (
        power_spectrum_ratio,
        (
            "Mean radially averaged power spectra and their ratio to the radar's: below 1 at short "
            "wavelengths means smoother than the radar."
        ),
    ),
    "spectral_coherence": (
        spectral_coherence,
        (
            "Coherence between estimate and radar per wavelength (1: the radar's structures, 0: unrelated); "
            "the effective resolution (▼, legend) is where it first falls below 1/√2, from large to small "
            "wavelengths."
        ),
    ),
    "exceedance_curves": (
        exceedance_curves,
        (
            "Fraction of valid pixels with rain above r: the rain-rate distribution of each model against "
            "the radar's (black)."
        ),
    ),
    "histograms": (
        rain_histogram,
        (
            "Histogram of rain rate: the fraction of valid pixels in each logarithmic bin, each model against "
            "the radar's (black)."
        ),
    ),
    "quantile_quantile": (
        quantile_quantile,
        (
            "Quantile-quantile plot: wet-pixel quantiles of each model against the radar's at levels 0.05 to "
            "0.999 (p50 ... p999 marked on the diagonal); below the diagonal, the estimate has too little "
            "rain at that level, above it too much."
        ),
    ),
    "rank_histogram": (
        rank_histogram,
        (
            "Rank of the radar among the ensemble members (radar and members above 0.1 mm/h); flat for a "
            "reliable ensemble, U-shaped when under-dispersive."
        ),
    ),
    "scorecard": (
        scorecard_grid,
        (
            "Scorecard: each model against the reference (or every pair), in the headline scores. Green: the "
            "model is better (dark ▲: the paired bootstrap interval of the difference excludes 0), red: worse "
            "(dark ▼); each cell gives the difference of the compared quantity (the score, or its distance to "
            "the target value for bias, mean error, spread-skill) and the Diebold-Mariano p-value of the "
            "per-day (or per-time) series."
        ),
    ),
    "scores_by_regime": (
        scores_by_regime,
        (
            "Scores by regime: CSI at the headline threshold and RMSE of each model on the pixels of each "
            "regime (10.8 µm cloud-top temperature, daylight from the solar zenith angle, Steiner "
            "convective/stratiform/dry radar rain, OPERA radar quality where present); the valid pixels each "
            "rests on in brackets. Empty bars: no pixel or no event."
        ),
    ),
    "reliability_diagram": (
        reliability_diagram,
        (
            "Observed frequency of rain against the ensemble's exceedance probability; the diagonal is "
            "perfect reliability."
        ),
    ),
}


def write_figures(scores: xr.Dataset, folder: str | os.PathLike, dpi: int = 110) -> dict[str, Path]:
    """Draw every standard figure whose variables are in ``scores``; PNG files ``folder/<name>.png``.

    Returns
    -------
    dict
        Figure name -> path, in :data:`FIGURES` order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    available = figure_data(_by_model(scores))
    paths = {}
    for name, (draw, _) in FIGURES.items():
        if name not in available and name not in ("rank_histogram", "reliability_diagram"):
            continue
        fig = draw(scores)
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        paths[name] = path
    return paths
