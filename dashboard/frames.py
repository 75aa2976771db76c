"""Input frames: what the past IR frames contribute to one model's estimate at the shown time.

Everything shown comes from :func:`qpe.inference.frames.frame_contributions` (the model run again with
each past frame k, and with every past frame, replaced by the latest one — persistence — with the
same seed) and :func:`~qpe.inference.frames.frame_score_table`; nothing here computes a value. It
runs on demand (T + 1 estimates), off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import panel as pn
import xarray as xr
from panel.viewable import Viewer

from dashboard.maps import MapGrid, MapPanel
from dashboard.session import DashboardSession
from dashboard.state import ESTIMATE_PARAMETERS, format_time
from dashboard.text import markdown_code, plain_html, plain_markdown
from qpe.errors import QpeError
from qpe.inference.frames import ALL_PAST, FRAME_SCORE_FAMILIES, FULL, frame_contributions, frame_score_table
from qpe.inference.products import ensemble_mean
from qpe.verify import ScoreConfig

log = logging.getLogger("dashboard")

#: Frame replacements run here, one at a time per server (the device itself is shared through
#: :func:`qpe.inference.device.exclusive` with the estimates of the other views).
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qpe-frames")
#: Results kept per view (model, time, settings), most recent last.
KEPT_RESULTS = 8


#: Why a shown model has no input frames to replace, by kind: the line the tab shows for it.
NOT_APPLICABLE = {
    "external": "your own estimates, read from files: no IR inputs to replace",
    "one frame": "reads one IR frame (T = 1): no past frame to replace",
}


def frames_models(session: DashboardSession) -> list[str]:
    """The shown models that read more than one IR frame (T > 1): those with past frames to replace."""
    registry = session.registry
    return [m for m in session.state.models if m in registry.checkpoints and registry[m].card.input.frames > 1]


def frames_not_applicable(session: DashboardSession) -> dict[str, str]:
    """The shown models the tab does not apply to, with why (:data:`NOT_APPLICABLE`)."""
    registry = session.registry
    return {m: NOT_APPLICABLE["external" if m in registry.external else "one frame"]
            for m in session.state.models if registry.offers(m) and m not in frames_models(session)}


def variant_title(result: xr.Dataset, variant: str) -> str:
    """``frame 1 (t − 45 min) → frame 4`` or ``all past frames (1–3) → frame 4``: what a variant replaced."""
    frames, step = int(result.attrs["frames"]), int(result.attrs["frame_step_min"])
    replaced = [int(k) for k in str(result["replaced_frames"].sel(variant=variant).values).split(",") if k]
    if variant == ALL_PAST:
        which = f"{replaced[0]}–{replaced[-1]}" if len(replaced) > 1 else f"{replaced[0]}"
        return f"all past frames ({which}) → frame {frames}"
    k = replaced[0]
    return f"frame {k} (t − {(frames - k) * step} min) → frame {frames}"


def frames_panels(session: DashboardSession, model: str, result: xr.Dataset | None) -> list[MapPanel]:
    """Radar, the full-input estimate (ensemble mean) and the change map of each variant."""
    time = session.state.timestamp
    when = format_time(time)
    panels = [MapPanel("radar", f"radar {when}", "rain", session.radar(time))]
    if result is None:
        return panels
    rain = result["rain"].sel(variant=FULL).isel(time=0, drop=True)
    panels.append(MapPanel("full", f"{model} (all {result.attrs['frames']} frames)", "rain", ensemble_mean(rain)))
    for variant in result["variant"].values[1:]:
        change = result["change"].sel(variant=variant).isel(time=0, drop=True)
        panels.append(MapPanel(str(variant), f"change: {variant_title(result, str(variant))}", "change", change))
    return panels


def format_frame_table(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as shown: 4 significant digits (differences signed), blank where a score does not apply."""
    def number(column: str):
        sign = "+" if column.startswith("Δ") else ""
        return lambda v: "" if pd.isna(v) else f"{v:{sign}.4g}"

    return pd.DataFrame({c: table[c].map(number(c)) if table[c].dtype.kind == "f" else table[c].astype(str)
                         for c in table.columns}, index=table.index)


