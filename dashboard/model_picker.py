"""Model picker: the checkpoints (and folders of your own estimates) found under the models folder, their
cards, and estimates on demand.

:class:`EstimateRunner` computes the missing (model, time) estimates off the event loop (so the
server stays responsive), one at a time with a progress bar that follows the sampler (step k of K,
tiles, members, time left: :class:`qpe.inference.engine.EstimateProgress`), and reports a failing
checkpoint or estimate as a message without stopping the others. Its Cancel button stops the running
estimate between two network evaluations and skips the rest of the run; nothing of the cancelled field
is kept.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.case_picker import times_on
from dashboard.checkpoints import REGRID_CHOICES
from dashboard.session import DashboardSession
from dashboard.state import ESTIMATE_PARAMETERS, format_time
from dashboard.text import markdown_code, plain_html, plain_markdown
from qpe.errors import CheckpointError, EstimateCancelled, QpeError
from qpe.inference.engine import EstimateProgress

log = logging.getLogger("dashboard")

#: Estimates run on this thread, one at a time per server (torch already uses every core for one; the
#: event loop only waits for it, so sessions stay responsive).
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qpe-estimate")
#: Seconds between two updates of the progress bar and line while an estimate runs.
PROGRESS_INTERVAL_S = 0.5
#: Steps of the progress bar per estimate (its value follows the fraction of sampler steps done).
BAR_STEPS = 100


def failure_message(model: str, time: pd.Timestamp, err: Exception) -> tuple[str, str]:
    """(topic, one line) for a failed estimate: a checkpoint that does not load, or an estimate error."""
    if isinstance(err, CheckpointError):
        return f"checkpoint:{model}", f"Checkpoint {model} failed to load: {err}"
    reason = str(err) if str(err) else type(err).__name__
    return f"estimate:{model}", f"Estimate of {model} at {format_time(time)} failed: {reason}"


class EstimateRunner:
    """Estimates of the shown models at chosen times, with progress, for one session."""

    def __init__(self, session: DashboardSession) -> None:
        self.session = session
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False, sizing_mode="stretch_width",
                                               bar_color="primary")
        self.status = pn.pane.Str("", styles={"font-size": "0.85em"}, margin=(0, 10),  # wraps in the sidebar
                                  stylesheets=["pre { white-space: pre-wrap; overflow-wrap: anywhere; }"])
        self.cancel_button = pn.widgets.Button(label="Cancel", color="warning", visible=False,
                                               sizing_mode="stretch_width",
                                               description="stop the running estimate (nothing of it is kept)")
        self.cancel_button.on_click(self._on_cancel)
        self._auto_generation = 0
        self.running = 0
        #: Set by Cancel; checked by the running estimate between network evaluations.
        self.cancel = threading.Event()
        #: The latest progress report of the running estimate (written by the worker thread).
        self.latest: EstimateProgress | None = None

    def missing(self, models: Sequence[str], times: Sequence[pd.Timestamp]) -> list[tuple[str, pd.Timestamp]]:
        """The (model, time) pairs not in memory yet, time by time."""
        return [(m, t) for t in times for m in models if self.session.recall(m, t) is None]

    def _report(self, progress: EstimateProgress) -> None:
        self.latest = progress

    def _compute(self, model: str, time: pd.Timestamp) -> Exception | None:
        """Compute one estimate (on a worker thread; touches no view); the error if it failed.

        Anything but a :class:`QpeError` is logged here in full, whether or not the session is still open.
        """
        try:
            self.session.estimates.field(model, time, self.session.estimate_settings(),
                                         on_progress=self._report, cancel=self.cancel)
        except Exception as err:  # reported by _record with its cause
            if not isinstance(err, QpeError):
                log.exception("estimate of %s at %s failed", model, format_time(time), exc_info=err)
            return err
        return None

    def _on_cancel(self, event=None) -> None:
        """Ask the running estimate to stop (it stops at its next sampler step)."""
        if self.running:
            self.cancel.set()
            self.status.object = plain_html("cancelling …")

    def _show(self, label: str, done: int, total: int) -> None:
        """The line and bar of estimate ``done + 1`` of ``total`` from the latest report."""
        report = self.latest
        detail = f": {report.describe()}" if report is not None else ""
        self.status.object = plain_html(f"{label} ({done + 1}/{total}){detail}")
        fraction = report.fraction if report is not None else 0.0
        self.progress.value = int(BAR_STEPS * done + round(BAR_STEPS * fraction))

    def _record(self, model: str, time: pd.Timestamp, err: Exception | None) -> str | None:
        """Show the outcome of one estimate in the session; returns the failure's topic (``checkpoint:...``)."""
        session = self.session
        key = (model, format_time(time))
        if err is not None:
            topic, text = failure_message(model, time, err)
            session.failures[key] = text
            session.messages.set(topic, text)
            return topic
        session.failures.pop(key, None)
        session.messages.clear(f"checkpoint:{model}")
        session.messages.clear(f"estimate:{model}")
        return None

    def run_blocking(self, models: Sequence[str], times: Sequence[pd.Timestamp]) -> int:
        """Compute the missing estimates in this thread (scripts, tests); returns how many failed."""
        if not self.running:
            self.cancel.clear()  # a Cancel stops the run it was clicked in, not the next one
        failed = 0
        for model, time in self.missing(models, times):
            failed += self._record(model, time, self._compute(model, time)) is not None
        self.session.revision += 1
        return failed

    async def run(self, models: Sequence[str], times: Sequence[pd.Timestamp], auto: bool = False) -> None:
        """Compute the missing estimates on worker threads, updating the progress bar.

        A newer automatic run (the case changed again) supersedes an older one; runs asked for with
        the Run button always finish. When the browser tab is closed meanwhile (the session is
        :attr:`~dashboard.session.DashboardSession.closed`), the run stops at the estimate in progress,
        whose field stays in the shared memory and cache, and updates no view.
        """
        if auto:
            self._auto_generation += 1
        generation = self._auto_generation
        jobs = self.missing(models, times)
        if not jobs:
            self.session.revision += 1
            return
        loop = asyncio.get_running_loop()
        if not self.running:
            self.cancel.clear()  # a Cancel stops the run it was clicked in, not the next one
        self.running += 1
        self.progress.max, self.progress.value, self.progress.visible = BAR_STEPS * len(jobs), 0, True
        self.cancel_button.visible = True
        broken: set[str] = set()
        shown = self.session.state.timestamp
        try:
            for done, (model, time) in enumerate(jobs):
                if auto and generation != self._auto_generation:
                    return
                if self.cancel.is_set():
                    self.status.object = plain_html(f"cancelled; {done} of {len(jobs)} estimate(s) done")
                    return
                if model in broken:
                    continue
                label = f"estimating {model} at {format_time(time)}"
                self.latest = None
                self._show(label, done, len(jobs))
                self.session.pending.add((model, format_time(time)))
                try:
                    job = loop.run_in_executor(_EXECUTOR, self._compute, model, time)
                    while not job.done():  # the worker thread writes self.latest; the loop shows it
                        await asyncio.wait([job], timeout=PROGRESS_INTERVAL_S)
                        if not self.session.closed and not self.cancel.is_set():
                            self._show(label, done, len(jobs))
                    err = job.result()
                finally:
                    self.session.pending.discard((model, format_time(time)))
                if self.session.closed:
                    return
                if isinstance(err, EstimateCancelled):
                    self.status.object = plain_html(f"cancelled {model} at {format_time(time)}; {done} of "
                                                    f"{len(jobs)} estimate(s) done")
                    return
                problem = self._record(model, time, err)
                if problem is not None and problem.startswith("checkpoint:"):
                    broken.add(model)  # a checkpoint that does not load fails at every time
                self.progress.value = BAR_STEPS * (done + 1)
                if time == shown or done == len(jobs) - 1:
                    self.session.revision += 1
            self.status.object = plain_html(f"{len(jobs)} estimate(s) done" if not broken else
                                            f"done; {', '.join(sorted(broken))} failed to load")
        finally:
            self.running -= 1
            if not self.session.closed:
                self.progress.visible = self.cancel_button.visible = self.running > 0
                self.session.revision += 1


