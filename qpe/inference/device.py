"""Choosing the compute device and sharing a GPU between concurrent users of one process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

from qpe.errors import InputError
from qpe.inference.precision import PRECISIONS, check_precision

_GPU_LOCKS: dict[str, threading.Lock] = {}
_GPU_LOCKS_GUARD = threading.Lock()


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:N"`` as given.

    Raises
    ------
    InputError
        CUDA asked for on a machine without it, or an unknown device name.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {name!r}; use auto, cpu or cuda")
    return device


@contextlib.contextmanager
def exclusive(device: torch.device) -> Iterator[None]:
    """Serialise work on one GPU across threads (dashboard sessions share one process).

    CPU work is not serialised.
    """
    if device.type != "cuda":
        yield
        return
    with _GPU_LOCKS_GUARD:
        lock = _GPU_LOCKS.setdefault(str(device), threading.Lock())
    with lock:
        yield


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: float32)."""
    check_precision(precision)
    name = PRECISIONS[precision][device.type]
    return None if name is None else getattr(torch, name)


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """Autocast to the dtype of ``precision`` on ``device`` (:data:`PRECISIONS`); nothing for float32.

    The default, ``"auto"``, is bf16 autocast on CUDA and nothing (float32) on the CPU.
    """
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
