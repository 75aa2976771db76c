"""``qpe demo``: build the embedded demo data (if needed) and open the dashboard on it."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="build the demo dataset and open the dashboard on it",
        description="Build the synthetic demo dataset of the catalog (data/demo/demo.zarr, once) and open "
        "the dashboard on it with the demo checkpoints of models/demo.",
    )
    p.add_argument("--port", type=int, default=5006, help="dashboard port (default 5006)")
    p.add_argument("--no-browser", action="store_true", help="serve without opening a browser")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dashboard
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
    dashboard.serve(path, models, port=args.port, show=not args.no_browser)
    return 0
