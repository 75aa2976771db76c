"""The dashboard's link parser against generated bad values (hypothesis): one message line, a valid state.

A shared link is input from anyone. :func:`dashboard.sharing.apply_query` applies its query to a
:class:`~dashboard.state.CaseState`, and the case picker then resolves its time against the data
(:func:`dashboard.case_picker.resolve_time`). Whatever the values, nothing may raise, every refused
value is reported on one line, and the state must be one the dashboard's own widgets could produce.
"""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qs

import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dashboard.case_picker import CasePicker, resolve_time
from dashboard.model_picker import ModelPicker
from dashboard.page_layout import LAYOUTS
from dashboard.session import DashboardSession, DashboardSettings, Messages
from dashboard.sharing import URL_PARAMETERS, apply_query, layout_query, query_values
from dashboard.state import RAIN_SCALES, TABS, THRESHOLD_CHOICES, CaseState
from qpe.data.paired import SEVIRI_CHANNELS, save_paired
from qpe.inference.products import PRODUCTS

TIMES = pd.date_range("2021-06-01T23:00", periods=6, freq="15min")
PAYLOAD = '<img src=x onerror="window.__pwned=1">'

#: JSON documents of any shape (what a hand-edited link may hold).
json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
).map(json.dumps)
#: Values a query parameter may carry: any text, any JSON, numbers, markup, deep nesting.
query_texts = st.one_of(
    st.text(),
    json_documents,
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from([PAYLOAD, f'["{PAYLOAD}"]', "true", "null", "[]", "{}", "NaN", "-Infinity", "1e999",
                     "[" * 5000, "2021-06-01T23:00\n# heading", "**bold** [x](javascript:alert(1))",
                     "[0, 0, 0, 0]", "[1, 2, 1, 2]", "[1.0, 1.0]", '["unet", "unet"]', "nan", "NaT", "-1",
                     "99999999999999999999", "0001-01-01", "9999-12-31T23:59", "2021-06-01T23:00+14:00"]),
)
queries = st.dictionaries(st.sampled_from(list(URL_PARAMETERS.values())), query_texts, max_size=len(URL_PARAMETERS))


def assert_valid_state(state: CaseState) -> None:
    """What the widgets could produce: each value of its type, in its range, lists of distinct choices."""
    def integer(value, low, high):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    assert isinstance(state.time, str)
    assert isinstance(state.models, list) and all(isinstance(m, str) for m in state.models)
    assert len(set(state.models)) == len(state.models)
    assert integer(state.members, 1, 64) and integer(state.steps, 0, 1000)
    assert integer(state.seed, 0, 2**32 - 1) and integer(state.member, 0, 63)
    assert state.view in PRODUCTS and state.tab in TABS and state.channel in SEVIRI_CHANNELS
    assert state.threshold in THRESHOLD_CHOICES and not isinstance(state.threshold, bool)
    assert all(t in THRESHOLD_CHOICES and not isinstance(t, bool) for t in state.thresholds)
    assert len(set(state.thresholds)) == len(state.thresholds)
    assert isinstance(state.difference, bool) and isinstance(state.ensemble_model, str)
    assert state.rain_scale in RAIN_SCALES and state.layout in LAYOUTS and isinstance(state.focus, str)
    for box in (state.region, state.zoom):
        assert box == [] or (len(box) == 4 and all(math.isfinite(v) for v in box)
                             and box[0] < box[2] and box[1] < box[3])
    apply_query(CaseState(), query_values(state))  # and it travels in a link again


def assert_one_line_message(messages: Messages, query: dict[str, str], refused: list[str]) -> None:
    if not refused:
        assert "link" not in messages.items
        return
    text = messages.items["link"]
    assert len(text.splitlines()) == 1 and len(text) < 200 + 60 * len(refused)
    for item in refused:
        assert item.split("=", 1)[0] in query and item in text


@pytest.mark.parametrize("key", list(URL_PARAMETERS.values()))
@settings(max_examples=120, deadline=None)
@given(value=query_texts)
def test_any_value_of_each_parameter(key, value):
    state, messages = CaseState(), Messages()
    refused = apply_query(state, {key: value}, messages)
    event(f"{key}: {'refused with a message' if refused else 'accepted'}")
    assert_valid_state(state)
    assert_one_line_message(messages, {key: value}, refused)


