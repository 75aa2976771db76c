"""``qpe data pair --ir PATH --rain PATH --out PATH``: match IR and rain datasets by time."""

from __future__ import annotations

import argparse

from qpe.cli.data_radar import add_grid_options, check_output, grid_from_options


def register(commands: argparse._SubParsersAction) -> None:
    pair = commands.add_parser(
        "pair", help="pair an IR dataset with a rain dataset by time on one grid",
        description="Match each IR frame to the nearest rain time within a tolerance and write the paired "
                    "dataset. Both inputs must share a grid unless --region or --grid-like gives a target.",
    )
    pair.add_argument("--ir", required=True, help="IR dataset (qpe data seviri output)")
    pair.add_argument("--rain", required=True, help="rain dataset (qpe data radar / crr output)")
    pair.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    pair.add_argument("--tolerance-min", type=float, default=5.0,
                      help="largest IR-rain time difference for a match, minutes (default 5)")
    add_grid_options(pair, required=False)
    pair.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qpe.data.paired import open_paired, save_paired
    from qpe.data.pairing import pair, tolerance_from_minutes
    from qpe.data.readers.inputs import resolve_target

    tolerance = tolerance_from_minutes(args.tolerance_min)
    check_output(args, [args.ir, args.rain])
    grid, region = grid_from_options(args)
    target = resolve_target(grid, region, args.pixel_km)
    ds = pair(open_paired(args.ir), open_paired(args.rain), tolerance, target)
    print(f"paired {ds.attrs['pair_matched']} times; unmatched: {ds.attrs['pair_unmatched_ir']} IR, "
          f"{ds.attrs['pair_unmatched_rain']} rain (tolerance {args.tolerance_min:g} min)")
    print(f"wrote {save_paired(ds, args.out)} ({ds.sizes['y']} x {ds.sizes['x']} pixels)")
    return 0
