"""Map grid: IR, radar and each model (member, mean or exceedance probability), with differences.

:func:`map_panels` lists what the grid shows as :class:`MapPanel` (a title, details, a labelled
field, its kind and title colour); the bokeh view (:class:`MapGrid`) and the PNG export
(:mod:`dashboard.export`) both draw that list, with the styles of :data:`STYLES` (chosen by
:func:`map_style`). Fields come from the library (:mod:`qpe.inference.products`); nothing here
changes a value: colour levels only choose colours, the hover shows the value itself.

The view rasterises every field with datashader to the pixels of the screen (the full OPERA grid,
2200 x 1900, travels as a few hundred thousand bytes), draws each map in its own pane of a CSS grid
that fills the width with 2-4 columns by window size (:func:`grid_stylesheet`), links pan and zoom
across maps through their shared x/y dimensions, draws coastlines and borders offline
(:mod:`qpe.data.basemap`), shows lon/lat and the value with its unit on hover, and turns a box drawn
with the box-select tool into the score region. One map can be enlarged (the case's ``focus``). The
extent shown (pan and zoom) is the case's ``zoom`` (:func:`zoom_extent`): a shared link opens the maps at
it, and the reset tool goes back to the whole grid.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import colorcet as cc
import holoviews as hv
import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import panel as pn
import xarray as xr
from bokeh.models import CustomJSHover, CustomJSTickFormatter, FixedTicker, HoverTool, LinearColorMapper
from holoviews.operation.datashader import regrid
from panel.io import hold
from panel.viewable import Viewer
from pysteps.visualization.precipfields import get_colormap

from dashboard.page_layout import LAYOUTS, PageLayout
from dashboard.session import DashboardSession
from dashboard.state import CaseState, format_time
from dashboard.text import plain_html
from qpe.colours import RADAR_COLOUR, model_colours
from qpe.data.grid import Grid
from qpe.inference.products import ensemble_mean, exceedance_probability, rain_difference

#: Rain colour map: CET-L9 reversed (yellow-green, green, blue, deep blue), perceptually uniform; its
#: pale start is cut so that 0.1 mm/h stands out from dry (white) pixels (contrast 2.1:1 on white).
RAIN_CMAP = tuple(cc.palette["CET_L9"][::-1][80:])


def _pysteps_colours(ptype: str) -> tuple[tuple[str, ...], tuple[float, ...], str]:
    """Colours, levels and the colour above the last level of ``pysteps.visualization.plot_precip_field``."""
    cmap, _, levels, _ = get_colormap(ptype, "mm/h", "pysteps")
    colours = tuple(mcolors.to_hex(cmap(i)) for i in range(cmap.N))
    return colours, tuple(float(v) for v in levels), mcolors.to_hex(cmap.get_over())


def _difference_colours() -> tuple[str, ...]:
    """Eleven colours of RdBu (red: less rain than radar, blue: more), white in the middle (|error| < 0.1)."""
    colours = [mcolors.to_hex(c) for c in matplotlib.colormaps["RdBu"](np.linspace(0.0, 1.0, 11))]
    colours[5] = "#ffffff"
    return tuple(colours)


@dataclass(frozen=True)
class MapStyle:
    """How one kind of field is coloured.

    Parameters
    ----------
    cmap : str or tuple of str
        Colour map name, or colours: a continuous ramp, or one colour per interval of ``levels``.
    clim : (float, float) or None
        Colour limits (None: from the dataset, see :func:`ir_limits`); the ends of ``levels`` when given.
    log : bool
        Colours on a log scale of the value.
    label : str
        Unit of the value (colour-bar label and hover).
    quantity : str
        What the value is (hover).
    levels : tuple of float, optional
        Discrete colours: the boundaries of the intervals (``len(cmap) + 1`` values, increasing); a
        value ``v`` with ``levels[i] <= v < levels[i + 1]`` takes ``cmap[i]``, as with matplotlib's
        ``BoundaryNorm``. The colour bar shows the intervals side by side, equally wide, labelled.
    ticks : tuple of float, optional
        Colour-bar ticks of a continuous style.
    under, over : str
        Colours below and above the limits (dry pixels are below the rain scales).
    """

    cmap: str | tuple[str, ...]
    clim: tuple[float, float] | None
    log: bool
    label: str
    quantity: str
    levels: tuple[float, ...] | None = None
    ticks: tuple[float, ...] | None = None
    under: str = "white"
    over: str = "black"

    def limits(self, session: DashboardSession, channel: str) -> tuple[float, float]:
        """Colour limits, in the unit of the value."""
        if self.levels is not None:
            return self.levels[0], self.levels[-1]
        return self.clim if self.clim is not None else ir_limits(session.dataset, channel)


_RAIN_LEVELS = _pysteps_colours("intensity")
_PROBABILITY_LEVELS = _pysteps_colours("prob")
#: Levels of the difference maps, mm/h: symmetric, about a factor 3 apart, so drizzle errors and storm
#: errors both show (a linear +-10 mm/h scale shows neither the 0.1-1 mm/h errors nor those above 10).
DIFFERENCE_LEVELS = (-30.0, -10.0, -3.0, -1.0, -0.3, -0.1, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)

#: Styles by kind of field (the rain maps use ``rain`` or ``rain_levels``, see :func:`map_style`).
STYLES: dict[str, MapStyle] = {
    "ir": MapStyle("Greys", None, False, "K", "brightness temperature"),
    "rain": MapStyle(RAIN_CMAP, (0.1, 100.0), True, "mm/h", "rain rate", ticks=(0.1, 0.3, 1, 3, 10, 30, 100)),
    "rain_levels": MapStyle(_RAIN_LEVELS[0], None, True, "mm/h", "rain rate", levels=_RAIN_LEVELS[1],
                            over=_RAIN_LEVELS[2]),
    "probability": MapStyle(_PROBABILITY_LEVELS[0], None, False, "probability", "P",
                            levels=_PROBABILITY_LEVELS[1], over=_PROBABILITY_LEVELS[0][-1]),  # P = 1: darkest
    "difference": MapStyle(_difference_colours(), None, False, "mm/h", "model − radar", levels=DIFFERENCE_LEVELS,
                           under="#40001a", over="#031c3d"),
    "change": MapStyle("RdBu", (-2.0, 2.0), False, "mm/h", "change", under="#67001f", over="#053061"),
    "spread": MapStyle("inferno_r", (0.1, 30.0), True, "mm/h", "spread", ticks=(0.1, 0.3, 1, 3, 10, 30)),
}
#: Colour of pixels without data (no radar, outside the domain).
NO_DATA = "#d9d9d9"


def map_style(kind: str, rain_scale: str = "log") -> MapStyle:
    """The style of a map of ``kind``; rain maps follow the case's ``rain_scale`` (``log`` or ``levels``)."""
    return STYLES["rain_levels"] if kind == "rain" and rain_scale == "levels" else STYLES[kind]


