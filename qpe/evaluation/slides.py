"""A case for slides: the standard score figures made readable on a projector, and every score and curve
as tidy rows.

:func:`slide_figures` draws the figures of :mod:`qpe.evaluation.figures` (no second plotting of a score)
for the models of one case, then :func:`readable` raises every text of a figure to at least
:data:`SMALLEST_PT` points; :func:`figure_png` writes it at :data:`PROJECTOR_DPI`. :func:`scores_and_curves`
lays out every variable of the scores (the scalar scores of ``scores.csv`` and the curves behind the
figures: performance-diagram points, FSS by scale, spectra, coherence, histograms, exceedance, wet-pixel
quantiles, rank histograms, reliability) as one long table::

    model, score, threshold, x, x_unit, value, unit, figure

``x`` is what the curve runs along: the scale (km) of a score by scale, the wavelength, bin, intensity,
rank, level or probability bin of a curve, else the threshold (mm/h) of a score by threshold; empty for a
single number. Ensemble members are averaged, as in the score table and the figures; ``*_radar``
variables become rows of the model ``radar`` (once).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.text import Text

from qpe.evaluation.figures import FIGURES as FIGURE_MAKERS
from qpe.evaluation.summary import _concat_models
from qpe.verify import figure_data
from qpe.verify.tables import FIGURES as FIGURE_VARIABLES
from qpe.verify.tables import RADAR_SUFFIX

#: Resolution of the PNGs for slides, dots per inch.
PROJECTOR_DPI = 150
#: Smallest text on a slide figure, points (readable from the back of a meeting room).
SMALLEST_PT = 11.0
#: Smallest height of a slide figure, inches (an axis label of 11 pt such as the power spectra's fits).
SMALLEST_HEIGHT_IN = 5.6
#: Columns of :func:`scores_and_curves`.
COLUMNS = ("model", "score", "threshold", "x", "x_unit", "value", "unit", "figure")
#: Dimensions written in the ``threshold`` column, mm/h.
THRESHOLD_DIMS = ("threshold", "extreme_threshold")
#: Figures that need an ensemble (drawn as a note "no ensemble" otherwise: left out of slides).
ENSEMBLE_FIGURES = ("ensemble_fss", "rank_histogram", "reliability_diagram")


def combine_models(scores: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """The scores of several models (each from :func:`qpe.verify.verify`) along a ``model`` dimension, as
    ``qpe evaluate`` combines them (deterministic scores padded to member 0, curves NaN-padded)."""
    parts = [ds.assign_coords(model=name) for name, ds in scores.items()]
    return _concat_models(parts)


def readable(fig: Figure, smallest: float = SMALLEST_PT) -> Figure:
    """Raise every text of ``fig`` (titles, labels, ticks, legends, notes) to at least ``smallest`` points,
    each drawn as plain text (no math: a model named ``$\\frac$`` is drawn as written).

    Larger text keeps its size (tick labels all take ``smallest``); the constrained layout makes room when
    the figure is drawn, and a figure is at least :data:`SMALLEST_HEIGHT_IN` tall. Returns ``fig``.
    """
    fig.set_layout_engine("constrained")  # room for the larger text, legends still outside the axes
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, max(height, SMALLEST_HEIGHT_IN))  # long axis labels fit beside one row of panels
    # tick labels keep their math ($10^{-3}$ on log axes); titles, legends and notes, where names from
    # folders and cards appear, are drawn as written ("$" is no formula)
    on_axes = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for t in axis.findobj(Text)}
    for text in fig.findobj(Text):
        if id(text) not in on_axes:
            text.set_parse_math(False)
        if text.get_fontsize() < smallest:
            text.set_fontsize(smallest)
    for ax in fig.axes:  # tick labels are made when drawn: set the size they are made with
        ax.tick_params(which="both", labelsize=smallest)
        ax.title.set_wrap(True)  # a long title on two lines rather than past the figure's edge
    if fig.get_suptitle():
        fig._suptitle.set_wrap(True)
    return fig


def figure_png(fig: Figure, dpi: int = PROJECTOR_DPI) -> bytes:
    """``fig`` as PNG bytes at ``dpi``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def slide_figures(scores: xr.Dataset) -> dict[str, Figure]:
    """The standard figures (:data:`qpe.evaluation.figures.FIGURES`) whose data ``scores`` hold, in report
    order, each made :func:`readable`; the ensemble figures only when a model is an ensemble.

    Parameters
    ----------
    scores : xarray.Dataset
        Scores of one model or several (``model`` dimension, :func:`combine_models`).
    """
    available = figure_data(scores if "model" in scores.dims else scores.expand_dims(model=[_name(scores)]))
    figures = {}
    for name, (draw, _) in FIGURE_MAKERS.items():
        if name not in available:
            continue
        if name in ENSEMBLE_FIGURES and not _has_ensemble(available[name]):
            continue
        figures[name] = readable(draw(scores))
    return figures


