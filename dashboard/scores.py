"""Scores of the shown case and region: a table and the standard figures, all from :mod:`qpe.verify`.

:func:`case_scores` calls :func:`qpe.verify.verify` once per shown model (the whole ensemble; a
single field for a U-Net or a one-member run) at the shown time, thresholds and region;
:func:`score_table` lays out its :func:`~qpe.verify.scores_to_frame` rows (members averaged, as in
``scores.csv``) and the figures draw :func:`~qpe.verify.figure_data`. The only numbers computed here
are the background isolines of the performance diagram.
"""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
from panel.io import hold
from panel.viewable import Viewer

from dashboard.session import DashboardSession
from dashboard.text import plain_markdown
from qpe.verify import figure_data, scores_to_frame, verify

#: Rows of the score table: (metric, per threshold, label).
TABLE_ROWS: tuple[tuple[str, bool, str], ...] = (
    ("POD", True, "POD"), ("FAR", True, "FAR"), ("CSI", True, "CSI"), ("ETS", True, "ETS"),
    ("HSS", True, "HSS"), ("BIAS", True, "frequency bias"),
    ("ME", False, "mean error (mm/h)"), ("MAE", False, "mean absolute error (mm/h)"),
    ("RMSE", False, "RMSE (mm/h)"), ("CORR", False, "correlation"),
    ("CRPS", False, "CRPS (mm/h)"), ("CRPS_fair", False, "fair CRPS (mm/h, unbiased for few members)"),
    ("spread_skill_ratio", False, "spread-skill ratio (fair)"),
    ("energy_score", False, "energy score (mm/h, fair)"),
    ("variogram_score", False, "variogram score p = 0.5 (mm/h)"),
    ("effective_resolution", False, "effective resolution (km)"),
    ("CSI_extreme", True, "CSI (extremes)"), ("POD_extreme", True, "POD (extremes)"),
    ("BIAS_extreme", True, "frequency bias (extremes)"), ("twCRPS_fair", True, "fair twCRPS (mm/h)"),
    ("n_radar_extreme", True, "radar pixels (extremes)"),
    ("wet_fraction", False, "wet fraction (> 0.1 mm/h)"), ("wet_p99", False, "wet p99 (mm/h)"),
    ("maximum", False, "maximum (mm/h)"), ("n_valid", False, "valid pixels"),
)
#: Colours of the models in the figures (radar is black).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def scored_field(estimate: xr.DataArray) -> xr.DataArray:
    """What is scored: the whole ensemble, or the field itself when there is one member."""
    return estimate if estimate.sizes["member"] > 1 else estimate.isel(member=0, drop=True)


def region_text(region: tuple[float, float, float, float] | None) -> str:
    """The score region in words, km."""
    if region is None:
        return "whole grid"
    x0, y0, x1, y1 = (v / 1000 for v in region)
    return f"x {x0:.0f} … {x1:.0f} km, y {y0:.0f} … {y1:.0f} km"


def case_scores(session: DashboardSession) -> tuple[dict[str, xr.Dataset], list[str]]:
    """Scores of each shown model with an estimate at the shown time; and the models still waiting.

    Raises
    ------
    QpeError
        The region holds no pixel, or an estimate does not match the radar grid.
    """
    state = session.state
    radar = session.radar(state.timestamp)
    scores, waiting = {}, []
    for model in state.models:
        estimate = session.recall(model)
        if estimate is None:
            waiting.append(model)
            continue
        key = (model, state.time, session.estimate_settings(), tuple(state.thresholds), state.region_box)
        if key not in session.score_memory:
            session.score_memory[key] = verify(
                scored_field(estimate), radar, thresholds=sorted(state.thresholds), region=state.region_box,
                model=model,
            )
            while len(session.score_memory) > 64:
                session.score_memory.popitem(last=False)
        scores[model] = session.score_memory[key]
    return scores, waiting


def score_frame(scores: dict[str, xr.Dataset]) -> pd.DataFrame:
    """Tidy rows (``scores.csv`` layout) of every model, radar rows once."""
    frames = [scores_to_frame(ds) for ds in scores.values()]
    if not frames:
        return scores_to_frame(xr.Dataset())
    table = pd.concat(frames, ignore_index=True)
    return table.drop_duplicates(subset=["model", "metric", "threshold", "scale"], ignore_index=True)


