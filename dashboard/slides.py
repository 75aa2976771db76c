"""Export of the whole case for slides: one zip with every map and score figure, the scores with their
curves, the run settings and an animation of the period.

The zip holds (see :func:`slides_zip`)::

    README.txt               what each file is
    settings.yaml            data, time, period, models (card, family, members, K, sampler, seed), view,
                             thresholds, region, zoom, layout, and the link that reopens the case
    scores_and_curves.csv    every score and curve, long form (qpe.evaluation.slides.scores_and_curves)
    maps/NN_<map>.png        each map shown (IR, radar, each model, differences), titled as in the browser
    maps/all_maps.png        the grid of maps in one picture
    scores/<figure>.png      the score figures of qpe.evaluation.figures, text of 11 pt or more
    animation.gif            radar and each model at every time of the shown date, one frame a time

Nothing here computes a score or draws a figure of its own: the maps are drawn by
:mod:`dashboard.export`, the scores come from :func:`dashboard.scores.case_scores` and their figures and
table from :mod:`qpe.evaluation.slides`. Names from files (models, data) reach the figures as plain text.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import yaml

from dashboard.export import animation_gif, map_figure, map_grid_figure, period_times
from dashboard.maps import MapPanel
from dashboard.scores import case_scores
from dashboard.session import DashboardSession
from dashboard.sharing import share_query
from dashboard.state import format_time
from qpe import __version__
from qpe.evaluation.slides import PROJECTOR_DPI, combine_models, figure_png, scores_and_curves, slide_figures
from qpe.files import atomic_write


def _safe(text: str) -> str:
    """A file-name part: letters, digits, ``.``, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def case_name(session: DashboardSession) -> str:
    """The case's name in file names: the data's catalog name, else the data file's name."""
    name = session.dataset.attrs.get("catalog_name") or Path(session.data_path).stem
    return _safe(str(name))


def slides_name(session: DashboardSession) -> str:
    """``qpe_slides_<case>_<time>.zip`` (time ``YYYYMMDDTHHMM``, UTC)."""
    time = session.state.time.replace(":", "").replace("-", "")
    return f"qpe_slides_{case_name(session)}_{_safe(time)}.zip"


def model_settings(session: DashboardSession, model: str) -> dict:
    """What an estimate of ``model`` was made with: card name, family, members, K, sampler, seed."""
    registry, state = session.registry, session.state
    if model in registry.external:
        return {"key": model, "external_estimates": str(registry.external[model].path)}
    checkpoint = registry.checkpoints.get(model)
    if checkpoint is None:
        return {"key": model, "problem": "not offered by the models folder"}
    card = checkpoint.card
    ensemble = card.is_ensemble
    settings = {"key": model, "card_name": card.name, "family": card.family, "checkpoint": str(checkpoint.path),
                "members": state.members if ensemble else 1}
    if ensemble:
        settings.update(steps_K=state.steps or card.sampling.steps, sampler=card.sampling.sampler, seed=state.seed,
                        precision=state.precision)
    if card.weights is not None:
        settings["weights_sha256"] = card.weights.sha256
    return settings


def case_settings(session: DashboardSession, times: Sequence[pd.Timestamp]) -> dict:
    """The run settings of the export (``settings.yaml``): everything needed to make it again."""
    state = session.state
    return {
        "qpe_version": __version__,
        "exported_utc": format_time(pd.Timestamp.now(tz="UTC").tz_localize(None)),
        "data": str(session.data_path),
        "case": case_name(session),
        "time_utc": state.time,
        "animation_period_utc": {"first": format_time(times[0]), "last": format_time(times[-1]),
                                 "times": len(times)},
        "models": [model_settings(session, m) for m in state.models],
        "view": state.view, "member_shown": state.member,
        "thresholds_mm_h": sorted(float(t) for t in state.thresholds),
        "map_threshold_mm_h": float(state.threshold),
        "ir_channel": state.channel, "differences": state.difference, "rain_colours": state.rain_scale,
        "score_region_m": list(state.region) or "whole grid",
        "zoom_m": list(state.zoom) or "whole grid",
        "focus": state.focus, "layout": state.layout,
        "link_query": share_query(state),
    }


