"""Settings as plain data: the one place where qpe parses YAML written by people, builds its settings
dataclasses from it strictly (:func:`from_mapping`) and turns them back into plain data (:func:`plain`).

Every config of qpe (training, study, synthetic data, scores, model cards) is a frozen dataclass; what a
file holds is checked key by key, so a misspelt setting is one clear error instead of a silent default.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from qpe.errors import InputError, QpeError

T = TypeVar("T")


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


def plain(value: Any) -> Any:
    """``value`` as YAML-safe plain data, recursively: dataclasses and mappings -> dicts, tuples -> lists,
    paths -> strings, numpy / torch scalars -> numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def _union_members(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(hint) if a is not type(None))
    return (hint,)


def from_mapping(cls: type[T], data: Any, where: str, *, error: type[QpeError] = InputError) -> T:
    """Build the settings dataclass ``cls`` from plain data (parsed YAML), strictly.

    Unknown keys, a section that is not a mapping, a list setting that is not a list and arguments the
    dataclass refuses are each one ``error`` line naming ``where``. Fields typed as a dataclass (or
    ``Dataclass | None``) are built from their mapping the same way; lists become tuples.

    Parameters
    ----------
    cls : type
        A dataclass.
    data : any
        What the file holds for it.
    where : str
        What it is, for messages (e.g. ``"optim"``: "unknown optim settings ...").
    error : type
        The :class:`~qpe.errors.QpeError` raised (a model card raises ``CheckpointError``).
    """
    if not isinstance(data, Mapping):
        raise error(f"{where} settings must be a mapping, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(str(k) for k in set(data) - set(names))
    if unknown:
        raise error(f"unknown {where} settings {', '.join(unknown)}; known: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        kinds = _union_members(hints[key])
        section = next((k for k in kinds if dataclasses.is_dataclass(k)), None)
        if section is not None and value is not None:
            value = from_mapping(section, value, str(key), error=error)
        elif any(typing.get_origin(k) is tuple or k is tuple for k in kinds) and value is not None:
            if not isinstance(value, (list, tuple)):
                raise error(f"{where} setting {key!r} must be a list, got {value!r}")
            value = tuple(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise error(f"{where}: a setting has the wrong type ({err})") from None

