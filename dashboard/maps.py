"""Map grid: IR, radar and each model (member, mean or exceedance probability), with differences.

:func:`map_panels` lists what the grid shows as :class:`MapPanel` (a title, a labelled field and
its kind); the bokeh view (:class:`MapGrid`) and the PNG export (:mod:`dashboard.export`) both draw
that list, with the styles of :data:`STYLES`. Fields come from the library
(:mod:`qpe.inference.products`); nothing here changes a value.

The view rasterises every field with datashader to the pixels of the screen (the full OPERA grid,
2200 x 1900, travels as a few hundred thousand bytes), links pan and zoom across maps through
their shared x/y dimensions, draws coastlines and borders offline (:mod:`qpe.data.basemap`), and
turns a box drawn with the box-select tool into the score region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import colorcet as cc
import holoviews as hv
import numpy as np
import panel as pn
import xarray as xr
from bokeh.models import CustomJSTickFormatter
from holoviews.operation.datashader import regrid
from panel.io import hold
from panel.viewable import Viewer

from dashboard.session import DashboardSession
from dashboard.state import CaseState, format_time
from dashboard.text import plain_html
from qpe.inference.products import ensemble_mean, exceedance_probability, rain_difference

#: Rain colour map: CET-L9 reversed (pale yellow, green, blue, deep blue), perceptually uniform; its
#: near-white start is cut so that 0.1 mm/h stands out from dry (white) pixels.
RAIN_CMAP = list(cc.palette["CET_L9"][::-1][40:])


@dataclass(frozen=True)
class MapStyle:
    """How one kind of field is coloured: colour map, limits, log scale, colour-bar label."""

    cmap: object
    clim: tuple[float, float] | None
    log: bool
    label: str


#: Styles by kind of field; IR limits come from the dataset (see :func:`ir_limits`).
STYLES: dict[str, MapStyle] = {
    "ir": MapStyle("Greys", None, False, "K"),
    "rain": MapStyle(RAIN_CMAP, (0.1, 100.0), True, "mm/h"),
    "probability": MapStyle("YlGnBu", (0.0, 1.0), False, "probability"),
    "difference": MapStyle("RdBu", (-10.0, 10.0), False, "mm/h"),
    "change": MapStyle("RdBu", (-2.0, 2.0), False, "mm/h"),
    "spread": MapStyle("inferno_r", (0.1, 30.0), True, "mm/h"),
}
#: Pixel colours outside the colour map: dry (below the log range), no data, above the range.
CLIPPING = {"min": "white", "NaN": "#d9d9d9", "max": "black"}


@dataclass(frozen=True)
class MapPanel:
    """One map of the grid.

    Parameters
    ----------
    slot : str
        Stable identifier (``ir``, ``radar``, ``<model>``, ``<model>-radar``).
    title : str
        What the map shows, for its title.
    kind : str
        Key of :data:`STYLES`.
    field : xarray.DataArray or None
        (y, x) values (K, mm/h or probability); None while the estimate is missing.
    note : str
        Why there is no field (estimating, failed), shown in the title.
    """

    slot: str
    title: str
    kind: str
    field: xr.DataArray | None = None
    note: str = ""

    @property
    def heading(self) -> str:
        return f"{self.title} — {self.note}" if self.note else self.title


def ir_limits(dataset: xr.Dataset, channel: str) -> tuple[float, float]:
    """Colour limits of an IR channel, K: mean +- 2.5 std of the dataset (cold clouds white)."""
    if "ir_mean" in dataset and "ir_std" in dataset:
        mean = float(dataset["ir_mean"].sel(channel=channel))
        std = float(dataset["ir_std"].sel(channel=channel))
        return (mean - 2.5 * std, mean + 2.5 * std)
    return (200.0, 300.0)


def model_field(estimate: xr.DataArray, state: CaseState) -> tuple[xr.DataArray, str, str]:
    """The field of one model's (member, y, x) estimate for the chosen view: (field, kind, label)."""
    members = estimate.sizes["member"]
    if state.view == "probability":
        return exceedance_probability(estimate, state.threshold), "probability", f"P(≥ {state.threshold:g} mm/h)"
    if state.view == "member" or members == 1:
        member = min(state.member, members - 1)
        label = f"member {member}" if members > 1 else ""
        return estimate.isel(member=member, drop=True), "rain", label
    return ensemble_mean(estimate), "rain", f"mean of {members}"


def rain_field(estimate: xr.DataArray, state: CaseState) -> tuple[xr.DataArray, str]:
    """The rain field compared with radar in the difference map: the shown member, else the mean."""
    if state.view == "member" or estimate.sizes["member"] == 1:
        member = min(state.member, estimate.sizes["member"] - 1)
        return estimate.isel(member=member, drop=True), f"member {member}" if estimate.sizes["member"] > 1 else ""
    return ensemble_mean(estimate), "mean"


