"""The paired archive (qpe.data.archive): a build killed with SIGKILL resumes to exactly the archive of an
uninterrupted build without redoing finished blocks; the manifest names missing and rejected inputs with
their reasons; training reads the archive a chunk at a time through a bounded cache."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from test_cli_bad_inputs import assert_one_clean_error

from qpe.cli import main
from qpe.data.archive import (
    BlockData,
    FileSource,
    StreamedVariable,
    SyntheticSource,
    build_archive,
    manifest_path,
    read_records,
    records_path,
)
from qpe.data.paired import open_paired, summarize
from qpe.data.provenance import dataset_sha256
from qpe.data.samples import DIHEDRAL, PairedSamples, SampleConfig
from qpe.data.synthetic import SynthConfig
from qpe.errors import DatasetError, InputError

REPO = Path(__file__).resolve().parents[1]
#: A day of 32 x 32 pixels, two channels, in 12 blocks of 2 hours (8 steps; 7 simulated).
PERIOD = ("2021-07-01", "2021-07-01")
#: Two 2-hour blocks.
FOUR_HOURS = ("2021-07-01T00:00", "2021-07-01T03:45")
BLOCK_HOURS = 2
CLI_SOURCE = ["--size", "32", "--channels", "WV_062", "IR_108"]


def synthetic_source() -> SyntheticSource:
    """The source the command line makes of ``CLI_SOURCE``."""
    return SyntheticSource(SynthConfig().replace(size=32, channels=("WV_062", "IR_108")))


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """The archive of an uninterrupted build."""
    path = tmp_path_factory.mktemp("archive") / "whole.zarr"
    build_archive(path, synthetic_source(), *PERIOD, block_hours=BLOCK_HOURS, workers=2)
    return path


def _stored(path: Path) -> xr.Dataset:
    with xr.open_zarr(path, chunks=None) as ds:
        return ds.load()


def test_killed_build_resumes_to_the_uninterrupted_archive(tmp_path, archive):
    path = tmp_path / "killed.zarr"
    command = [sys.executable, "-m", "qpe", "data", "build", "--out", str(path), "--start", PERIOD[0],
               "--end", PERIOD[1], "--block-hours", str(BLOCK_HOURS), "--workers", "1", *CLI_SOURCE]
    build = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    try:
        while len(read_records(path)) < 2 and time.monotonic() < deadline and build.poll() is None:
            time.sleep(0.01)
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait()
    done = read_records(path)
    assert 2 <= len(done) < 12, f"the build was not killed midway ({len(done)} of 12 blocks done)"
    with pytest.raises(DatasetError, match="still being built"):
        open_paired(path)
    before = {k: (records_path(path) / f"block_{k:05d}.json").read_text() for k in done}
    chunk = path / "ir" / f"{min(done) * 8}.0.0.0"  # the first time of a block done before the kill
    written = chunk.stat().st_mtime_ns

    resumed = build_archive(path, synthetic_source(), *PERIOD, block_hours=BLOCK_HOURS, workers=1)

    assert resumed.built == 12 - len(done)
    for k, text in before.items():  # finished blocks were neither recomputed nor rewritten
        assert (records_path(path) / f"block_{k:05d}.json").read_text() == text
    assert chunk.stat().st_mtime_ns == written
    got, want = _stored(path), _stored(archive)
    for name in ("ir", "rain", "archive_paired", "ir_mean", "ir_std"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert int(got["archive_paired"].sum()) == 12 * 7  # each 2-hour scenario leaves out its last step
    rows = json.loads(manifest_path(path).read_text())["rows"]
    assert rows == json.loads(manifest_path(archive).read_text())["rows"]
    assert [r["time"] for r in rows] == [f"2021-07-01T{h + 1:02d}:45" for h in range(0, 24, 2)]
    with pytest.raises(InputError, match="other settings"):
        build_archive(path, synthetic_source(), "2021-07-01", "2021-07-02", block_hours=BLOCK_HOURS)


@pytest.fixture(scope="module")
def lz4_archive(tmp_path_factory) -> Path:
    """Four hours (two 2-hour scenarios) with LZ4-compressed chunks."""
    path = tmp_path_factory.mktemp("archive") / "lz4.zarr"
    build_archive(path, synthetic_source(), *FOUR_HOURS, block_hours=BLOCK_HOURS, workers=1, compression="lz4")
    return path


def _assert_same_samples(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        for key in ("ir", "rain", "mask", "index"):
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)


@pytest.mark.parametrize("compression", ["none", "lz4"])
@pytest.mark.parametrize("channels, crop", [(None, 16), (("IR_108",), 24), (None, None)])
def test_streamed_samples_equal_loaded_ones(request, compression, channels, crop):
    path = request.getfixturevalue("archive" if compression == "none" else "lz4_archive")
    compressor = json.loads((path / "ir" / ".zarray").read_text())["compressor"]
    assert (compressor or {}).get("cname", "none") == compression
    ds = open_paired(path, require=("ir", "rain"))
    assert not isinstance(ds["ir"].variable._data, np.ndarray)  # lazy
    config = SampleConfig(frames=4, crop=crop, channels=channels, augment=DIHEDRAL if crop else ())
    loaded = PairedSamples(ds, config, in_memory=True, seed=3)
    threaded = PairedSamples(ds, config, seed=3)
    alone = PairedSamples(ds, config, seed=3, read_threads=0)
    assert isinstance(threaded._ir, StreamedVariable) and isinstance(loaded._ir, np.ndarray)
    keys = [(epoch, item) for epoch in (0, 5) for item in range(len(loaded))]
    want = [loaded[key] for key in keys]
    _assert_same_samples(threaded.__getitems__(keys), want)  # a batch, read on threads
    _assert_same_samples([alone[key] for key in keys], want)  # one by one
    order = [list(items) for items in np.random.default_rng(0).permutation(len(loaded))[:8].reshape(2, 4)]
    loader = torch.utils.data.DataLoader(threaded, batch_sampler=order)  # asks __getitems__ for each batch
    for batch, items in zip(loader, order, strict=True):  # what a training step gets: the loaded samples
        stacked = torch.utils.data.default_collate([loaded[(0, i)] for i in items])
        for key in stacked:
            np.testing.assert_array_equal(batch[key].numpy(), stacked[key].numpy(), err_msg=key)


@pytest.mark.parametrize("fixture", ["archive", "lz4_archive"])
def test_streamed_variable_indexes_as_numpy(request, fixture):
    path = request.getfixturevalue(fixture)
    ds = open_paired(path, require=("ir", "rain"))
    rain, ir = ds["rain"].values, ds["ir"].values
    streamed_rain = StreamedVariable(path, "rain", ds["archive_index"].values)
    streamed_ir = StreamedVariable(path, "ir", ds["archive_index"].values, np.array([1, 0]))
    for key in [(5, 3, 4), (slice(2, 7), slice(1, 5), slice(None, None, -1)), ([3, 1],), (4,), ([],)]:
        np.testing.assert_array_equal(streamed_rain[key], rain[key], err_msg=str(key))
    for key in [(4, slice(None), 2), (slice(1, 3), 0), (np.array([6, 2]), slice(None), slice(3, 9))]:
        np.testing.assert_array_equal(streamed_ir[key], ir[:, ::-1][key], err_msg=str(key))


def test_a_forked_data_loader_worker_reads_on_threads_of_its_own(archive):
    ds = open_paired(archive, require=("ir", "rain"))
    samples = PairedSamples(ds, SampleConfig(frames=4, crop=16))
    want = samples.__getitems__([0, 1, 2, 3])  # the parent's threads exist now; a forked worker has none
    loader = torch.utils.data.DataLoader(samples, batch_sampler=[[0, 1, 2, 3]], num_workers=1, timeout=60,
                                         multiprocessing_context="fork")
    batch = next(iter(loader))
    np.testing.assert_array_equal(batch["ir"].numpy(), np.stack([w["ir"].numpy() for w in want]))


def test_archive_chunks_are_raw_by_default_and_read_without_a_cache(archive):
    ds = open_paired(archive, require=("ir", "rain"))
    assert ds.sizes["time"] == 12 * 7
    assert json.loads((archive / "ir" / ".zarray").read_text())["compressor"] is None
    assert ds.attrs["qpe_archive_compression"] == "none"
    streamed = PairedSamples(ds, SampleConfig(frames=4, crop=16))
    for item in range(len(streamed)):
        streamed[item]
    assert streamed._ir.raw and streamed._ir.cached_bytes == 0 and streamed._rain.cached_bytes == 0


def test_compressed_archive_streams_through_a_bounded_cache(lz4_archive):
    ds = open_paired(lz4_archive, require=("ir", "rain"))
    assert ds.attrs["qpe_archive_compression"] == "lz4"
    config = SampleConfig(frames=4, crop=16)
    streamed = PairedSamples(ds, config)
    loaded = PairedSamples(ds, config, in_memory=True)
    # a small cache: three chunks of IR; the samples equal those of the loaded dataset
    streamed._ir = StreamedVariable(lz4_archive, "ir", ds["archive_index"].values, np.array([1, 0]),
                                    cache_bytes=3 * 2 * 32 * 32 * 4)
    streamed.channels = ("IR_108", "WV_062")
    loaded = PairedSamples(ds, SampleConfig(frames=4, crop=16, channels=streamed.channels), in_memory=True)
    streamed.normalization = loaded.normalization
    most = 0
    for item in range(len(streamed)):
        _assert_same_samples([streamed[item]], [loaded[item]])
        most = max(most, streamed._ir.cached_bytes)
    assert most == 3 * 2 * 32 * 32 * 4  # whatever the archive's length
    # reading one sample decodes exactly the chunks of its frames
    streamed._ir = StreamedVariable(lz4_archive, "ir", ds["archive_index"].values, np.array([0, 1]))
    item = 5
    target = int(streamed.targets[item])
    streamed[item]
    assert streamed._ir.cached_chunks == [int(c) for c in ds["archive_index"].values[target - 3 : target + 1]]


@dataclass(frozen=True)
class WetterBlockSource(SyntheticSource):
    """The synthetic source with twice the rain in the block that starts at ``wetter_from``: a source whose
    inputs for one block changed between two builds (its settings, and so the archive's, are the same)."""

    wetter_from: str = "2021-07-01T02:00"

    def read_block(self, times: pd.DatetimeIndex) -> BlockData:
        read = super().read_block(times)
        if times[0] == pd.Timestamp(self.wetter_from):
            read.pairs["rain"] = read.pairs["rain"] * 2
        return read


def _rebuild_block(tmp_path: Path, original: Path, name: str, source) -> Path:
    """A copy of ``original`` whose second block is built again from ``source``."""
    path = tmp_path / f"{name}.zarr"
    shutil.copytree(original, path)
    shutil.copytree(records_path(original), records_path(path))
    (records_path(path) / "block_00001.json").unlink()
    assert build_archive(path, source, *FOUR_HOURS, block_hours=BLOCK_HOURS, workers=1).built == 1
    return path


def test_archive_hash_and_info_come_from_the_block_records(tmp_path, lz4_archive, capsys):
    raw = tmp_path / "raw.zarr"
    build_archive(raw, synthetic_source(), *FOUR_HOURS, block_hours=BLOCK_HOURS, workers=1)
    digest = dataset_sha256(open_paired(raw))
    assert dataset_sha256(open_paired(lz4_archive)) == digest  # the values, whatever the compression
    assert dataset_sha256(open_paired(_rebuild_block(tmp_path, raw, "same", synthetic_source()))) == digest
    wetter = _rebuild_block(tmp_path, raw, "wetter", WetterBlockSource(synthetic_source().config))
    changed = {k: r["sha256"] for k, r in read_records(wetter).items()}
    assert changed == {k: {**r["sha256"], "rain": changed[k]["rain"]} for k, r in read_records(raw).items()}
    assert changed[1]["rain"] != read_records(raw)[1]["sha256"]["rain"]  # one block's rain changed
    np.testing.assert_array_equal(open_paired(wetter)["ir_mean"].values, open_paired(raw)["ir_mean"].values)
    assert dataset_sha256(open_paired(wetter)) != digest

    ds = open_paired(raw)
    summary = summarize(ds)  # read from the values
    assert main(["data", "info", str(raw), "--json"]) == 0
    from_records = json.loads(capsys.readouterr().out)
    assert from_records["channels"] == summary["channels"] and from_records["problems"] == summary["problems"]
    for key in ("coverage", "wet_fraction_0.1", "mean_mm_h", "max_mm_h"):  # exact
        assert from_records["rain"][key] == summary["rain"][key], key
    for key in ("wet_p50_mm_h", "wet_p90_mm_h", "wet_p99_mm_h"):  # from a sample of the wet pixels
        assert from_records["rain"][key] == pytest.approx(summary["rain"][key], rel=0.05), key
    # neither reads a chunk: with every chunk but the first time's gone, both say the same
    first = int(ds["archive_index"].values[0])
    for chunk in [*raw.glob("ir/[0-9]*"), *raw.glob("rain/[0-9]*")]:
        if not chunk.name.startswith(f"{first}."):
            chunk.unlink()
    assert main(["data", "info", str(raw), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_records
    assert dataset_sha256(open_paired(raw)) == digest


def test_manifest_names_missing_and_rejected_inputs(tmp_path, opera_files):
    radar = tmp_path / "radar"
    radar.mkdir()
    for name in ("20180824180000", "20180824181500", "20180824183000"):
        shutil.copy(next(p for p in opera_files if name in p.name), radar)
    (radar / "T_PAAH21_C_EUOC_20180824184500.hdf").write_bytes(b"not an HDF5 file")
    # the SEVIRI CF files of 18:00 and 18:15 (tests/data), four OPERA composites, the last one damaged
    source = FileSource(str(REPO / "tests" / "data" / "seviri_cf_*.nc"), str(radar / "*.hdf"), region="france",
                        pixel_km=16.0, channels=("WV_062", "IR_087", "IR_108", "IR_120"), method="auto")
    built = build_archive(tmp_path / "files.zarr", source, "2018-08-24T18:00", "2018-08-24T18:45",
                          block_hours=1)
    assert (built.times, built.paired) == (4, 2)
    rows = json.loads(built.manifest.read_text())["rows"]
    by_time = {(r["time"], r["input"]): r for r in rows}
    assert by_time[("2018-08-24T18:30", "seviri")]["reason"] == "no SEVIRI frame at this time"
    assert by_time[("2018-08-24T18:45", "radar")]["reason"] == "no radar field at this time"
    corrupt = by_time[("2018-08-24T18:45", "T_PAAH21_C_EUOC_20180824184500.hdf")]
    assert corrupt["status"] == "rejected" and "T_PAAH21_C_EUOC_20180824184500.hdf" in corrupt["reason"]
    ds = open_paired(built.path, require=("ir", "rain"))
    assert [str(t)[11:16] for t in ds["time"].values] == ["18:00", "18:15"]
    assert "rain_quality" in ds and np.isfinite(ds["ir"].values).any()


@pytest.mark.parametrize("argv, expect", [
    (["--month", "2021-07"], "needs --out"),
    (["--out", "{tmp}/a.zarr", "--month", "2021-7"], "month must be YYYY-MM"),
    (["--out", "{tmp}/a.zarr", "--start", "2021-07-01T00:10", "--end", "2021-07-01"], "15-minute steps"),
    (["--out", "{tmp}/a.zarr", "--start", "2021-07-02", "--end", "2021-07-01"], "before start"),
    (["--out", "{tmp}/a.nc", "--month", "2021-07"], "Zarr store"),
    (["--out", "{tmp}/a.zarr", "--month", "2021-07", "--seviri", "x*.nat"], "needs --seviri GLOB and --radar"),
    (["demo", "--out", "{tmp}/a.zarr"], "not both"),
    (["--out", "{tmp}/a.zarr", "--month", "2021-07", "--compression", "zip"], "unknown compression 'zip'"),
])
def test_bad_archive_options_give_one_error_line(tmp_path, argv, expect):
    argv = ["data", "build", *(a.format(tmp=tmp_path) for a in argv)]
    assert_one_clean_error(argv, tmp_path / "a.zarr", expect)


def test_training_streams_an_archive_and_its_card_names_the_archive_hash(tmp_path, archive,
                                                                       one_torch_thread_per_module):
    from test_training import tiny_config

    from qpe.models import load
    from qpe.training import train

    out = train(tiny_config("unet", steps=2), data=archive, out=tmp_path / "unet", progress=False,
                log=lambda _: None)
    card = load(out).card
    assert card.training.steps == 2
    assert card.data.sha256 == dataset_sha256(open_paired(archive))  # from the block records
    assert card.data.sha256 != dataset_sha256(open_paired(archive).load().drop_attrs())  # not a plain dataset's
