"""Export of the shown case: the scores as CSV and the map grid as a PNG.

The CSV holds the rows of :func:`qpe.verify.scores_to_frame` (the ``scores.csv`` layout, full
precision) for every shown model, preceded by the case's time and region. The PNG draws the same
:class:`~dashboard.maps.MapPanel` list as the browser, with the same titles (model, time, sampling;
model colour), colour maps, levels and limits, through matplotlib (no browser needed), at the full
resolution of the grid, with axes in km and the projection named once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.figure import Figure  # drawn without pyplot: no GUI backend, no global figure state

from dashboard.maps import NO_DATA, MapPanel, MapStyle, crs_text, map_style
from dashboard.scores import case_scores, region_text, score_frame
from dashboard.session import DashboardSession


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


def _draw_field(figure: Figure, ax, panel: MapPanel, style: MapStyle, session: DashboardSession,
                extent: tuple[float, float, float, float]) -> None:
    values = np.asarray(panel.field.transpose("y", "x").values, dtype="float64")
    cmap, norm = _colours(style)
    if norm is None:
        low, high = style.limits(session, session.state.channel)
        norm = mcolors.LogNorm(low, high, clip=False) if style.log else mcolors.Normalize(low, high, clip=False)
        if style.log:
            values = np.where(values <= 0, 1e-12, values)  # dry pixels take the "under" colour
    image = ax.imshow(values, extent=extent, origin="upper", cmap=cmap, norm=norm, interpolation="nearest")
    extend = {"K": "neither", "probability": "min"}.get(style.label, "both")  # P = 1 is the last level
    bar = figure.colorbar(image, ax=ax, shrink=0.8, label=style.label, extend=extend,
                          spacing="uniform" if style.levels is not None else "proportional")
    ticks = style.levels if style.levels is not None else style.ticks
    if ticks is not None:
        bar.set_ticks(list(ticks), labels=[f"{v:g}" for v in ticks])
    bar.ax.tick_params(labelsize=7)


def map_grid_figure(
    panels: Sequence[MapPanel],
    session: DashboardSession,
    columns: int | None = None,
    region: tuple[float, float, float, float] | None = None,
    dpi: int = 110,
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
    """
    if columns is None:
        columns = 2 if any(p.kind == "difference" for p in panels) else 3
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.4 * columns, 4.2 * rows + 0.4), dpi=dpi, layout="constrained")
    lines = session.basemap()
    xmin, ymin, xmax, ymax = session.grid.bounds
    extent = (xmin / 1000, xmax / 1000, ymin / 1000, ymax / 1000)
    for i, panel in enumerate(panels):
        ax = figure.add_subplot(rows, columns, i + 1)
        style = map_style(panel.kind, session.state.rain_scale)
        if panel.field is not None:
            _draw_field(figure, ax, panel, style, session, extent)
        else:
            ax.set_facecolor(NO_DATA)
        for layer, line in (("coastline", {"color": "#333333", "lw": 0.8}),
                            ("border", {"color": "#555555", "lw": 0.6, "ls": "--"})):
            if len(lines[layer]):
                ax.plot(lines[layer][:, 0] / 1000, lines[layer][:, 1] / 1000, **line)
        if region is not None:
            x0, y0, x1, y1 = (v / 1000 for v in region)
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="black", lw=1.5, ls=":")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_title(panel.title_lines, fontsize=9, color=panel.colour)
        ax.set_xlabel("x (km)", fontsize=8)
        ax.set_ylabel("y (km)", fontsize=8)
        ax.tick_params(labelsize=7)
    figure.suptitle(f"{session.state.time} UTC — score region: {region_text(region)}\n"
                    f"maps on the {crs_text(session.grid)} projection, x/y in km", fontsize=10)
    return figure


def map_grid_png(panels: Sequence[MapPanel], session: DashboardSession, **options) -> bytes:
    """The maps of :func:`map_grid_figure` (same ``options``) as PNG bytes."""
    buffer = io.BytesIO()
    map_grid_figure(panels, session, **options).savefig(buffer, format="png")
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
        return io.BytesIO(map_grid_png(panels(), session, region=session.state.region_box))

    download = pn.widgets.FileDownload(callback=content, filename=export_name(session, "png"),
                                       label="Maps PNG", color="default", sizing_mode="stretch_width")
    return download