@functools.cache
def level_palette(style: MapStyle, most: int = 20_000) -> tuple[str, ...]:
    """A palette of equal steps from ``levels[0]`` to ``levels[-1]`` (log steps when ``style.log``).

    Bokeh maps a value to a palette entry by equal steps between two limits; giving each interval of
    levels as many entries as its share of the range draws the discrete levels. The palette has the
    fewest entries (up to ``most``) on whose edges every level falls exactly (600 for the difference
    levels, steps of 0.1 mm/h; 999 for the probability levels); where none does (log steps), 4096
    entries put each boundary within 0.05 % of the range. Used for the maps in the browser.
    """
    levels = np.log10(style.levels) if style.log else np.asarray(style.levels, dtype=float)
    position = (levels - levels[0]) / (levels[-1] - levels[0])
    sizes = np.arange(1, most + 1)[:, None]
    exact = np.flatnonzero(np.all(np.abs(position * sizes - np.round(position * sizes)) < 1e-6, axis=1))
    entries = int(sizes[exact[0], 0]) if exact.size else 4096
    edges = np.round(position * entries).astype(int)
    return tuple(colour for colour, n in zip(style.cmap, np.diff(edges)) for _ in range(n))


def level_labels(levels: Sequence[float]) -> dict[int, str]:
    """Colour-bar labels of the level boundaries, by boundary index (``0.08``, ``1``, ``-0.3``)."""
    return {i: f"{v:g}" for i, v in enumerate(levels)}


