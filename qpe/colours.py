"""One colour per model name, the same in every figure, map title and export.

A model keeps its colour whatever the other models on show (the residual flow is the same purple with
two models as with six), so that a review meeting can follow it from slide to slide. The colours are
Okabe & Ito's colour-blind-safe set (Okabe & Ito 2008, "Color Universal Design"), extended with Paul
Tol's "muted" set for names the table does not know; the radar reference is black.

Names the table knows get their colour from :data:`MODEL_COLOURS`; any other name gets one from
:data:`EXTRA_COLOURS` chosen by a stable digest of the name (not Python's salted ``hash``), so that it
is the same in every session. Within one figure, :func:`model_colours` moves a name whose colour is
already taken to the next free one, so the models of one figure are always told apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: Colour of the radar reference (observations) in every figure.
RADAR_COLOUR = "#000000"

#: Colours of the models the project ships or knows by name (Okabe-Ito; yellow left out: too pale on white).
MODEL_COLOURS: dict[str, str] = {
    "radar": RADAR_COLOUR,
    "unet": "#0072B2",            # blue
    "flow_residual": "#CC79A7",   # reddish purple
    "flow_gaussian": "#009E73",   # bluish green
    "ddpm": "#D55E00",            # vermillion
    "crr": "#E69F00",             # orange
    "ir_rule": "#56B4E9",         # sky blue
}

#: Colours for other names (Paul Tol's "muted" set, grey last), picked by a stable digest of the name.
EXTRA_COLOURS: tuple[str, ...] = (
    "#332288", "#117733", "#882255", "#44AA99", "#999933", "#AA4499", "#CC6677", "#88CCEE", "#DDCC77",
    "#777777",
)


def model_colour(name: str) -> str:
    """The colour of one model, by name (hex ``#RRGGBB``), the same in every session and figure."""
    if name in MODEL_COLOURS:
        return MODEL_COLOURS[name]
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return EXTRA_COLOURS[digest % len(EXTRA_COLOURS)]


def model_colours(names: Iterable[str]) -> dict[str, str]:
    """Colours of the models of one figure: each its :func:`model_colour`, told apart from the others.

    A name whose colour another name of ``names`` already has (two unknown names whose digests meet)
    takes the next free colour of :data:`EXTRA_COLOURS`; names keep their own colour otherwise.
    """
    colours: dict[str, str] = {}
    for name in dict.fromkeys(names):
        colour = model_colour(name)
        if colour in colours.values():
            free = [c for c in EXTRA_COLOURS if c not in colours.values()]
            start = EXTRA_COLOURS.index(colour) if colour in EXTRA_COLOURS else 0
            colour = min(free, key=lambda c: (EXTRA_COLOURS.index(c) - start) % len(EXTRA_COLOURS)) if free else colour
        colours[name] = colour
    return colours