def map_panels(session: DashboardSession) -> list[MapPanel]:
    """What the map grid shows for the session's case, in order."""
    state = session.state
    time = state.timestamp
    when = format_time(time)
    radar = session.radar(time)
    panels = [
        MapPanel("ir", f"{state.channel} {when}", "ir", session.ir(time, state.channel)),
        MapPanel("radar", f"radar {when}", "rain", radar),
    ]
    for model in state.models:
        estimate = session.recall(model)
        if estimate is None:
            failure = session.failures.get((model, when))
            note = "failed (see message)" if failure else (
                "estimating…" if (model, when) in session.pending else "not estimated: press Run")
            panels.append(MapPanel(model, model, "rain", None, note))
            if state.difference and not failure:
                panels.append(MapPanel(f"{model}-radar", f"{model} − radar", "difference", None, note))
            continue
        field, kind, label = model_field(estimate, state)
        panels.append(MapPanel(model, f"{model} {label}".strip(), kind, field))
        if state.difference:
            rain, which = rain_field(estimate, state)
            panels.append(MapPanel(f"{model}-radar", f"{model} {which} − radar".replace("  ", " "),
                                   "difference", rain_difference(rain, radar)))
    return panels


# -- holoviews ---------------------------------------------------------------------------------------------
def km_ticks() -> CustomJSTickFormatter:
    """Tick labels in km for axes in m (a new model per plot: bokeh models belong to one document)."""
    return CustomJSTickFormatter(code="return (tick / 1000).toFixed(0)")


def empty_field(session: DashboardSession) -> xr.DataArray:
    """A (y, x) field of NaN on the grid (a map waiting for its estimate)."""
    return xr.full_like(session.radar(session.times[0]), np.nan)


def image_of(panel: MapPanel, session: DashboardSession) -> hv.Image:
    """The panel's field as an ``hv.Image`` on x/y in m (shared dims: linked axes); titles come from a hook."""
    field = panel.field if panel.field is not None else empty_field(session)
    values = np.asarray(field.transpose("y", "x").values, dtype="float32")
    # no label: holoviews matches overlay layers by label, a changing one would add a layer per update
    return hv.Image((field["x"].values, field["y"].values, values), kdims=["x", "y"], vdims=["value"])


def basemap_overlay(session: DashboardSession) -> hv.Overlay:
    """Coastlines (dark) and borders (dashed) on the grid."""
    lines = {k: v.astype("float32") for k, v in session.basemap().items()}  # half the bytes, < 1 m off
    coast = hv.Path([lines["coastline"]], kdims=["x", "y"]).opts(color="#333333", line_width=1)
    border = hv.Path([lines["border"]], kdims=["x", "y"]).opts(color="#555555", line_width=0.8,
                                                               line_dash="dashed")
    return coast * border


def style_options(kind: str, session: DashboardSession, channel: str, width: int) -> dict:
    """holoviews ``opts`` of a rasterised map of ``kind``."""
    style = STYLES[kind]
    clim = ir_limits(session.dataset, channel) if kind == "ir" else style.clim
    return {
        "cmap": style.cmap, "clim": clim, "cnorm": "log" if style.log else "linear", "colorbar": True,
        "clipping_colors": CLIPPING if kind != "ir" else {"NaN": CLIPPING["NaN"]},
        "clabel": style.label, "frame_width": width, "data_aspect": 1,
        "xformatter": km_ticks(), "yformatter": km_ticks(), "xlabel": "x (km)", "ylabel": "y (km)",
        "tools": ["hover", "box_select"], "active_tools": ["wheel_zoom"], "default_tools": ["pan", "wheel_zoom",
                                                                                    "reset", "save"],
        "fontsize": {"title": "10pt"},
    }


