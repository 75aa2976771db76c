"""Ensemble browser: step through the members of one model next to the radar, and its spread map; below,
every member at once as postage stamps.

The models offered are the shown ones that can have members: checkpoints that sample an ensemble (DDPM,
flow) and folders of your own estimates (:mod:`qpe.inference.external`), whatever their member count; a
model with one member says so instead of an ensemble view. The postage stamps are small multiples of
radar, the ensemble mean and each member, on the colours of the rain maps (:func:`dashboard.maps.map_style`,
the case's rain scale) with linked zoom; :func:`stamp_layout` says how many rows and columns they take.
"""

from __future__ import annotations

import dataclasses
import math

import panel as pn
from panel.viewable import Viewer

from dashboard.maps import MapGrid, MapPanel
from dashboard.page_layout import LAYOUTS
from dashboard.session import DashboardSession
from dashboard.state import format_time
from dashboard.text import plain_html, plain_markdown
from qpe.colours import model_colour
from qpe.inference.products import ensemble_mean, ensemble_spread

#: Shown instead of an ensemble view for a model whose estimates have one member.
ONE_MEMBER = "1 member: no ensemble view"
#: Most postage stamps side by side (more members wrap into more rows).
STAMP_COLUMNS = 6
#: Room around a stamp's plot frame, px (no axes, no colour bar: a two-line title and the toolbar).
STAMP_MARGINS = (40.0, 44.0)


def ensemble_models(session: DashboardSession) -> list[str]:
    """The shown models the ensemble tab offers: checkpoints that sample an ensemble (DDPM, flow) and folders of
    your own estimates (those with one member say :data:`ONE_MEMBER`)."""
    registry = session.registry
    return [m for m in session.state.models
            if m in registry.external or (m in registry.checkpoints and registry[m].is_ensemble)]


def member_count(session: DashboardSession, model: str) -> int | None:
    """Members of ``model``'s estimate at the shown time (None while it is not estimated); the files' count for
    external estimates."""
    estimate = session.recall(model)
    if estimate is not None:
        return estimate.sizes["member"]
    external = session.registry.external.get(model)
    return external.estimates.members if external is not None else None


def _missing_note(session: DashboardSession, model: str) -> str:
    return "failed (see message)" if (model, session.state.time) in session.failures else "not estimated yet"


def ensemble_panels(session: DashboardSession) -> list[MapPanel]:
    """Radar, the chosen member of the browsed model, and the model's spread (one member: the field itself,
    titled :data:`ONE_MEMBER`, and no spread)."""
    state = session.state
    when = format_time(state.timestamp)
    panels = [MapPanel("radar", f"radar {when}", "rain", session.radar(state.timestamp))]
    model = state.ensemble_model
    if not model:
        return panels
    colour = model_colour(model)
    estimate = session.recall(model)
    if estimate is None:
        note = _missing_note(session, model)
        return panels + [MapPanel("member", f"{model} member", "rain", None, note, colour=colour),
                         MapPanel("spread", f"{model} spread", "spread", None, note, colour=colour)]
    members = estimate.sizes["member"]
    if members == 1:
        return panels + [MapPanel("member", model, "rain", estimate.isel(member=0, drop=True), ONE_MEMBER,
                                  colour=colour)]
    member = min(state.member, members - 1)
    return panels + [
        MapPanel("member", f"{model} member {member} of {members}", "rain", estimate.isel(member=member, drop=True),
                 colour=colour),
        MapPanel("spread", f"{model} spread (std of {members})", "spread", ensemble_spread(estimate), colour=colour),
    ]


def stamp_layout(count: int, most_columns: int = STAMP_COLUMNS) -> tuple[int, int]:
    """(rows, columns) of ``count`` postage stamps: about square, at most ``most_columns`` wide, wrapping into
    more rows (6 stamps: 2 x 3; 10: 3 x 4; 66: 11 x 6).

    Raises
    ------
    ValueError
        ``count`` or ``most_columns`` below 1.
    """
    if count < 1 or most_columns < 1:
        raise ValueError(f"postage stamps need at least one stamp and one column, not {count} and {most_columns}")
    columns = min(most_columns, math.ceil(math.sqrt(count)))
    return math.ceil(count / columns), columns


def stamp_panels(session: DashboardSession) -> list[MapPanel]:
    """The postage stamps of the browsed model: radar, the ensemble mean, then every member (``member i``), titled
    in the model's colour; none while the model has no estimate or has one member."""
    state = session.state
    model = state.ensemble_model
    estimate = session.recall(model) if model else None
    if estimate is None or estimate.sizes["member"] == 1:
        return []
    when = format_time(state.timestamp)
    colour, details = model_colour(model), f"{model} · {when} UTC"
    return [MapPanel("radar", "radar", "rain", session.radar(state.timestamp), details=f"{when} UTC"),
            MapPanel("mean", f"mean of {estimate.sizes['member']}", "rain", ensemble_mean(estimate), details=details,
                     colour=colour)] + [MapPanel(f"member-{i}", f"member {i}", "rain", estimate.isel(member=i, drop=True),
                              details=details, colour=colour) for i in range(estimate.sizes["member"])]