@dataclass(frozen=True)
class MapPanel:
    """One map of the grid.

    Parameters
    ----------
    slot : str
        Stable identifier (``ir``, ``radar``, ``<model>``, ``<model>-radar``).
    title : str
        What the map shows, for its title (``ddpm mean of 4``, ``radar 2021-06-01T23:45``).
    kind : str
        Key of :data:`STYLES` (``rain`` follows the rain scale, see :func:`map_style`).
    field : xarray.DataArray or None
        (y, x) values (K, mm/h or probability); None while the estimate is missing.
    note : str
        Why there is no field (estimating, failed), shown in the title.
    details : str
        Second line of the title: valid time and sampling settings of a model.
    colour : str
        Colour of the title: the model's (:func:`qpe.colours.model_colour`), black otherwise.
    """

    slot: str
    title: str
    kind: str
    field: xr.DataArray | None = None
    note: str = ""
    details: str = ""
    colour: str = RADAR_COLOUR

    @property
    def heading(self) -> str:
        """The title on one line (status line, focus choice)."""
        first = f"{self.title} — {self.note}" if self.note else self.title
        return f"{first} · {self.details}" if self.details else first

    @property
    def title_lines(self) -> str:
        """The title on (at most) two lines: what, then when and how."""
        first = f"{self.title} — {self.note}" if self.note else self.title
        return f"{first}\n{self.details or ' '}"  # always two lines: every map's frame starts at the same height


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


def sampling_text(session: DashboardSession, model: str) -> str:
    """How a model's estimates are sampled: ``4 members, K = 8 heun``, with ``bf16`` when chosen (empty for
    a deterministic model in float32, and for estimates read from files)."""
    checkpoint = session.registry.checkpoints.get(model)
    if checkpoint is None:
        return ""
    parts = []
    if checkpoint.is_ensemble:
        sampling = checkpoint.card.sampling
        steps = session.state.steps or sampling.steps
        sampler = f" {sampling.sampler}" if sampling.sampler else ""
        parts.append(f"{session.state.members} members, K = {steps}{sampler}")
    if session.state.precision == "bfloat16":
        parts.append("bf16")
    return ", ".join(parts)


def map_panels(session: DashboardSession) -> list[MapPanel]:
    """What the map grid shows for the session's case, in order.

    IR and radar first, then each model followed by its difference to radar when differences are
    shown, so that in two columns a model and its "minus radar" map share a row.
    """
    state = session.state
    time = state.timestamp
    when = format_time(time)
    radar = session.radar(time)
    colours = model_colours(state.models)
    panels = [
        MapPanel("ir", f"{state.channel} {when}", "ir", session.ir(time, state.channel)),
        MapPanel("radar", f"radar {when}", "rain", radar),
    ]
    for model in state.models:
        details = " · ".join(t for t in (f"{when} UTC", sampling_text(session, model)) if t)
        common = {"details": details, "colour": colours[model]}
        estimate = session.recall(model)
        if estimate is None:
            failure = session.failures.get((model, when))
            note = "failed (see message)" if failure else (
                "estimating…" if (model, when) in session.pending else "not estimated: press Run")
            panels.append(MapPanel(model, model, "rain", None, note, **common))
            if state.difference and not failure:
                panels.append(MapPanel(f"{model}-radar", f"{model} − radar", "difference", None, note, **common))
            continue
        field, kind, label = model_field(estimate, state)
        panels.append(MapPanel(model, f"{model} {label}".strip(), kind, field, **common))
        if state.difference:
            rain, which = rain_field(estimate, state)
            panels.append(MapPanel(f"{model}-radar", f"{model} {which} − radar".replace("  ", " "),
                                   "difference", rain_difference(rain, radar), **common))
    return panels


def focus_label(panel: MapPanel) -> str:
    """A panel's name in the focus choice: ``IR_108``, ``radar``, ``ddpm``, ``ddpm − radar``."""
    if panel.slot == "ir":
        return panel.title.split(" ")[0]
    return panel.slot[: -len("-radar")] + " − radar" if panel.slot.endswith("-radar") else panel.slot


