"""``qpe estimate``: run a checkpoint on chosen times of a dataset and write the estimates."""

from __future__ import annotations

import argparse

from qpe.cli import positive_int
from qpe.inference.precision import PRECISIONS
from qpe.models.sampling import SAMPLERS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "estimate", help="estimate rain with a checkpoint (or NWC SAF CRR) on chosen times",
        description="Estimate rain rate (member, time, y, x) in mm/h with a checkpoint on chosen times of a "
        "paired dataset, and write it as NetCDF. With --crr instead of --checkpoint, NWC SAF CRR files are "
        "regridded onto the dataset's grid and written in the same layout (one member).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint folder (card.yaml + weights.safetensors)")
    source.add_argument("--crr", metavar="GLOB",
                        help="instead of a checkpoint: NWC SAF CRR files, regridded onto the data's grid")
    p.add_argument("--data", required=True, help="paired dataset with IR (.zarr or .nc), or a catalog name")
    p.add_argument("--time", action="append", required=True, metavar="ISO",
                   help="valid time, UTC (repeat for several), e.g. 2021-06-01T03:00")
    p.add_argument("--members", type=positive_int, default=1, help="ensemble members (default 1)")
    p.add_argument("--steps", type=positive_int, default=None, help="sampler steps K (default: the card's)")
    p.add_argument("--sampler", choices=tuple(SAMPLERS), default=None,
                   help="sampler (default: the card's)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="auto",
                   help="numerics of the networks: auto (bf16 autocast on a GPU, float32 on the CPU), "
                   "float32, or bfloat16 (about 2x faster on a CPU with bf16 units, rain differs by up to "
                   "~0.3 mm/h; docs/performance.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (default 0)")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels for large grids (default 256)")
    p.add_argument("--cache-dir", default=None, help="estimate cache (default $QPE_CACHE_DIR or ~/.cache/qpe)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the estimate cache")
    p.add_argument("--out", required=True, help="output NetCDF file")
    p.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    """One clear error, before any model is loaded, for a bad ``--time``, ``--out`` or ``--cache-dir``."""
    from qpe.data.output_paths import check_file_output, check_folder_output
    from qpe.data.times import parse_utc_time

    for value in args.time:
        parse_utc_time(value, "--time")
    check_file_output(args.out, [args.data])
    if args.cache_dir and not args.no_cache:
        check_folder_output(args.cache_dir, [args.data], option="--cache-dir")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    from qpe.data.catalog import resolve_data
    from qpe.data.output_paths import check_file_output
    from qpe.data.paired import open_paired
    from qpe.files import atomic_write
    from qpe.inference.cache import EstimateCache
    from qpe.inference.engine import EstimateConfig, estimate
    from qpe.inference.reference import CrrReference
    from qpe.models import load

    data = resolve_data(args.data, progress=True)
    check_file_output(args.out, [data])  # a catalog name is known as a path only now
    config = EstimateConfig(members=args.members, steps=args.steps, sampler=args.sampler, seed=args.seed,
                            device=args.device, tile=args.tile, precision=args.precision)
    cache = None if args.no_cache else EstimateCache(args.cache_dir)
    if args.crr:  # a reference product through the same call as a model
        out = CrrReference(args.crr).estimate(open_paired(data), args.time, config, cache=cache)
    else:
        model = load(args.checkpoint)
        asked = {"--members": args.members if args.members != 1 else None, "--steps": args.steps,
                 "--sampler": args.sampler}
        ignored = [f"{option} {value}" for option, value in asked.items() if value is not None]
        if ignored and not model.card.is_ensemble:
            print(f"note: {model.card.name} is deterministic (one field per time): {', '.join(ignored)} ignored")
        out = estimate(model, open_paired(data, require=("ir",)), args.time, config, cache=cache)
    # whole or not at all: a run killed while writing keeps the previous file
    path = atomic_write(args.out, lambda tmp: out.to_netcdf(tmp, engine="netcdf4"))
    rain = out["rain"].values
    print(f"wrote {path}: {out.attrs['model']} ({out.attrs['family']}), {rain.shape[0]} member(s) x "
          f"{rain.shape[1]} time(s) on {rain.shape[2]} x {rain.shape[3]} pixels, device {out.attrs['device']}, "
          f"max {float(rain[~(rain != rain)].max()):.1f} mm/h")
    return 0