@settings(max_examples=300, deadline=None)
@given(query=queries)
def test_any_query(query):
    state, messages = CaseState(), Messages()
    refused = apply_query(state, query, messages)
    event(f"{len(refused)} of {len(query)} values refused")
    assert_valid_state(state)
    assert_one_line_message(messages, query, refused)


@settings(max_examples=300, deadline=None)
@given(requested=query_texts)
def test_any_time_resolves_to_a_time_of_the_data(requested):
    time, problem = resolve_time(TIMES, requested)
    event("shown as asked" if problem is None else "nearest or middle shown, with a message")
    assert time in TIMES
    assert problem is None or (len(problem.splitlines()) == 1 and len(problem) < 250)


@pytest.mark.parametrize(("value", "refused"), [
    ("true", True), ("1e999", True), ("4", False),  # members
])
def test_booleans_and_infinities_are_not_numbers(value, refused):
    assert bool(apply_query(CaseState(), {"members": value})) is refused


def test_a_region_must_be_a_box():
    for bad in ("[0, 0, 0, 0]", "[1, 2, 3]", "[3, 0, 1, 2]", "[NaN, 0, 1, 2]", '["a", 0, 1, 2]'):
        assert apply_query(CaseState(), {"region": bad}) == [f"region={bad}"], bad
    state = CaseState()
    assert apply_query(state, {"region": "[0.0, 0.0, 1000.0, 2000.0]"}) == [] and state.region == [0, 0, 1000, 2000]


def test_presentation_layout_rain_levels_and_focus_travel_in_a_link():
    state = CaseState(models=["unet"], difference=True)
    query = layout_query(state, "presentation")
    assert "layout=presentation" in query and "diff=true" in query
    again = CaseState()
    values = {k: v[0] for k, v in parse_qs(query[1:]).items()}
    assert apply_query(again, {**values, "rain": "levels", "focus": "unet-radar"}) == []
    assert (again.layout, again.rain_scale, again.focus, again.models) == ("presentation", "levels", "unet-radar",
                                                                           ["unet"])
    assert apply_query(again, {"layout": "projector", "rain": "jet"}) == ["rain=jet", "layout=projector"]
    assert (again.layout, again.rain_scale) == ("presentation", "levels")  # refused values change nothing


@pytest.fixture(scope="module")
def session_settings(tmp_path_factory):
    """A small dataset (two channels, 23:30 .. 00:15) and an empty models folder."""
    import numpy as np

    from qpe.data.grid import OPERA_CRS, Grid
    from qpe.data.paired import make_paired_dataset

    root = tmp_path_factory.mktemp("links")
    grid = Grid(OPERA_CRS, 1_201_000.0, -2_901_000.0, 2000.0, 2000.0, 24, 16)
    rng = np.random.default_rng(0)
    times = pd.date_range("2021-06-01T23:30", periods=4, freq="15min")
    ds = make_paired_dataset(grid, times, ir=230 + 40 * rng.random((4, 2, *grid.shape)),
                             channels=["WV_062", "IR_108"], rain=rng.gamma(0.5, 2.0, (4, *grid.shape)))
    (root / "models").mkdir()
    return DashboardSettings(str(save_paired(ds, root / "case.zarr")), root / "models", root / "cache")


@settings(max_examples=40, deadline=None)
@given(query=queries)
def test_a_session_opened_from_any_link(session_settings, query):
    """As in the app: the link is applied, then the case and model pickers are built on the session."""
    session = DashboardSession(session_settings)
    refused = apply_query(session.state, query, session.messages)
    CasePicker(session)
    ModelPicker(session)
    state = session.state
    assert_valid_state(state)
    assert state.timestamp in session.times and state.channel in session.channels and state.models == []
    assert all(len(text.splitlines()) == 1 for text in session.messages.items.values())
    event(f"{len(refused)} refused, {len(session.messages.items)} message(s)")