def score_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The table shown: one row per score (per threshold), one column per model (and radar)."""
    rows, index = [], []
    models = [m for m in dict.fromkeys(frame["model"]) if m != "radar"]
    has_radar = (frame["model"] == "radar").any()
    columns = models + (["radar"] if has_radar else [])
    for metric, per_threshold, label in TABLE_ROWS:
        part = frame[(frame["metric"] == metric) & frame["scale"].isna()]
        if part.empty:
            continue
        thresholds = sorted(part["threshold"].dropna().unique()) if per_threshold else [np.nan]
        for threshold in thresholds:
            at = part[part["threshold"] == threshold] if per_threshold else part
            values = at.groupby("model")["value"].first()
            row = [values.get(c, np.nan) for c in columns]
            if all(np.isnan(v) for v in row):
                continue
            rows.append(row)
            index.append(f"{label} ≥ {threshold:g} mm/h" if per_threshold else label)
    return pd.DataFrame(rows, index=pd.Index(index, name="score"), columns=columns)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as shown: 4 significant digits, blank where a score does not apply."""
    return table.map(lambda v: "" if pd.isna(v) else f"{v:.4g}")


# -- figures ----------------------------------------------------------------------------------------------
def _members_mean(da: xr.DataArray) -> xr.DataArray:
    return da.mean("member") if "member" in da.dims else da


def performance_background() -> hv.Overlay:
    """CSI isolines and frequency-bias lines of the performance diagram (Roebber 2009)."""
    sr = np.linspace(0.01, 1, 200)
    lines = []
    for csi in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        pod = 1.0 / (1.0 / csi - 1.0 / sr + 1.0)
        ok = (pod > 0) & (pod <= 1) & (1.0 / csi - 1.0 / sr + 1.0 > 0)
        lines.append(hv.Curve((sr[ok], pod[ok]), "SR", "POD").opts(color="#bbbbbb", line_width=1))
    for bias in (0.5, 1.0, 2.0, 4.0):
        pod = np.clip(bias * sr, 0, 1)
        lines.append(hv.Curve((sr, pod), "SR", "POD").opts(color="#999999", line_dash="dashed", line_width=1))
    return hv.Overlay(lines)


