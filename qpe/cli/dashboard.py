"""``qpe dashboard``: serve the Panel dashboard on a dataset and a folder of checkpoints."""

from __future__ import annotations

import argparse


def add_server_options(p: argparse.ArgumentParser) -> None:
    """``--port``, ``--address``, ``--allow-websocket-origin``, ``--no-browser`` (shared with ``qpe demo``)."""
    p.add_argument("--port", type=int, default=5006, help="HTTP port, 1..65535 (default 5006)")
    p.add_argument("--address", default=None,
                   help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves the "
                   "network, see docs/security.md)")
    p.add_argument("--allow-websocket-origin", action="append", default=[], metavar="NAME[:PORT]",
                   help="a host name users type to reach the dashboard, besides localhost and 127.0.0.1 "
                   "(repeatable; requests for other names are refused with HTTP 403)")
    p.add_argument("--no-browser", action="store_true", help="serve without opening a browser tab")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="open the web dashboard (maps, scores, ensembles) on a dataset",
        description="Serve the Panel dashboard: pick a case, estimate it with the checkpoints found under "
        "--models, and compare every model with radar on maps and pysteps scores. It listens on "
        "127.0.0.1 unless --address says otherwise. Also: panel serve dashboard/app.py --args --data PATH "
        "--models DIR (without the host check).",
    )
    p.add_argument("--data", default="demo",
                   help="paired dataset (.zarr/.nc) or catalog name (default: demo, built when missing)")
    p.add_argument("--models", default=None, help="folder searched for checkpoints (default: models/)")
    p.add_argument("--cache-dir", default=None, help="estimate cache (default $QPE_CACHE_DIR or ~/.cache/qpe)")
    add_server_options(p)
    p.set_defaults(func=run)


def server_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`dashboard.serve` given by :func:`add_server_options`."""
    address = {"address": args.address} if args.address is not None else {}  # default: dashboard.serve's
    return {"port": args.port, "allow_websocket_origin": args.allow_websocket_origin, **address}


def run(args: argparse.Namespace) -> int:
    import dashboard

    dashboard.serve(args.data, args.models, show=not args.no_browser, cache_dir=args.cache_dir,
                    **server_options(args))
    return 0
