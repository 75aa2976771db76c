"""``qpe frames``: what the past IR frames contribute to a checkpoint's estimates (persistence replacement)."""

from __future__ import annotations

import argparse

from qpe.cli import positive_int
from qpe.models.sampling import SAMPLERS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "frames", help="what the past IR frames contribute: estimates with frame k replaced by the latest",
        description="For a checkpoint reading T > 1 IR frames: estimate the chosen times again with each past "
        "frame k (1 = oldest) replaced by frame T, and with every past frame replaced (all_past), with the same "
        "seed; write the estimates, their change from the full-input estimate (mm/h) and their scores against "
        "the radar (RMSE, CSI, FSS ...) as NetCDF, and print a table. See docs/verification.md.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder (card.yaml + weights.safetensors)")
    p.add_argument("--data", required=True, help="paired dataset with IR and radar (.zarr or .nc), or a catalog name")
    p.add_argument("--time", action="append", required=True, metavar="ISO",
                   help="valid time, UTC (repeat for several), e.g. 2021-06-01T03:00")
    p.add_argument("--members", type=positive_int, default=1, help="ensemble members (default 1)")
    p.add_argument("--steps", type=positive_int, default=None, help="sampler steps K (default: the card's)")
    p.add_argument("--sampler", choices=tuple(SAMPLERS), default=None, help="sampler (default: the card's)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling noise, the same for every variant")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels for large grids (default 256)")
    p.add_argument("--thresholds", type=float, nargs="+", metavar="MM_H",
                   help="score thresholds, mm/h (default 0.1 1 5 10)")
    p.add_argument("--scales-km", type=float, nargs="+", metavar="KM", help="FSS scales, km (default 2 4 8 16 32 64)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap replicates of the times for intervals of the score changes (paired: every "
                   "variant scored on the same draw; needs 2 or more times; 0: none; default 1000)")
    p.add_argument("--csv", metavar="PATH", help="also write the printed table (with the intervals) as CSV")
    p.add_argument("--cache-dir", default=None, help="estimate cache (default $QPE_CACHE_DIR or ~/.cache/qpe)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the estimate cache")
    p.add_argument("--out", required=True, help="output NetCDF file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qpe.cli.estimate import check_arguments

    check_arguments(args)  # --time, --out, --cache-dir: one line before any model is loaded
    import dataclasses

    import pandas as pd

    from qpe.data.catalog import resolve_data
    from qpe.data.output_paths import check_file_output
    from qpe.data.paired import open_paired
    from qpe.errors import InputError
    from qpe.files import atomic_write
    from qpe.inference.cache import EstimateCache
    from qpe.inference.engine import EstimateConfig
    from qpe.inference.frames import (
        FRAME_SCORE_FAMILIES,
        check_past_frames,
        frame_contributions,
        frame_score_table,
    )
    from qpe.models import load
    from qpe.verify import ScoreConfig

    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be 0 (no intervals) or more, got {args.bootstrap}")
    model = load(args.checkpoint)
    check_past_frames(model.card)  # a T = 1 model is refused before any data is read or built
    data = resolve_data(args.data, progress=True)
    check_file_output(args.out, [data, args.checkpoint])  # a catalog name is known as a path only now
    if args.csv:
        check_file_output(args.csv, [data, args.checkpoint, args.out], option="--csv")
    config = EstimateConfig(members=args.members, steps=args.steps, sampler=args.sampler, seed=args.seed,
                            device=args.device, tile=args.tile)
    scores = ScoreConfig(families=FRAME_SCORE_FAMILIES)
    scores = dataclasses.replace(scores, thresholds=tuple(args.thresholds or scores.thresholds),
                                 scales_km=tuple(args.scales_km or scores.scales_km))
    cache = None if args.no_cache else EstimateCache(args.cache_dir)
    out = frame_contributions(model, open_paired(data, require=("ir", "rain")), args.time, config, scores,
                              cache=cache, progress=True, n_resamples=args.bootstrap)
    path = atomic_write(args.out, lambda tmp: out.to_netcdf(tmp, engine="netcdf4"))
    table = frame_score_table(out)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string())
    print(f"intervals of the changes: {out.attrs['change_ci']}")
    if args.csv:
        atomic_write(args.csv, lambda tmp: table.to_csv(tmp))
    print(f"wrote {path}: {out.attrs['model']} (T = {out.attrs['frames']}), {out.sizes['variant']} variants x "
          f"{out.sizes['member']} member(s) x {out.sizes['time']} time(s)" + (f"; {args.csv}" if args.csv else ""))
    return 0
