"""Page layouts: the normal layout (sidebar open) and the presentation layout for review meetings.

One table, :data:`LAYOUTS`, holds what differs between them: whether the sidebar starts open, the
page's base font size, the narrowest map column of the map grid and the font sizes of the maps.
The case's ``layout`` (in the link as ``?layout=presentation``) picks one; :mod:`dashboard.app`
builds the page with it and :mod:`dashboard.maps` draws the maps with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageLayout:
    """How the page is laid out.

    Parameters
    ----------
    name : str
        Key in the link (``layout=<name>``).
    sidebar : bool
        Whether the sidebar (case, models, view, export) starts open.
    font_px : int or None
        Base font size of the page, CSS px (widgets and plots get 4/5 of it); None: the browser's.
    map_column_px : int
        Narrowest column of the map grid, CSS px: the grid takes as many columns (at most 4) as fit.
    title_pt, label_pt, tick_pt : int
        Font sizes of the map titles, axis and colour-bar labels, and tick labels, pt.
    map_margins : (float, float)
        Room around a map's plot frame with these fonts, px: left (y axis) + right (colour bar,
        toolbar), and top (two-line title) + bottom (x axis), as Bokeh lays the maps out (measured
        in Chromium); the maps' aspect is set from it so that their frames keep the grid's.
    """

    name: str
    sidebar: bool
    font_px: int | None
    map_column_px: int
    title_pt: int
    label_pt: int
    tick_pt: int
    map_margins: tuple[float, float]

    def page_css(self) -> str:
        """CSS of the whole page: the base font size (Bokeh's shadow roots read ``--bokeh-font-size``)."""
        if self.font_px is None:
            return ""
        widgets = round(self.font_px * 0.8)
        return (f":root {{ --bokeh-font-size: {widgets}px; --bs-body-font-size: {self.font_px}px; }}\n"
                f"html, body {{ font-size: {self.font_px}px; }}\n")

    def fontsize(self) -> dict[str, str]:
        """holoviews ``fontsize`` option of a map."""
        return {"title": f"{self.title_pt}pt", "labels": f"{self.label_pt}pt", "ticks": f"{self.tick_pt}pt",
                "clabel": f"{self.label_pt}pt", "cticks": f"{self.tick_pt}pt"}


#: The layouts, by name; the first is the default.
LAYOUTS: dict[str, PageLayout] = {
    "normal": PageLayout("normal", sidebar=True, font_px=None, map_column_px=400, title_pt=10, label_pt=9, tick_pt=8,
                         map_margins=(183, 84)),
    "presentation": PageLayout("presentation", sidebar=False, font_px=20, map_column_px=520, title_pt=15,
                               label_pt=13, tick_pt=12, map_margins=(219, 109)),
}
