"""Period: scores of several models over several days, with bootstrap intervals, the score-card against a
reference model and each model's series of one score.

The scores come from :mod:`qpe.evaluation`, either read from a ``qpe evaluate --out`` folder
(:func:`qpe.evaluation.reading.open_evaluation`) or computed here for the shown models over a range of
dates with :func:`~qpe.evaluation.accumulate_period` and :func:`~qpe.evaluation.summarize_scores` — the
calls and settings of ``qpe evaluate``, so the numbers are its numbers. A computation runs off the event
loop (one at a time per server, so sessions stay responsive) with its progress (estimates done, time
left), and its result is kept per (data, models, period, settings) for every session of the server: a
second open is immediate. Nothing here computes a score.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.io import hold
from panel.viewable import Viewer

from dashboard.case_picker import dates_with_data
from dashboard.session import DashboardSession
from dashboard.text import plain_html, plain_markdown
from qpe.colours import model_colours
from qpe.errors import InputError, QpeError
from qpe.evaluation import EvaluationConfig, accumulate_period, summarize_scores
from qpe.evaluation.figures import _VERDICT_COLORS, VERDICT_MARKS
from qpe.evaluation.reading import PeriodScores, open_evaluation
from qpe.inference.estimators import find_estimators
from qpe.inference.external import ExternalEstimates, estimate_files
from qpe.verify import ScoreConfig
from qpe.verify.bootstrap import UNIT_NAMES
from qpe.verify.comparison import verdicts

#: Period computations run here, one at a time per server (each uses the local Dask threads itself).
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qpe-period")
#: Results kept per server (every session), most recent last.
KEPT_PERIODS = 8
#: Seconds between progress updates while a period is computed.
PROGRESS_EVERY_S = 0.5


# -- a computation and its result -------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodRequest:
    """What a computed period depends on: the data, the checkpoints (by weights), the period, the settings.

    ``config.compare_to`` is the reference wanted first; it is no part of :attr:`key` (a scorecard against
    another reference is made from the same statistics).
    """

    data: str
    checkpoints: tuple[tuple[str, str], ...]  # (model key, checkpoint folder)
    weights: tuple[str, ...]
    start: str
    end: str
    config: EvaluationConfig
    #: Folders of your own estimates: (model key, folder, regridding method or "" to refuse another grid).
    estimates: tuple[tuple[str, str, str], ...] = ()
    #: What each folder held when asked (:func:`folder_version`): new files make another computation.
    estimate_versions: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        settings = {**self.config.to_dict(), "compare_to": None}
        return (self.data, self.checkpoints, self.weights, self.estimates, self.estimate_versions,
                self.start, self.end, repr(sorted(settings.items())))


def folder_version(folder: str | Path) -> str:
    """A digest of the estimate files in ``folder`` (names, sizes, modification times)."""
    digest = hashlib.sha256()
    for path in estimate_files(folder):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass
class Progress:
    """Estimates (model x time) done and in all, since ``started`` (``time.monotonic``)."""

    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def text(self) -> str:
        """``37 / 96 estimates, about 2 min left`` (``waiting`` before the first)."""
        if not self.total:
            return "waiting for the period's first estimates (another period may be computed first)"
        elapsed = time.monotonic() - self.started
        text = f"{self.done} / {self.total} estimates"
        if 0 < self.done < self.total:
            left = elapsed * (self.total - self.done) / self.done
            text += f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"
        return text


def compute_period(request: PeriodRequest, cache=None, progress: Progress | None = None) -> PeriodScores:
    """The scores of ``request``: :func:`accumulate_period` and :func:`summarize_scores`, as ``qpe evaluate``.

    Raises
    ------
    QpeError
        No model, a bad period, a checkpoint that cannot run on the data: one line, before any estimate.
    """
    if not request.checkpoints and not request.estimates:
        raise InputError("no model shown: choose models to score over the period")
    # named as qpe evaluate names them; your own estimates under their keys, as the other tabs show them
    estimators = find_estimators([path for _, path in request.checkpoints]) if request.checkpoints else []
    estimators += [ExternalEstimates(folder, name=key, regrid=regrid or None)
                   for key, folder, regrid in request.estimates]
    accumulators, info = accumulate_period(
        request.data, estimators, request.start, request.end, request.config, cache=cache, progress=False,
        on_progress=None if progress is None else progress.update)
    scores = summarize_scores(accumulators, info, request.config)
    result = PeriodScores(scores, request.config, accumulators,
                          f"{', '.join(accumulators)} over {request.start} .. {request.end} UTC")
    if result.cards:  # the per-case scores of every series, here rather than on the event loop when shown
        result.series(result.cards[0])
    return result


@dataclass
class _Job:
    future: Future
    progress: Progress


_RESULTS: OrderedDict[tuple, PeriodScores] = OrderedDict()
_RUNNING: dict[tuple, _Job] = {}
_LOCK = threading.Lock()


def kept_period(request: PeriodRequest) -> PeriodScores | None:
    """The result of ``request`` if this server computed it already (any session), else None."""
    with _LOCK:
        result = _RESULTS.get(request.key)
        if result is not None:
            _RESULTS.move_to_end(request.key)
        return result


def _keep(request: PeriodRequest, result: PeriodScores) -> None:
    with _LOCK:
        _RESULTS[request.key] = result
        while len(_RESULTS) > KEPT_PERIODS:
            _RESULTS.popitem(last=False)


def period_job(request: PeriodRequest, cache=None) -> _Job:
    """The computation of ``request`` on the period thread: started now, or the one already running
    (another session asked for the same period), or done already."""
    with _LOCK:
        if request.key in _RUNNING:
            return _RUNNING[request.key]
        progress = Progress()
        known = _RESULTS.get(request.key)
        if known is not None:
            future: Future = Future()
            future.set_result(known)
            return _Job(future, progress)

        def run() -> PeriodScores:
            progress.started = time.monotonic()  # the wait for an earlier period is not this one's time
            try:
                result = compute_period(request, cache, progress)
                _keep(request, result)
                return result
            finally:
                with _LOCK:
                    _RUNNING.pop(request.key, None)

        job = _Job(_EXECUTOR.submit(run), progress)
        _RUNNING[request.key] = job
        return job


# -- what is shown ------------------------------------------------------------------------------------------
def _number(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.4g}"


def interval_table(period: PeriodScores) -> pd.DataFrame:
    """The headline scores with their intervals as shown: rows the scores, columns the models,
    ``value [low, high]`` (4 significant digits; no bracket without an interval)."""
    table = period.headline_table()
    cells: dict[str, dict[str, str]] = {}
    for row in table.itertuples():
        bounds = f" [{_number(row.ci_low)}, {_number(row.ci_high)}]" if np.isfinite(row.ci_low) else ""
        cells.setdefault(row.score, {})[row.model] = _number(row.value) + bounds
    columns = [m for m in period.models if m in set(table["model"])]
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=columns).fillna("")
    frame.index.name = "score"
    return frame


def scorecard_html(card: xr.Dataset) -> str:
    """The score-card as an HTML table: one column per pair ``model − reference``, one row per score (so
    that a dozen scores fit the width of a laptop); each cell the verdict's mark and colour (▲
    significantly better, △ better, = equal, ▽ worse, ▼ significantly worse:
    :func:`qpe.verify.comparison.verdicts`) and the paired difference, its interval and Diebold-Mariano
    p-value in the tooltip. Every name is escaped."""
    verdict = verdicts(card).values
    level = float(card.attrs.get("confidence", 0.95))
    models = [plain_html(m) for m in card["model"].values]
    head = "".join(f'<th class="pair">{m} − {plain_html(r)}</th>' for m, r in zip(models, card["reference"].values))
    rows = []
    for j, (score, compared, better) in enumerate(zip(card["score"].values, card["compared"].values,
                                                      card["better"].values)):
        cells = []
        for i, model in enumerate(models):
            cell, v = card.isel(pair=i, score=j), verdict[i, j]
            if not np.isfinite(v):
                cells.append(f'<td data-model="{model}" class="undefined" style="background:#e0e0e0">–</td>')
                continue
            low, high = float(cell["ci_low"]), float(cell["ci_high"])
            tip = f"{level:.0%} interval [{low:+.3g}, {high:+.3g}]" if np.isfinite(low) else "no interval"
            p_value = float(cell["dm_p_value"])
            tip += f"; Diebold-Mariano p = {p_value:.2g}" if np.isfinite(p_value) else ""
            colour, text_colour = _VERDICT_COLORS[int(v)], "white" if abs(v) == 2 else "black"
            cells.append(f'<td data-model="{model}" data-verdict="{int(v)}" title="{plain_html(tip)}" '
                         f'style="background:{colour};color:{text_colour}">'
                         f'{VERDICT_MARKS[int(v)]} {float(cell["difference"]):+.3g}</td>')
        rows.append(f'<tr><th title="{plain_html(f"{compared}, {better} is better")}">{plain_html(score)} '
                    f'<span class="better">({"↑" if better == "higher" else "↓"})</span></th>{"".join(cells)}</tr>')
    return (
        '<table class="qpe-scorecard" style="border-collapse:collapse;font-size:0.9em">'
        f"<thead><tr><th>score (↑/↓ better)</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "<style>.qpe-scorecard td,.qpe-scorecard th{padding:3px 8px;border:1px solid white;text-align:center}"
        ".qpe-scorecard tbody th{text-align:left;white-space:nowrap;font-weight:normal}"
        ".qpe-scorecard .better{color:#777}</style>"
    )


def series_plot(series: xr.DataArray) -> hv.Overlay:
    """Each model's score per case (UTC day or time), in its own colour, legend outside the data."""
    colours = model_colours([str(m) for m in series["model"].values])
    unit = series.attrs.get("case_unit", "day")
    layers = []
    for model in series["model"].values:
        line = series.sel(model=model)
        x, y = pd.DatetimeIndex(line["case"].values), line.values
        colour = colours[str(model)]
        layers.append(hv.Curve((x, y), "case", "score", label=str(model)).opts(color=colour, line_width=2))
        layers.append(hv.Scatter((x, y), "case", "score", label=str(model)).opts(color=colour, size=7))
    cases = pd.DatetimeIndex(series["case"].values)
    span = {"day": pd.Timedelta(days=1), "time": pd.Timedelta(minutes=15)}[unit]
    padding = {"xlim": (cases[0] - span, cases[-1] + span)} if cases.size == 1 else {}  # one case: not a ms axis
    return hv.Overlay(layers).opts(
        title=f"{series.attrs.get('score', '')} per {'UTC day' if unit == 'day' else 'time'}", **padding,
        xlabel="UTC day" if unit == "day" else "time (UTC)", ylabel=str(series.attrs.get("score", "")),
        legend_position="right", height=340, responsive=True, show_grid=True)


