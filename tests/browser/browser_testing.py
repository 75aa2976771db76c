"""What the browser tests share: Debian's Chromium, how it is launched, free ports, where screenshots go,
and a ``panel serve`` of the app on given data and models."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: How long a page may take to show what a test waits for, ms (a 2-core machine estimating models).
WAIT_MS = 45_000


def require_chromium() -> None:
    """Skip, with the reason, where Debian's Chromium is absent (a user's machine without it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(command: list[str], url: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server process (from the repository, one torch thread, the repository on the path), its
    output to ``log``, and wait until ``url`` answers 200; fails the test when it exits or never answers."""
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(240):
        if process.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.terminate()
    pytest.fail(f"server did not answer: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def served_dashboard(root: Path, data: Path, models: Path) -> Iterator[tuple[str, Path]]:
    """``panel serve dashboard/app.py`` on ``data`` and ``models`` (cache and log under ``root``), on
    loopback at a free port; yields the app's URL and the server's log, and stops the server on exit."""
    port = free_port()
    log = root / "panel.log"
    command = [sys.executable, "-m", "panel", "serve", "dashboard/app.py", "--port", str(port),
               "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
               "--args", "--data", str(data), "--models", str(models), "--cache-dir", str(root / "cache")]
    url = f"http://127.0.0.1:{port}/app"
    process = start_server(command, url, log, env={"QPE_CACHE_DIR": str(root / "cache")})
    try:
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=30)