def performance_diagram(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """POD against success ratio per threshold, one line per model."""
    layers = [performance_background()]
    for i, (model, ds) in enumerate(scores.items()):
        data = figure_data(ds).get("performance_diagram")
        if data is None:
            continue
        sr, pod = _members_mean(data["SR"]).values, _members_mean(data["POD"]).values
        thresholds = data["threshold"].values
        color = PALETTE[i % len(PALETTE)]
        layers.append(hv.Curve((sr, pod), "SR", "POD", label=model).opts(color=color))
        layers.append(hv.Scatter((sr, pod), "SR", "POD").opts(color=color, size=7))
        layers.append(hv.Labels({"SR": sr, "POD": pod, "text": [f"{t:g}" for t in thresholds]},
                                ["SR", "POD"], "text").opts(text_font_size="8pt", xoffset=0.03, text_color=color))
    return hv.Overlay(layers).opts(
        title="performance diagram (thresholds, mm/h)", xlim=(0, 1), ylim=(0, 1),
        xlabel="success ratio 1 − FAR", ylabel="POD", legend_position="bottom_right")


def _threshold_shown(ds: xr.Dataset, threshold: float) -> float:
    values = ds["threshold"].values
    return float(values[np.abs(values - threshold).argmin()])


def fss_plot(scores: dict[str, xr.Dataset], threshold: float) -> hv.Overlay:
    """FSS against scale at the threshold closest to ``threshold``, with the useful level."""
    layers, shown = [], threshold
    for i, (model, ds) in enumerate(scores.items()):
        data = figure_data(ds).get("fss_vs_scale")
        if data is None:
            continue
        shown = _threshold_shown(data, threshold)
        fss = _members_mean(data["FSS"]).sel(threshold=shown)
        color = PALETTE[i % len(PALETTE)]
        layers.append(hv.Curve((fss["scale"].values, fss.values), "scale", "FSS", label=model)
                      .opts(color=color))
        layers.append(hv.Scatter((fss["scale"].values, fss.values), "scale", "FSS").opts(color=color, size=6))
        useful = float(data["FSS_useful"].sel(threshold=shown))
    if len(layers) > 0:
        layers.append(hv.HLine(useful).opts(color="black", line_dash="dashed", line_width=1))
    return hv.Overlay(layers or [hv.Curve([], "scale", "FSS")]).opts(
        title=f"FSS at {shown:g} mm/h (dashed: useful)", logx=True, ylim=(0, 1.02), xlabel="scale (km)",
        legend_position="bottom_right")


def spectrum_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """RAPSD ratio estimate / radar against wavelength (1: the radar's texture)."""
    layers = [hv.HLine(1.0).opts(color="black", line_dash="dashed", line_width=1)]
    for i, (model, ds) in enumerate(scores.items()):
        data = figure_data(ds).get("power_spectrum_ratio")
        if data is None:
            continue
        ratio = _members_mean(data["rapsd_ratio"])
        keep = np.isfinite(ratio["wavelength"].values) & np.isfinite(ratio.values) & (ratio.values > 0)
        layers.append(hv.Curve((ratio["wavelength"].values[keep], ratio.values[keep]), "wavelength", "ratio",
                               label=model).opts(color=PALETTE[i % len(PALETTE)]))
    return hv.Overlay(layers).opts(title="power spectrum ratio to radar", logx=True, logy=True,
                                   xlabel="wavelength (km)", ylabel="RAPSD ratio", invert_xaxis=True,
                                   legend_position="bottom_left")


def exceedance_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """P(rain > intensity) of each model and of the radar."""
    layers, radar_done = [], False
    for i, (model, ds) in enumerate(scores.items()):
        data = figure_data(ds).get("exceedance_curves")
        if data is None:
            continue
        if not radar_done:
            radar = data["exceedance_radar"]
            keep = radar.values > 0
            layers.append(hv.Curve((radar["intensity"].values[keep], radar.values[keep]), "intensity", "P",
                                   label="radar").opts(color="black", line_width=2))
            radar_done = True
        curve = _members_mean(data["exceedance"])
        keep = curve.values > 0
        layers.append(hv.Curve((curve["intensity"].values[keep], curve.values[keep]), "intensity", "P",
                               label=model).opts(color=PALETTE[i % len(PALETTE)]))
    return hv.Overlay(layers or [hv.Curve([], "intensity", "P")]).opts(
        title="exceedance P(rain > r)", logx=True, logy=True, xlabel="rain rate r (mm/h)",
        ylabel="fraction of valid pixels", legend_position="bottom_left")


def histogram_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """Fraction of valid pixels per rain-rate bin (log bins), each model and the radar."""
    layers, radar_done = [], False
    for i, (model, ds) in enumerate(scores.items()):
        data = figure_data(ds).get("histograms")
        if data is None:
            continue
        if not radar_done:
            radar = data["histogram_radar"]
            keep = radar.values > 0
            layers.append(hv.Curve((radar["bin"].values[keep], radar.values[keep]), "rain", "fraction",
                                   label="radar").opts(color="black", interpolation="steps-mid"))
            radar_done = True
        hist = _members_mean(data["histogram"])
        keep = hist.values > 0
        layers.append(hv.Curve((hist["bin"].values[keep], hist.values[keep]), "rain", "fraction",
                               label=model).opts(color=PALETTE[i % len(PALETTE)], interpolation="steps-mid"))
    return hv.Overlay(layers or [hv.Curve([], "rain", "fraction")]).opts(
        title="histogram of rain rate", logx=True, logy=True, xlabel="rain rate (mm/h)",
        legend_position="bottom_left")


def rank_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay | None:
    """Rank histogram (relative frequency) of each ensemble model; None if none is an ensemble."""
    bars = []
    for i, (model, ds) in enumerate(scores.items()):
        data = figure_data(ds).get("rank_histogram")
        if data is None:
            continue
        counts = data["rank_histogram"]
        total = float(counts.sum())
        frequency = counts.values / total if total > 0 else counts.values
        bars.append(hv.Curve((counts["rank"].values, frequency), "rank", "frequency", label=model)
                    .opts(color=PALETTE[i % len(PALETTE)], interpolation="steps-mid", line_width=2))
        bars.append(hv.HLine(1.0 / counts.sizes["rank"]).opts(color="#999999", line_dash="dashed"))
    if not bars:
        return None
    return hv.Overlay(bars).opts(title="rank histogram (dashed: flat)", xlabel="rank of radar among members",
                                 legend_position="top")


#: Size and style of every score figure.
FIGURE_OPTIONS = {"width": 380, "height": 300, "show_grid": True, "fontsize": {"title": "10pt"}, "toolbar": "right"}


def figure_makers(scores: dict[str, xr.Dataset]) -> list[Callable[[dict, float], hv.Overlay]]:
    """The figures of the scores tab, in order, as ``make(scores, threshold)`` (rank histogram for ensembles)."""
    makers = [
        lambda sc, thr: performance_diagram(sc), fss_plot, lambda sc, thr: spectrum_plot(sc),
        lambda sc, thr: exceedance_plot(sc), lambda sc, thr: histogram_plot(sc),
    ]
    if rank_plot(scores) is not None:
        makers.append(lambda sc, thr: rank_plot(sc))
    return makers


def score_figures(scores: dict[str, xr.Dataset], threshold: float) -> list:
    """Every figure of the scores tab, in order (static elements)."""
    return [make(scores, threshold).opts(**FIGURE_OPTIONS) for make in figure_makers(scores)]


class ScoresPanel(Viewer):
    """Score table and figures of the shown case; the thresholds and the region are the case's."""

    def __init__(self, session: DashboardSession, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        self.frame = score_frame({})
        self.header = pn.pane.Markdown(sizing_mode="stretch_width")
        self.message = pn.pane.Alert(alert_type="info", visible=False, sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(sizing_mode="stretch_width", css_classes=["qpe-score-table"],
                                       escape=True, index=True, bold_rows=True)
        self.figures = pn.pane.HoloViews(sizing_mode="stretch_width")
        self.clear_region = pn.widgets.Button(label="Score the whole grid", color="light", width=180)
        self.clear_region.on_click(lambda _: setattr(self.state, "region", []))
        self._signature: tuple | None = None
        self._stale = True
        self._figure_layout: tuple | None = None
        self._figure_refresh = hv.streams.Stream.define("ScoresRefresh", revision=0)()
        self.scores: dict[str, xr.Dataset] = {}
        self.refresh()
        self.state.param.watch(lambda *events: self.refresh(), ["time", "models", "thresholds", "region", "threshold",
                                                          "members", "steps", "seed", "tab"])
        session.param.watch(lambda e: self.refresh(), "revision")

    def signature(self) -> tuple:
        """What the scores depend on (same signature: nothing to redo)."""
        state, session = self.state, self.session
        estimates = tuple((m, id(session.recall(m)), (m, state.time) in session.failures) for m in state.models)
        return (state.time, tuple(state.thresholds), state.region_box, state.threshold,
                session.estimate_settings(), estimates)

    def refresh(self, force: bool = False) -> None:
        """Recompute (from memory when unchanged) and redraw, if the Scores tab is shown (or ``force``)."""
        if not force and self.state.tab != "scores":
            self._stale = True
            return
        signature = self.signature()
        if signature == self._signature and not force:
            return
        self._signature, self._stale = signature, False
        with hold(freeze=True):  # one recomputation of the document's model graph for the whole tab
            self._redraw()

    def _redraw(self) -> None:
        state = self.state
        self.header.object = (f"**Scores at {plain_markdown(state.time)} UTC** — region: "
                              f"{plain_markdown(region_text(state.region_box))} — "
                              f"thresholds {', '.join(f'{t:g}' for t in sorted(state.thresholds))} mm/h")
        self.clear_region.visible = state.region_box is not None
        try:
            scores, waiting = case_scores(self.session)
        except Exception as err:  # noqa: BLE001 - shown with its cause (QpeError: region, grid), app goes on
            self.session.messages.report("scores", err)
            scores, waiting = {}, []
        else:
            self.session.messages.clear("scores")
        self.scores = scores
        self.frame = score_frame(scores)
        notes = []
        if not state.models:
            notes.append("Choose models to score them against the radar.")
        failed = [m for m in waiting if (m, state.time) in self.session.failures]
        waiting = [m for m in waiting if m not in failed]
        if failed:
            notes.append(f"No scores for {', '.join(failed)}: the estimate failed (see the message above).")
        if waiting:
            notes.append(f"Waiting for the estimate of {', '.join(waiting)} at {state.time} (see the progress bar "
                         "or press Run).")
        self.message.object, self.message.visible = plain_markdown(" ".join(notes)), bool(notes)
        table = score_table(self.frame) if scores else pd.DataFrame()
        self.table.object = format_table(table)
        self.table.visible = bool(scores)
        if scores:
            self._draw_figures(scores)
        self.figures.visible = bool(scores)

    def _draw_figures(self, scores: dict[str, xr.Dataset]) -> None:
        """Update the figures in place while the same models are shown; build them anew otherwise."""
        makers = figure_makers(scores)
        layout = (tuple(scores), len(makers))
        if layout == self._figure_layout:
            self._figure_refresh.event(revision=self._figure_refresh.revision + 1)
            return
        self._figure_layout = layout

        def dynamic(make) -> hv.DynamicMap:
            def draw(revision: int) -> hv.Overlay:
                return make(self.scores, self.state.threshold).opts(**FIGURE_OPTIONS)
            return hv.DynamicMap(draw, streams=[self._figure_refresh])

        self.figures.object = hv.Layout([dynamic(make) for make in makers]).cols(3).opts(shared_axes=False)

    def __panel__(self):
        return pn.Column(pn.Row(self.header, self.clear_region), self.message, self.table, self.figures,
                         sizing_mode="stretch_width")
