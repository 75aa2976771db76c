"""``qpe data radar --in GLOB --region france --out PATH``: OPERA composites -> radar dataset."""

from __future__ import annotations

import argparse


def add_grid_options(
    parser: argparse.ArgumentParser, default_region: str | None = None, required: bool = True
) -> None:
    """``--region NAME [--pixel-km KM] | --grid-like PATH``: the target grid of a command."""
    target = parser.add_mutually_exclusive_group(required=required and default_region is None)
    target.add_argument("--region", default=default_region,
                        help=f"named region, e.g. france, europe (default: {default_region or 'none'})")
    target.add_argument("--grid-like", metavar="PATH", help="use the grid of this paired dataset (.zarr/.nc)")
    parser.add_argument("--pixel-km", type=float, default=2.0,
                        help="pixel size of the region grid, km (default 2)")


def grid_inputs(args: argparse.Namespace) -> list[str]:
    """The dataset that ``--grid-like`` reads, if any (an input the output must not overwrite)."""
    return [args.grid_like] if getattr(args, "grid_like", None) else []


def check_output(args: argparse.Namespace, inputs: list[str], what: str | None = None) -> None:
    """Refuse, before any work, an ``--out`` that is not a dataset path or would overwrite an input.

    ``inputs`` are paths or glob patterns (expanded as the readers expand them; ``what`` names them
    in the message of a pattern that matches nothing).
    """
    from qpe.data.output_paths import check_dataset_output
    from qpe.data.readers.inputs import resolve_paths

    files = [str(p) for p in resolve_paths(inputs, what)] if what else list(inputs)
    check_dataset_output(args.out, files + grid_inputs(args))


def grid_from_options(args: argparse.Namespace):
    """``(grid, region)`` for a reader from the options of :func:`add_grid_options`."""
    if args.grid_like:
        from qpe.data.grid import Grid
        from qpe.data.paired import open_paired

        return Grid.from_dataset(open_paired(args.grid_like)), None
    return None, args.region


def register(commands: argparse._SubParsersAction) -> None:
    radar = commands.add_parser(
        "radar", help="read OPERA ODIM HDF5 radar composites into a rain dataset, with quality control",
        description="Read OPERA ODIM HDF5 rain-rate composites (through pysteps), flag outliers, crop or "
                    "regrid to a region and write a radar dataset in the paired layout.",
    )
    radar.add_argument("--in", dest="inputs", required=True, nargs="+", metavar="GLOB",
                       help="ODIM HDF5 files or glob pattern(s), e.g. 'opera/20180824/*.hdf' (quote it)")
    add_grid_options(radar, default_region="france")
    radar.add_argument("--max-rate", type=float, default=300.0,
                       help="outlier threshold, mm/h (default 300, about 63 dBZ)")
    radar.add_argument("--outliers", choices=("mask", "clip"), default="mask",
                       help="set outliers to NaN (mask, default) or clip them to --max-rate")
    radar.add_argument("--min-quality", type=float, default=None, metavar="Q",
                       help="set rain to NaN where the quality index is below Q (0..1)")
    radar.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    radar.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from qpe.data.paired import save_paired
    from qpe.data.readers import read_radar

    check_output(args, args.inputs, "OPERA HDF5 files")
    grid, region = grid_from_options(args)
    ds = read_radar(
        args.inputs, grid, region=region, pixel_km=args.pixel_km, max_rate=args.max_rate,
        outliers=args.outliers, min_quality=args.min_quality, progress=True,
    )
    times = pd.DatetimeIndex(ds["time"].values)
    print(f"read {times.size} composites, {times[0]:%Y-%m-%dT%H:%M} .. {times[-1]:%Y-%m-%dT%H:%M} UTC")
    counts = ds["qc_outliers"].values
    action = "set to NaN" if args.outliers == "mask" else f"clipped to {args.max_rate:g} mm/h"
    per_time = ", ".join(f"{t:%H:%M} {n}" for t, n in zip(times, counts, strict=True) if n)
    print(f"outliers above {args.max_rate:g} mm/h: {int(counts.sum())} pixels {action}"
          + (f" ({per_time})" if per_time else ""))
    if "qc_low_quality" in ds:
        print(f"quality below {args.min_quality:g}: {int(ds['qc_low_quality'].sum())} pixels set to NaN")
    print(f"wrote {save_paired(ds, args.out)} ({ds.sizes['y']} x {ds.sizes['x']} pixels)")
    return 0