class FramesPanel(Viewer):
    """Change maps and scores of one model with each past IR frame replaced by the latest (on demand)."""

    def __init__(self, session: DashboardSession, live=lambda: True, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        self.model = pn.widgets.Select(label="Model (T > 1 frames)", options=[], width=240)
        self.compute = pn.widgets.Button(label="Replace past frames", color="primary", width=200,
                                         description="estimate again with each past IR frame replaced by the latest")
        self.status = pn.pane.Str("", styles={"font-size": "0.85em"})
        self.note = pn.pane.Markdown(
            "Each past IR frame k (1 = oldest) is replaced by the latest frame T (persistence), and then every "
            "past frame; the model runs again with the same seed. Maps: change of the (ensemble-mean) estimate, "
            "mm/h (blue: more rain without that frame's information). Scores over the whole grid; Δ = variant − "
            "full input.", styles={"font-size": "0.85em", "color": "#555"})
        self.skipped = pn.pane.Markdown("", styles={"font-size": "0.85em", "color": "#555"},
                                        css_classes=["qpe-frames-not-applicable"])
        self.table = pn.pane.DataFrame(sizing_mode="stretch_width", css_classes=["qpe-frames-table"], escape=True,
                                       index=True, bold_rows=True, visible=False)
        self._live = live
        self._results: OrderedDict[tuple, xr.Dataset] = OrderedDict()
        self.result: xr.Dataset | None = None
        self._sync_models()
        self.grid = MapGrid(session, panels=lambda s: frames_panels(s, self.state.frames_model, self.result),
                            rebuild_on=("frames_model",), columns=3, live=live)
        self.model.param.watch(self._on_model, "value")
        self.compute.on_click(self._on_compute)
        self.state.param.watch(lambda *events: self._sync_models(), ["models"])
        self.state.param.watch(lambda *events: self.show(), ["time", "frames_model", *ESTIMATE_PARAMETERS,
                                                              "thresholds", "threshold"])

    def _sync_models(self) -> None:
        options = frames_models(self.session)
        self.model.options = {plain_html(m): m for m in options}  # Bokeh shows option labels as HTML
        if self.state.frames_model not in options:
            self.state.frames_model = options[0] if options else ""
        self.model.value = self.state.frames_model or None
        self.compute.disabled = not options
        self.skipped.object = "  \n".join(f"Not applicable to {markdown_code(m)}: {plain_markdown(why)}."
                                          for m, why in frames_not_applicable(self.session).items())
        if not options:
            self.status.object = "Choose a model reading more than one IR frame (T > 1)."

    def _on_model(self, event) -> None:
        if event.new and event.new != self.state.frames_model:
            self.state.frames_model = event.new

    def key(self) -> tuple:
        """What a result depends on: model, time, sampling and score thresholds."""
        state = self.state
        return (state.frames_model, state.time, self.session.estimate_settings(), tuple(sorted(state.thresholds)))

    def run(self) -> xr.Dataset:
        """The library's frame replacement for the shown model and time (computed, or kept from before)."""
        key = self.key()
        if key not in self._results:
            state, settings = self.state, self.session.estimate_settings()
            scores = ScoreConfig(families=FRAME_SCORE_FAMILIES, thresholds=tuple(sorted(state.thresholds)))
            self._results[key] = frame_contributions(
                self.session.registry.load(state.frames_model), self.session.dataset, [state.timestamp], settings.config(),
                scores, cache=self.session.estimates.cache)
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)
        return self._results[key]

    async def _on_compute(self, event=None) -> None:
        if not self.state.frames_model or self.state.timestamp is None:
            return
        model, when = self.state.frames_model, self.state.time
        self.status.object = plain_html(f"replacing the past frames of {model} at {when}…")
        self.compute.disabled = True
        try:
            await asyncio.get_running_loop().run_in_executor(_EXECUTOR, self.run)
        except Exception as err:  # noqa: BLE001 - shown with its cause (logged in full unless a QpeError)
            self.session.messages.report(f"frames:{model}", err)
            self.status.object = plain_html(f"{model} at {when} failed (see the message above)")
        else:
            self.session.messages.clear(f"frames:{model}")
        finally:
            self.compute.disabled = False
        if not self.session.closed:
            self.show()

    def compute_blocking(self) -> xr.Dataset:
        """Compute in this thread and show (scripts, tests)."""
        result = self.run()
        self.show()
        return result

    def show(self) -> None:
        """Show the result of the current case if there is one; otherwise say how to get it."""
        self.result = self._results.get(self.key())
        result, state = self.result, self.state
        if result is None:
            if state.frames_model:
                self.status.object = plain_html(f"press “Replace past frames” for {state.frames_model} at {state.time}")
            self.table.visible = False
        else:
            try:
                table = frame_score_table(result, threshold=state.threshold)
            except QpeError as err:
                self.session.messages.report("frames", err)
            else:
                self.table.object = format_frame_table(table)
                self.table.visible = True
            self.status.object = plain_html(
                f"{state.frames_model} at {state.time}: T = {result.attrs['frames']}, "
                f"{result.sizes['member']} member(s), seed {result.attrs['seed']}")
        self.grid.update_panels()
        if self._live():
            self.grid.rebuild()

    def __panel__(self):
        return pn.Column(pn.Row(self.model, self.compute), self.status, self.skipped, self.note, self.table, self.grid,
                         sizing_mode="stretch_width")
