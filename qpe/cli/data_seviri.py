"""``qpe data seviri --in GLOB (--region NAME | --grid-like PATH) --out PATH``: SEVIRI files -> IR dataset.

Level-1.5 files (native, HRIT, EUMETSAT NetCDF; read by satpy, the optional extra ``satpy``) or CF
NetCDF/Zarr files, resampled onto the grid, with optional parallax correction, on 15-minute radar times
(:mod:`qpe.data.readers.seviri`).
"""

from __future__ import annotations

import argparse

from qpe.cli.data_radar import add_grid_options, check_output, grid_from_options

FORMAT_CHOICES = ("auto", "native", "hrit", "nc", "cf")


def register(commands: argparse._SubParsersAction) -> None:
    seviri = commands.add_parser(
        "seviri",
        help="read SEVIRI brightness temperatures (native, HRIT, EUMETSAT NetCDF or CF) on a target grid",
        description="Read SEVIRI IR brightness temperatures (K) from EUMETSAT level-1.5 files (native, HRIT, "
                    "NetCDF; through satpy, calibrated and resampled with pyresample) or from CF NetCDF/Zarr "
                    "files written by satpy, onto a region or a dataset's grid, on the 15-minute radar times "
                    "nearest each scan (docs/data.md).",
    )
    seviri.add_argument("--in", dest="inputs", required=True, nargs="+", metavar="GLOB",
                        help="SEVIRI files or glob pattern(s) (quote it); HRIT: segments, prologue, epilogue")
    add_grid_options(seviri)
    seviri.add_argument("--format", dest="file_format", choices=FORMAT_CHOICES, default="auto",
                        help="input format (default: told from the file names)")
    seviri.add_argument("--channels", nargs="+", default=None,
                        help="channels to keep (default: all IR channels)")
    seviri.add_argument("--method", choices=("bilinear", "nearest", "auto"), default="bilinear",
                        help="resampling onto the grid (default bilinear; auto: CF files only)")
    seviri.add_argument("--parallax", action="store_true",
                        help="correct the parallax of cloud tops (level-1.5 files; heights from IR_108)")
    seviri.add_argument("--surface-k", type=float, default=None, metavar="K",
                        help="surface temperature of the cloud-top rule, K (default: the slot's warm IR_108 "
                             "percentile)")
    seviri.add_argument("--cth", nargs="+", metavar="GLOB", default=None,
                        help="NWC SAF GEO CTTH files (S_NWC_CTTH_*Z.nc) whose cloud-top altitude --parallax "
                             "uses for their slots (others: heights from IR_108)")
    seviri.add_argument("--tolerance-min", type=float, default=7.5, metavar="MIN",
                        help="largest distance of a scan from its 15-minute time, min (0..7.5, default 7.5)")
    seviri.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    seviri.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from qpe.data.paired import save_paired
    from qpe.data.parallax import CloudTopRule
    from qpe.data.readers import read_seviri
    from qpe.errors import InputError

    check_output(args, args.inputs, "SEVIRI files")
    for option, value in (("--surface-k", args.surface_k), ("--cth", args.cth)):
        if value is not None and not args.parallax:
            raise InputError(f"{option} is for the parallax correction; add --parallax")
    cloud_top = CloudTopRule(surface_k=args.surface_k) if args.parallax else None
    grid, region = grid_from_options(args)
    ds = read_seviri(args.inputs, grid, region=region, pixel_km=args.pixel_km, channels=args.channels,
                     method=args.method, file_format=args.file_format, parallax=args.parallax,
                     cloud_top=cloud_top, cth_files=args.cth, tolerance_min=args.tolerance_min, progress=True)
    times = pd.DatetimeIndex(ds["time"].values)
    print(f"read {times.size} frames of {', '.join(map(str, ds['channel'].values))}, "
          f"{times[0]:%Y-%m-%dT%H:%M} .. {times[-1]:%Y-%m-%dT%H:%M} UTC "
          f"({ds.attrs['seviri_reader']}; {ds.attrs['seviri_resampling']}; "
          f"parallax {ds.attrs['seviri_parallax']})")
    print(f"wrote {save_paired(ds, args.out)} ({ds.sizes['y']} x {ds.sizes['x']} pixels)")
    return 0
