"""The ``qpe`` command line: thin wrappers over the library.

Each sub-command lives in a module of this package that exposes ``register(subparsers)``; heavy
imports (torch, panel) happen inside the command so that ``qpe --help`` stays instant. Errors a user
can fix (:class:`qpe.errors.QpeError`) are printed as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from qpe import __version__
from qpe.errors import QpeError

#: Modules of this package that add a sub-command, in the order ``qpe --help`` lists them.
COMMAND_MODULES = ("demo", "data", "train", "estimate", "frames", "evaluate", "study", "dashboard")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (members, steps, workers...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``qpe`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="qpe",
        description="Rain-rate estimation from SEVIRI infrared images, and its verification against radar.",
    )
    parser.add_argument("--version", action="version", version=f"qpe {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"qpe.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except QpeError as err:
        print(f"qpe: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qpe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
