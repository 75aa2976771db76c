"""The paired archive: build time of a 30-day synthetic archive, training read rate, memory with length.

Run: ``python benchmarks/bench_archive.py [--days 30] [--size 128] [--workers 2] [--batches 30]``, or
``--quick`` for a smoke test (2 and 1 days of 32 x 32 pixels). In a temporary folder it

1. builds a ``--days`` synthetic archive (7 channels, ``--size``² pixels of 2 km, one scenario per day) with
   :func:`qpe.data.archive.build_archive` on ``--workers`` local threads, with its progress bar, and times it;
2. measures training samples per second (:class:`qpe.data.samples.PairedSamples`, T = 4 frames, 128² crops or
   the whole field when smaller, batch 16, DataLoader with 0 and 2 worker processes) streamed from the archive,
   against the in-memory rate of ``benchmarks/bench_samples.py`` (its 12 h of 256², in memory) measured in the
   same run, and prints the ratio;
3. builds a ``--short-days`` archive (10) and reads ``--batches`` batches from each archive in a fresh process,
   printing its peak resident memory: streamed (flat with the length) and, for contrast, loaded whole.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_samples import samples_per_second

from qpe.data.archive import SyntheticSource, build_archive
from qpe.data.paired import open_paired, save_paired
from qpe.data.samples import PairedSamples, SampleConfig
from qpe.data.synthetic import SynthConfig, generate_paired


def sample_config(size: int) -> SampleConfig:
    return SampleConfig(frames=4, crop=min(128, size))


def build(path: Path, days: int, size: int, workers: int) -> float:
    """Build a ``days`` archive from 2021-07-01; seconds taken."""
    start = time.perf_counter()
    source = SyntheticSource(SynthConfig(size=size, seed=1))
    build_archive(path, source, "2021-07-01", last_day(days), workers=workers, progress=True)
    return time.perf_counter() - start


def last_day(days: int) -> str:
    import pandas as pd

    return f"{pd.Timestamp('2021-07-01') + pd.Timedelta(days=days - 1):%Y-%m-%d}"


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def peak_rss(path: Path, size: int, batches: int, in_memory: bool) -> float:
    """Peak resident memory, MB, of a fresh process that reads ``batches`` batches of the archive."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-of", str(path), "--size", str(size), "--batches", str(batches)]
        + (["--in-memory"] if in_memory else []),
        check=True, capture_output=True, text=True,
    )
    return float(out.stdout.split()[-1])


def read_and_report_rss(path: str, size: int, batches: int, in_memory: bool) -> None:
    ds = open_paired(path, require=("ir", "rain"))
    samples = PairedSamples(ds, sample_config(size), in_memory=True if in_memory else None)
    samples_per_second(samples, 0, batches)
    # VmHWM: the peak of this process's own memory (ru_maxrss may report the parent's, inherited at fork)
    status = Path("/proc/self/status").read_text().split("\n")
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="length of the long archive, days")
    parser.add_argument("--short-days", type=int, default=10, help="length of the short archive, days")
    parser.add_argument("--size", type=int, default=128, help="grid side, pixels")
    parser.add_argument("--workers", type=int, default=2, help="threads building the archive")
    parser.add_argument("--batches", type=int, default=30, help="batches timed per setting")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 and 1 days of 32², 5 batches")
    parser.add_argument("--rss-of", help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of:
        read_and_report_rss(args.rss_of, args.size, args.batches, args.in_memory)
        return
    if args.quick:
        args.days, args.short_days, args.size, args.batches = 2, 1, 32, 5
    torch.set_num_threads(1)
    print(f"archive: {args.days} days of {args.size}² x 7 channels, one time step per chunk; "
          f"{os.cpu_count()} CPU cores, {args.workers} build threads")
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / "long.zarr"
        seconds = build(long, args.days, args.size, args.workers)
        ds = open_paired(long, require=("ir", "rain"))
        frames = ds.sizes["time"]
        print(f"  built {frames} paired frames in {seconds:.1f} s ({frames / seconds:.1f} frames/s), "
              f"{disk_mb(long):.0f} MB on disk")

        # today's bench_samples.py in-memory rate, this run
        ref_size, ref_hours = (64, 12) if args.quick else (256, 12)
        reference = save_paired(generate_paired(SynthConfig(hours=ref_hours, size=ref_size, seed=1)),
                                Path(tmp) / "reference.zarr")
        in_memory = PairedSamples(open_paired(reference), SampleConfig(frames=4, crop=min(128, ref_size)),
                                  in_memory=True)
        streamed = PairedSamples(ds, sample_config(args.size))
        print(f"training samples (T=4, crop {sample_config(args.size).crop}², batch 16):")
        for workers in (0, 2):
            memory_rate = samples_per_second(in_memory, workers, args.batches)
            archive_rate = samples_per_second(streamed, workers, args.batches)
            print(f"  workers={workers}: in memory (bench_samples, {ref_size}² x {ref_hours} h) {memory_rate:8.1f}/s, "
                  f"streamed from the archive {archive_rate:8.1f}/s, ratio {archive_rate / memory_rate:.2f}")
        short = Path(tmp) / "short.zarr"
        build(short, args.short_days, args.size, args.workers)
        print(f"peak resident memory reading {args.batches} batches in a fresh process:")
        for path, days in ((short, args.short_days), (long, args.days)):
            streamed_mb = peak_rss(path, args.size, args.batches, False)
            loaded_mb = peak_rss(path, args.size, args.batches, True)
            print(f"  {days:3d}-day archive: streamed {streamed_mb:7.0f} MB, loaded whole {loaded_mb:7.0f} MB")


if __name__ == "__main__":
    main()
