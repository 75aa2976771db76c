"""Export of the shown case: the scores as CSV and the map grid as a PNG.

The CSV holds the rows of :func:`qpe.verify.scores_to_frame` (the ``scores.csv`` layout, full
precision) for every shown model, preceded by the case's time and region. The PNG draws the same
:class:`~dashboard.maps.MapPanel` list as the browser, with the same colour maps and limits, through
matplotlib (no browser needed), at the full resolution of the grid.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.figure import Figure  # drawn without pyplot: no GUI backend, no global figure state

from dashboard.maps import CLIPPING, STYLES, MapPanel, ir_limits
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


def _colormap(kind: str) -> mcolors.Colormap:
    style = STYLES[kind]
    cmap = matplotlib.colormaps[style.cmap] if isinstance(style.cmap, str) else mcolors.ListedColormap(style.cmap)
    if kind == "ir":
        return cmap.with_extremes(bad=CLIPPING["NaN"])
    return cmap.with_extremes(bad=CLIPPING["NaN"], under=CLIPPING["min"], over=CLIPPING["max"])


def _norm(kind: str, session: DashboardSession, channel: str) -> mcolors.Normalize:
    style = STYLES[kind]
    low, high = ir_limits(session.dataset, channel) if kind == "ir" else style.clim
    return mcolors.LogNorm(low, high, clip=False) if style.log else mcolors.Normalize(low, high, clip=False)


def map_grid_png(
    panels: Sequence[MapPanel],
    session: DashboardSession,
    columns: int = 3,
    region: tuple[float, float, float, float] | None = None,
    dpi: int = 110,
) -> bytes:
    """The maps drawn as one PNG image (bytes), coastlines, borders and the region box included."""
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.2 * min(columns, len(panels)), 3.8 * rows), dpi=dpi, layout="constrained")
    lines = session.basemap()
    xmin, ymin, xmax, ymax = session.grid.bounds
    extent = (xmin / 1000, xmax / 1000, ymin / 1000, ymax / 1000)
    for i, panel in enumerate(panels):
        ax = figure.add_subplot(rows, min(columns, len(panels)), i + 1)
        if panel.field is not None:
            values = np.asarray(panel.field.transpose("y", "x").values, dtype="float64")
            if STYLES[panel.kind].log:
                values = np.where(values <= 0, 1e-12, values)  # dry pixels take the "under" colour
            image = ax.imshow(values, extent=extent, origin="upper", cmap=_colormap(panel.kind),
                              norm=_norm(panel.kind, session, session.state.channel), interpolation="nearest")
            figure.colorbar(image, ax=ax, shrink=0.8, label=STYLES[panel.kind].label,
                            extend="neither" if panel.kind == "ir" else "both")
        else:
            ax.set_facecolor(CLIPPING["NaN"])
        for layer, style in (("coastline", {"color": "#333333", "lw": 0.8}),
                             ("border", {"color": "#555555", "lw": 0.6, "ls": "--"})):
            if len(lines[layer]):
                ax.plot(lines[layer][:, 0] / 1000, lines[layer][:, 1] / 1000, **style)
        if region is not None:
            x0, y0, x1, y1 = (v / 1000 for v in region)
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="black", lw=1.5, ls=":")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_title(panel.heading, fontsize=9)
        ax.tick_params(labelsize=7)
    figure.suptitle(f"{session.state.time} UTC — score region: {region_text(region)}", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
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
