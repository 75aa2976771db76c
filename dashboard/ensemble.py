"""Ensemble browser: step through the members of one model next to the radar, and its spread map."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from dashboard.maps import MapGrid, MapPanel
from dashboard.session import DashboardSession
from dashboard.state import format_time
from qpe.inference.products import ensemble_spread


def ensemble_models(session: DashboardSession) -> list[str]:
    """The shown models that sample an ensemble (DDPM, flow)."""
    registry = session.registry
    return [m for m in session.state.models if m in registry.checkpoints and registry[m].is_ensemble]


def ensemble_panels(session: DashboardSession) -> list[MapPanel]:
    """Radar, the chosen member of the browsed model, and the model's spread."""
    state = session.state
    when = format_time(state.timestamp)
    panels = [MapPanel("radar", f"radar {when}", "rain", session.radar(state.timestamp))]
    model = state.ensemble_model
    if not model:
        return panels
    estimate = session.recall(model)
    if estimate is None:
        note = "failed (see message)" if (model, when) in session.failures else "not estimated yet"
        return panels + [MapPanel("member", f"{model} member", "rain", None, note),
                         MapPanel("spread", f"{model} spread", "spread", None, note)]
    members = estimate.sizes["member"]
    member = min(state.member, members - 1)
    return panels + [
        MapPanel("member", f"{model} member {member} of {members}", "rain", estimate.isel(member=member, drop=True)),
        MapPanel("spread", f"{model} spread (std of {members})", "spread", ensemble_spread(estimate)),
    ]


class EnsembleBrowser(Viewer):
    """Members of one ensemble model, one at a time (slider or player), beside radar and spread."""

    def __init__(self, session: DashboardSession, live=lambda: True, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        self.model = pn.widgets.Select(label="Ensemble model", options=[], width=220)
        self.member = pn.widgets.Player(label="Member", start=0, end=max(self.state.members - 1, 1),
                                        value=self.state.member, interval=900, loop_policy="loop",
                                        show_loop_controls=False, scale_buttons=0.7, width=300)
        self.previous = pn.widgets.Button(label="◀ member", width=100, description="previous member")
        self.next = pn.widgets.Button(label="member ▶", width=100, description="next member")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        self.note = pn.pane.Markdown(styles={"font-size": "0.85em", "color": "#555"})
        self._sync_models()
        self.grid = MapGrid(session, panels=ensemble_panels, rebuild_on=("ensemble_model",), columns=3, live=live)
        self.model.param.watch(self._on_model, "value")
        self.member.param.watch(self._on_member, "value")
        self.state.param.watch(lambda *events: self._sync_models(), ["models"])
        self.state.param.watch(self._on_state_member, ["member", "members"])

    def _sync_models(self) -> None:
        options = ensemble_models(self.session)
        self.model.options = options
        if self.state.ensemble_model not in options:
            self.state.ensemble_model = options[0] if options else ""
        self.model.value = self.state.ensemble_model or None
        self.note.object = "" if options else "Choose a DDPM or flow model to browse its members."

    def step(self, steps: int) -> None:
        """Show the member ``steps`` further on (wrapping around the ensemble)."""
        estimate = self.session.recall(self.state.ensemble_model) if self.state.ensemble_model else None
        members = estimate.sizes["member"] if estimate is not None else self.state.members
        self.state.member = (self.state.member + steps) % max(members, 1)

    def _on_model(self, event) -> None:
        if event.new and event.new != self.state.ensemble_model:
            self.state.ensemble_model = event.new

    def _on_member(self, event) -> None:
        if event.new != self.state.member:
            self.state.member = int(event.new)

    def _on_state_member(self, *events) -> None:
        self.member.end = max(self.state.members - 1, 1)
        if self.member.value != self.state.member:
            self.member.value = min(self.state.member, self.member.end)

    def __panel__(self):
        return pn.Column(pn.Row(self.model, self.previous, self.next, self.member), self.note, self.grid,
                         sizing_mode="stretch_width")
