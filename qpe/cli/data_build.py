"""``qpe data build --out X.zarr --start ... --end ...``: a paired archive of a period (qpe.data.archive).

The options are added to ``qpe data build`` (:mod:`qpe.cli.data_catalog`), which builds a catalog entry
when given its name and an archive of a period otherwise.
"""

from __future__ import annotations

import argparse

#: Options that belong to an archive build (not to a catalog entry's).
PERIOD_OPTIONS = ("out", "start", "end", "month", "source", "seviri", "radar", "size", "seed", "config", "channels",
                  "scheduler", "workers", "region", "grid_like", "radar_source", "compression")


def add_arguments(build: argparse.ArgumentParser) -> None:
    """Add the options of an archive build to the ``qpe data build`` parser."""
    group = build.add_argument_group(
        "archive of a period",
        "Build one chunked Zarr archive of a period in blocks, in parallel on Dask; a build that was "
        "interrupted (even killed) continues with the blocks it had not finished when run again with the "
        "same options. The manifest next to it (NAME.manifest.json) lists every time without a pair and "
        "every input rejected, with the reason.",
    )
    group.add_argument("--out", metavar="X.zarr", help="the archive (a .zarr store)")
    group.add_argument("--start", metavar="ISO", help="first time, UTC (e.g. 2021-07-01)")
    group.add_argument("--end", metavar="ISO", help="last time, UTC, included; a date alone means the whole day")
    group.add_argument("--month", metavar="YYYY-MM", help="the whole of a month (instead of --start/--end)")
    group.add_argument("--source", default=None, metavar="NAME",
                       help="synthetic (default) or files (--seviri and --radar); qpe.data.archive.ARCHIVE_SOURCES")
    group.add_argument("--block-hours", type=float, default=24.0,
                       help="hours per block, the unit of work and of resumption (default 24)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (default: local threads); "
                            "its workers must see the same paths")
    group.add_argument("--workers", type=int, help="local threads (default: the CPU count)")
    group.add_argument("--compression", metavar="NAME",
                       help="chunk compression: none (default; raw chunks, streamed at the in-memory rate) or "
                            "lz4 (Blosc LZ4, ~0.6 of the disk, each chunk decoded when read); "
                            "qpe.data.archive.COMPRESSIONS")
    synth = build.add_argument_group("source synthetic")
    synth.add_argument("--config", help="YAML file of synthetic settings (SynthConfig; hours and start are the "
                                        "blocks')")
    synth.add_argument("--size", type=int, help="side of the square grid, pixels (default 128)")
    synth.add_argument("--seed", type=int, help="random seed (default 0)")
    synth.add_argument("--channels", nargs="+", metavar="CHANNEL",
                       help="SEVIRI IR channels (default all seven, WV_062 ... IR_134)")
    files = build.add_argument_group("source files")
    files.add_argument("--seviri", metavar="GLOB", help="SEVIRI files (native, HRIT, EUMETSAT NetCDF, CF)")
    files.add_argument("--radar", metavar="GLOB", help="radar files (OPERA, KNMI, MeteoSwiss, FMI)")
    files.add_argument("--radar-source", help="opera, knmi, mch or fmi (default: told from the files)")
    files.add_argument("--region", help="target region (default: the radar source's)")
    files.add_argument("--pixel-km", type=float, default=2.0, help="pixel size of the region grid, km (default 2)")
    files.add_argument("--grid-like", metavar="DATASET", help="take the target grid from this dataset")
    files.add_argument("--method", default="bilinear", help="SEVIRI resampling: bilinear (default), nearest, auto")
    files.add_argument("--parallax", action="store_true", help="correct the parallax of cloud tops")


def is_archive_build(args: argparse.Namespace) -> bool:
    """Whether any option of an archive build was given."""
    return any(getattr(args, name, None) is not None for name in PERIOD_OPTIONS)


def source_from_args(args: argparse.Namespace):
    """The :data:`~qpe.data.archive.ARCHIVE_SOURCES` entry the options describe."""
    from qpe.data.archive import ARCHIVE_SOURCES, FileSource, SyntheticSource
    from qpe.errors import InputError

    name = args.source or ("files" if args.seviri or args.radar else "synthetic")
    if name not in ARCHIVE_SOURCES:
        raise InputError(f"unknown archive source {name!r}; known: {', '.join(ARCHIVE_SOURCES)}")
    if name == SyntheticSource.name:
        from qpe.data.synthetic import SynthConfig

        if args.seviri or args.radar:
            raise InputError("--seviri and --radar go with --source files")
        config = SynthConfig.from_yaml(args.config) if args.config else SynthConfig()
        given = {"size": args.size, "seed": args.seed, "channels": tuple(args.channels) if args.channels else None}
        return SyntheticSource(config.replace(**{k: v for k, v in given.items() if v is not None}))
    if not (args.seviri and args.radar):
        raise InputError("--source files needs --seviri GLOB and --radar GLOB")
    clash = [f"--{n}" for n in ("config", "size", "seed") if getattr(args, n) is not None]
    if clash:
        raise InputError(f"{', '.join(clash)} belong to --source synthetic")
    options = {"channels": tuple(args.channels)} if args.channels else {}
    return FileSource(args.seviri, args.radar, args.radar_source, args.region, args.pixel_km, args.grid_like,
                      method=args.method, parallax=args.parallax, **options)


def run(args: argparse.Namespace) -> int:
    from qpe.data.archive import DEFAULT_COMPRESSION, build_archive, month_period
    from qpe.errors import InputError

    if not args.out:
        raise InputError("an archive build needs --out X.zarr (or give a catalog name)")
    if args.month and (args.start or args.end):
        raise InputError("give --month or --start/--end, not both")
    start, end = month_period(args.month) if args.month else (args.start, args.end)
    if not (start and end):
        raise InputError("an archive build needs --start and --end (or --month)")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    source = source_from_args(args)
    built = build_archive(args.out, source, start, end, block_hours=args.block_hours, scheduler=args.scheduler,
                          workers=args.workers, progress=True,
                          compression=args.compression or DEFAULT_COMPRESSION)
    print(f"archive {built.path}: {built.paired} of {built.times} times paired, {built.blocks} blocks "
          f"({built.built} built now, {built.blocks - built.built} done before); manifest {built.manifest} "
          f"({built.rows} rows: times without a pair, inputs rejected)")
    return 0
