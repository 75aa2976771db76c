"""``qpe data list`` and ``qpe data build NAME``: the datasets of the catalog (``data/catalog.yaml``)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("list", help="list the catalog's datasets and whether they are built")
    listing.add_argument("--catalog", help="catalog file (default data/catalog.yaml or $QPE_CATALOG)")
    listing.set_defaults(func=run_list)
    build = commands.add_parser("build", help="(re)build a catalog dataset from its committed settings")
    build.add_argument("name", help="catalog name, e.g. demo")
    build.add_argument("--catalog", help="catalog file (default data/catalog.yaml or $QPE_CATALOG)")
    build.set_defaults(func=run_build)


def run_list(args: argparse.Namespace) -> int:
    from qpe.data.catalog import read_catalog

    for entry in read_catalog(args.catalog).values():
        state = "built" if entry.exists else "not built"
        print(f"{entry.name:22s} {state:10s} {entry.path}\n{'':22s} {entry.description}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from qpe.data.catalog import build_dataset, get_entry
    from qpe.data.paired import open_paired, summarize

    entry = get_entry(args.name, args.catalog)
    path = build_dataset(entry, progress=True)
    times = summarize(open_paired(path))["times"]
    print(f"built {entry.name}: {path} ({times['count']} times, {times['first']} .. {times['last']} UTC)")
    return 0
