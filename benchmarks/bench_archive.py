"""The paired archive: build time of a 30-day synthetic archive, training read rate, memory with length.

Run: ``python benchmarks/bench_archive.py [--days 30] [--size 128] [--workers 2] [--batches 15] [--rounds 5]``,
or ``--quick`` for a smoke test (2 and 1 days of 32 x 32 pixels). In a temporary folder it

1. builds a ``--days`` synthetic archive (7 channels, ``--size``² pixels of 2 km, one scenario per day, raw
   chunks: the default) with :func:`qpe.data.archive.build_archive` on ``--workers`` local threads, with its
   progress bar, and times it; then a ``--short-days`` (10) archive raw and with LZ4, for disk size and rate;
2. measures training samples per second (:class:`qpe.data.samples.PairedSamples`, T = 4 frames, 128² crops or
   the whole field when smaller, batch 16, ``DataLoader`` with 0 and 2 worker processes) in memory (the dataset
   of ``benchmarks/bench_samples.py``: 12 h of 256²) and streamed from the archives: raw chunks with the
   batch's reads on 2 threads (the default) and on the calling thread, LZ4 chunks likewise. The settings run
   in turn, ``--rounds`` times ``--batches`` batches each, so that a shared machine's load falls on all of
   them alike; it prints the median rate of each and the median of the per-round ratios to the in-memory rate;
3. reads ``--batches`` batches of each archive in a fresh process, printing its peak resident memory
   (streamed: flat with the length; loaded whole, for contrast), and runs ``qpe data info`` and the data
   hash of training (:func:`qpe.data.provenance.dataset_sha256`) on the long archive in a fresh process
   (both from the block records: no chunk is read), against :func:`qpe.data.paired.summarize`, which
   reads every value.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_samples import samples_per_second

from qpe.data.archive import SyntheticSource, build_archive
from qpe.data.paired import open_paired, save_paired
from qpe.data.samples import PairedSamples, SampleConfig
from qpe.data.synthetic import SynthConfig, generate_paired


def sample_config(size: int) -> SampleConfig:
    return SampleConfig(frames=4, crop=min(128, size))


def build(path: Path, days: int, size: int, workers: int, compression: str = "none") -> float:
    """Build a ``days`` archive from 2021-07-01; seconds taken."""
    start = time.perf_counter()
    source = SyntheticSource(SynthConfig(size=size, seed=1))
    build_archive(path, source, "2021-07-01", last_day(days), workers=workers, progress=True,
                  compression=compression)
    return time.perf_counter() - start


def last_day(days: int) -> str:
    import pandas as pd

    return f"{pd.Timestamp('2021-07-01') + pd.Timedelta(days=days - 1):%Y-%m-%d}"


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def peak_mb() -> float:
    """This process's peak resident memory, MB (VmHWM: ru_maxrss of a child may report its parent's)."""
    status = Path("/proc/self/status").read_text().split("\n")
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def in_fresh_process(*args: str) -> list[float]:
    """The numbers the last line of this script run with ``args`` prints."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return [float(v) for v in out.stdout.split("\n")[-2].split()]


def read_and_report_rss(path: str, size: int, batches: int, in_memory: bool) -> None:
    ds = open_paired(path, require=("ir", "rain"))
    samples = PairedSamples(ds, sample_config(size), in_memory=True if in_memory else None)
    samples_per_second(samples, 0, batches)
    print(peak_mb())


def info_and_report(path: str, plain: bool) -> None:
    """Seconds and peak MB of ``qpe data info`` and the data hash (or of summarize, ``plain``)."""
    import contextlib
    import io

    from qpe.cli import main
    from qpe.data.paired import summarize
    from qpe.data.provenance import dataset_sha256

    start = time.perf_counter()
    if plain:
        summarize(open_paired(path))
        print(time.perf_counter() - start, peak_mb())
        return
    with contextlib.redirect_stdout(io.StringIO()):
        main(["data", "info", path])
    info = time.perf_counter() - start
    dataset_sha256(open_paired(path))
    print(info, time.perf_counter() - start - info, peak_mb())