def _name(scores: xr.Dataset) -> str:
    return str(scores["model"].values) if "model" in scores.coords else "model"


def _has_ensemble(data: xr.Dataset) -> bool:
    """Whether an ensemble figure has values (a deterministic model leaves its variables NaN or absent)."""
    names = [n for n in ("FSS_ensemble", "rank_histogram", "reliability_observed") if n in data]
    return any(bool(np.isfinite(data[n].values).any()) for n in names)


def _figure_of(variable: str) -> str:
    """The standard figure a variable is drawn in (the first of :data:`qpe.verify.tables.FIGURES`), else ``""``."""
    if variable.startswith("quantile"):
        return "quantile_quantile"
    for figure, names in FIGURE_VARIABLES.items():
        if variable in names:
            return figure
    return ""


def _rows(model: str, variable: str, da: xr.DataArray, coords: xr.Dataset) -> pd.DataFrame | None:
    """Tidy rows of one variable of one model (members averaged); None when it has more than one axis
    besides the threshold (a split by regime: in ``scores.nc``)."""
    if "member" in da.dims:
        da = da.mean("member", skipna=True)
    da = da.squeeze(drop=True) if "model" in da.dims else da
    threshold_dims = [d for d in da.dims if d in THRESHOLD_DIMS]
    other = [d for d in da.dims if d not in THRESHOLD_DIMS]
    if len(other) > 1 or len(threshold_dims) > 1:
        return None
    axis = other[0] if other else (threshold_dims[0] if threshold_dims else None)
    frame = da.to_dataframe(name="value").reset_index() if da.dims else pd.DataFrame({"value": [float(da.values)]})
    out = pd.DataFrame({
        "threshold": frame[threshold_dims[0]].astype(float) if threshold_dims else np.nan,
        "x": frame[axis].astype(float) if axis is not None else np.nan,
        "value": frame["value"].astype(float),
    })
    is_radar = variable.endswith(RADAR_SUFFIX)
    unit = str(da.attrs.get("units", ""))
    x_unit = ""
    if axis is not None:
        source = da[axis] if axis in da.coords else coords.get(axis)
        x_unit = str(source.attrs.get("units", "")) if source is not None else ""
        x_unit = x_unit or ("rank" if axis == "rank" else "1")  # e.g. the quantile level: a fraction
    out.insert(0, "score", variable[: -len(RADAR_SUFFIX)] if is_radar else variable)
    out.insert(0, "model", "radar" if is_radar else model)
    out["x_unit"], out["unit"], out["figure"] = x_unit, unit, _figure_of(variable)
    return out[list(COLUMNS)]


def scores_and_curves(scores: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Every score and curve of each model's scores as long rows (module notes); radar rows once.

    Parameters
    ----------
    scores : mapping of str to xarray.Dataset
        Model name -> its scores (:func:`qpe.verify.verify`; scalar ``model`` coordinate or none).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; NaN where ``threshold`` or ``x`` does not apply.
    """
    parts = []
    for model, ds in scores.items():
        derived = figure_data(ds).get("quantile_quantile", xr.Dataset())
        variables = {**dict(ds.data_vars), **{n: derived[n] for n in derived.data_vars}}
        for variable, da in variables.items():
            rows = _rows(model, variable, da, ds)
            if rows is not None:
                parts.append(rows)
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.concat(parts, ignore_index=True)
    radar = table["model"] == "radar"
    return pd.concat([table[~radar], table[radar].drop_duplicates(["score", "threshold", "x"])], ignore_index=True)