def zoom_extent(x_range: Sequence[float] | None, y_range: Sequence[float] | None, grid: Grid) -> list[float] | None:
    """The case's ``zoom`` for the maps' x and y ranges (m): ``[xmin, ymin, xmax, ymax]`` rounded to the
    metre, ``[]`` when they show the whole grid (within a pixel), None when they are unusable (missing,
    not finite, empty)."""
    if x_range is None or y_range is None:
        return None
    x0, x1 = (float(v) for v in x_range)
    y0, y1 = (float(v) for v in y_range)
    if not (np.isfinite([x0, x1, y0, y1]).all() and x1 > x0 and y1 > y0):
        return None
    xmin, ymin, xmax, ymax = grid.bounds
    dx, dy = abs(grid.dx), abs(grid.dy)
    if x0 <= xmin + dx and x1 >= xmax - dx and y0 <= ymin + dy and y1 >= ymax - dy:
        return []
    return [float(round(v)) for v in (x0, y0, x1, y1)]


def crs_text(grid: Grid) -> str:
    """The grid's projection in words: ``Lambert Azimuthal Equal Area (lat 55°, lon 10°)``."""
    crs = grid.pyproj_crs
    operation = crs.coordinate_operation
    name = crs.name
    if operation is None:
        return name
    if name in ("unknown", "") or name.startswith("unnamed"):
        name = operation.method_name
    centre = {}
    for parameter in operation.params:  # the first latitude and longitude of origin or centre
        for key in ("Latitude", "Longitude"):
            if parameter.name.startswith(key) and key not in centre:
                centre[key] = f"{key[:3].lower()} {parameter.value:g}°"
    return f"{name} ({', '.join(centre.values())})" if centre else name


# -- holoviews ---------------------------------------------------------------------------------------------
def km_ticks() -> CustomJSTickFormatter:
    """Tick labels in km for axes in m (a new model per plot: bokeh models belong to one document)."""
    return CustomJSTickFormatter(code="return (tick / 1000).toFixed(0)")


def lonlat_table(grid: Grid, points: int = 41) -> dict:
    """Longitude and latitude, degrees, at ``points`` x ``points`` places spanning the grid (for the hover).

    Returns ``{"x0", "dx", "y0", "dy", "n", "lon", "lat"}``: the table's first x/y (m), its steps (m),
    its size, and the (n, n) lon/lat arrays as nested lists (row: y, column: x), rounded to 1e-4°.
    """
    xmin, ymin, xmax, ymax = grid.bounds
    xs, ys = np.linspace(xmin, xmax, points), np.linspace(ymin, ymax, points)
    lon, lat = Grid.from_coords(grid.crs, xs, ys[::-1]).lonlat()
    return {"x0": xmin, "dx": (xmax - xmin) / (points - 1), "y0": ymin, "dy": (ymax - ymin) / (points - 1),
            "n": points, "lon": np.round(lon[::-1], 4).tolist(), "lat": np.round(lat[::-1], 4).tolist()}


#: Bilinear interpolation of :func:`lonlat_table` at the mouse position (``special_vars.x/y``, m).
_LONLAT_JS = """
const t = TABLE;
const fx = Math.min(Math.max((special_vars.x - t.x0) / t.dx, 0), t.n - 1.000001);
const fy = Math.min(Math.max((special_vars.y - t.y0) / t.dy, 0), t.n - 1.000001);
const i = Math.floor(fy), j = Math.floor(fx), u = fx - j, v = fy - i;
const at = a => (1 - v) * ((1 - u) * a[i][j] + u * a[i][j + 1]) + v * ((1 - u) * a[i + 1][j] + u * a[i + 1][j + 1]);
return at(t.lat).toFixed(2) + "° N, " + at(t.lon).toFixed(2) + "° E";
"""


def hover_tool(table: dict, style: MapStyle) -> HoverTool:
    """Hover showing latitude/longitude (degrees) and the value with its unit (a new model per plot)."""
    lonlat = CustomJSHover(code=_LONLAT_JS.replace("TABLE", json.dumps(table)))
    unit = "" if style.label == "probability" else f" {style.label}"
    value = "@image{0.0}" if style.label == "K" else "@image{0.00}"
    return HoverTool(tooltips=[("lat, lon", "$x{custom}"), (style.quantity, value + unit)],
                     formatters={"$x": lonlat})


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


