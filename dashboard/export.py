"""Export of the shown case: the scores as CSV, the map grid as a PNG, each map for a slide and an animation.

The CSV holds the rows of :func:`qpe.verify.scores_to_frame` (the ``scores.csv`` layout, full
precision) for every shown model, preceded by the case's time and region. The PNG draws the same
:class:`~dashboard.maps.MapPanel` list as the browser, with the same titles (model, time, sampling;
model colour), colour maps, levels and limits, through matplotlib (no browser needed), at the full
resolution of the grid, with axes in km and the projection named once, at the maps' zoom.
:func:`map_figure` draws one map for a slide (text of 11 pt or more) and :func:`animation_gif` the
radar and each model at every time of the shown date (:mod:`dashboard.slides` packs them).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure  # drawn without pyplot: no GUI backend, no global figure state

from dashboard.case_picker import times_on
from dashboard.maps import (
    NO_DATA,
    MapPanel,
    MapStyle,
    crs_text,
    empty_field,
    map_style,
    model_field,
    sampling_text,
)
from dashboard.scores import case_scores, region_text, score_frame
from dashboard.session import DashboardSession
from dashboard.state import format_time
from qpe.colours import model_colours


def scores_csv(session: DashboardSession) -> str:
    """The scores of the shown case as CSV text (``time, region, model, metric, threshold, scale, value...``)."""
    scores, _ = case_scores(session)
    frame = score_frame(scores)
    region = session.state.region_box
    frame.insert(0, "region", "" if region is None else " ".join(f"{v:.0f}" for v in region))
    frame.insert(0, "time", session.state.time)
    return frame.to_csv(index=False)


def export_name(session: DashboardSession, suffix: str) -> str:
    """File name of an export: ``qpe_<time>_<models>.<suffix>``."""
    time = session.state.time.replace(":", "").replace("-", "")
    models = "_".join(m.replace("/", "-") for m in session.state.models) or "radar"
    return f"qpe_{time}_{models}.{suffix}"


def _colours(style: MapStyle) -> tuple[mcolors.Colormap, mcolors.Normalize]:
    """matplotlib colour map and norm of a style: the same colours, limits and levels as the browser."""
    if style.levels is not None:
        cmap = mcolors.ListedColormap(list(style.cmap))
        norm = mcolors.BoundaryNorm(style.levels, cmap.N)
    else:
        cmap = matplotlib.colormaps[style.cmap] if isinstance(style.cmap, str) else mcolors.ListedColormap(
            list(style.cmap))
        norm = None
    if style.label == "K":
        return cmap.with_extremes(bad=NO_DATA), norm
    return cmap.with_extremes(bad=NO_DATA, under=style.under, over=style.over), norm


#: Text sizes (title, axis labels, ticks), points: the sidebar's grid PNG, and a map on a slide (>= 11 pt).
TEXT_PT = {"grid": (9.0, 8.0, 7.0), "slide": (13.0, 12.0, 11.0)}


def _shown_values(panel: MapPanel, style: MapStyle) -> np.ndarray:
    """(y, x) values of a panel as drawn: on a log scale, dry pixels (<= 0) below the first colour."""
    values = np.asarray(panel.field.transpose("y", "x").values, dtype="float64")
    if style.log and style.levels is None:
        values = np.where(values <= 0, 1e-12, values)  # dry pixels take the "under" colour
    return values


def _draw_field(figure: Figure, ax, panel: MapPanel, style: MapStyle, session: DashboardSession,
                extent: tuple[float, float, float, float], tick_pt: float, colour_bar: bool = True):
    values = _shown_values(panel, style)
    cmap, norm = _colours(style)
    if norm is None:
        low, high = style.limits(session, session.state.channel)
        norm = mcolors.LogNorm(low, high, clip=False) if style.log else mcolors.Normalize(low, high, clip=False)
    image = ax.imshow(values, extent=extent, origin="upper", cmap=cmap, norm=norm, interpolation="nearest")
    if not colour_bar:
        return image
    extend = {"K": "neither", "probability": "min"}.get(style.label, "both")  # P = 1 is the last level
    bar = figure.colorbar(image, ax=ax, shrink=0.8, label=style.label, extend=extend,
                          spacing="uniform" if style.levels is not None else "proportional")
    ticks = style.levels if style.levels is not None else style.ticks
    if ticks is not None:
        bar.set_ticks(list(ticks), labels=[f"{v:g}" for v in ticks])
    bar.ax.tick_params(labelsize=tick_pt)
    bar.ax.yaxis.label.set_size(tick_pt + 1)
    return image


def view_extent(session: DashboardSession, zoom: tuple[float, float, float, float] | None = None
                ) -> tuple[float, float, float, float]:
    """The shown extent ``(x0, x1, y0, y1)`` in km: the zoom (m) when given, else the whole grid."""
    xmin, ymin, xmax, ymax = zoom if zoom is not None else session.grid.bounds
    return (xmin / 1000, xmax / 1000, ymin / 1000, ymax / 1000)


def _draw_map(figure: Figure, ax, panel: MapPanel, session: DashboardSession, *, text: str = "grid",
              region: tuple[float, float, float, float] | None = None,
              zoom: tuple[float, float, float, float] | None = None, colour_bar: bool = True):
    """One map on ``ax``: the field (or the no-data grey), coastlines, borders, the score region, the
    title in the model's colour (plain text), axes in km, its colour bar (unless ``colour_bar`` is
    false); returns the image (None without a field)."""
    title_pt, label_pt, tick_pt = TEXT_PT[text]
    style = map_style(panel.kind, session.state.rain_scale)
    lines = session.basemap()
    grid_extent = view_extent(session)
    image = None
    if panel.field is not None:
        image = _draw_field(figure, ax, panel, style, session, grid_extent, tick_pt, colour_bar)
    else:
        ax.set_facecolor(NO_DATA)
    for layer, line in (("coastline", {"color": "#333333", "lw": 0.8}),
                        ("border", {"color": "#555555", "lw": 0.6, "ls": "--"})):
        if len(lines[layer]):
            ax.plot(lines[layer][:, 0] / 1000, lines[layer][:, 1] / 1000, **line)
    if region is not None:
        x0, y0, x1, y1 = (v / 1000 for v in region)
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="black", lw=1.5, ls=":")
    x0, x1, y0, y1 = view_extent(session, zoom)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(panel.title_lines, fontsize=title_pt, color=panel.colour, parse_math=False)
    ax.set_xlabel("x (km)", fontsize=label_pt)
    ax.set_ylabel("y (km)", fontsize=label_pt)
    ax.tick_params(labelsize=tick_pt)
    return image


def map_grid_figure(
    panels: Sequence[MapPanel],
    session: DashboardSession,
    columns: int | None = None,
    region: tuple[float, float, float, float] | None = None,
    dpi: int = 110,
    zoom: tuple[float, float, float, float] | None = None,
    text: str = "grid",
) -> Figure:
    """The maps drawn as one matplotlib figure, titled as in the browser, with axes in km.

    Parameters
    ----------
    panels : sequence of MapPanel
        The maps, in grid order (see :func:`dashboard.maps.map_panels`).
    session : DashboardSession
        The case (rain colours, IR channel, grid, coastlines).
    columns : int, optional
        Maps per row (default: 2 when differences are shown, so that each model sits beside its
        difference to radar, else 3).
    region : (xmin, ymin, xmax, ymax), optional
        Score region to outline, m.
    dpi : int
        Resolution of the image.
    zoom : (xmin, ymin, xmax, ymax), optional
        Extent shown, m (the maps' zoom); default the whole grid.
    text : str
        Text sizes, a key of :data:`TEXT_PT` (``slide``: 11 pt or more).
    """
    if columns is None:
        columns = 2 if any(p.kind == "difference" for p in panels) else 3
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    scale = 1.0 if text == "grid" else 1.6  # slide text: room for the two-line titles over each map
    figure = Figure(figsize=(4.4 * scale * columns, 4.2 * scale * rows + 0.4), dpi=dpi, layout="constrained")
    for i, panel in enumerate(panels):
        ax = figure.add_subplot(rows, columns, i + 1)
        _draw_map(figure, ax, panel, session, text=text, region=region, zoom=zoom)
    figure.suptitle(f"{session.state.time} UTC — score region: {region_text(region)}\n"
                    f"maps on the {crs_text(session.grid)} projection, x/y in km",
                    fontsize=TEXT_PT[text][0] + 1, parse_math=False)
    return figure


def map_figure(panel: MapPanel, session: DashboardSession, region: tuple[float, float, float, float] | None = None,
               zoom: tuple[float, float, float, float] | None = None) -> Figure:
    """One map for a slide: titled as in the browser (model, time, members/K/sampler), axes in km, the
    projection named, its colour bar beside it, text of 11 pt or more (:data:`TEXT_PT` ``slide``)."""
    figure = Figure(figsize=(7.0, 6.4), layout="constrained")
    ax = figure.add_subplot()
    _draw_map(figure, ax, panel, session, text="slide", region=region, zoom=zoom)
    figure.supxlabel(f"{crs_text(session.grid)} projection; score region: {region_text(region)}",
                     fontsize=TEXT_PT["slide"][2], color="#444444", parse_math=False)
    return figure


def map_grid_png(panels: Sequence[MapPanel], session: DashboardSession, **options) -> bytes:
    """The maps of :func:`map_grid_figure` (same ``options``) as PNG bytes."""
    buffer = io.BytesIO()
    map_grid_figure(panels, session, **options).savefig(buffer, format="png")
    return buffer.getvalue()


# -- animation of the period --------------------------------------------------------------------------------
def period_times(session: DashboardSession) -> pd.DatetimeIndex:
    """The times of the animation: every time of the shown UTC date (what "Run: whole day" estimates)."""
    return times_on(session.times, session.state.timestamp.date())


def frame_panels(session: DashboardSession, time: pd.Timestamp) -> list[MapPanel]:
    """Radar and each shown model at ``time``, drawn as the case's view (member, mean or probability);
    titles without the time (the frame's title has it).

    A model's field is the estimate already computed with the case's settings (memory of the server);
    without one, a panel of no-data grey titled "not estimated". Every panel has a field, so that the
    frames of an animation share their colour maps.
    """
    state = session.state
    panels = [MapPanel("radar", "radar", "rain", session.radar(time))]
    colours = model_colours(state.models)
    for model in state.models:
        details = sampling_text(session, model)
        estimate = session.recall(model, time)
        kind = "probability" if state.view == "probability" else "rain"
        if estimate is None:
            panels.append(MapPanel(model, model, kind, empty_field(session), "not estimated", details,
                                   colours[model]))
            continue
        field, kind, label = model_field(estimate, state)
        panels.append(MapPanel(model, f"{model} {label}".strip(), kind, field, details=details,
                               colour=colours[model]))
    return panels


def animation_gif(session: DashboardSession, times: Sequence[pd.Timestamp] | None = None,
                  zoom: tuple[float, float, float, float] | None = None, frame_s: float = 0.6,
                  dpi: int = 90) -> bytes:
    """An animated GIF of the period: radar and each shown model side by side, one frame per time.

    Parameters
    ----------
    session : DashboardSession
        The case: models, view, rain colours, score region.
    times : sequence of datetime-like, optional
        The frames' times (default :func:`period_times`).
    zoom : (xmin, ymin, xmax, ymax), optional
        Extent shown, m; default the whole grid.
    frame_s : float
        Seconds each frame is shown.
    dpi : int
        Resolution of the frames.

    Every frame has the same colour scale (the styles' fixed limits or levels) and layout; the title
    says the time. Estimates not computed yet are grey panels titled "not estimated".
    """
    from PIL import Image

    times = list(period_times(session) if times is None else times)
    region = session.state.region_box
    first = frame_panels(session, times[0])
    kinds = [p.kind for p in first]
    figure = Figure(figsize=(4.0 * len(first) + 1.2, 4.9), dpi=dpi, layout="constrained")
    axes = figure.subplots(1, len(first), squeeze=False)[0]
    images = [_draw_map(figure, ax, panel, session, text="slide", region=region, zoom=zoom,
                        colour_bar=kind not in kinds[i + 1:])  # one colour bar per colour scale: the last map's
              for i, (ax, panel, kind) in enumerate(zip(axes, first, kinds))]
    title = figure.suptitle("", fontsize=15, fontweight="bold")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    figure.set_layout_engine("none")  # the layout of the first frame for all: no jitter between frames
    frames = []
    for time in times:
        panels = frame_panels(session, time)
        for ax, image, panel in zip(axes, images, panels):
            image.set_data(_shown_values(panel, map_style(panel.kind, session.state.rain_scale)))
            ax.set_title(panel.title_lines, fontsize=TEXT_PT["slide"][0], color=panel.colour, parse_math=False)
        title.set_text(f"{format_time(time)} UTC")
        canvas.draw()
        frames.append(Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB"))
    palette = frames[0].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    indexed = [palette] + [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames[1:]]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=round(1000 * frame_s), loop=0, optimize=False, disposal=1)
    return buffer.getvalue()


def csv_download(session: DashboardSession):
    """A FileDownload button that builds the CSV when clicked."""
    import panel as pn

    def content() -> io.StringIO:
        download.filename = export_name(session, "csv")
        return io.StringIO(scores_csv(session))

    download = pn.widgets.FileDownload(callback=content, filename=export_name(session, "csv"),
                                       label="Scores CSV", color="default", sizing_mode="stretch_width")
    return download


def png_download(session: DashboardSession, panels):
    """A FileDownload button that draws the map grid (``panels()`` gives the maps shown) as PNG."""
    import panel as pn

    def content() -> io.BytesIO:
        download.filename = export_name(session, "png")
        return io.BytesIO(map_grid_png(panels(), session, region=session.state.region_box,
                                       zoom=session.state.zoom_box))

    download = pn.widgets.FileDownload(callback=content, filename=export_name(session, "png"),
                                       label="Maps PNG", color="default", sizing_mode="stretch_width")
    return download
