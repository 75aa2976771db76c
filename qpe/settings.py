"""Reading settings files: the one place where qpe parses YAML written by people."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from qpe.errors import InputError


def read_yaml_mapping(path: str | os.PathLike, what: str, *, empty_ok: bool = False) -> dict:
    """The mapping a YAML file holds, parsed as plain data (``yaml.safe_load``: no Python objects).

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is, for the message (e.g. ``"training config"``).
    empty_ok : bool
        An empty file is an empty mapping rather than an error.

    Raises
    ------
    InputError
        The file cannot be read, is not valid YAML, or does not hold a mapping: one line saying which.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"cannot read {what} {path}: it is not a text file (UTF-8)") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path} is not valid YAML: {_yaml_problem(err)}") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a mapping of {what} settings")
    return data


def _yaml_problem(err: yaml.YAMLError) -> str:
    """What the parser found wrong and where (1-based line and column), on one line."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())