def compare_rates(settings: dict[str, PairedSamples], reference: str, workers: int, batches: int,
                  rounds: int) -> None:
    """Each setting in turn, ``rounds`` times; the median rate and median ratio to ``reference`` per round."""
    rates: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, samples in settings.items():
            rates[name].append(samples_per_second(samples, workers, batches))
    for name, values in rates.items():
        ratios = np.asarray(values) / np.asarray(rates[reference])
        print(f"    {name:44s} {np.median(values):7.1f}/s   ratio {np.median(ratios):.2f} "
              f"(rounds {min(ratios):.2f}..{max(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="length of the long archive, days")
    parser.add_argument("--short-days", type=int, default=10, help="length of the short archives, days")
    parser.add_argument("--size", type=int, default=128, help="grid side, pixels")
    parser.add_argument("--workers", type=int, default=2, help="threads building the archive")
    parser.add_argument("--batches", type=int, default=15, help="batches timed per setting and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the settings")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 and 1 days of 32², 3 batches, 2 rounds")
    parser.add_argument("--rss-of", help=argparse.SUPPRESS)
    parser.add_argument("--info-of", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of:
        read_and_report_rss(args.rss_of, args.size, args.batches, args.in_memory)
        return
    if args.info_of:
        info_and_report(args.info_of, args.plain)
        return
    if args.quick:
        args.days, args.short_days, args.size, args.batches, args.rounds = 2, 1, 32, 3, 2
    torch.set_num_threads(1)
    print(f"archive: {args.days} days of {args.size}² x 7 channels, one time step per chunk; "
          f"{os.cpu_count()} CPU cores, {args.workers} build threads")
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / "long.zarr"
        seconds = build(long, args.days, args.size, args.workers)
        ds = open_paired(long, require=("ir", "rain"))
        frames = ds.sizes["time"]
        print(f"  built {frames} paired frames in {seconds:.1f} s ({frames / seconds:.1f} frames/s), "
              f"{disk_mb(long):.0f} MB on disk (raw chunks)")
        short = {name: Path(tmp) / f"short_{name}.zarr" for name in ("none", "lz4")}
        for name, path in short.items():
            seconds = build(path, args.short_days, args.size, args.workers, name)
            print(f"  {args.short_days}-day archive, compression {name}: {seconds:.1f} s, "
                  f"{disk_mb(path):.0f} MB on disk")

        ref_size, ref_hours = (64, 12) if args.quick else (256, 12)
        reference = save_paired(generate_paired(SynthConfig(hours=ref_hours, size=ref_size, seed=1)),
                                Path(tmp) / "reference.zarr")
        memory = f"in memory (bench_samples: {ref_size}² x {ref_hours} h)"
        config = sample_config(args.size)
        short_ds = open_paired(short["lz4"], require=("ir", "rain"))
        settings = {
            memory: PairedSamples(open_paired(reference), SampleConfig(frames=4, crop=min(128, ref_size)),
                                  in_memory=True),
            f"streamed, {args.days} days raw, read on 2 threads": PairedSamples(ds, config, read_threads=2),
            f"streamed, {args.days} days raw, read on 1 thread": PairedSamples(ds, config, read_threads=0),
            f"streamed, {args.short_days} days LZ4, decoded on 2 threads": PairedSamples(short_ds, config,
                                                                                          read_threads=2),
            f"streamed, {args.short_days} days LZ4, decoded on 1 thread": PairedSamples(short_ds, config,
                                                                                         read_threads=0),
        }
        print(f"training samples (T=4, crop {config.crop}², batch 16), {args.rounds} rounds of {args.batches} "
              "batches, medians:")
        for workers in (0, 2):
            print(f"  DataLoader workers={workers}:")
            chosen = settings if workers == 0 else dict(list(settings.items())[:2])
            compare_rates(chosen, memory, workers, args.batches, args.rounds)

        print(f"peak resident memory reading {args.batches} batches in a fresh process:")
        for path, days in ((short["none"], args.short_days), (long, args.days)):
            streamed_mb = in_fresh_process("--rss-of", str(path), "--size", str(args.size),
                                           "--batches", str(args.batches))[0]
            loaded_mb = in_fresh_process("--rss-of", str(path), "--size", str(args.size),
                                         "--batches", str(args.batches), "--in-memory")[0]
            print(f"  {days:3d}-day archive: streamed {streamed_mb:7.0f} MB, loaded whole {loaded_mb:7.0f} MB")
        info, digest, info_mb = in_fresh_process("--info-of", str(long))
        plain, plain_mb = in_fresh_process("--info-of", str(long), "--plain")
        print(f"qpe data info of the {args.days}-day archive (fresh process): {info:.2f} s, then the data hash "
              f"{digest:.2f} s, peak {info_mb:.0f} MB (block records; no chunk read); summarize reading every "
              f"value: {plain:.1f} s, peak {plain_mb:.0f} MB")


if __name__ == "__main__":
    main()
