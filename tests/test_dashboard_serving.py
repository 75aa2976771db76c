"""How ``qpe dashboard`` is served: loopback by default, a Host check, one-line errors for bad options.

A real ``qpe dashboard`` runs in a child process on a small dataset. The Host check is probed with
raw HTTP requests (a page, a static file, a websocket upgrade) whose ``Host`` and ``Origin`` headers
are those of a DNS-rebinding page (``evil.example:<port>``) or of the machine itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest
from dashboard_testing import make_dataset

from dashboard.model_picker import EstimateRunner
from dashboard.serving import allowed_hosts, check_port, host_allowed
from dashboard.session import DashboardSession, DashboardSettings
from qpe.errors import InputError

REPO = Path(__file__).resolve().parents[1]
EVIL = "evil.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Dashboard:
    port: int
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serving")
    (root / "models").mkdir()
    return make_dataset(root / "data.zarr")


def qpe(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``python -m qpe ARGS`` in a child process; its exit status and output."""
    return subprocess.run([sys.executable, "-m", "qpe", *args], check=False, cwd=REPO, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "OMP_NUM_THREADS": "1"}, **kwargs)


def start_dashboard(data: Path, root: Path, *options: str) -> Dashboard:
    """``qpe dashboard`` on ``data`` (no checkpoints), serving once its page answers on 127.0.0.1."""
    port = free_port()
    log = root / f"dashboard_{port}.log"
    command = [sys.executable, "-m", "qpe", "dashboard", "--data", str(data), "--models", str(root / "models"),
               "--cache-dir", str(root / "cache"), "--no-browser", "--port", str(port), *options]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    for _ in range(240):
        if process.poll() is not None:
            pytest.fail(f"qpe dashboard exited: {log.read_text()[-2000:]}")
        if http_status(port, f"127.0.0.1:{port}") == 200:
            return Dashboard(port, process, log)
        time.sleep(0.5)
    stop(Dashboard(port, process, log))
    pytest.fail(f"qpe dashboard did not answer: {log.read_text()[-2000:]}")


def stop(dashboard: Dashboard) -> None:
    dashboard.process.terminate()
    dashboard.process.wait(timeout=30)


@pytest.fixture(scope="module")
def served(data):
    """``qpe dashboard`` with its default address and host names."""
    dashboard = start_dashboard(data, data.parent)
    yield dashboard
    stop(dashboard)