class MapGrid(Viewer):
    """The grid of linked maps for the session's case; a box drawn on any map sets the score region.

    Parameters
    ----------
    session : DashboardSession
    panels : callable
        ``panels(session) -> list[MapPanel]``, what the grid shows (default :func:`map_panels`).
    rebuild_on : sequence of str
        Case parameters that change which maps are shown (the others only change their data).
    width, columns : int
        Frame width of each map, px, and maps per row.
    live : callable
        Whether the grid is on screen; while it is not, changes only mark it stale (see :meth:`wake`).
    """

    def __init__(
        self,
        session: DashboardSession,
        panels: Callable[[DashboardSession], list[MapPanel]] = map_panels,
        rebuild_on: Sequence[str] = ("models", "difference"),
        width: int = 230,
        columns: int = 3,
        live: Callable[[], bool] = lambda: True,
        **params,
    ) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        self._panels_of = panels
        self._live = live
        self._signature: tuple | None = None
        self._stale = self._stale_layout = False
        self.width, self.columns = width, columns
        self.panels: dict[str, MapPanel] = {}
        self._refresh = hv.streams.Stream.define("Refresh", revision=0)()
        self._region = hv.streams.Params(self.state, ["region"])
        self.pane = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=True, css_classes=["qpe-maps"])
        self.status = pn.pane.Str("", css_classes=["qpe-map-status"], styles={"font-size": "0.8em"})
        self.legend = pn.pane.Markdown(
            "Rain on a log scale (0.1–100 mm/h; white: dry, grey: no radar). Draw a box with the "
            "box-select tool to score a region.", styles={"font-size": "0.85em", "color": "#555"},
        )
        self._signature = self.signature()
        self.update_panels()
        self._kinds: tuple = ()
        if self._live():
            self.rebuild()
        else:
            self._stale_layout = True
        redraw = [p for p in ("time", "view", "member", "threshold", "channel") if p not in rebuild_on]
        self.state.param.watch(self._on_case, redraw)
        self.state.param.watch(self._on_rebuild, list(rebuild_on))
        session.param.watch(self._on_case, "revision")

    def update_panels(self) -> list[MapPanel]:
        """Recompute the panels of the current case; returns them in grid order."""
        panels = self._panels_of(self.session)
        self.panels = {p.slot: p for p in panels}
        self.status.object = plain_html("Shown: " + " · ".join(p.heading for p in panels))
        return panels

    def _on_rebuild(self, *events) -> None:
        if not self._live():
            self._stale = self._stale_layout = True
            return
        self._signature = self.signature()
        self.update_panels()
        self.rebuild()

    def signature(self) -> tuple:
        """What the maps depend on: the case and which estimates are there (same signature, same maps)."""
        state, session = self.state, self.session
        estimates = tuple((m, id(session.recall(m)), (m, state.time) in session.failures,
                           (m, state.time) in session.pending) for m in state.models)
        return (state.time, state.view, state.member, state.threshold, state.channel, state.difference,
                state.ensemble_model, estimates)

    def _on_case(self, *events) -> None:
        if not self._live():
            self._stale = True
            return
        signature = self.signature()
        if signature == self._signature:
            return
        self._signature = signature
        kinds = tuple(p.kind for p in self.update_panels())
        if kinds != self._kinds:  # e.g. mean -> probability: other colour maps
            self.rebuild()
            return
        # one recomputation of the document's model graph for all maps, not one per map
        with hold(freeze=True):
            self._refresh.event(revision=self._refresh.revision + 1)

    def wake(self) -> None:
        """Bring the maps up to date after the grid was off screen."""
        if self._stale_layout:
            self._stale = self._stale_layout = False
            self._on_rebuild()
        elif self._stale:
            self._stale = False
            self._on_case()

    def _slot_map(self, slot: str, kind: str) -> hv.DynamicMap:
        def draw(revision: int) -> hv.Image:
            return image_of(self.panels[slot], self.session)

        def title(plot, element) -> None:  # runs on every update: the title follows the panel
            plot.handles["plot"].title.text = self.panels[slot].heading if slot in self.panels else ""

        # the first aggregate already at the frame's size (until the plot reports it, datashader would
        # use 400 x 400 pixels and the browser would receive every map twice)
        ny, nx = self.session.grid.shape
        size = {"width": self.width, "height": max(round(self.width * ny / nx), 1)}
        raster = regrid(hv.DynamicMap(draw, streams=[self._refresh]), aggregator="mean", **size)
        raster = raster.opts(**style_options(kind, self.session, self.state.channel, self.width), hooks=[title])
        bounds = hv.streams.BoundsXY(source=raster)
        bounds.add_subscriber(self._on_bounds)
        return raster

    def _region_box(self, region: Sequence[float]) -> hv.Rectangles:
        boxes = [tuple(region)] if len(region) == 4 else []
        return hv.Rectangles(boxes, kdims=["x", "y", "x2", "y2"]).opts(
            fill_alpha=0.0, line_color="black", line_width=2, line_dash="dotted")

    def _on_bounds(self, bounds=None) -> None:
        if bounds is None:
            return
        x0, y0, x1, y1 = bounds
        if not (np.isfinite([x0, y0, x1, y1]).all() and x1 > x0 and y1 > y0):
            return
        self.state.region = [float(round(v)) for v in (x0, y0, x1, y1)]

    def rebuild(self) -> None:
        """Build the layout anew (the set of maps changed)."""
        panels = list(self.panels.values())
        self._kinds = tuple(p.kind for p in panels)
        overlay = basemap_overlay(self.session)
        region = hv.DynamicMap(self._region_box, streams=[self._region])
        maps = [self._slot_map(p.slot, p.kind) * overlay * region for p in panels]
        self.pane.object = hv.Layout(maps).cols(self.columns).opts(shared_axes=True)

    def __panel__(self):
        return pn.Column(self.legend, self.status, self.pane, sizing_mode="stretch_width")
