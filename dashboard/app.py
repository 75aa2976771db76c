"""The qpe dashboard: wires the components into one page.

Serve it with ``qpe dashboard [--data PATH] [--models DIR] [--port 5006]`` or directly::

    panel serve dashboard/app.py --args --data data/demo/demo.zarr --models models/demo

Each browser session gets its own :class:`~dashboard.session.DashboardSession` (case, messages);
the dataset, loaded models and recent estimates are shared by the sessions of one server.
"""

from __future__ import annotations

import html
import sys

import holoviews as hv
import panel as pn

from dashboard.case_picker import CasePicker
from dashboard.ensemble import EnsembleBrowser
from dashboard.export import csv_download, png_download
from dashboard.frames import FramesPanel
from dashboard.maps import MapGrid
from dashboard.model_picker import ModelPicker
from dashboard.page_layout import LAYOUTS
from dashboard.period import PeriodPanel
from dashboard.scores import ScoresPanel
from dashboard.serving import quiet_closed_tabs
from dashboard.session import DashboardSession, DashboardSettings, Messages
from dashboard.sharing import URL_PARAMETERS, layout_query, sync_with_url
from dashboard.slides import slides_download
from dashboard.state import TABS, THRESHOLD_CHOICES
from dashboard.text import markdown_code, plain_markdown
from qpe.errors import QpeError

TITLE = "qpe — rain rate from Meteosat IR, verified against radar"

pn.extension(notifications=False, sizing_mode="stretch_width")
hv.extension("bokeh", logo=False)
hv.renderer("bokeh").webgl = False  # canvas: draws the same with and without a GPU (rasterised maps are small)


def messages_view(messages: Messages) -> pn.Column:
    """The session's problems, one alert each (they disappear when solved); shown as plain text."""
    def render(items: dict) -> list:
        return [pn.pane.Alert(plain_markdown(text), css_classes=["qpe-message"], margin=(2, 10),
                              alert_type="danger" if topic.startswith(("checkpoint", "estimate")) else
                              "warning")
                for topic, text in items.items()]

    column = pn.Column(sizing_mode="stretch_width")

    def update(event=None) -> None:
        column.objects = render(messages.items)

    messages.param.watch(update, "items")
    update()
    return column


def view_controls(session: DashboardSession) -> pn.Column:
    """How models are drawn and scored: product, member, thresholds, channel, differences."""
    state = session.state
    threshold_options = {f"{t:g} mm/h": t for t in THRESHOLD_CHOICES}
    return pn.Column(
        pn.widgets.RadioButtonGroup.from_param(state.param.view, label="Model map", color="light"),
        pn.widgets.IntInput.from_param(state.param.member, label="Member shown", width=120),
        pn.widgets.Select.from_param(state.param.threshold, label="Exceedance / FSS threshold",
                                     options=threshold_options),
        pn.widgets.MultiChoice.from_param(state.param.thresholds, label="Score thresholds",
                                          options=threshold_options),
        pn.widgets.Select.from_param(state.param.channel, label="IR channel"),
        pn.widgets.Checkbox.from_param(state.param.difference, label="show model − radar"),
        pn.widgets.RadioButtonGroup.from_param(state.param.rain_scale, label="Rain colours", color="light",
                                               options={"log scale": "log", "pysteps levels": "levels"}),
        sizing_mode="stretch_width",
    )


def layout_switch(state) -> pn.pane.HTML:
    """A link to this case in the other page layout (normal <-> presentation), kept up to date."""
    other = "normal" if state.layout == "presentation" else "presentation"
    label = "Normal layout" if other == "normal" else "Presentation layout"
    pane = pn.pane.HTML(css_classes=["qpe-layout-link"], margin=(0, 10), styles={"align-self": "center"})

    def update(*events) -> None:
        href = html.escape(layout_query(state, other), quote=True)
        pane.object = (f'<a href="{href}" title="this case in the {other} layout" '
                       f'style="color: white; font-weight: 600;">{label} ↗</a>')

    state.param.watch(update, list(URL_PARAMETERS))
    update()
    return pane


def build_app(settings: DashboardSettings):
    """The page of one session (a template), or an error page if the data cannot be opened."""
    quiet_closed_tabs()  # on the server's loop, whether served by ``qpe dashboard`` or ``panel serve``
    try:
        session = DashboardSession(settings)
    except QpeError as err:
        return pn.Column(f"# {TITLE}", pn.pane.Alert(f"The dashboard cannot start: {plain_markdown(err)}",
                                                     alert_type="danger", css_classes=["qpe-message"]))
    state = session.state
    sync_with_url(state, session.messages)  # a shared link sets the case before anything is drawn
    case = CasePicker(session)
    models = ModelPicker(session)
    layout = LAYOUTS[state.layout]
    maps = MapGrid(session, focus=True, live=lambda: state.tab == "maps")
    scores = ScoresPanel(session)
    ensemble = EnsembleBrowser(session, live=lambda: state.tab == "ensemble")
    frames = FramesPanel(session, live=lambda: state.tab == "frames")
    state.param.watch(lambda e: (maps.wake(), ensemble.grid.wake(), e.new == "frames" and frames.show()), "tab")
    tabs = pn.Tabs(("Maps", maps), ("Scores", scores), ("Ensemble", ensemble), ("Input frames", frames),
                   ("Period", PeriodPanel(session)), dynamic=True,
                   active=TABS.index(state.tab), sizing_mode="stretch_width")
    tabs.param.watch(lambda e: setattr(state, "tab", TABS[e.new]), "active")
    state.param.watch(lambda e: setattr(tabs, "active", TABS.index(e.new)), "tab")
    exports = pn.Column(pn.Row(png_download(session, lambda: maps.update_panels()), csv_download(session),
                               sizing_mode="stretch_width"),
                        slides_download(session, lambda: maps.update_panels()), sizing_mode="stretch_width")
    sidebar = [
        pn.pane.Markdown("### Case"), case,
        pn.pane.Markdown("### Models"), models,
        pn.pane.Markdown("### View"), view_controls(session),
        pn.pane.Markdown("### Export"), exports,
        pn.pane.Markdown(f"data: {markdown_code(session.data_path)}  \n"
                         f"models: {markdown_code(session.registry.root)}",
                         styles={"font-size": "0.8em", "color": "#666"}),
    ]
    template = pn.template.BootstrapTemplate(
        title=TITLE, sidebar=sidebar, main=[messages_view(session.messages), tabs], sidebar_width=340,
        header_background="#1f5f8b", header=[layout_switch(state)], collapsed_sidebar=not layout.sidebar,
    )
    if layout.page_css():
        template.config.raw_css.append(layout.page_css())

    pn.state.onload(models.start)  # estimate the models of the link (from the cache when there)
    document = pn.state.curdoc
    if document is not None and document.session_context is not None:  # served (not built in a test)
        document.on_session_destroyed(lambda context: session.close())
    template.session = session  # for tests and benchmarks that drive a session in-process
    return template


if __name__.startswith("bokeh"):  # run by `panel serve dashboard/app.py [--args ...]`
    build_app(DashboardSettings.from_args(sys.argv[1:])).servable(title="qpe dashboard")