def stamp_stylesheet(columns: int) -> str:
    """CSS of the postage-stamp grid: ``columns`` equal columns (rows as many as the stamps need)."""
    return (f":host {{ display: grid !important; grid-template-columns: repeat({columns}, minmax(0, 1fr)); "
            "gap: 4px; align-items: start; }\n")


class StampGrid(MapGrid):
    """Postage stamps (:func:`stamp_panels`): the map grid's linked, rasterised maps, smaller, without axes and
    colour bars (the rain maps above carry the colour bar), in :func:`stamp_layout`'s columns."""

    def __init__(self, session: DashboardSession, live=lambda: True) -> None:
        super().__init__(session, panels=stamp_panels, rebuild_on=("ensemble_model",), width=240, live=live)
        self.holder.css_classes = ["qpe-stamps"]
        self.status.css_classes = ["qpe-stamp-status"]
        self.legend.object = ("Every member at once, radar and the ensemble mean first; colours as the rain maps "
                              "above, zoom linked.")

    def update_panels(self) -> list[MapPanel]:
        panels = super().update_panels()
        if not panels:
            model = self.state.ensemble_model
            why = "no ensemble model shown" if not model else (
                f"{model}: {ONE_MEMBER}" if member_count(self.session, model) == 1 else
                f"{model}: {_missing_note(self.session, model)}")
            self.status.object = plain_html(f"No postage stamps ({why}).")
        return panels

    def _slot_map(self, slot, style, aspect):
        return super()._slot_map(slot, style, aspect).opts(colorbar=False, xaxis=None, yaxis=None, min_height=120)

    def rebuild(self) -> None:
        # the stamps' aspect and fonts: the page layout's fonts, margins without axes and colour bar
        self.layout = dataclasses.replace(LAYOUTS[self.state.layout], map_margins=STAMP_MARGINS)
        super().rebuild()
        self.maps.stylesheets = [stamp_stylesheet(stamp_layout(max(len(self.shown()), 1))[1])]


class EnsembleBrowser(Viewer):
    """Members of one ensemble model, one at a time (slider or player), beside radar and spread; below, all
    members as postage stamps."""

    def __init__(self, session: DashboardSession, live=lambda: True, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        self.model = pn.widgets.Select(label="Ensemble model", options={}, width=220)
        self.member = pn.widgets.Player(label="Member", start=0, end=max(self.state.members - 1, 1),
                                        value=self.state.member, interval=900, loop_policy="loop",
                                        show_loop_controls=False, scale_buttons=0.7, width=300)
        self.previous = pn.widgets.Button(label="◀ member", width=100, description="previous member")
        self.next = pn.widgets.Button(label="member ▶", width=100, description="next member")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        self.note = pn.pane.Markdown(styles={"font-size": "0.85em", "color": "#555"}, css_classes=["qpe-ensemble-note"])
        self._sync_models()
        self.grid = MapGrid(session, panels=ensemble_panels, rebuild_on=("ensemble_model",), columns=3, live=live)
        self.stamps = StampGrid(session, live=live)
        self.model.param.watch(self._on_model, "value")
        self.member.param.watch(self._on_member, "value")
        self.state.param.watch(lambda *events: self._sync_models(), ["models"])
        self.state.param.watch(self._on_state_member, ["member", "members", "ensemble_model", "time"])
        session.param.watch(self._on_state_member, "revision")
        self.state.param.watch(lambda event: self.stamps.wake(), "tab")  # the app wakes self.grid

    def _sync_models(self) -> None:
        options = ensemble_models(self.session)
        self.model.options = {plain_html(m): m for m in options}  # Bokeh shows option labels as HTML
        if self.state.ensemble_model not in options:
            self.state.ensemble_model = options[0] if options else ""
        self.model.value = self.state.ensemble_model or None
        self._show_note()

    def _show_note(self) -> None:
        model = self.state.ensemble_model
        if not model:
            self.note.object = "Choose a DDPM or flow model, or your own estimates, to browse its members."
        elif member_count(self.session, model) == 1:
            self.note.object = plain_markdown(f"{model}: {ONE_MEMBER} (its estimates are one deterministic field).")
        else:
            self.note.object = ""

    def step(self, steps: int) -> None:
        """Show the member ``steps`` further on (wrapping around the ensemble)."""
        model = self.state.ensemble_model
        members = (member_count(self.session, model) if model else None) or self.state.members
        self.state.member = (self.state.member + steps) % max(members, 1)

    def _on_model(self, event) -> None:
        if event.new and event.new != self.state.ensemble_model:
            self.state.ensemble_model = event.new

    def _on_member(self, event) -> None:
        if event.new != self.state.member:
            self.state.member = int(event.new)

    def _on_state_member(self, *events) -> None:
        model = self.state.ensemble_model
        members = (member_count(self.session, model) if model else None) or self.state.members
        self.member.end = max(members - 1, 1)
        if self.member.value != self.state.member:
            self.member.value = min(self.state.member, self.member.end)
        self._show_note()

    def __panel__(self):
        stamps = pn.Column(pn.pane.Markdown("#### Postage stamps: every member", margin=(10, 10, 0, 10)),
                           self.stamps, sizing_mode="stretch_width")
        return pn.Column(pn.Row(self.model, self.previous, self.next, self.member), self.note, self.grid, stamps,
                         sizing_mode="stretch_width")