class PeriodPanel(Viewer):
    """Scores over a period: computed here for the shown models, or read from a ``qpe evaluate`` folder."""

    start = param.Date(doc="First UTC day of the period.")
    end = param.Date(doc="Last UTC day of the period (inclusive).")
    resamples = param.Integer(default=1000, bounds=(0, 10_000), doc="Bootstrap resamples (0: no intervals).")
    unit = param.Selector(default="day", objects=list(UNIT_NAMES), doc="Bootstrap unit: UTC days, or times within days.")
    folder = param.String(default="", doc="A qpe evaluate --out folder to open.")
    reference = param.Selector(default=None, objects=[], doc="Reference model of the score-card.")
    score = param.Selector(default=None, objects=[], doc="Score of the series (a score-card column).")

    def __init__(self, session: DashboardSession, **params) -> None:
        dates = dates_with_data(session.times)
        shown = session.state.timestamp
        day = shown.date() if shown is not None else dates[0]
        params = {"start": day, "end": day, **params}
        super().__init__(**params)
        self.session = session
        self.period: PeriodScores | None = None
        widgets = {"enabled_dates": dates, "start": dates[0], "end": dates[-1], "width": 150}
        self.compute = pn.widgets.Button(label="Score the period", button_type="primary", width=170,
                                         description="score the shown models over these days (qpe evaluate)")
        self.open = pn.widgets.Button(label="Open folder", width=120)
        self.progress = pn.indicators.Progress(value=0, max=100, visible=False, width=220, bar_color="info")
        self.status = pn.pane.Str("", styles={"font-size": "0.85em"}, css_classes=["qpe-period-status"])
        self.info = pn.pane.Markdown("", styles={"font-size": "0.85em", "color": "#444"})
        self.scorecard = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["qpe-period-scorecard"])
        self.plot = pn.pane.HoloViews(None, sizing_mode="stretch_width", css_classes=["qpe-period-series"])
        self.table = pn.pane.DataFrame(None, escape=True, index=True, bold_rows=True, sizing_mode="stretch_width",
                                       css_classes=["qpe-period-table"], visible=False)
        self._controls = pn.Column(
            pn.Row(pn.widgets.DatePicker.from_param(self.param.start, name="From (UTC)", **widgets),
                   pn.widgets.DatePicker.from_param(self.param.end, name="To (UTC)", **widgets),
                   pn.widgets.IntInput.from_param(self.param.resamples, name="Bootstrap resamples", width=150),
                   pn.widgets.Select.from_param(self.param.unit, name="Resample", width=190,
                                                options={v: k for k, v in UNIT_NAMES.items()}),
                   self.compute),
            pn.Row(pn.widgets.TextInput.from_param(self.param.folder, name="or open a qpe evaluate --out folder",
                                                   placeholder="path on the server, e.g. eval/", width=460),
                   self.open),
            pn.Row(self.progress, self.status),
            pn.Row(pn.widgets.Select.from_param(self.param.reference, name="Score-card reference", width=220),
                   pn.widgets.Select.from_param(self.param.score, name="Series of", width=220)),
            sizing_mode="stretch_width")
        self.compute.on_click(self._on_compute)
        self.open.on_click(lambda event: self.open_folder())
        self.status.object = "Score the shown models over a range of days, or open a qpe evaluate folder."

    # -- what a computation asks for ----------------------------------------------------------------------
    def request(self) -> PeriodRequest:
        """The period of the shown models between the chosen days, with the shown sampling and thresholds.

        Raises
        ------
        QpeError
            No day chosen, or a shown model that is neither a checkpoint nor a folder of estimates.
        """
        if self.start is None or self.end is None:
            raise InputError("choose the first and last day of the period")
        state, registry = self.session.state, self.session.registry
        settings = self.session.estimate_settings()
        own = [registry.external[m] for m in state.models if m in registry.external]
        checkpoints = tuple((m, str(registry[m].path)) for m in state.models if m not in registry.external)
        cards = [registry[m].card for m, _ in checkpoints]
        weights = tuple(card.weights.sha256 if card.weights else "" for card in cards)
        estimates = tuple((e.key, str(e.path), e.estimates.regrid or "") for e in own)
        names = [card.name for card in cards] + [e.key for e in own]
        config = EvaluationConfig(
            scores=ScoreConfig(thresholds=tuple(sorted(state.thresholds))),
            estimate=settings.config(),
            n_resamples=self.resamples, bootstrap_unit=self.unit,
            compare_to=self.reference if names.count(self.reference) == 1 else None)
        last = pd.Timestamp(self.end) + pd.Timedelta(days=1) - pd.Timedelta(minutes=1)
        return PeriodRequest(str(self.session.data_path), checkpoints, weights, f"{pd.Timestamp(self.start):%Y-%m-%dT%H:%M}",
                             f"{last:%Y-%m-%dT%H:%M}", config, estimates,
                             tuple(folder_version(folder) for _, folder, _ in estimates))

    async def _on_compute(self, event=None) -> None:
        try:
            request = self.request()
        except QpeError as err:
            self.session.messages.report("period", err)
            return
        job = period_job(request, self.session.estimates.cache)
        self.compute.disabled = True
        self.progress.visible = True
        waiting = asyncio.wrap_future(job.future)
        try:
            while not waiting.done():
                self.progress.value = int(100 * job.progress.fraction)
                self.status.object = plain_html(job.progress.text())
                await asyncio.wait([waiting], timeout=PROGRESS_EVERY_S)
            result = waiting.result()
        except Exception as err:  # noqa: BLE001 - shown with its cause (logged in full unless a QpeError)
            self.session.messages.report("period", err)
            self.status.object = "The period could not be scored (see the message above)."
        else:
            self.session.messages.clear("period")
            if not self.session.closed:
                self.show(result)
        finally:
            self.compute.disabled = False
            self.progress.visible = False

    def compute_blocking(self) -> PeriodScores:
        """Compute (or take the kept result) in this thread and show it (scripts, tests, benchmarks)."""
        request = self.request()
        result = kept_period(request)
        if result is None:
            result = compute_period(request, self.session.estimates.cache)
            _keep(request, result)
        self.show(result)
        return result

    def open_folder(self) -> PeriodScores | None:
        """Read the folder of :attr:`folder` and show it; a bad folder gives one message."""
        try:
            result = open_evaluation(self.folder.strip())
        except QpeError as err:
            self.session.messages.report("period", err)
            return None
        self.session.messages.clear("period")
        self.show(result)
        return result

    # -- showing ----------------------------------------------------------------------------------------------
    def show(self, period: PeriodScores) -> None:
        """Show a period's table, score-card and series (reference and score kept when they still apply)."""
        self.period = period
        models, labels = period.models, [c.label for c in period.cards]
        reference = self.reference if self.reference in models else (period.reference or models[0])
        score = self.score if self.score in labels else (labels[0] if labels else None)
        redraw_card, redraw_series = reference == self.reference, score == self.score  # else their watchers do
        with hold():  # options and value reach the browser together (else its Select picks the first option)
            self.param.reference.objects, self.param.score.objects = models, labels
            self.param.update(reference=reference, score=score)
        attrs = period.scores.attrs
        self.info.object = plain_markdown(
            f"{period.source}: {len(models)} model(s), {attrs.get('n_times', '?')} times "
            f"({attrs.get('period_start', '')} .. {attrs.get('period_end', '')} UTC, {attrs.get('n_days', '?')} "
            f"day(s)); intervals: {attrs.get('confidence_interval', 'none')}")
        self.status.object = plain_html(f"Scores of {', '.join(models)}")
        self.table.object = interval_table(period)
        self.table.visible = True
        if redraw_card:
            self._show_card()
        if redraw_series:
            self._show_series()

    @param.depends("reference", watch=True)
    def _show_card(self) -> None:
        if self.period is None or self.reference is None:
            return
        if len(self.period.models) < 2:
            self.scorecard.object = "<p>The score-card compares two models or more.</p>"
            return
        try:
            period = self.period.against(self.reference)
        except QpeError as err:
            self.session.messages.report("period", err)
            return
        card = period.scorecard_against(self.reference)
        level = float(card.attrs.get("confidence", 0.95))
        self.scorecard.object = (
            f"<b>Score-card: each model − {plain_html(self.reference)}</b> (paired differences; "
            f"{level:.0%} bootstrap interval over the same resampled cases, or the Diebold-Mariano test without "
            "one; ▲ significantly better, △ better, = equal, ▽ worse, ▼ significantly worse)" + scorecard_html(card))

    @param.depends("score", watch=True)
    def _show_series(self) -> None:
        if self.period is None or self.score is None:
            return
        card = next(c for c in self.period.cards if c.label == self.score)
        try:
            self.plot.object = series_plot(self.period.series(card))
        except QpeError as err:
            self.plot.object = None
            self.session.messages.report("period", err)

    def __panel__(self):
        note = pn.pane.Markdown(
            "Scores of the shown models over whole days (thresholds, members, steps, seed and precision as shown), "
            "computed with qpe evaluate's code — or read from its output folder. Figures: each model's score "
            "per day (or time), and the score-card of paired differences against the reference.",
            styles={"font-size": "0.85em", "color": "#555"})
        figures = pn.FlexBox(pn.Column(self.plot, min_width=420, sizing_mode="stretch_width", styles={"flex": "1 1 480px"}),
                             pn.Column(self.scorecard, min_width=420, sizing_mode="stretch_width",
                                       styles={"flex": "1 1 480px", "overflow-x": "auto"}),
                             sizing_mode="stretch_width")
        return pn.Column(self._controls, note, self.info, figures, self.table, sizing_mode="stretch_width")
