"""Sharing a case: the URL's query string mirrors the :class:`~dashboard.state.CaseState`.

Opening a link applies its query to the state before the views are built; every later change of the
state rewrites the query (``history.replaceState``, no reload), so the address bar is always a link
that reopens the same case: time, models, sampling, view, thresholds, region, tab, rain colours,
the maps' extent (``zoom``, m), the enlarged map and the page layout (``layout=presentation``).
"""

from __future__ import annotations

import json
import math
from urllib.parse import urlencode

import param

from dashboard.session import Messages
from dashboard.state import CaseState
from dashboard.text import excerpt

#: State parameter -> query parameter.
URL_PARAMETERS: dict[str, str] = {
    "time": "time", "models": "models", "members": "members", "steps": "steps", "seed": "seed",
    "precision": "precision", "view": "view", "member": "member", "threshold": "threshold",
    "thresholds": "thresholds", "channel": "channel", "difference": "diff", "region": "region", "ensemble_model": "ensemble",
    "frames_model": "frames", "tab": "tab", "rain_scale": "rain", "zoom": "zoom", "focus": "focus", "layout": "layout",
}


#: List parameters whose entries are choices, each at most once.
DISTINCT_LISTS = ("models", "thresholds")
#: List parameters that are boxes ``[xmin, ymin, xmax, ymax]`` in m, or empty.
BOXES = ("region", "zoom")


def query_values(state: CaseState) -> dict[str, str]:
    """The query parameters of a state, serialised as Panel's location sync writes them."""
    out = {}
    for name, key in URL_PARAMETERS.items():
        value = state.param[name].serialize(getattr(state, name))
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def share_query(state: CaseState) -> str:
    """``?time=...&models=...``: the query string of a link to this state."""
    return "?" + urlencode(query_values(state))


def layout_query(state: CaseState, layout: str) -> str:
    """``?...&layout=<layout>``: the query string of a link to this case in another page layout."""
    return "?" + urlencode({**query_values(state), URL_PARAMETERS["layout"]: layout})


def _json_or_text(text: str):
    """A query value as JSON (numbers, lists, booleans) when it parses, else the text itself."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return text


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_link_value(state: CaseState, name: str, value) -> None:
    """Refuse what a parameter's own check lets through but no widget could set.

    Booleans where numbers are expected (``True == 1``), numbers that are not finite, repeated
    entries in a list of choices, and a region or zoom that is not four finite numbers ``xmin, ymin,
    xmax, ymax`` with ``xmin < xmax`` and ``ymin < ymax``.

    Raises
    ------
    ValueError
        The value cannot come from the dashboard itself.
    """
    parameter = state.param[name]
    items = value if isinstance(value, list) else [value]
    if not isinstance(parameter, (param.Boolean, param.String)) and any(isinstance(v, bool) for v in items):
        raise ValueError(f"{name}: a boolean is not a number")
    if any(_is_number(v) and not math.isfinite(v) for v in items):
        raise ValueError(f"{name}: numbers must be finite")
    if name in DISTINCT_LISTS and len(set(map(str, items))) < len(items):
        raise ValueError(f"{name}: repeated entries")
    if name in BOXES and value and not (
        len(value) == 4 and all(_is_number(v) for v in value) and value[0] < value[2] and value[1] < value[3]
    ):
        raise ValueError(f"{name} must be [] or [xmin, ymin, xmax, ymax] with xmin < xmax, ymin < ymax")


def apply_query(state: CaseState, query: dict[str, str], messages: Messages | None = None) -> list[str]:
    """Set the state from query values one parameter at a time; returns (and reports) those refused.

    Each value is parsed (JSON, else text), checked by its ``param`` parameter and by
    :func:`check_link_value`; a refused one leaves the parameter as it was. The message quotes each
    refused ``key=value`` on one line, shortened (:func:`dashboard.text.excerpt`); the views show it
    as plain text.
    """
    refused = []
    for name, key in URL_PARAMETERS.items():
        if key not in query:
            continue
        value = query[key]
        try:
            if isinstance(value, str) and not isinstance(state.param[name], param.String):
                value = state.param[name].deserialize(_json_or_text(value))
            check_link_value(state, name, value)
            if name in BOXES:  # metres written as whole numbers by hand: [1100000, ...]
                value = [float(v) for v in value]
            setattr(state, name, value)
        except (ValueError, TypeError, OverflowError):  # an unusable value: keep the default
            refused.append(f"{key}={excerpt(query[key], 40)}")
    if refused and messages is not None:
        messages.set("link", f"The link's {', '.join(refused)} could not be used; default values are shown.")
    return refused


def sync_with_url(state: CaseState, messages: Messages, location=None) -> None:
    """Apply the link's query to the state, then keep the query equal to :func:`share_query` of the state.

    In a served session only (no-op otherwise). The query is always written whole, in one canonical
    form (JSON values), so equal cases give equal links.
    """
    import panel as pn

    location = location if location is not None else pn.state.location
    if location is None:
        return
    apply_query(state, location.query_params, messages)

    def write(*events) -> None:
        query = share_query(state)
        if location.search != query:
            location.search = query

    state.param.watch(write, list(URL_PARAMETERS))
    pn.state.onload(write)  # the address bar is a complete link from the start
