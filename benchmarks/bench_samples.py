"""Data-loader throughput: training samples per second from a paired Zarr dataset.

Run: ``python benchmarks/bench_samples.py [--size 256] [--hours 12] [--batches 30]``. Builds a synthetic
dataset (7 channels) in a temporary folder, then times ``torch.utils.data.DataLoader`` over
:class:`qpe.data.samples.PairedSamples` (T = 4 frames, random 128² crops, batch 16) for the dataset held
in memory and read from Zarr per sample, with 0 and 2 worker processes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from qpe.data.paired import open_paired, save_paired
from qpe.data.samples import PairedSamples, SampleConfig
from qpe.data.synthetic import SynthConfig, generate_paired


def samples_per_second(dataset: PairedSamples, workers: int, batches: int, batch_size: int = 16) -> float:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0),
    )
    done, epoch = 0, 0
    start = None
    while done < batches + 2:
        dataset.set_epoch(epoch)
        for _ in loader:
            done += 1
            if done == 2:  # first batches pay for worker start-up and caches
                start = time.perf_counter()
            if done == batches + 2:
                break
        epoch += 1
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="grid side, pixels")
    parser.add_argument("--hours", type=float, default=12, help="dataset length, hours")
    parser.add_argument("--batches", type=int, default=30, help="batches timed per setting")
    args = parser.parse_args()
    config = SampleConfig(frames=4, crop=128)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_paired(generate_paired(SynthConfig(hours=args.hours, size=args.size, seed=1)),
                           Path(tmp) / "bench.zarr")
        ds = open_paired(path)
        print(f"data loader: {args.size}² x {ds.sizes['time']} times x 7 channels (Zarr), T={config.frames}, "
              f"crop {config.crop}², batch 16, {os.cpu_count()} CPU cores")
        for in_memory in (True, False):
            samples = PairedSamples(ds, config, in_memory=in_memory)
            for workers in (0, 2):
                rate = samples_per_second(samples, workers, args.batches)
                where = "in memory " if in_memory else "from Zarr "
                print(f"  {where} workers={workers}: {rate:8.1f} samples/s")


if __name__ == "__main__":
    main()