def figure_aspect(shape: tuple[int, int], width: float, layout: PageLayout) -> float:
    """Width / height of a map's figure of about ``width`` px whose frame has the grid's aspect.

    Bokeh keeps a responsive figure's whole aspect (title, axes and colour bar included), so the
    frame keeps the grid's exactly at ``width`` and within a few % at widths near it.
    """
    ny, nx = shape
    across, down = layout.map_margins
    return width / ((width - across) * ny / nx + down)


def style_options(style: MapStyle, session: DashboardSession, channel: str, layout: PageLayout,
                  table: dict, aspect: float) -> dict:
    """holoviews ``opts`` of a rasterised map drawn with ``style`` (responsive, figure aspect ``aspect``)."""
    low, high = style.limits(session, channel)
    cmap = list(level_palette(style)) if style.levels is not None else (
        list(style.cmap) if isinstance(style.cmap, tuple) else style.cmap)
    clipping = {"NaN": NO_DATA} if style.label == "K" else {"min": style.under, "NaN": NO_DATA, "max": style.over}
    colorbar = {"ticker": FixedTicker(ticks=list(style.ticks))} if style.ticks else {}
    return {
        "cmap": cmap, "clim": (low, high), "cnorm": "log" if style.log else "linear", "colorbar": True,
        "colorbar_opts": colorbar, "clipping_colors": clipping, "clabel": style.label,
        "responsive": True, "aspect": aspect, "min_height": 200,
        "xformatter": km_ticks(), "yformatter": km_ticks(), "xlabel": "x (km)", "ylabel": "y (km)",
        "tools": [hover_tool(table, style), "box_select"], "active_tools": ["wheel_zoom"],
        "default_tools": ["pan", "wheel_zoom", "reset", "save"], "fontsize": layout.fontsize(),
    }


def level_colour_bar(plot, style: MapStyle) -> None:
    """Show discrete levels on the colour bar as equal boxes labelled with their boundaries (as pysteps does).

    The image keeps its own colour mapper (:func:`level_palette`); only the colour bar gets a mapper
    over the level index, built once per plot.
    """
    bar = plot.handles.get("colorbar")
    if bar is None or "qpe-levels" in bar.tags:
        return
    bar.color_mapper = LinearColorMapper(palette=list(style.cmap), low=0, high=len(style.cmap))
    bar.ticker = FixedTicker(ticks=list(range(len(style.levels))))
    bar.major_label_overrides = level_labels(style.levels)
    bar.tags = [*bar.tags, "qpe-levels"]


def grid_stylesheet(layout: PageLayout, mode: str, aspect: float) -> str:
    """CSS of the map grid: ``auto`` (2-4 columns by width), ``pairs`` (two, or four on a wide screen:
    a model beside its difference) or ``focus`` (one map, as large as the window shows whole).

    ``aspect`` is width / height of one map with its title, axes and colour bar.
    """
    narrowest = layout.map_column_px
    columns = {
        "auto": f"repeat(auto-fill, minmax(max({narrowest}px, calc(25% - 8px)), 1fr))",
        "pairs": "repeat(2, minmax(0, 1fr))",
        "focus": f"minmax(0, min(100%, calc((100vh - 230px) * {aspect:.3f})))",
    }[mode]
    wide = (f"@media (min-width: {4 * narrowest + 500}px) {{ :host {{ grid-template-columns: "
            "repeat(4, minmax(0, 1fr)) !important; } }\n") if mode == "pairs" else ""
    return (f":host {{ display: grid !important; grid-template-columns: {columns}; gap: 8px; "
            "justify-content: center; align-items: start; }\n" + wide)


