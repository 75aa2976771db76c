"""``qpe data list`` and ``qpe data build NAME``: the datasets of the catalog (``data/catalog.yaml``).

``qpe data build --out X.zarr --start ... --end ...`` (no name) builds a paired archive of a period
instead (:mod:`qpe.cli.data_build`).
"""

from __future__ import annotations

import argparse

from qpe.cli.data_build import add_arguments, is_archive_build
from qpe.cli.data_build import run as run_archive


def register(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("list", help="list the catalog's datasets and whether they are built")
    listing.add_argument("--catalog", help="catalog file (default data/catalog.yaml or $QPE_CATALOG)")
    listing.set_defaults(func=run_list)
    build = commands.add_parser(
        "build", help="(re)build a catalog dataset from its committed settings, or an archive of a period",
        description="qpe data build NAME (re)builds a catalog dataset; qpe data build --out X.zarr --start ... "
                    "--end ... (or --month YYYY-MM) builds a resumable paired archive of a period.")
    build.add_argument("name", nargs="?", help="catalog name, e.g. demo")
    build.add_argument("--catalog", help="catalog file (default data/catalog.yaml or $QPE_CATALOG)")
    add_arguments(build)
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
    from qpe.errors import InputError

    if args.name is None:
        return run_archive(args)
    if is_archive_build(args):
        raise InputError(f"give a catalog name ({args.name}) or the options of an archive (--out, --start, "
                         "--end, ...), not both")

    entry = get_entry(args.name, args.catalog)
    path = build_dataset(entry, progress=True)
    times = summarize(open_paired(path))["times"]
    print(f"built {entry.name}: {path} ({times['count']} times, {times['first']} .. {times['last']} UTC)")
    return 0
