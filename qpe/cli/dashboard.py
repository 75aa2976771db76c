"""``qpe dashboard``: serve the Panel dashboard on a dataset and a folder of checkpoints."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dashboard", help="open the web dashboard (maps, scores, ensembles) on a dataset",
        description="Serve the Panel dashboard: pick a case, estimate it with the checkpoints found under "
        "--models, and compare every model with radar on maps and pysteps scores. Also: "
        "panel serve dashboard/app.py --args --data PATH --models DIR.",
    )
    p.add_argument("--data", default="demo",
                   help="paired dataset (.zarr/.nc) or catalog name (default: demo, built when missing)")
    p.add_argument("--models", default=None, help="folder searched for checkpoints (default: models/)")
    p.add_argument("--port", type=int, default=5006, help="HTTP port (default 5006)")
    p.add_argument("--cache-dir", default=None, help="estimate cache (default $QPE_CACHE_DIR or ~/.cache/qpe)")
    p.add_argument("--no-browser", action="store_true", help="serve without opening a browser tab")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dashboard

    dashboard.serve(args.data, args.models, port=args.port, show=not args.no_browser, cache_dir=args.cache_dir)
    return 0
