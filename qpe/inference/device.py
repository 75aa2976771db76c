"""Choosing the compute device and sharing a GPU between concurrent users of one process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

from qpe.errors import InputError

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


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on CPU (float32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
