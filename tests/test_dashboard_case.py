"""Dashboard case handling without a browser: dates and times with data, stepping, messages, the URL."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

from dashboard.case_picker import CasePicker, dates_with_data, resolve_time, times_on
from dashboard.session import DashboardSession, DashboardSettings, Messages
from dashboard.sharing import URL_PARAMETERS, apply_query, query_values, share_query
from dashboard.state import CaseState
from qpe.cli import main
from qpe.data.paired import save_paired

TIMES = pd.date_range("2021-06-01T23:00", periods=6, freq="15min")  # 23:00 .. 00:15, two dates


@pytest.fixture
def session(tmp_path, small_paired):
    """A session on a small dataset spanning two dates, with an empty models folder."""
    ds = small_paired.assign_coords(time=pd.date_range("2021-06-01T23:30", periods=4, freq="15min"))
    path = save_paired(ds, tmp_path / "case.zarr")
    (tmp_path / "models").mkdir()
    return DashboardSession(DashboardSettings(str(path), tmp_path / "models", tmp_path / "cache"))


def test_dates_and_times_of_the_data():
    assert dates_with_data(TIMES) == [dt.date(2021, 6, 1), dt.date(2021, 6, 2)]
    assert list(times_on(TIMES, dt.date(2021, 6, 2))) == list(TIMES[4:])


@pytest.mark.parametrize(
    ("requested", "shown", "message"),
    [
        ("2021-06-01T23:30", "2021-06-01T23:30", None),
        ("", "2021-06-01T23:45", None),  # the middle of the data
        ("2021-06-01T23:40", "2021-06-01T23:45", "No data at 2021-06-01T23:40"),
        ("2021-07-01T00:00", "2021-06-02T00:15", "No data on 2021-07-01"),
        ("yesterday", "2021-06-01T23:45", "'yesterday' is not a date"),
    ],
)
def test_resolve_time(requested, shown, message):
    time, problem = resolve_time(TIMES, requested)
    assert time == pd.Timestamp(shown)
    if message is None:
        assert problem is None
    else:
        assert message in problem and "2021-06-01T23:00 .. 2021-06-02T00:15" in problem


def test_case_picker_steps_within_the_data(session):
    picker = CasePicker(session)
    state = session.state
    state.time = "2021-06-01T23:30"
    assert picker.previous.disabled and not picker.next.disabled
    picker.step(1)
    assert state.time == "2021-06-01T23:45"
    picker.step(5)
    assert state.time == "2021-06-02T00:15" and picker.next.disabled
    assert picker.date.value == dt.date(2021, 6, 2) and picker.time_of_day.value == "00:15"
    assert picker.time_of_day.options == ["00:00", "00:15"]


def test_picking_a_date_keeps_the_time_of_day_when_it_exists(session):
    picker = CasePicker(session)
    session.state.time = "2021-06-02T00:15"
    picker.date.value = dt.date(2021, 6, 1)  # 00:15 does not exist on June 1: first time of that date
    assert session.state.time == "2021-06-01T23:30"
    picker.time_of_day.value = "23:45"
    assert session.state.time == "2021-06-01T23:45"
    picker.player.value = 3
    assert session.state.time == "2021-06-02T00:15"


def test_a_date_without_data_is_refused_with_a_message(session):
    picker = CasePicker(session)
    session.state.time = "2021-06-01T23:45"
    picker.date.value = dt.date(2021, 6, 5)
    assert session.state.time == "2021-06-01T23:45"
    assert "No data on 2021-06-05" in session.messages.items["case"]
    assert picker.date.value == dt.date(2021, 6, 1)
    picker.step(1)  # a good case clears the message
    assert "case" not in session.messages.items


def test_a_link_to_a_time_without_data_shows_the_nearest_and_says_so(session):
    session.state.time = "2021-07-01T00:00"
    CasePicker(session)
    assert session.state.time == "2021-06-02T00:15"
    assert "No data on 2021-07-01" in session.messages.items["case"]


def test_url_round_trip_restores_every_parameter():
    state = CaseState(time="2021-06-01T23:45", models=["unet", "demo/flow"], members=8, steps=4, seed=3,
                      precision="bfloat16", view="probability", member=2, threshold=5.0, thresholds=[1.0, 2.0], channel="WV_062",
                      difference=True, region=[1.0e6, -3.1e6, 1.2e6, -2.9e6], ensemble_model="demo/flow",
                      tab="scores")
    query = query_values(state)
    assert set(query) == set(URL_PARAMETERS.values())
    restored = CaseState()
    assert apply_query(restored, query) == []
    for name in URL_PARAMETERS:
        assert getattr(restored, name) == getattr(state, name), name
    assert share_query(state).startswith("?time=2021-06-01T23%3A45&models=")


def test_unusable_link_values_keep_defaults_and_are_reported():
    state, messages = CaseState(), Messages()
    refused = apply_query(state, {"members": "many", "view": "sideways", "threshold": "1.0",
                                  "precision": "float16"}, messages)
    assert refused == ["members=many", "precision=float16", "view=sideways"]
    assert state.members == 4 and state.view == "mean" and state.threshold == 1.0 and state.precision == "auto"
    assert "members=many" in messages.items["link"]


def test_session_without_checkpoints(session):
    assert session.registry.keys == []
    assert session.channels == ["WV_062", "IR_108"] and session.state.channel == "IR_108"


def test_dashboard_command_fails_cleanly_on_missing_data(tmp_path, capsys):
    assert main(["dashboard", "--data", str(tmp_path / "none.zarr"), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.zarr not found" in err[0]


def test_dashboard_command_is_registered(capsys):
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    for option in ("--data", "--models", "--port", "--no-browser", "--cache-dir"):
        assert option in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_qpe_demo_builds_the_data_and_serves_the_dashboard(tmp_path):
    """``qpe demo`` on a catalog whose demo entry is small: the data appear and the page is served."""
    (tmp_path / "data").mkdir()
    catalog = tmp_path / "data" / "catalog.yaml"
    catalog.write_text(
        "format: qpe-data-catalog\nversion: 1\ndatasets:\n  demo:\n    path: data/demo.zarr\n"
        "    synth: {hours: 1, size: 48, seed: 1}\n"
    )
    port = _free_port()
    env = {**os.environ, "QPE_CATALOG": str(catalog), "QPE_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-m", "qpe", "demo", "--no-browser", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status = None
        for _ in range(240):
            if process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, f"qpe demo did not serve: {process.poll()=}"
        assert (tmp_path / "data" / "demo.zarr").is_dir()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "demo data:" in output and "4 times" in output and f"http://localhost:{port}/" in output
    # the link of the demo case: the U-Net and the residual flow (the committed demo checkpoints)
    assert f"http://localhost:{port}/?time=2021-06-02T21%3A00&models=%5B%22unet%22%2C+%22flow_residual%22%5D" in output
