"""``qpe data synth --out PATH``: generate the synthetic benchmark (or IR for real radar rain)."""

from __future__ import annotations

import argparse

from qpe.cli.data_radar import check_output


def register(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser(
        "synth",
        help="generate a synthetic paired IR/radar dataset (deterministic for a seed)",
        description="Generate a synthetic paired dataset: rain from the rain model (or from OPERA files with "
        "--rain-from) and SEVIRI IR from the forward model, every 15 minutes. Options left out take the "
        "value of --config, else the calibrated defaults.",
    )
    synth.add_argument("--out", required=True, help="output dataset (.zarr directory or .nc file)")
    synth.add_argument("--hours", type=float, help="length in hours, 4 frames per hour (default 6)")
    synth.add_argument("--size", type=int, help="side of the square grid, pixels (default 128)")
    synth.add_argument("--seed", type=int, help="random seed (default 0)")
    synth.add_argument("--pixel-km", type=float, help="pixel size, km (default 2, OPERA's)")
    synth.add_argument("--channels", nargs="+", metavar="CHANNEL",
                       help="SEVIRI channels (default all seven: WV_062 ... IR_134)")
    synth.add_argument("--start", help="first time, ISO 8601 UTC (default 2021-06-01T00:00)")
    synth.add_argument("--config", help="YAML file of synthetic settings (see SynthConfig.to_yaml)")
    synth.add_argument("--rain-from", metavar="GLOB", nargs="+",
                       help="semi-synthetic: take the rain from radar files (OPERA, KNMI, MeteoSwiss or FMI, "
                       "told from the files; see qpe data radar) and simulate only the IR; the grid and "
                       "times then come from the files")
    synth.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qpe.data.paired import save_paired, summarize
    from qpe.data.synthetic import SynthConfig, generate_paired, semisynthetic_paired
    from qpe.errors import InputError

    config = SynthConfig.from_yaml(args.config) if args.config else SynthConfig()
    given = {
        "hours": args.hours, "size": args.size, "seed": args.seed, "pixel_km": args.pixel_km,
        "channels": tuple(args.channels) if args.channels else None, "start": args.start,
    }
    if args.rain_from:
        clash = [f"--{name}" for name in ("hours", "size", "start") if given[name] is not None]
        if clash:
            raise InputError(
                f"{', '.join(clash)} cannot be combined with --rain-from (the radar files set them)"
            )
    config = config.replace(**{k: v for k, v in given.items() if v is not None})
    check_output(args, [args.config] if args.config else [])
    if args.rain_from:
        check_output(args, args.rain_from, "radar files")

    try:
        if args.rain_from:
            ds = semisynthetic_paired(args.rain_from, config, progress=True)
        else:
            ds = generate_paired(config, progress=True)
    except MemoryError:
        raise InputError(
            "not enough memory to simulate this dataset: use fewer --hours, a smaller --size or fewer "
            "--rain-from files"
        ) from None
    path = save_paired(ds, args.out)
    info = summarize(ds)
    rain = info.get("rain", {})
    times = info["times"]
    print(
        f"wrote {path}: {times['count']} frames {times['first']}..{times['last']} UTC, "
        f"{info['grid']}, channels {' '.join(info['channels'])}; "
        f"rain wet (>0.1 mm/h) {rain.get('wet_fraction_0.1', float('nan')):.1%}, "
        f"p99 {rain.get('wet_p99_mm_h')} mm/h, radar coverage {rain.get('coverage', float('nan')):.0%}"
    )
    return 0

