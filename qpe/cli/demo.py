"""``qpe demo``: build the embedded demo data (if needed) and show what to do with it."""

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
    from qpe.data.catalog import REPO_ROOT, ensure_dataset
    from qpe.data.paired import open_paired, summarize
    from qpe.models import find_checkpoints

    path = ensure_dataset("demo", progress=True)
    times = summarize(open_paired(path))["times"]
    models = REPO_ROOT / "models" / "demo"
    found = find_checkpoints(models) if models.is_dir() else []
    print(f"demo data: {path} ({times['count']} times, {times['first']} .. {times['last']} UTC)")
    print(f"demo checkpoints: {', '.join(c.name for c in found) or 'none yet'} ({models})")
    print(f"next: qpe data info {path}")
    return 0
