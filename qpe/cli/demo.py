"""``qpe demo``: build the embedded demo data (if needed) and open the dashboard on it."""

from __future__ import annotations

import argparse
import socket
import threading
import time
import webbrowser

from qpe.cli.dashboard import add_server_options, server_options

#: The case the demo opens on: a rainy time of the held-out last hours of the demo data, with the
#: deterministic U-Net and the residual flow (the study's two main contenders).
DEMO_TIME = "2021-06-02T21:00"
DEMO_MODELS = ("unet", "flow_residual")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="build the demo dataset and open the dashboard on it",
        description="Build the synthetic demo dataset of the catalog (data/demo/demo.zarr, once) and open "
        "the dashboard on it with the demo checkpoints of models/demo.",
    )
    add_server_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dashboard.serving import LOOPBACK, check_server_options

    check_server_options(args.address or LOOPBACK, args.port, args.allow_websocket_origin)  # before imports

    import dashboard
    from dashboard.sharing import share_query
    from dashboard.state import CaseState
    from qpe.data.catalog import REPO_ROOT, ensure_dataset
    from qpe.data.paired import open_paired, summarize
    from qpe.models import find_checkpoints

    path = ensure_dataset("demo", progress=True)
    times = summarize(open_paired(path))["times"]
    models = REPO_ROOT / "models" / "demo"
    found = [c for c in find_checkpoints(models) if c.card is not None] if models.is_dir() else []
    print(f"demo data: {path} ({times['count']} times, {times['first']} .. {times['last']} UTC)")
    print(f"demo checkpoints: {', '.join(c.name for c in found) or 'none yet (the dashboard says how to add some)'}"
          f" ({models})")
    shown = [name for name in DEMO_MODELS if name in {c.path.name for c in found}]
    link = f"http://localhost:{args.port}/" + share_query(CaseState(time=DEMO_TIME, models=shown, members=4))
    print(f"demo case (U-Net and residual flow at {DEMO_TIME} UTC): {link}")
    if not args.no_browser:
        threading.Thread(target=_open_when_listening, args=(link, args.port), daemon=True).start()
    dashboard.serve(path, models, show=False, **server_options(args))
    return 0


def _open_when_listening(link: str, port: int, timeout_s: float = 60.0) -> None:
    """Open ``link`` in the browser as soon as the dashboard accepts connections on ``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("localhost", port), timeout=1.0):
                webbrowser.open(link)
                return
        except OSError:
            time.sleep(0.2)
