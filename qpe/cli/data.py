"""``qpe data ...``: build, convert and inspect paired datasets.

Each data sub-command lives in its own module ``qpe.cli.data_<name>`` exposing ``register(commands)``.
"""

from __future__ import annotations

import argparse
import importlib

#: Modules ``qpe.cli.data_<name>`` that add ``qpe data`` sub-commands, in help order.
DATA_COMMANDS = ("info", "catalog", "radar", "crr", "seviri", "pair", "synth")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build, convert and inspect paired IR/radar datasets")
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    for name in DATA_COMMANDS:
        importlib.import_module(f"qpe.cli.data_{name}").register(commands)
