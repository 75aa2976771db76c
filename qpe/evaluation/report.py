"""``report.html``: one self-contained page with the headline scores, the models and every figure.

The page is plain HTML with the PNG figures embedded (base64), so it can be mailed or archived as one
file; it links the full tables written beside it (``scores.csv``, ``scores.nc``, ``evaluation.yaml``).
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe.evaluation.figures import FIGURES, VERDICT_MARKS
from qpe.evaluation.summary import scorecard_of
from qpe.files import write_text
from qpe.verify.comparison import HEADLINE_SCALE, HEADLINE_THRESHOLD, verdicts
from qpe.verify.tables import preferred_level

#: Headline tables, each a list of (metric, at the headline threshold?, at the headline scale?):
#: the spatial axis (placement) and the statistical axis (amounts, distribution, ensemble).
HEADLINES = {
    "Spatial: detection and placement": (
        ("CSI", True, False),
        ("CSI_matched", True, False),
        ("ETS", True, False),
        ("POD", True, False),
        ("FAR", True, False),
        ("BIAS", True, False),
        ("FSS", True, True),
        ("FSS_ensemble", True, True),
        ("FSS_ensemble_mean", True, True),
        ("effective_resolution", False, False),
        ("RMSE", False, False),
        ("CORR", False, False),
    ),
    "Statistical: amounts, distribution, ensemble": (
        ("ME", False, False),
        ("wet_fraction", False, False),
        ("wet_p90", False, False),
        ("wet_p99", False, False),
        ("maximum", False, False),
        ("CRPS", False, False),
        ("CRPS_fair", False, False),
        ("spread_skill_ratio", False, False),
        ("energy_score", False, False),
        ("variogram_score", False, False),
    ),
    # qpe.verify.displacement (optical flow estimate -> radar) beside SAL; each only when computed
    "Where is the error: position or amount? Displacement estimate → radar (km, over rainy pixels), "
    "RMSE before and after warping the estimate with it (mm/h), and SAL": (
        ("displacement", False, False),
        ("displacement_east", False, False),
        ("displacement_north", False, False),
        ("RMSE_unwarped", False, False),
        ("RMSE_warped", False, False),
        ("position_error_fraction", False, False),
        ("SAL_S", False, False),
        ("SAL_A", False, False),
        ("SAL_L", False, False),
        ("n_displacement", False, False),
    ),
}
#: The extremes table: (metric, column label), each at every extreme threshold scored.
#: (FAR and the estimate's pixel counts are in the full table.)
EXTREMES = (
    ("CSI_extreme", "CSI"),
    ("POD_extreme", "POD"),
    ("BIAS_extreme", "BIAS"),
    ("twCRPS_fair", "fair twCRPS"),
    ("n_radar_extreme", "radar pixels"),
)


def headline_levels(table: pd.DataFrame) -> tuple[float | None, float | None]:
    """The threshold (1 mm/h when scored, else the middle one) and scale (16 km, else middle) shown."""
    return (preferred_level(table["threshold"].to_numpy(float), HEADLINE_THRESHOLD),
            preferred_level(table["scale"].to_numpy(float), HEADLINE_SCALE))


def _format(value: float, low: float = np.nan, high: float = np.nan) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.3g}"
    if np.isfinite(low) and np.isfinite(high):
        text += f' <span class="ci">[{low:.3g}, {high:.3g}]</span>'
    return text


def headline_frame(
    table: pd.DataFrame, metrics: Sequence[tuple[str, bool, bool]]
) -> tuple[pd.DataFrame, float | None, float | None]:
    """Rows: models (and radar), columns: ``metrics`` (see :data:`HEADLINES`), cells: value [CI]."""
    threshold, scale = headline_levels(table)
    models = list(dict.fromkeys(table["model"]))
    rows = {}
    columns = []
    for metric, at_threshold, at_scale in metrics:
        sel = table["metric"] == metric
        sel &= (table["threshold"] == threshold) if at_threshold else table["threshold"].isna()
        sel &= (table["scale"] == scale) if at_scale else table["scale"].isna()
        hits = table[sel]
        if hits.empty:
            continue
        label = metric + (
            f" ≥{threshold:g}" if metric.startswith("FSS") else f" >{threshold:g}" if at_threshold else ""
        )
        label += f" @{scale:g} km" if at_scale else ""
        columns.append(label)
        for _, row in hits.iterrows():
            rows.setdefault(row["model"], {})[label] = _format(row["value"], row["ci_low"], row["ci_high"])
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(
        index=[m for m in models if m in rows], columns=columns
    )
    return frame.fillna("–"), threshold, scale


def extremes_frame(table: pd.DataFrame, metrics: Sequence[tuple[str, str]] = EXTREMES) -> pd.DataFrame:
    """Rows: models, columns: each metric at each of its thresholds (``CSI >20`` ...), cells: value [CI].

    The exceedance scores and the pixel counts they rest on side by side (:data:`EXTREMES`).
    """
    models = list(dict.fromkeys(table["model"]))
    rows: dict[str, dict[str, str]] = {}
    columns = []
    for metric, label in metrics:
        part = table[(table["metric"] == metric) & table["scale"].isna()]
        for threshold in sorted(part["threshold"].dropna().unique()):
            column = f"{label} >{threshold:g}"
            columns.append(column)
            for _, row in part[part["threshold"] == threshold].iterrows():
                value = _format(row["value"], row["ci_low"], row["ci_high"])
                rows.setdefault(row["model"], {})[column] = value
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(
        index=[m for m in models if m in rows], columns=columns
    )
    return frame.fillna("–")


def _table_html(frame: pd.DataFrame, index_name: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        f"<tr><th>{html.escape(str(i))}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
        for i, row in zip(frame.index, frame.to_numpy(), strict=True)
    )
    head = f"<thead><tr><th>{html.escape(index_name)}</th>{head}</tr></thead>"
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _models_html(scores: xr.Dataset) -> str:
    keys = [
        k
        for k in ("family", "sampler", "steps", "members", "network_evaluations", "checkpoint_sha256", "path")
        if k in scores.coords
    ]
    rows = {}
    for i, model in enumerate(scores["model"].values if "model" in scores.dims else [scores["model"].values]):
        cells = {}
        for k in keys:
            value = scores[k].values[i] if scores[k].ndim else scores[k].values
            value = value.item() if isinstance(value, np.generic) else value
            if k == "steps" and value == -1 or k == "sampler" and value == "none":
                value = "–"
            if k == "checkpoint_sha256":
                value = str(value)[:12] or "–"
            cells[k.replace("_", " ")] = html.escape(str(value))
        rows[str(model)] = cells
    return _table_html(pd.DataFrame.from_dict(rows, orient="index"), "model")


def _full_html(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in ("value", "ci_low", "ci_high"):
        shown[column] = shown[column].map(lambda v: "" if not np.isfinite(v) else f"{v:.4g}")
    for column in ("threshold", "scale"):
        shown[column] = shown[column].map(lambda v: "" if not np.isfinite(v) else f"{v:g}")
    shown = shown.map(lambda v: html.escape(str(v)))
    return _table_html(shown.set_index("model"), "model")


def scorecard_frame_html(scores: xr.Dataset) -> pd.DataFrame | None:
    """The scorecard as a table of HTML cells, rows ``model − reference``, columns the scores; None without one.

    Each cell: ▲/▼ where the model is significantly better/worse (:func:`qpe.verify.comparison.verdicts`),
    △/▽ where not significantly, the difference with its interval, and the Diebold-Mariano p-value.
    """
    card = scorecard_of(scores)
    if card is None:
        return None
    verdict = verdicts(card).values
    classes = {2: "better", 1: "", 0: "", -1: "", -2: "worse"}
    rows = {}
    for i, (model, reference) in enumerate(zip(card["model"].values, card["reference"].values)):
        cells = {}
        for j, label in enumerate(card["score"].values):
            cell = card.isel(pair=i, score=j)
            v = verdict[i, j]
            if not np.isfinite(v):
                cells[str(label)] = "–"
                continue
            bounds = (float(cell["ci_low"]), float(cell["ci_high"]))
            difference = float(cell["difference"])
            text = f"{VERDICT_MARKS[int(v)]} {'+' if difference > 0 else ''}{_format(difference, *bounds)}"
            p_value = float(cell["dm_p_value"])
            if np.isfinite(p_value):
                text += f'<span class="ci">DM p = {p_value:.2g} ({int(cell["dm_cases"])} cases)</span>'
            css = classes[int(v)]
            cells[str(label)] = f'<span class="{css}">{text}</span>' if css else text
        rows[f"{model} − {reference}"] = cells
    columns = [f"{label} ({compared}, {'higher' if better == 'higher' else 'lower'} is better)"
               for label, compared, better in zip(card["score"].values, card["compared"].values,
                                                  card["better"].values)]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns = columns  # headers and row names are escaped by _table_html
    return frame


def scorecard_section(scores: xr.Dataset) -> str:
    """The report's "Is A better than B?" section (empty without a scorecard)."""
    frame = scorecard_frame_html(scores)
    if frame is None:
        return ""
    card = scorecard_of(scores)
    level = float(card.attrs.get("confidence", 0.95))
    return (
        "<h2>Is A better than B? Paired differences</h2>"
        "<p>Each model minus the reference, scored on the same times; the difference is of the score itself, "
        "or of its distance to the target (|BIAS − 1|, |ME|, |spread/skill − 1|). Grey brackets: the "
        f"{level:.0%} interval of the difference from the bootstrap replicates, which draw the same UTC days "
        "for both models; ▲/▼: the model is better/worse and the interval excludes 0 (without intervals: the "
        f"Diebold-Mariano p-value is below {1 - level:.2g}); △/▽: not significantly. DM p: Diebold-Mariano "
        "test of the per-day (or per-time) score differences, Newey-West variance. Also in "
        '<a href="scorecard.csv">scorecard.csv</a>.</p>'
        f"<div class='wide'>{_table_html(frame, 'model − reference')}</div>"
    )


