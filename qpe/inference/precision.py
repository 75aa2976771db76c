"""Precision of the network passes, by name: the one table the engine and the command line read.

No torch here, so that ``qpe --help`` lists the choices without importing it.
"""

from __future__ import annotations

from qpe.errors import InputError

#: The autocast dtype (a ``torch`` attribute name; None: float32, no autocast) each precision gives on each
#: device type. ``auto`` is bf16 on a GPU and float32 on a CPU; ``bfloat16`` on a CPU is opt-in: it is
#: about 2x faster where the CPU has bf16 matrix units (AMX, AVX512-BF16) but changes the numbers by up to
#: a few tenths of a mm/h (docs/performance.md).
PRECISIONS: dict[str, dict[str, str | None]] = {
    "auto": {"cuda": "bfloat16", "cpu": None},
    "float32": {"cuda": None, "cpu": None},
    "bfloat16": {"cuda": "bfloat16", "cpu": "bfloat16"},
}


def check_precision(precision: str) -> None:
    """Raise one clear error unless ``precision`` is a name of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
