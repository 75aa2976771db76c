"""Sharing a case: the URL's query string mirrors the :class:`~dashboard.state.CaseState`.

Opening a link applies its query to the state before the views are built; every later change of the
state rewrites the query (``history.replaceState``, no reload), so the address bar is always a link
that reopens the same case: time, models, sampling, view, thresholds, region and tab.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import param

from dashboard.session import Messages
from dashboard.state import CaseState

#: State parameter -> query parameter.
URL_PARAMETERS: dict[str, str] = {
    "time": "time", "models": "models", "members": "members", "steps": "steps", "seed": "seed",
    "view": "view", "member": "member", "threshold": "threshold", "thresholds": "thresholds",
    "channel": "channel", "difference": "diff", "region": "region", "ensemble_model": "ensemble",
    "tab": "tab",
}


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


def _json_or_text(text: str):
    """A query value as JSON (numbers, lists, booleans) when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_query(state: CaseState, query: dict[str, str], messages: Messages | None = None) -> list[str]:
    """Set the state from query values one parameter at a time; returns (and reports) those refused."""
    refused = []
    for name, key in URL_PARAMETERS.items():
        if key not in query:
            continue
        value = query[key]
        try:
            if isinstance(value, str) and not isinstance(state.param[name], param.String):
                value = state.param[name].deserialize(_json_or_text(value))
            setattr(state, name, value)
        except (ValueError, TypeError):  # an unusable value: keep the default
            refused.append(f"{key}={query[key]}")
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