def raw_request(port: int, lines: list[str], address: str = "127.0.0.1") -> bytes:
    """Send an HTTP request (its header lines) and return the response's first bytes."""
    with socket.create_connection((address, port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return conn.recv(4096)


def http_status(port: int, host: str, path: str = "/") -> int | None:
    """Status of ``GET path`` sent to 127.0.0.1:port with ``Host: host`` (None when nothing answers)."""
    try:
        reply = raw_request(port, [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"])
    except OSError:
        return None
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else None


def websocket_status(port: int, host: str, origin: str) -> int:
    """Status of a websocket upgrade of the app's ``/ws`` with these ``Host`` and ``Origin`` headers."""
    reply = raw_request(port, [
        "GET /ws HTTP/1.1", f"Host: {host}", f"Origin: {origin}", "Connection: Upgrade", "Upgrade: websocket",
        "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ])
    return int(reply.split(b" ", 2)[1])


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.0.0.0/8."""
    return [a.address for addresses in psutil.net_if_addrs().values() for a in addresses
            if a.family == socket.AF_INET and not a.address.startswith("127.")]


# -- bind address ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_default_server_listens_on_loopback_only(served):
    listening = [c.laddr for c in psutil.Process(served.process.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == served.port]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    for address in non_loopback_addresses():  # reachable from the machine itself, not from its network
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, served.port), timeout=5).close()
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/", timeout=30) as response:
        assert response.status == 200 and b"<title>qpe" in response.read()


# -- host check -------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("path", ["/", "/static/js/bokeh.min.js", "/favicon.ico"])
def test_a_rebound_host_name_is_refused(served, path):
    port = served.port
    assert http_status(port, f"{EVIL}:{port}", path) == 403
    assert http_status(port, f"localhost:{port}", path) == 200
    assert http_status(port, f"127.0.0.1:{port}", path) == 200


@pytest.mark.slow
def test_the_refusal_says_why_and_shows_nothing_of_the_app(served):
    reply = raw_request(served.port, ["GET / HTTP/1.1", f"Host: {EVIL}:{served.port}", "Connection: close"])
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403") and b"text/plain" in head
    assert b"not served under this host name" in body and b"bokeh" not in body.lower()


@pytest.mark.slow
def test_a_rebound_websocket_is_refused(served):
    port = served.port
    assert websocket_status(port, f"{EVIL}:{port}", f"http://{EVIL}:{port}") == 403  # same-origin rebinding
    assert websocket_status(port, f"{EVIL}:{port}", f"http://localhost:{port}") == 403
    assert websocket_status(port, f"localhost:{port}", f"http://localhost:{port}") == 101
    assert websocket_status(port, f"localhost:{port}", f"http://{EVIL}:{port}") == 403  # Bokeh's origin check


@pytest.mark.slow
def test_a_name_given_with_allow_websocket_origin_is_served(data):
    dashboard = start_dashboard(data, data.parent, "--allow-websocket-origin", "team.example")
    try:
        port = dashboard.port
        assert http_status(port, "team.example") == 200  # no port: 80, as a browser behind a proxy sends it
        assert http_status(port, f"team.example:{port}") == 403 and http_status(port, f"{EVIL}:{port}") == 403
        assert websocket_status(port, "team.example", "http://team.example") == 101
        assert http_status(port, f"localhost:{port}") == 200
    finally:
        stop(dashboard)
    assert "answering the host names localhost:" in dashboard.log.read_text()


def test_allowed_hosts_and_the_check():
    assert allowed_hosts(5006) == ["localhost:5006", "127.0.0.1:5006"]
    assert allowed_hosts(5006, ["team.example", "localhost:5006"]) == [
        "localhost:5006", "127.0.0.1:5006", "team.example:80"]
    allowed = allowed_hosts(8080, ["*.example.org:443"])
    assert host_allowed("LOCALHOST:8080", allowed) and host_allowed("qpe.example.org:443", allowed)
    for host in ("", "localhost", "localhost:8081", f"{EVIL}:8080", "127.0.0.2:8080", "localhost:8080.evil"):
        assert not host_allowed(host, allowed), host
    with pytest.raises(InputError, match="Invalid host value"):
        allowed_hosts(5006, ["a:b:c"])


# -- one-line errors ----------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["dashboard", "--port", "-1"], ["dashboard", "--port", "0"], ["dashboard", "--port", "65536"],
    ["demo", "--port", "99999"], ["demo", "--port", "-1"],
    ["dashboard", "--address", "nonsense.invalid"], ["dashboard", "--allow-websocket-origin", "a:b:c"],
    ["demo", "--allow-websocket-origin", ":80"],
])
def test_bad_server_options_fail_with_one_line(data, args):
    result = qpe(*args, "--data", str(data), "--no-browser") if args[0] == "dashboard" else qpe(*args, "--no-browser")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qpe: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_a_port_in_use_fails_with_one_line(data):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = qpe("dashboard", "--data", str(data), "--no-browser", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == f"qpe: error: port {port} is already in use on 127.0.0.1 (another dashboard?): " \
                                    "choose another with --port"
    assert "Traceback" not in result.stdout


def test_check_port():
    assert check_port(1) == 1 and check_port(65535) == 65535
    for port in (-1, 0, 65536, 99999):
        with pytest.raises(InputError, match=f"--port {port} is not a TCP port"):
            check_port(port)


# -- a closed tab -----------------------------------------------------------------------------------------------
@pytest.fixture
def session(data):
    return DashboardSession(DashboardSettings(str(data), data.parent / "models", data.parent / "cache"))


@pytest.mark.parametrize("closed", [True, False])
def test_an_estimate_ending_after_its_tab_closed_updates_no_view(session, closed):
    """The estimate's result is dropped for a gone session: no message, no progress, no redraw."""
    runner = EstimateRunner(session)
    revisions = []
    session.param.watch(lambda event: revisions.append(event.new), "revision")

    def compute(model: str, time: pd.Timestamp) -> Exception:
        if closed:
            session.close()  # the browser tab closes while the estimate runs
        return InputError("the data lack a channel")

    runner._compute = compute
    asyncio.run(runner.run(["unet"], [session.times[3]]))
    if closed:
        assert revisions == [] and session.messages.items == {} and session.failures == {}
        assert runner.progress.value == 0 and "estimating unet" in runner.status.object
    else:
        assert revisions and "the data lack a channel" in session.messages.items["estimate:unet"]
        assert runner.progress.value == runner.progress.max and not runner.progress.visible
