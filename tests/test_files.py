"""Outputs are written whole or not at all, and killed writers leave no litter behind (qpe.files)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from qpe.files import atomic_write, remove_stale_temporaries, temporary_sibling, write_text
from qpe.inference.cache import CacheWarning, EstimateCache


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = write_text(tmp_path / "scores.csv", "old\n")

    def fail(tmp: Path) -> None:
        tmp.write_text("half a ne")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(out, fail)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_a_folder_is_replaced_whole(tmp_path):
    store = tmp_path / "data.zarr"

    def folder(files: dict[str, str]):
        def write(tmp: Path) -> None:
            tmp.mkdir()
            for name, text in files.items():
                (tmp / name).write_text(text)
        return write

    atomic_write(store, folder({"a": "1", "b": "2"}))
    atomic_write(store, folder({"c": "3"}))
    assert sorted(p.name for p in store.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zarr"]


def test_kill_9_while_writing_keeps_the_previous_file_and_the_next_write_cleans_up(tmp_path):
    out = write_text(tmp_path / "estimate.nc", "good previous estimate")
    script = (
        "import sys, time; from pathlib import Path; from qpe.files import atomic_write\n"
        "def slow(tmp):\n"
        "    tmp.write_bytes(b'x' * 48); print('writing', flush=True); time.sleep(60)\n"
        f"atomic_write(Path({str(out)!r}), slow)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert out.read_text() == "good previous estimate"
    litter = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(litter) == 1 and litter[0].name.startswith(".estimate.nc.")
    _age(litter[0], 120)  # the killed run was a while ago
    write_text(out, "new estimate")
    assert out.read_text() == "new estimate"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimate.nc"]


def test_temporaries_of_live_writers_and_fresh_ones_stay(tmp_path):
    out = tmp_path / "state.pt"
    mine = temporary_sibling(out)  # this process is alive
    mine.write_text("being written")
    _age(mine, 3600)
    dead = tmp_path / ".state.pt.999999999-deadbeef.tmp"  # no such process
    dead.write_text("left by a killed run")
    fresh = tmp_path / ".state.pt.999999998-cafecafe.tmp"
    fresh.write_text("just started")
    _age(dead, 3600)
    assert remove_stale_temporaries(out) == [dead]
    assert mine.exists() and fresh.exists() and not dead.exists()


@pytest.mark.parametrize("damage", ["truncate", "empty", "no rain"])
def test_an_unreadable_cache_entry_is_discarded_with_one_warning(tmp_path, damage):
    cache = EstimateCache(tmp_path)
    key = "ab" * 16
    path = cache.put(key, xr.Dataset({"rain": (("member", "y", "x"), np.ones((1, 4, 4), "float32"))}))
    if damage == "truncate":
        with open(path, "r+b") as f:
            f.truncate(48)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        cache.put(key, xr.Dataset({"other": (("y",), np.ones(3))}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get(key) is None
    assert len(caught) == 1 and issubclass(caught[0].category, CacheWarning)
    assert "computing it again" in str(caught[0].message) and "\n" not in str(caught[0].message)
    assert not path.exists()


def test_the_next_write_in_a_folder_removes_what_killed_writers_left_there(tmp_path):
    """A cache folder holds many entries: a killed run's temporary goes with the next write of any entry."""
    dead = [tmp_path / ".0123abcd.nc.999999999-deadbeef.tmp", tmp_path / ".train.zarr.999999997-0badf00d.old"]
    dead[0].write_text("half an estimate")
    dead[1].mkdir()
    foreign = tmp_path / ".notes.txt.tmp"  # not ours: never touched
    foreign.write_text("someone else's")
    for item in (*dead, foreign):
        _age(item, 3600)
    write_text(tmp_path / "4567cdef.nc", "another entry")
    assert not any(item.exists() for item in dead) and foreign.exists()
