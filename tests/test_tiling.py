"""Tiles cover large grids with overlap and blend back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from qpe.errors import InputError
from qpe.inference.tiling import plan_tiles, tile_weights


@pytest.mark.parametrize("shape", [(2200, 1900), (256, 256), (100, 300), (40, 40)])
@pytest.mark.parametrize("size, overlap", [(256, 32), (128, 16), (64, 0)])
def test_tiles_cover_every_pixel_and_blend_to_identity(shape, size, overlap):
    tiles = plan_tiles(shape, size, overlap)
    total = np.zeros(shape, dtype="float64")
    field = np.random.default_rng(0).random(shape)
    blended = np.zeros(shape)
    for tile in tiles:
        assert tile.rows.stop - tile.rows.start <= size and tile.cols.stop - tile.cols.start <= size
        w = tile_weights(tile, shape, overlap)
        total[tile.rows, tile.cols] += w
        blended[tile.rows, tile.cols] += w * field[tile.rows, tile.cols]
    assert total.min() > 0
    np.testing.assert_allclose(blended / total, field, rtol=1e-6)


def test_full_opera_grid_tile_count():
    tiles = plan_tiles((2200, 1900), 256, 32)
    # ceil((2200 - 256) / 224) + 1 = 10 rows, ceil((1900 - 256) / 224) + 1 = 9 columns
    assert len(tiles) == 90


def test_interior_overlap_ramps_and_edges_are_flat():
    shape, overlap = (300, 300), 32
    tiles = plan_tiles(shape, 256, overlap)
    w = tile_weights(tiles[0], shape, overlap)
    assert w[0, 0] == 1.0 and w[100, 100] == 1.0  # outer edges of the field are not tapered
    assert w[100, -1] < 0.05  # tapered towards the neighbouring tile


@pytest.mark.parametrize("size, overlap, message", [(4, 0, "at least 8"), (64, 32, "too small for the overlap of 32 pixels.*at least 66 pixels")])
def test_bad_tiling(size, overlap, message):
    with pytest.raises(InputError, match=message):
        plan_tiles((100, 100), size, overlap)
