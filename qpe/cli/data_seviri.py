"""``qpe data seviri --in GLOB (--region NAME | --grid-like PATH) --out PATH``: SEVIRI CF -> IR dataset."""

from __future__ import annotations

import argparse

from qpe.cli.data_radar import add_grid_options, check_output, grid_from_options


def register(commands: argparse._SubParsersAction) -> None:
    seviri = commands.add_parser(
        "seviri",
        help="read SEVIRI brightness temperatures (CF NetCDF/Zarr, e.g. satpy output) on a target grid",
        description="Read SEVIRI IR brightness temperatures (K) from CF NetCDF files or Zarr stores, as "
                    "written by satpy's cf writer, and resample them onto a region or a dataset's grid.",
    )
    seviri.add_argument("--in", dest="inputs", required=True, nargs="+", metavar="GLOB",
                        help="CF NetCDF files / Zarr stores or glob pattern(s) (quote it)")
    add_grid_options(seviri)
    seviri.add_argument("--channels", nargs="+", default=None,
                        help="channels to keep (default: all IR channels)")
    seviri.add_argument("--method", choices=("bilinear", "nearest", "auto"), default="bilinear",
                        help="resampling when the grids differ (default bilinear)")
    seviri.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    seviri.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from qpe.data.paired import save_paired
    from qpe.data.readers import read_seviri

    check_output(args, args.inputs, "SEVIRI CF NetCDF/Zarr files")
    grid, region = grid_from_options(args)
    ds = read_seviri(args.inputs, grid, region=region, pixel_km=args.pixel_km, channels=args.channels,
                     method=args.method, progress=True)
    times = pd.DatetimeIndex(ds["time"].values)
    print(f"read {times.size} frames of {', '.join(map(str, ds['channel'].values))}, "
          f"{times[0]:%Y-%m-%dT%H:%M} .. {times[-1]:%Y-%m-%dT%H:%M} UTC")
    print(f"wrote {save_paired(ds, args.out)} ({ds.sizes['y']} x {ds.sizes['x']} pixels)")
    return 0
