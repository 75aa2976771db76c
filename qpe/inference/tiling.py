"""Overlapping tiles over a large grid, blended back with tapered weights.

A field of H x W pixels is cut into tiles of ``size`` x ``size`` that overlap by ``overlap`` pixels.
Each tile's prediction is weighted by a separable ramp that rises linearly over the overlap (but not
at the outer edges of the field), so that the blended field has no visible seams and every pixel's
weights sum to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qpe.errors import InputError


@dataclass(frozen=True)
class Tile:
    """One tile: ``rows``/``cols`` are slices into the full field."""

    rows: slice
    cols: slice


def _starts(n: int, size: int, overlap: int) -> list[int]:
    if n <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, n - size, stride))
    starts.append(n - size)
    return starts


def check_tiling(size: int, overlap: int) -> None:
    """Raise one clear error unless tiles of ``size`` pixels can overlap by ``overlap`` pixels."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise InputError(f"tile side must be an integer of at least 8 pixels, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InputError(f"tile overlap must be a non-negative integer of pixels, got {overlap!r}")
    if overlap >= size // 2:
        raise InputError(f"a tile of {size} pixels is too small for the overlap of {overlap} pixels between "
                         f"tiles (a tile must be more than twice its overlap): use tiles of at least "
                         f"{2 * overlap + 2} pixels")


def plan_tiles(shape: tuple[int, int], size: int, overlap: int) -> list[Tile]:
    """Tiles of at most ``size`` pixels covering a field of ``shape = (H, W)``.

    Parameters
    ----------
    shape : tuple of int
        (H, W) of the field, pixels.
    size : int
        Tile side, pixels. Fields smaller than a tile give one tile of the field's size.
    overlap : int
        Overlap between neighbouring tiles, pixels (``0 <= overlap < size // 2``).
    """
    check_tiling(size, overlap)
    h, w = shape
    return [
        Tile(slice(r, min(r + size, h)), slice(c, min(c + size, w)))
        for r in _starts(h, size, overlap)
        for c in _starts(w, size, overlap)
    ]


def _ramp(start: int, stop: int, n: int, overlap: int) -> np.ndarray:
    """1-D weights of a tile spanning [start, stop) of an axis of length n."""
    length = stop - start
    w = np.ones(length, dtype="float32")
    if overlap == 0:
        return w
    i = np.arange(length, dtype="float32")
    rise = (i + 0.5) / overlap
    fall = (length - i - 0.5) / overlap
    if start > 0:
        w = np.minimum(w, rise)
    if stop < n:
        w = np.minimum(w, fall)
    return w


def tile_weights(tile: Tile, shape: tuple[int, int], overlap: int) -> np.ndarray:
    """Blending weights (h, w) of one tile; summed over all tiles of a plan they give > 0 everywhere."""
    h, w = shape
    wr = _ramp(tile.rows.start, tile.rows.stop, h, overlap)
    wc = _ramp(tile.cols.start, tile.cols.stop, w, overlap)
    return wr[:, None] * wc[None, :]
