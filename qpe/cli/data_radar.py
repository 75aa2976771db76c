"""``qpe data radar --in GLOB [--source opera|knmi|mch|fmi] --out PATH``: radar files -> radar dataset.

OPERA ODIM HDF5 composites, or the 5-minute files of the KNMI, MeteoSwiss and FMI networks (through
pysteps' importers), at 15-minute steps on a 2 km grid of the OPERA projection (by default the source's
region: france, netherlands, switzerland, finland).
"""

from __future__ import annotations

import argparse


def add_grid_options(
    parser: argparse.ArgumentParser, default_region: str | None = None, required: bool = True,
    default_help: str | None = None,
) -> None:
    """``--region NAME [--pixel-km KM] | --grid-like PATH``: the target grid of a command."""
    target = parser.add_mutually_exclusive_group(required=required and default_region is None)
    default = default_help or default_region or "none"
    target.add_argument("--region", default=default_region,
                        help=f"named region, e.g. france, europe (default: {default})")
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
        "radar",
        help="read radar files (OPERA, KNMI, MeteoSwiss, FMI) into a rain dataset, with quality control",
        description="Read radar rain into a radar dataset in the paired layout: OPERA ODIM HDF5 rain-rate "
                    "composites, or the 5-minute files of the KNMI (HDF5 accumulations), MeteoSwiss (AQC GIF "
                    "accumulations) and FMI (PGM reflectivity) networks through pysteps' importers, "
                    "converted "
                    "to mm/h, at 15-minute steps, with outliers flagged, regridded onto the source's region "
                    "at 2 km on the OPERA projection (docs/data.md).",
    )
    radar.add_argument("--in", dest="inputs", required=True, nargs="+", metavar="GLOB",
                       help="radar files or glob pattern(s), e.g. 'opera/20180824/*.hdf' (quote it)")
    radar.add_argument("--source", type=str.lower, metavar="SOURCE",
                       help="opera, knmi, mch or fmi (default: told from the files)")
    add_grid_options(radar, default_region=None, required=False,
                     default_help="the source's: france, netherlands, switzerland, finland")
    radar.add_argument("--zr", nargs=2, type=float, metavar=("A", "B"),
                       help="Z-R relation Z = A R^B for reflectivity (fmi; default 223 1.53, pysteps')")
    radar.add_argument("--step-rule", choices=("instant", "mean"), default=None,
                       help="15-minute steps of 5-minute files: the file at the step (instant, default) or "
                            "the mean of the three ending at it (mean); networks only")
    radar.add_argument("--max-rate", type=float, default=300.0,
                       help="outlier threshold, mm/h (default 300, about 63 dBZ)")
    radar.add_argument("--outliers", choices=("mask", "clip"), default="mask",
                       help="set outliers to NaN (mask, default) or clip them to --max-rate")
    radar.add_argument("--min-quality", type=float, default=None, metavar="Q",
                       help="set rain to NaN where the quality index is below Q (0..1; opera only)")
    radar.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    radar.set_defaults(func=run)


def _source_options(args: argparse.Namespace, source: str) -> dict:
    """The reader options that depend on the source; one line for an option the source cannot take."""
    from qpe.data.readers.networks import check_zr, get_network
    from qpe.errors import InputError

    if source == "opera":
        for option, value in (("--zr", args.zr), ("--step-rule", args.step_rule)):
            if value is not None:
                raise InputError(
                    f"{option} does not apply to OPERA composites (15-minute rain rates already)")
        return {"min_quality": args.min_quality}
    if args.min_quality is not None:
        raise InputError(f"--min-quality needs a quality index, which {source} files do not have")
    return {"zr": check_zr(args.zr, get_network(source)), "step_rule": args.step_rule or "instant"}


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from qpe.data.paired import save_paired
    from qpe.data.readers.inputs import resolve_paths, resolve_target
    from qpe.data.readers.opera import check_qc_settings
    from qpe.data.readers.radar_sources import (
        DEFAULT_REGIONS,
        SOURCE_FILES,
        check_source,
        detect_source,
        read_radar_source,
    )
    from qpe.errors import InputError

    source = check_source(args.source) if args.source else None
    check_output(args, args.inputs, SOURCE_FILES[source] if source else "radar files")
    undetected = None
    if source is None:
        try:
            source = detect_source(resolve_paths(args.inputs, "radar files"))
        except InputError as err:  # reported after the settings, which are checked first
            undetected = err
    check_qc_settings(args.max_rate, args.outliers, args.min_quality)
    if args.grid_like is None:
        region = args.region if args.region is not None else DEFAULT_REGIONS[source or "opera"]
        resolve_target(None, region, args.pixel_km)
    if undetected is not None:
        raise undetected
    options = _source_options(args, source)
    grid, region = grid_from_options(args)
    if grid is None and region is None:
        region = DEFAULT_REGIONS[source]
    ds = read_radar_source(
        args.inputs, source, grid=grid, region=region, pixel_km=args.pixel_km, max_rate=args.max_rate,
        outliers=args.outliers, progress=True, **options,
    )
    times = pd.DatetimeIndex(ds["time"].values)
    span = f"{times[0]:%Y-%m-%dT%H:%M} .. {times[-1]:%Y-%m-%dT%H:%M} UTC"
    if source == "opera":
        print(f"read {times.size} composites, {span}")
    else:
        print(f"read {times.size} 15-minute steps ({ds.attrs['rain_step_rule']}) of {source} files, {span}"
              + (f"; left out: {ds.attrs['steps_left_out']}" if "steps_left_out" in ds.attrs else ""))
    counts = ds["qc_outliers"].values
    action = "set to NaN" if args.outliers == "mask" else f"clipped to {args.max_rate:g} mm/h"
    per_time = ", ".join(f"{t:%H:%M} {n}" for t, n in zip(times, counts, strict=True) if n)
    print(f"outliers above {args.max_rate:g} mm/h: {int(counts.sum())} pixels {action}"
          + (f" ({per_time})" if per_time else ""))
    if "qc_low_quality" in ds:
        print(f"quality below {args.min_quality:g}: {int(ds['qc_low_quality'].sum())} pixels set to NaN")
    print(f"wrote {save_paired(ds, args.out)} ({ds.sizes['y']} x {ds.sizes['x']} pixels)")
    return 0