class MapGrid(Viewer):
    """The grid of linked maps for the session's case; a box drawn on any map sets the score region.

    Parameters
    ----------
    session : DashboardSession
    panels : callable
        ``panels(session) -> list[MapPanel]``, what the grid shows (default :func:`map_panels`).
    rebuild_on : sequence of str
        Case parameters that change which maps are shown (the others only change their data).
    width : int
        Width of the first raster of each map, px (the maps then follow their size on screen).
    columns : int
        Unused (the grid takes 2-4 columns by window size); kept for callers.
    focus : bool
        Whether the grid offers to enlarge one map (the case's ``focus``); a double click on a map
        enlarges it, and back.
    live : callable
        Whether the grid is on screen; while it is not, changes only mark it stale (see :meth:`wake`).
    """

    def __init__(
        self,
        session: DashboardSession,
        panels: Callable[[DashboardSession], list[MapPanel]] = map_panels,
        rebuild_on: Sequence[str] = ("models", "difference"),
        width: int = 450,
        columns: int = 3,
        focus: bool = False,
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
        self.width, self.columns, self.focusable = width, columns, focus
        self.layout = LAYOUTS[self.state.layout]
        self.panels: dict[str, MapPanel] = {}
        #: The x/y range of each map drawn (the first one's is the case's ``zoom``, see :meth:`_on_range`).
        self.range_streams: list[hv.streams.RangeXY] = []
        self._refresh = hv.streams.Stream.define("Refresh", revision=0)()
        self._region = hv.streams.Params(self.state, ["region"])
        self._lonlat = lonlat_table(session.grid)
        self.maps = pn.Column(sizing_mode="stretch_width")  # the grid, made anew by each rebuild
        self.holder = pn.Column(self.maps, sizing_mode="stretch_width", css_classes=["qpe-maps"], margin=0)
        self.status = pn.pane.Str("", css_classes=["qpe-map-status"], styles={"font-size": "0.8em"})
        self.legend = pn.pane.Markdown(
            f"Maps on the {plain_html(crs_text(session.grid))} projection, x/y in km; hover for lat/lon and "
            "the value. White: dry (or P = 0), grey: no radar. Draw a box with the box-select tool to score "
            "a region" + ("; double-click a map to enlarge it." if focus else "."),
            styles={"font-size": "0.85em", "color": "#555"}, margin=(0, 10),
        )
        self.focus_choice = pn.widgets.Select(label="Enlarge", width=220, visible=focus, margin=(0, 10))
        self.back = pn.widgets.Button(label="◀ all maps", width=110, visible=False, margin=(18, 10, 0, 10))
        self.back.on_click(lambda _: setattr(self.state, "focus", ""))
        self.focus_choice.param.watch(self._on_focus_choice, "value")
        self._signature = self.signature()
        self.update_panels()
        self._kinds: tuple = ()
        if self._live():
            self.rebuild()
        else:
            self._stale_layout = True
        rebuild_on = [*rebuild_on, "rain_scale", *(["focus"] if focus else [])]
        redraw = [p for p in ("time", "view", "member", "threshold", "channel") if p not in rebuild_on]
        self.state.param.watch(self._on_case, redraw)
        self.state.param.watch(self._on_rebuild, list(rebuild_on))
        session.param.watch(self._on_case, "revision")

    def update_panels(self) -> list[MapPanel]:
        """Recompute the panels of the current case; returns them in grid order."""
        panels = self._panels_of(self.session)
        self.panels = {p.slot: p for p in panels}
        self.status.object = plain_html("Shown: " + " · ".join(
            f"{p.title} — {p.note}" if p.note else p.title for p in panels))
        if self.focusable:
            self.focus_choice.options = {"all maps": "", **{focus_label(p): p.slot for p in panels}}
            self.focus_choice.value = self.focused or ""
        return panels

    @property
    def focused(self) -> str | None:
        """The slot of the enlarged map, or None (no focus, or its map is not shown)."""
        slot = self.state.focus if self.focusable else ""
        return slot if slot in self.panels else None

    def shown(self) -> list[MapPanel]:
        """The panels drawn: all, or the enlarged one."""
        return [self.panels[self.focused]] if self.focused else list(self.panels.values())

    def _on_focus_choice(self, event) -> None:
        if event.new != self.state.focus and (event.new or self.focused):
            self.state.focus = event.new or ""

    def _toggle_focus(self, slot: str) -> None:
        self.state.focus = "" if self.state.focus == slot else slot

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
        self.update_panels()
        if tuple(p.kind for p in self.shown()) != self._kinds:  # e.g. mean -> probability: other colour maps
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

    def _slot_map(self, slot: str, style: MapStyle, aspect: float) -> hv.DynamicMap:
        def draw(revision: int) -> hv.Image:
            return image_of(self.panels[slot], self.session)

        def title(plot, element) -> None:  # runs on every update: the title follows the panel
            panel = self.panels.get(slot)
            figure = plot.handles["plot"]
            self._reset_to_grid(figure)
            figure.title.text = panel.title_lines if panel is not None else ""
            figure.title.text_color = panel.colour if panel is not None else RADAR_COLOUR
            if style.levels is not None:
                level_colour_bar(plot, style)

        # the first aggregate already near the map's size (until the plot reports it, datashader would
        # use 400 x 400 pixels and the browser would receive every map twice)
        ny, nx = self.session.grid.shape
        size = {"width": self.width, "height": max(round(self.width * ny / nx), 1)}
        raster = regrid(hv.DynamicMap(draw, streams=[self._refresh]), aggregator="mean", **size)
        options = style_options(style, self.session, self.state.channel, self.layout, self._lonlat, aspect)
        zoom = self.state.zoom_box
        if zoom is not None:  # open at the case's extent (a shared link's, or the one before a rebuild)
            options.update(xlim=(zoom[0], zoom[2]), ylim=(zoom[1], zoom[3]))
        raster = raster.opts(**options, hooks=[title])
        ranges = hv.streams.RangeXY(source=raster)
        ranges.add_subscriber(functools.partial(self._on_range, ranges))
        self.range_streams.append(ranges)
        bounds = hv.streams.BoundsXY(source=raster)
        bounds.add_subscriber(self._on_bounds)
        if self.focusable:
            hv.streams.DoubleTap(source=raster).add_subscriber(lambda x=None, y=None: self._toggle_focus(slot))
        return raster

    def _reset_to_grid(self, figure) -> None:
        """Let the reset tool show the whole grid, also when the map opened at a zoom."""
        xmin, ymin, xmax, ymax = self.session.grid.bounds
        for axis, low, high in ((figure.x_range, xmin, xmax), (figure.y_range, ymin, ymax)):
            if hasattr(axis, "reset_start") and (axis.reset_start, axis.reset_end) != (low, high):
                axis.reset_start, axis.reset_end = low, high

    def _on_range(self, stream: hv.streams.RangeXY, x_range=None, y_range=None) -> None:
        """The first map's x/y range is the case's zoom. Panel links the maps' axes by giving every map the
        first one's range; the streams of the other maps of a rebuilt grid can still report their own
        earlier ranges (seen in Chromium), so only the first map's stream counts."""
        if not self.range_streams or stream is not self.range_streams[0]:
            return
        zoom = zoom_extent(x_range, y_range, self.session.grid)
        if zoom is not None and zoom != self.state.zoom:
            self.state.zoom = zoom

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

    def grid_mode(self) -> str:
        """``focus`` (one map enlarged), ``pairs`` (models beside their differences) or ``auto``."""
        if self.focused:
            return "focus"
        return "pairs" if any(p.kind == "difference" for p in self.panels.values()) else "auto"

    def rebuild(self) -> None:
        """Build the maps anew (the set of maps, their styles or the focus changed)."""
        panels = self.shown()
        self._kinds = tuple(p.kind for p in panels)
        overlay = basemap_overlay(self.session)
        # the width a map usually gets: a column of the grid, or the enlarged map on a laptop screen
        width = 700 if self.focused else self.layout.map_column_px + 80
        aspect = figure_aspect(self.session.grid.shape, width, self.layout)
        panes, self.range_streams = [], []
        for panel in panels:
            style = map_style(panel.kind, self.state.rain_scale)
            region = hv.DynamicMap(self._region_box, streams=[self._region])
            plot = self._slot_map(panel.slot, style, aspect) * overlay * region
            panes.append(pn.pane.HoloViews(plot, sizing_mode="stretch_width", linked_axes=True,
                                           css_classes=["qpe-map"], margin=0))
        # a new grid element: refilling the old one left an empty first cell in Chromium
        self.maps = pn.Column(*panes, sizing_mode="stretch_width", margin=0,
                              stylesheets=[grid_stylesheet(self.layout, self.grid_mode(), aspect)])
        self.holder.objects = [self.maps]
        self.back.visible = bool(self.focused)

    def __panel__(self):
        header = pn.Row(self.legend, self.focus_choice, self.back, sizing_mode="stretch_width")
        return pn.Column(header, self.status, self.holder, sizing_mode="stretch_width")