#: The scores by regime shown in the report (metric, at the headline threshold?), the rest in scores.csv.
REGIME_METRICS = (("CSI_regime", True), ("BIAS_regime", True), ("RMSE_regime", False), ("ME_regime", False),
                  ("CRPS_fair_regime", False), ("n_regime", False))


def _quality_weighted(attrs: Mapping) -> bool:
    """Whether the scores were weighted by radar quality (their saved ``ScoreConfig.quality_weight``)."""
    try:
        return bool(json.loads(attrs.get("qpe_score_config", "{}")).get("quality_weight", False))
    except ValueError:
        return False


def regime_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Rows: regimes (:mod:`qpe.verify.regimes`), columns: each model's scores of :data:`REGIME_METRICS`,
    cells: value [CI]; empty when the scores are not split by regime."""
    if "regime" not in table:
        return pd.DataFrame()
    threshold, _ = headline_levels(table[table["regime"] == ""])
    part = table[table["regime"] != ""]
    rows: dict[str, dict[str, str]] = {}
    columns = []
    for model in dict.fromkeys(part["model"]):
        for metric, at_threshold in REGIME_METRICS:
            sel = (part["model"] == model) & (part["metric"] == metric)
            sel &= (part["threshold"] == threshold) if at_threshold else part["threshold"].isna()
            if not sel.any():
                continue
            name = "pixels" if metric == "n_regime" else metric.removesuffix("_regime")
            column = f"{model} {name}" + (f" >{threshold:g}" if at_threshold else "")
            columns.append(column)
            for _, row in part[sel].iterrows():
                rows.setdefault(row["regime"], {})[column] = _format(row["value"], row["ci_low"], row["ci_high"])
    regimes = list(dict.fromkeys(part["regime"]))
    return pd.DataFrame.from_dict(rows, orient="index").reindex(index=regimes, columns=columns).fillna("–")


def regime_section(table: pd.DataFrame, scores: xr.Dataset) -> str:
    """The report's "Scores by regime" section (empty when the scores are not split by regime)."""
    frame = regime_frame(table)
    if frame.empty:
        return ""
    groups = {str(g) for g in scores["regime_group"].values} if "regime_group" in scores.coords else set()
    skipped = "" if "radar_quality" in groups else (
        " Radar quality is not split: the paired data have no <code>rain_quality</code> (OPERA QIND).")
    weighted = (" The scores are weighted by QIND: the 'pixels' columns are sums of weights, not counts."
                if _quality_weighted(scores.attrs) else "")
    return (
        "<h2>Scores by regime</h2>"
        "<p>The pixel-wise scores on the pixels of each regime: 10.8 µm cloud-top temperature of the valid "
        "time, daylight from the solar zenith angle (day &lt; 90°, twilight 90–96°, night ≥ 96°), radar rain "
        "type by Steiner et al. (1995) (convective, stratiform, dry), and OPERA's quality index where the "
        f"data have it.{skipped}{weighted} The classes of each group partition the scored pixels; FSS is not split "
        "(see docs/verification.md). Every regime score, also POD, FAR, ETS, MAE, CORR, CRPS, is in "
        '<a href="scores.csv">scores.csv</a> (column <code>regime</code>) and scores.nc (<code>*_regime</code>).'
        f"</p><div class='wide'>{_table_html(frame, 'regime')}</div>"
    )


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
thead th { background: #f3f3f3; } tbody th { text-align: left; background: #fafafa; }
.ci { color: #777; font-size: 0.85em; display: block; white-space: nowrap; }
.meta td, .meta th { text-align: left; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; max-width: 60em; }
h3 { font-size: 1.05em; margin: 1em 0 0.3em; } .wide { overflow-x: auto; }
.better { color: #1a7f37; font-weight: 600; } .worse { color: #c62828; font-weight: 600; }
"""


def write_report(
    scores: xr.Dataset,
    table: pd.DataFrame,
    figures: Mapping[str, str | os.PathLike],
    path: str | os.PathLike,
    *,
    ci: xr.Dataset | None = None,
) -> Path:
    """Write ``report.html``.

    Parameters
    ----------
    scores : xarray.Dataset
        Scores along ``model`` (without the ``__ci`` bounds), with the evaluation in ``attrs``.
    table : pandas.DataFrame
        The tidy score table (:func:`qpe.verify.scores_to_frame`), with its CI columns.
    figures : mapping
        Figure name -> PNG path (:func:`qpe.evaluation.figures.write_figures`).
    path : path-like
        The HTML file to write.
    ci : xarray.Dataset, optional
        Bounds, only to say in the page whether intervals exist.
    """
    path = Path(path)
    attrs = scores.attrs
    threshold, scale = headline_levels(table)
    headlines = []
    for title, metrics in HEADLINES.items():
        frame, _, _ = headline_frame(table, metrics)
        if not frame.empty:
            headlines.append(
                f"<h3>{html.escape(title)}</h3><div class='wide'>{_table_html(frame, 'model')}</div>"
            )
    extremes = extremes_frame(table)
    if not extremes.empty:
        headlines.append(
            "<h3>Extremes: exceedance scores (rain &gt; threshold, mm/h) and the pixels they rest on</h3>"
            f"<div class='wide'>{_table_html(extremes, 'model')}</div>"
        )
    meta = {
        "data": attrs.get("data", ""),
        "period (UTC)": f"{attrs.get('period_start', '')} .. {attrs.get('period_end', '')}",
        "times scored": (
            f"{attrs.get('n_times', '')} ({attrs.get('n_skipped_times', 0)} of the period left out for lack "
            "of IR frames)"
        ),
        "UTC days": attrs.get("days", ""),
        "confidence intervals": attrs.get("confidence_interval", "none" if ci is None else ""),
        "pixels scored": ("the same for every model (radar and every member valid)"
                          if int(attrs.get("common_mask", 1)) else "each model where it and the radar are valid")
        + ("; pixel-wise scores weighted by the radar quality index QIND (1 where OPERA gives none; not FSS, "
           "spectra, SAL, displacement, energy/variogram)" if _quality_weighted(attrs) else ""),
        "qpe": f"{attrs.get('qpe_version', '')}, {attrs.get('created', '')}",
    }
    meta_html = (
        "<table class='meta'>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items()
        )
        + "</table>"
    )
    figure_html = []
    for name, png in figures.items():
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        caption = FIGURES[name][1] if name in FIGURES else name
        figure_html.append(
            f'<figure id="{name}"><img alt="{html.escape(name.replace("_", " "))}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)} '
            f'(<a href="figures/{Path(png).name}">PNG</a>)</figcaption></figure>'
        )
    note = (
        f"Categorical scores at rain &gt; {threshold:g} mm/h, FSS at rain ≥ {threshold:g} mm/h"
        f"{f' and {scale:g} km' if scale is not None else ''}; ensemble members averaged; "
        "grey brackets: confidence interval."
        if threshold is not None
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>qpe evaluation {html.escape(meta["period (UTC)"])}</title>
<style>{_CSS}</style></head><body>
<h1>Rain-rate estimates against radar</h1>
{meta_html}
<h2>Headline scores</h2>
<p>{note}</p>
{"".join(headlines)}
{scorecard_section(scores)}
{regime_section(table, scores)}
<h2>Models</h2>
{_models_html(scores)}
<h2>Figures</h2>
{"".join(figure_html)}
<h2>All scores</h2>
<p>Also in <a href="scores.csv">scores.csv</a> (tidy table), <a href="scores.nc">scores.nc</a> (every score
and curve, xarray / NetCDF) and <a href="evaluation.yaml">evaluation.yaml</a> (the settings).</p>
<details><summary>every scalar score ({len(table)} rows)</summary><div class='wide'>{_full_html(table)}</div>
</details>
</body></html>
"""
    return write_text(path, page)
