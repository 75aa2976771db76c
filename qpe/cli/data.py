"""``qpe data ...``: build, convert and inspect paired datasets.

Each data sub-command lives in its own module ``qpe.cli.data_<name>`` exposing ``register(commands)``.
Every one of them shows warnings (a skipped input file, rain in a suspect unit) as one line each,
``qpe: warning: ...`` on stderr, once per message.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import sys
import warnings
from collections.abc import Callable, Iterator

#: Modules ``qpe.cli.data_<name>`` that add ``qpe data`` sub-commands, in help order.
DATA_COMMANDS = ("info", "catalog", "radar", "crr", "seviri", "pair", "synth")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build, convert and inspect paired IR/radar datasets")
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    for name in DATA_COMMANDS:
        importlib.import_module(f"qpe.cli.data_{name}").register(commands)
    for parser in commands.choices.values():
        parser.set_defaults(func=with_warning_lines(parser.get_default("func")))


@contextlib.contextmanager
def warning_lines() -> Iterator[None]:
    """Within this block, each distinct warning is printed once as ``qpe: warning: <message>``."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"qpe: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():  # also forgets which warnings were shown before, so each shows again
        warnings.showwarning = show
        yield


def with_warning_lines(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with its warnings shown by :func:`warning_lines`."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        with warning_lines():
            return run(args)

    return wrapped