def _readme(files: dict[str, str], settings: dict) -> str:
    lines = [f"qpe case {settings['case']} at {settings['time_utc']} UTC, exported {settings['exported_utc']} UTC",
             f"data: {settings['data']}",
             f"models: {', '.join(m['key'] for m in settings['models']) or 'none'}",
             f"reopen in the dashboard: append {settings['link_query']} to the dashboard's address", "",
             "Files:"]
    width = max(map(len, files)) + 2
    lines += [f"  {name.ljust(width)}{what}" for name, what in files.items()]
    return "\n".join(lines) + "\n"


def slides_zip(session: DashboardSession, panels: Sequence[MapPanel],
               times: Sequence[pd.Timestamp] | None = None) -> bytes:
    """The zip of the case for slides (module notes), as bytes.

    Parameters
    ----------
    session : DashboardSession
        The case shown (time, models, view, thresholds, region, zoom).
    panels : sequence of MapPanel
        The maps shown (:meth:`dashboard.maps.MapGrid.update_panels`).
    times : sequence of datetime-like, optional
        Times of the animation (default: every time of the shown date, :func:`dashboard.export.period_times`).

    Raises
    ------
    QpeError
        The score region holds no pixel, or an estimate does not match the radar grid.
    """
    state = session.state
    times = list(period_times(session) if times is None else times)
    region, zoom = state.region_box, state.zoom_box
    files: dict[str, tuple[str, bytes]] = {}
    for number, panel in enumerate(panels, start=1):
        name = f"maps/{number:02d}_{_safe(panel.slot)}.png"
        what = panel.heading.replace("\n", " ")
        files[name] = (f"map: {what}", figure_png(map_figure(panel, session, region=region, zoom=zoom)))
    if panels:
        grid = map_grid_figure(panels, session, region=region, zoom=zoom, text="slide", dpi=PROJECTOR_DPI)
        files["maps/all_maps.png"] = ("every map above in one picture", figure_png(grid))
    scores, waiting = case_scores(session)
    if scores:
        for name, figure in slide_figures(combine_models(scores)).items():
            title = figure.get_suptitle() or next((ax.get_title() for ax in figure.axes if ax.get_title()), name)
            files[f"scores/{name}.png"] = (f"score figure: {title}", figure_png(figure))
    table = scores_and_curves(scores)
    columns = "model, score, threshold (mm/h), x, x_unit, value, unit, figure"
    what = f"every score and curve, long form: {columns} ({len(table)} rows; members averaged)"
    files["scores_and_curves.csv"] = (what, table.to_csv(index=False).encode("utf-8"))
    period = f"{len(times)} frames {format_time(times[0])} .. {format_time(times[-1])} UTC"
    files["animation.gif"] = (f"radar and each model, {period} (a model not estimated at a time: grey)",
                              animation_gif(session, times, zoom=zoom))
    settings = case_settings(session, times)
    if waiting:
        settings["not_scored_no_estimate"] = list(waiting)
    files["settings.yaml"] = ("run settings (data, time, period, models, thresholds, region, zoom, layout)",
                              yaml.safe_dump(settings, sort_keys=False, allow_unicode=True).encode("utf-8"))
    readme = _readme({"README.txt": "this list", **{n: w for n, (w, _) in files.items()}}, settings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme)
        for name, (_, content) in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def write_slides(session: DashboardSession, panels: Sequence[MapPanel], folder: str | os.PathLike,
                 times: Sequence[pd.Timestamp] | None = None) -> Path:
    """Write :func:`slides_zip` to ``folder/<slides_name>`` atomically (whole or not at all); returns its path."""
    content = slides_zip(session, panels, times)
    return atomic_write(Path(folder) / slides_name(session), lambda tmp: tmp.write_bytes(content))


def slides_download(session: DashboardSession, panels: Callable[[], Sequence[MapPanel]]):
    """A FileDownload button that builds the slides zip when clicked (``panels()`` gives the maps shown).

    The zip is built off the event loop (the session stays responsive meanwhile); a failure is shown as the
    session's message ``slides`` with its cause.
    """
    import panel as pn

    async def content() -> io.BytesIO:
        download.filename = slides_name(session)
        shown = list(panels())
        try:
            data = await asyncio.get_running_loop().run_in_executor(None, slides_zip, session, shown)
        except Exception as err:
            session.messages.report("slides", err)
            raise
        session.messages.clear("slides")
        return io.BytesIO(data)

    download = pn.widgets.FileDownload(callback=content, filename=slides_name(session),
                                       label="Export case for slides (.zip)", color="primary",
                                       sizing_mode="stretch_width", css_classes=["qpe-slides-download"])
    return download