class ModelPicker(Viewer):
    """Checkpoints with their model cards; members, sampler steps, seed; Run with a progress bar."""

    def __init__(self, session: DashboardSession, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        registry = session.registry
        self.runner = EstimateRunner(session)
        known = [m for m in self.state.models if registry.offers(m)]
        unknown = [m for m in self.state.models if not registry.offers(m)]
        if unknown:
            session.messages.set(
                "models", f"Checkpoint(s) {', '.join(unknown)} of the link are not under {registry.root} "
                f"(found: {', '.join(registry.keys) or 'none'})."
            )
            self.state.models = known
        self.choice = pn.widgets.MultiChoice(  # Bokeh shows the labels as HTML: escaped keys as labels
            label="Models", options={plain_html(key): key for key in registry.keys}, value=list(self.state.models),
            sizing_mode="stretch_width",
            placeholder="choose models" if registry.keys else "no checkpoint found",
        )
        self.members = pn.widgets.IntInput.from_param(self.state.param.members, label="Members", width=90)
        self.steps = pn.widgets.IntInput.from_param(self.state.param.steps, label="Steps (0: card)", width=100)
        self.seed = pn.widgets.IntInput.from_param(self.state.param.seed, label="Seed", width=80)
        self.precision = pn.widgets.Select.from_param(self.state.param.precision, label="Precision", width=110)
        self.auto = pn.widgets.Checkbox(label="estimate when the case changes", value=True)
        self.scope = pn.widgets.RadioButtonGroup(options=["shown time", "whole day"], value="shown time",
                                                 color="light", sizing_mode="stretch_width")
        self.run_button = pn.widgets.Button(label="Run", color="primary", sizing_mode="stretch_width",
                                            description="estimate the chosen models (cached results are reused)")
        self.cards = pn.Column(sizing_mode="stretch_width")
        self.problems = pn.pane.Alert(alert_type="warning", visible=False, sizing_mode="stretch_width")
        self._show_problems()
        self.choice.param.watch(self._on_choice, "value")
        self.state.param.watch(self._on_state_models, "models")
        self.state.param.watch(self._on_case, ["time", "models", *ESTIMATE_PARAMETERS])
        self.run_button.on_click(self._on_run)
        self._show_cards()

    def _show_problems(self) -> None:
        registry = self.session.registry
        lines = []
        if not registry.keys:
            lines.append(
                f"No checkpoint found under {markdown_code(registry.root)}. Train one (see models/README.md) or start "
                "the dashboard with `--models` pointing at a folder of checkpoints; radar and IR are shown "
                "meanwhile."
            )
        lines += [f"{markdown_code(key)}: {plain_markdown(reason)}" for key, reason in sorted(registry.problems.items())
                  if key != str(registry.root)]
        self.problems.object = "\n\n".join(lines)
        self.problems.visible = bool(lines)

    def _show_cards(self) -> None:
        registry = self.session.registry
        self.cards.objects = [self._external_card(m) if m in registry.external else
                              pn.pane.Markdown(registry.model(m).describe(), styles={"font-size": "0.85em"}, margin=(0, 5))
                              for m in self.state.models if registry.offers(m)]

    def _external_card(self, key: str) -> pn.Column:
        """The card of a folder of your own estimates: what it holds, its grid, and how another grid is regridded."""
        model = self.session.registry.external[key]
        text = f"{model.describe()}\n- grid: {plain_markdown(model.grid_note(self.session.grid))}"
        regrid = pn.widgets.Select(label="Another grid", options=list(REGRID_CHOICES), value=model.regrid_choice,
                                   width=150, margin=(0, 5), css_classes=["qpe-regrid"],
                                   description="estimates on another grid than the data's: refuse them, or regrid "
                                               "them as qpe evaluate --estimates-regrid METHOD",
                                   visible=not model.estimates.grid.matches(self.session.grid))  # else nothing to choose
        regrid.param.watch(lambda event: self.choose_regrid(key, event.new), "value")
        return pn.Column(pn.pane.Markdown(text, styles={"font-size": "0.85em"}, margin=(0, 5)), regrid,
                         sizing_mode="stretch_width")

    def choose_regrid(self, key: str, choice: str) -> None:
        """Regrid (or refuse) the external estimates ``key`` from now on: forget their failures and estimate again."""
        registry, session = self.session.registry, self.session
        if registry.external[key].regrid_choice == choice:
            return
        registry.set_regrid(key, choice)
        for failed in [k for k in session.failures if k[0] == key]:
            del session.failures[failed]
        session.messages.clear(f"estimate:{key}")
        self._show_cards()
        if self.auto.value and key in self.state.models and self.state.timestamp is not None:
            pn.state.execute(self._auto_run)
        else:
            session.revision += 1

    def _on_choice(self, event) -> None:
        if list(event.new) != list(self.state.models):
            self.state.models = list(event.new)

    def _on_state_models(self, event) -> None:
        if list(self.choice.value) != list(event.new):
            self.choice.value = [m for m in event.new if self.session.registry.offers(m)]
        self._show_cards()

    def _on_case(self, *events) -> None:
        if self.auto.value and self.state.models and self.state.timestamp is not None:
            pn.state.execute(self._auto_run)

    async def _auto_run(self) -> None:
        await self.runner.run(list(self.state.models), [self.state.timestamp], auto=True)

    def times_to_run(self) -> list[pd.Timestamp]:
        """The shown time, or every time of its date."""
        shown = self.state.timestamp
        if shown is None:
            return []
        if self.scope.value == "whole day":
            return list(times_on(self.session.times, shown.date()))
        return [shown]

    async def _on_run(self, event) -> None:
        if not self.state.models:
            self.runner.status.object = "choose at least one model first"
            return
        await self.runner.run(list(self.state.models), self.times_to_run())

    def start(self) -> None:
        """Estimate the models of a restored link once the session is up."""
        self._on_case()

    def __panel__(self):
        return pn.Column(
            self.problems, self.choice, pn.Row(self.members, self.steps, self.seed), self.precision, self.auto,
            self.scope, self.run_button, self.runner.progress, self.runner.status, self.runner.cancel_button,
            pn.Card(self.cards, title="Model cards", collapsed=False, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
