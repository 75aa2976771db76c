"""What the browser tests share: Debian's Chromium, how it is launched, free ports, where screenshots go."""

from __future__ import annotations

import socket
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
