"""``qpe data crr --in GLOB (--region NAME | --grid-like PATH) --out PATH``: NWC SAF CRR -> rain dataset."""

from __future__ import annotations

import argparse

from qpe.cli.data_radar import add_grid_options, check_output, grid_from_options


def register(commands: argparse._SubParsersAction) -> None:
    crr = commands.add_parser(
        "crr", help="read NWC SAF CRR files as a reference rain estimate on a target grid",
        description="Read NWC SAF Convective Rainfall Rate NetCDF files (crr_intensity, mm/h) and "
                    "resample them (nearest neighbour) onto a region or onto the grid of a dataset.",
    )
    crr.add_argument("--in", dest="inputs", required=True, nargs="+", metavar="GLOB",
                     help="CRR NetCDF files or glob pattern(s) (quote it)")
    add_grid_options(crr)
    crr.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    crr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from qpe.data.paired import save_paired
    from qpe.data.readers import read_crr

    check_output(args, args.inputs, "NWC SAF CRR files")
    grid, region = grid_from_options(args)
    ds = read_crr(args.inputs, grid, region=region, pixel_km=args.pixel_km, progress=True)
    times = pd.DatetimeIndex(ds["time"].values)
    coverage = float(np.isfinite(ds["rain"].values).mean())
    print(f"read {times.size} CRR files, {times[0]:%Y-%m-%dT%H:%M} .. {times[-1]:%Y-%m-%dT%H:%M} UTC, "
          f"{coverage:.1%} of the target grid covered")
    print(f"wrote {save_paired(ds, args.out)} ({ds.sizes['y']} x {ds.sizes['x']} pixels)")
    return 0
