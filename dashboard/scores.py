"""Scores of the shown case and region: the standard figures and a table, all from :mod:`qpe.verify`.

:func:`case_scores` calls :func:`qpe.verify.verify` once per shown model (the whole ensemble; a
single field for a U-Net or a one-member run) at the shown time, thresholds and region. The figures
draw :func:`~qpe.verify.figure_data` (the QQ plot's quantiles included); :func:`score_table` lays out
the :func:`~qpe.verify.scores_to_frame` rows (members averaged, as in ``scores.csv``) of every score the
library returns, described by :func:`~qpe.verify.tables.score_descriptions` (names, units, which way is
better), so that a score added to the library shows here without a change to this module. Each model
has its colour by name (:mod:`qpe.colours`); every legend sits outside the data area. The only numbers
computed here are the background isolines of the performance diagram.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr
from panel.io import hold
from panel.viewable import Viewer

from dashboard.session import DashboardSession
from dashboard.state import ESTIMATE_PARAMETERS
from dashboard.text import plain_markdown
from qpe.colours import RADAR_COLOUR, model_colours
from qpe.verify import DEFAULT_FAMILIES, figure_data, scores_to_frame, verify
from qpe.verify.comparison import HEADLINE_SCALE
from qpe.verify.tables import preferred_level, score_descriptions

#: Columns of the score table that describe a score (the others are models and the radar).
TEXT_COLUMNS = ("unit", "better", "definition")
#: Families the tab adds when asked: where is the error, position or amount? (optical-flow displacement and
#: SAL, :mod:`qpe.verify.displacement`, :mod:`qpe.verify.sal`: seconds per field and member, so not by default).
POSITION_FAMILIES = ("displacement", "sal")
#: How the ``better`` column of :func:`~qpe.verify.tables.score_descriptions` is shown.
BETTER_MARKS = {"higher": "↑ higher", "lower": "↓ lower", "": ""}


def scored_field(estimate: xr.DataArray) -> xr.DataArray:
    """What is scored: the whole ensemble, or the field itself when there is one member."""
    return estimate if estimate.sizes["member"] > 1 else estimate.isel(member=0, drop=True)


def region_text(region: tuple[float, float, float, float] | None) -> str:
    """The score region in words, km."""
    if region is None:
        return "whole grid"
    x0, y0, x1, y1 = (v / 1000 for v in region)
    return f"x {x0:.0f} … {x1:.0f} km, y {y0:.0f} … {y1:.0f} km"


def case_scores(session: DashboardSession, extra_families: Sequence[str] = ()
                ) -> tuple[dict[str, xr.Dataset], list[str]]:
    """Scores of each shown model with an estimate at the shown time; and the models still waiting.

    ``extra_families`` are computed beside :data:`~qpe.verify.DEFAULT_FAMILIES` (e.g.
    :data:`POSITION_FAMILIES`).

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
        families = (*DEFAULT_FAMILIES, *(f for f in extra_families if f not in DEFAULT_FAMILIES))
        key = (model, state.time, session.estimate_settings(), tuple(state.thresholds), state.region_box, families)
        if key not in session.score_memory:
            session.score_memory[key] = verify(
                scored_field(estimate), radar, thresholds=sorted(state.thresholds), region=state.region_box,
                model=model, families=families,
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


def score_descriptions_of(scores: dict[str, xr.Dataset]) -> pd.DataFrame:
    """What each score of the models' Datasets is (:func:`~qpe.verify.tables.score_descriptions`), first
    seen first: the library's order of families."""
    parts = [score_descriptions(ds) for ds in scores.values()]
    if not parts:
        return score_descriptions(xr.Dataset())
    return pd.concat(parts, ignore_index=True).drop_duplicates("metric", ignore_index=True)


def row_label(metric: str, level: str = "", threshold: float = np.nan, scale: float | None = None) -> str:
    """The table's name of a score: ``"RMSE"``, ``"CSI ≥ 1 mm/h"``, ``"CSI_extreme > 20 mm/h"``,
    ``"FSS ≥ 1 mm/h @ 16 km"`` (rain >= t for the categorical thresholds, > t for the extreme ones)."""
    label = metric
    if level:
        label += f" {'>' if level == 'extreme_threshold' else '≥'} {threshold:g} mm/h"
    if scale is not None:
        label += f" @ {scale:g} km"
    return label


def table_scale(frame: pd.DataFrame) -> float | None:
    """The scale (km) at which scores indexed by scale are tabled: 16 km when scored, else the middle one
    (the FSS at every scale is in its figures)."""
    return preferred_level(frame["scale"].to_numpy(float), HEADLINE_SCALE)


def score_table(frame: pd.DataFrame, descriptions: pd.DataFrame) -> pd.DataFrame:
    """The table shown: one row per score (per threshold; scores by scale at :func:`table_scale`); columns
    ``unit``, one per model (and radar), ``better`` and ``definition``; every score of ``descriptions``
    (the library's) with a value, in its order. Counts stay numbers here (see :func:`format_table`)."""
    models = [m for m in dict.fromkeys(frame["model"]) if m != "radar"]
    columns = models + (["radar"] if (frame["model"] == "radar").any() else [])
    scale = table_scale(frame)
    rows, index, units, better, meaning = [], [], [], [], []
    for info in descriptions.itertuples(index=False):
        part = frame[frame["metric"] == info.metric]
        part = part[part["scale"] == scale] if info.per_scale else part[part["scale"].isna()]
        if "regime" in part:
            part = part[part["regime"].fillna("") == ""]
        thresholds = sorted(part["threshold"].dropna().unique()) if info.level else [np.nan]
        for threshold in thresholds:
            at = part[part["threshold"] == threshold] if info.level else part
            values = at.groupby("model")["value"].first()
            row = [float(values.get(c, np.nan)) for c in columns]
            if all(np.isnan(v) for v in row):
                continue
            rows.append(row)
            index.append(row_label(info.metric, info.level, threshold, scale if info.per_scale else None))
            units.append("" if info.units == "1" else info.units)
            better.append(BETTER_MARKS.get(info.better, f"→ {info.better.removeprefix('near ')}"))
            meaning.append(info.long_name)
    table = pd.DataFrame(rows, index=pd.Index(index, name="score"), columns=columns)
    table.insert(0, "unit", units)
    return table.assign(better=better, definition=meaning)


def format_value(value: float, count: bool = False) -> str:
    """A number as shown: counts and values of 10 000 or more as whole numbers with thousands separators
    (61,600), others to 4 significant digits; blank where a score does not apply."""
    if pd.isna(value):
        return ""
    if count or abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_table(table: pd.DataFrame, descriptions: pd.DataFrame) -> pd.DataFrame:
    """:func:`score_table` as text; the counts of ``descriptions`` as whole numbers."""
    counts = set(descriptions.loc[descriptions["count"], "metric"])
    out = table.copy().astype(object)
    for label in table.index:
        count = label.split(" ")[0] in counts
        for column in table.columns:
            if column not in TEXT_COLUMNS:
                out.loc[label, column] = format_value(table.loc[label, column], count)
    return out


# -- figures ----------------------------------------------------------------------------------------------
#: Size and style of every score figure (two a row beside the 340 px sidebar at 1280 px, three at 1920 px); the
#: legend to the right of the plot frame, never over the data.
FIGURE_OPTIONS = {"width": 420, "height": 320, "show_grid": True, "fontsize": {"title": "10pt"}, "toolbar": "above",
                  "legend_position": "right"}


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
    layers, colours = [performance_background()], model_colours(scores)
    for model, ds in scores.items():
        data = figure_data(ds).get("performance_diagram")
        if data is None:
            continue
        sr, pod = _members_mean(data["SR"]).values, _members_mean(data["POD"]).values
        thresholds = data["threshold"].values
        color = colours[model]
        layers.append(hv.Curve((sr, pod), "SR", "POD", label=model).opts(color=color))
        layers.append(hv.Scatter((sr, pod), "SR", "POD").opts(color=color, size=7))
        layers.append(hv.Labels({"SR": sr, "POD": pod, "text": [f"{t:g}" for t in thresholds]},
                                ["SR", "POD"], "text").opts(text_font_size="8pt", xoffset=0.03, text_color=color))
    return hv.Overlay(layers).opts(
        title="performance diagram (thresholds, mm/h)", xlim=(0, 1), ylim=(0, 1),
        xlabel="success ratio 1 − FAR", ylabel="POD")


def _threshold_shown(ds: xr.Dataset, threshold: float) -> float:
    values = ds["threshold"].values
    return float(values[np.abs(values - threshold).argmin()])


def fss_plot(scores: dict[str, xr.Dataset], threshold: float) -> hv.Overlay:
    """FSS against scale at the threshold closest to ``threshold``, with the useful level."""
    layers, shown, useful, colours, scales = [], threshold, None, model_colours(scores), []
    for model, ds in scores.items():
        data = figure_data(ds).get("fss_vs_scale")
        if data is None:
            continue
        shown = _threshold_shown(data, threshold)
        fss = _members_mean(data["FSS"]).sel(threshold=shown)
        scales = [float(v) for v in fss["scale"].values]
        color = colours[model]
        layers.append(hv.Curve((fss["scale"].values, fss.values), "scale", "FSS", label=model)
                      .opts(color=color))
        layers.append(hv.Scatter((fss["scale"].values, fss.values), "scale", "FSS").opts(color=color, size=6))
        useful = float(data["FSS_useful"].sel(threshold=shown))
    if useful is not None and np.isfinite(useful):
        layers.append(hv.HLine(useful).opts(color=RADAR_COLOUR, line_dash="dashed", line_width=1))
    return hv.Overlay(layers or [hv.Curve([], "scale", "FSS")]).opts(
        title=f"FSS, rain ≥ {shown:g} mm/h (dashed: useful)", logx=True, ylim=(0, 1.02), xlabel="scale (km)",
        xticks=[(v, f"{v:g}") for v in scales] or None)


def spectrum_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """RAPSD ratio estimate / radar against wavelength (1: the radar's texture)."""
    layers, colours = [hv.HLine(1.0).opts(color=RADAR_COLOUR, line_dash="dashed", line_width=1)], model_colours(scores)
    for model, ds in scores.items():
        data = figure_data(ds).get("power_spectrum_ratio")
        if data is None:
            continue
        ratio = _members_mean(data["rapsd_ratio"])
        keep = np.isfinite(ratio["wavelength"].values) & np.isfinite(ratio.values) & (ratio.values > 0)
        layers.append(hv.Curve((ratio["wavelength"].values[keep], ratio.values[keep]), "wavelength", "ratio",
                               label=model).opts(color=colours[model]))
    return hv.Overlay(layers).opts(title="power spectrum ratio to radar", logx=True, logy=True,
                                   xlabel="wavelength (km)", ylabel="RAPSD ratio", invert_xaxis=True)


def _radar_curve(scores: dict[str, xr.Dataset], figure: str, name: str) -> xr.DataArray | None:
    """The radar's curve of a figure (the same in every model's scores: the first one's)."""
    for ds in scores.values():
        data = figure_data(ds).get(figure)
        if data is not None and name in data:
            return data[name]
    return None


def exceedance_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """P(rain > intensity) of each model and of the radar."""
    layers, colours = [], model_colours(scores)
    radar = _radar_curve(scores, "exceedance_curves", "exceedance_radar")
    if radar is not None:
        keep = radar.values > 0
        layers.append(hv.Curve((radar["intensity"].values[keep], radar.values[keep]), "intensity", "P",
                               label="radar").opts(color=RADAR_COLOUR, line_width=2))
    for model, ds in scores.items():
        data = figure_data(ds).get("exceedance_curves")
        if data is None or "exceedance" not in data:
            continue
        curve = _members_mean(data["exceedance"])
        keep = curve.values > 0
        layers.append(hv.Curve((curve["intensity"].values[keep], curve.values[keep]), "intensity", "P",
                               label=model).opts(color=colours[model]))
    return hv.Overlay(layers or [hv.Curve([], "intensity", "P")]).opts(
        title="exceedance P(rain > r)", logx=True, logy=True, xlabel="rain rate r (mm/h)",
        ylabel="fraction of valid pixels")


def histogram_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """Fraction of valid pixels per rain-rate bin (log bins), each model and the radar."""
    layers, colours = [], model_colours(scores)
    radar = _radar_curve(scores, "histograms", "histogram_radar")
    if radar is not None:
        keep = radar.values > 0
        layers.append(hv.Curve((radar["bin"].values[keep], radar.values[keep]), "rain", "fraction",
                               label="radar").opts(color=RADAR_COLOUR, interpolation="steps-mid"))
    for model, ds in scores.items():
        data = figure_data(ds).get("histograms")
        if data is None or "histogram" not in data:
            continue
        hist = _members_mean(data["histogram"])
        keep = hist.values > 0
        layers.append(hv.Curve((hist["bin"].values[keep], hist.values[keep]), "rain", "fraction",
                               label=model).opts(color=colours[model], interpolation="steps-mid"))
    return hv.Overlay(layers or [hv.Curve([], "rain", "fraction")]).opts(
        title="histogram of rain rate", logx=True, logy=True, xlabel="rain rate (mm/h)")


def quantile_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay:
    """Wet-pixel quantiles of each model against the radar's at the same levels (QQ plot, log-log)."""
    layers, colours, reach = [], model_colours(scores), []
    radar = _radar_curve(scores, "quantile_quantile", "quantile_radar")
    for model, ds in scores.items():
        data = figure_data(ds).get("quantile_quantile")
        if radar is None or data is None or "quantile" not in data:
            continue
        values = _members_mean(data["quantile"]).values
        keep = np.isfinite(values) & np.isfinite(radar.values) & (values > 0)
        reach += [radar.values[keep], values[keep]]
        points = {"radar": radar.values[keep], "estimate": values[keep], "level": data["level"].values[keep]}
        layers.append(hv.Curve(points, "radar", ["estimate", "level"], label=model).opts(color=colours[model]))
        layers.append(hv.Scatter(points, "radar", ["estimate", "level"]).opts(color=colours[model], size=5,
                                                                               tools=["hover"]))
    if reach:
        every = np.concatenate(reach)
        low, high = float(every.min()) / 1.3, float(every.max()) * 1.3
        layers.insert(0, hv.Curve(([low, high], [low, high]), "radar", "estimate", label="radar (1:1)")
                      .opts(color=RADAR_COLOUR, line_dash="dashed", line_width=1))
    return hv.Overlay(layers or [hv.Curve([], "radar", "estimate")]).opts(
        title="quantile-quantile, wet pixels", logx=True, logy=True, xlabel="radar quantile (mm/h)",
        ylabel="estimate quantile (mm/h)")


def rank_plot(scores: dict[str, xr.Dataset]) -> hv.Overlay | None:
    """Rank histogram (relative frequency) of each ensemble model as side-by-side bars, with the flat
    level of a reliable ensemble; None if no model is an ensemble."""
    ensembles = {m: figure_data(ds)["rank_histogram"]["rank_histogram"] for m, ds in scores.items()
                 if "rank_histogram" in figure_data(ds)}
    if not ensembles:
        return None
    colours, width, layers, flat = model_colours(scores), 0.8 / len(ensembles), [], set()
    for i, (model, counts) in enumerate(ensembles.items()):
        total = float(counts.sum())
        frequency = counts.values / total if total > 0 else counts.values
        left = counts["rank"].values - 0.4 + i * width
        layers.append(hv.Rectangles((left, np.zeros_like(frequency), left + width, frequency), label=model)
                      .opts(color=colours[model], line_color="white"))
        flat.add(counts.sizes["rank"])
    for size in sorted(flat):
        layers.append(hv.HLine(1.0 / size).opts(color=RADAR_COLOUR, line_dash="dashed", line_width=1))
    return hv.Overlay(layers).opts(title="rank histogram (dashed: flat)", xlabel="rank of radar among members",
                                   ylabel="frequency", ylim=(0, None))


def reliability_plot(scores: dict[str, xr.Dataset], threshold: float) -> hv.Overlay | None:
    """Observed frequency against forecast probability of rain ≥ the threshold closest to ``threshold``,
    per ensemble model (diagonal: perfect reliability); None if no model is an ensemble."""
    layers, colours, shown = [], model_colours(scores), threshold
    for model, ds in scores.items():
        data = figure_data(ds).get("reliability_diagram")
        if data is None or "reliability_observed" not in data:
            continue
        shown = _threshold_shown(data, threshold)
        forecast = data["reliability_forecast"].sel(threshold=shown).values
        observed = data["reliability_observed"].sel(threshold=shown).values
        keep = np.isfinite(forecast) & np.isfinite(observed)
        layers.append(hv.Curve((forecast[keep], observed[keep]), "forecast", "observed", label=model)
                      .opts(color=colours[model]))
        layers.append(hv.Scatter((forecast[keep], observed[keep]), "forecast", "observed")
                      .opts(color=colours[model], size=6))
    if not layers:
        return None
    layers.insert(0, hv.Curve(([0, 1], [0, 1]), "forecast", "observed", label="perfect")
                  .opts(color=RADAR_COLOUR, line_dash="dashed", line_width=1))
    return hv.Overlay(layers).opts(title=f"reliability, rain ≥ {shown:g} mm/h", xlim=(0, 1), ylim=(0, 1),
                                   xlabel="forecast probability", ylabel="observed frequency")


def figure_makers(scores: dict[str, xr.Dataset], thresholds: Sequence[float],
                  threshold: float) -> list[Callable[[dict], hv.Overlay]]:
    """The figures of the scores tab, in order, as ``make(scores)``: performance diagram, FSS at each of
    ``thresholds`` (mm/h), QQ plot, exceedance, histogram, spectrum ratio; for ensembles the rank histogram
    and the reliability diagram at ``threshold`` (the maps' threshold)."""
    makers: list[Callable[[dict], hv.Overlay]] = [performance_diagram]
    makers += [functools.partial(fss_plot, threshold=t) for t in sorted(thresholds)]
    makers += [quantile_plot, exceedance_plot, histogram_plot, spectrum_plot]
    if rank_plot(scores) is not None:
        makers.append(rank_plot)
    if reliability_plot(scores, threshold) is not None:
        makers.append(functools.partial(reliability_plot, threshold=threshold))
    return makers


def score_figures(scores: dict[str, xr.Dataset], thresholds: Sequence[float], threshold: float) -> list:
    """Every figure of the scores tab, in order (static elements, the tab's size and style)."""
    return [make(scores).opts(**FIGURE_OPTIONS) for make in figure_makers(scores, thresholds, threshold)]


class ScoresPanel(Viewer):
    """Figures and score table of the shown case; the thresholds and the region are the case's.

    The figures come first, side by side as the window's width allows (a meeting reads them on a
    projector); the table of every score below them.
    """

    def __init__(self, session: DashboardSession, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        self.frame = score_frame({})
        self.header = pn.pane.Markdown(sizing_mode="stretch_width")
        self.message = pn.pane.Alert(alert_type="info", visible=False, sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(sizing_mode="stretch_width", css_classes=["qpe-score-table"],
                                       escape=True, index=True, bold_rows=True)
        self.table_heading = pn.pane.Markdown("### Every score", visible=False, sizing_mode="stretch_width")
        self.figures = pn.FlexBox(sizing_mode="stretch_width", css_classes=["qpe-score-figures"])
        self.clear_region = pn.widgets.Button(label="Score the whole grid", color="light", width=180)
        self.position = pn.widgets.Checkbox(label="Position error: displacement, SAL (optical flow, seconds a member)",
                                            value=False, width=440)
        self.position.param.watch(lambda e: self.refresh(), "value")
        self.clear_region.on_click(lambda _: setattr(self.state, "region", []))
        self._signature: tuple | None = None
        self._stale = True
        self._figure_layout: tuple | None = None
        self._figure_refresh = hv.streams.Stream.define("ScoresRefresh", revision=0)()
        self.scores: dict[str, xr.Dataset] = {}
        self.refresh()
        self.state.param.watch(lambda *events: self.refresh(), ["time", "models", "thresholds", "region", "threshold",
                                                          *ESTIMATE_PARAMETERS, "tab"])
        session.param.watch(lambda e: self.refresh(), "revision")

    def signature(self) -> tuple:
        """What the scores depend on (same signature: nothing to redo)."""
        state, session = self.state, self.session
        estimates = tuple((m, id(session.recall(m)), (m, state.time) in session.failures) for m in state.models)
        return (state.time, tuple(state.thresholds), state.region_box, state.threshold,
                session.estimate_settings(), estimates, self.extra_families)

    @property
    def extra_families(self) -> tuple[str, ...]:
        """The families scored beside the default ones (:data:`POSITION_FAMILIES` when asked)."""
        return POSITION_FAMILIES if self.position.value else ()

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
            scores, waiting = case_scores(self.session, self.extra_families)
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
        descriptions = score_descriptions_of(scores)
        table = score_table(self.frame, descriptions) if scores else pd.DataFrame()
        self.table.object = format_table(table, descriptions)
        self.table.visible = self.table_heading.visible = bool(scores)
        if scores:
            self._draw_figures(scores)
        self.figures.visible = bool(scores)

    def _draw_figures(self, scores: dict[str, xr.Dataset]) -> None:
        """Update the figures in place while the same models and thresholds are shown; build them anew
        otherwise."""
        thresholds, threshold = sorted(self.state.thresholds), self.state.threshold
        makers = figure_makers(scores, thresholds, threshold)
        layout = (tuple(scores), tuple(thresholds), threshold, len(makers))
        if layout == self._figure_layout:
            self._figure_refresh.event(revision=self._figure_refresh.revision + 1)
            return
        self._figure_layout = layout

        def dynamic(make) -> hv.DynamicMap:
            def draw(revision: int) -> hv.Overlay:
                return make(self.scores).opts(**FIGURE_OPTIONS)
            return hv.DynamicMap(draw, streams=[self._figure_refresh])

        self.figures.objects = [pn.pane.HoloViews(dynamic(make), sizing_mode="fixed", margin=(5, 5))
                                for make in makers]

    def __panel__(self):
        return pn.Column(pn.Row(self.header, self.clear_region), self.position, self.message, self.figures, self.table_heading,
                         self.table, sizing_mode="stretch_width")
