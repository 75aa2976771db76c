"""``qpe evaluate``: score checkpoints (and NWC SAF CRR) against radar over a period; write tables, a page."""

from __future__ import annotations

import argparse

from qpe.cli import positive_int
from qpe.inference.precision import PRECISIONS
from qpe.models.sampling import SAMPLERS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score models against radar over a period: scores.nc/.csv, figures, report.html",
        description="Run every checkpoint (and NWC SAF CRR files and folders of your own estimates, each as "
        "one more model) over a period of a "
        "paired dataset, score them against the radar with the pysteps-based scores of qpe.verify, and "
        "write scores.nc, scores.csv, figures/*.png and report.html to --out. Dates run in parallel with "
        "Dask: local threads by default, a distributed cluster with --scheduler.",
    )
    p.add_argument("--data", required=True, help="paired dataset (.zarr / .nc) or a catalog name, e.g. demo")
    p.add_argument(
        "--checkpoints",
        nargs="+",
        default=[],
        metavar="DIR",
        help="checkpoint folders, or folders holding checkpoints (e.g. models/demo)",
    )
    p.add_argument("--crr", metavar="GLOB", help="NWC SAF CRR NetCDF files, scored as the model nwcsaf_crr")
    p.add_argument(
        "--estimates",
        nargs="+",
        default=[],
        metavar="DIR",
        help="folders of your own estimates (NetCDF/Zarr files of rain (member, time, y, x) in mm/h, as "
        "qpe estimate writes them), each scored as one model named after its folder; only the times they "
        "hold are scored",
    )
    p.add_argument(
        "--estimates-regrid",
        metavar="METHOD",
        default=None,
        help="how --estimates on another grid than the data's are regridded: nearest, bilinear, mean or crop "
        "(qpe.inference.external.REGRID_METHODS; default: refuse another grid)",
    )
    p.add_argument("--start", metavar="ISO", help="first valid time, UTC (default: the data's first)")
    p.add_argument("--end", metavar="ISO", help="last valid time, UTC, inclusive (default: the data's last)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--members", type=positive_int, default=4, help="ensemble members per time (default 4)")
    p.add_argument("--steps", type=positive_int, default=None, help="sampler steps K (default: each card's)")
    p.add_argument(
        "--sampler",
        choices=tuple(SAMPLERS),
        default=None,
        help="sampler (default: each card's; must suit every stochastic model given)",
    )
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="auto",
                   help="numerics of the networks: auto (bf16 autocast on a GPU, float32 on the CPU), "
                   "float32, or bfloat16 (about 2x faster on a CPU with bf16 units, rain differs by up to "
                   "~0.3 mm/h; docs/performance.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (default 0)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels for large grids (default 256)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (default: local threads); the "
        "workers read --data and the checkpoints from the same paths",
    )
    p.add_argument("--workers", type=positive_int, default=None, help="local threads (default: one per CPU)")
    p.add_argument("--chunk-times", type=positive_int, default=8, help="most times per task (default 8)")
    p.add_argument(
        "--thresholds", type=float, nargs="+", metavar="MM_H", help="thresholds, mm/h (default 0.1 1 5 10)"
    )
    p.add_argument(
        "--scales-km", type=float, nargs="+", metavar="KM", help="FSS scales, km (default 2 4 8 16 32 64)"
    )
    p.add_argument("--sal", action="store_true", help="also compute SAL (slower)")
    p.add_argument(
        "--compare-to",
        metavar="MODEL",
        help="reference model of the scorecard (scorecard.csv, report): every other model's paired "
        "differences from it (default: every pair of models)",
    )
    p.add_argument(
        "--displacement",
        action="store_true",
        help="also compute the optical-flow displacement from estimate to radar and the error after "
        "warping (slower: seconds per field and member)",
    )
    p.add_argument(
        "--regimes",
        action="store_true",
        help="also split the pixel-wise scores by regime: cloud-top temperature, day/night, convective/"
        "stratiform, radar quality (one pass of those scores per regime)",
    )
    p.add_argument(
        "--quality-weight",
        action="store_true",
        help="weight each pixel by the radar quality index (OPERA QIND, 0..1; 1 where OPERA gives none) in "
        "the pixel-wise scores: categorical, continuous, CRPS, histograms, extremes, regimes (not FSS, "
        "spectra, SAL, displacement, energy/variogram); needs rain_quality in the data",
    )
    p.add_argument("--score-config", metavar="YAML", help="score settings (qpe.verify.ScoreConfig fields)")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples of days for confidence intervals (0: none; default 1000)",
    )
    p.add_argument(
        "--cache-dir", default=None, help="estimate cache (default $QPE_CACHE_DIR or ~/.cache/qpe)"
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the estimate cache")
    p.set_defaults(func=run)


def _score_config(args: argparse.Namespace):
    import dataclasses

    from qpe.verify import ScoreConfig
    from qpe.verify.aggregate import OPTIONAL_FAMILIES

    config = ScoreConfig.from_yaml(args.score_config) if args.score_config else ScoreConfig()
    changes = {}
    if args.thresholds:
        changes["thresholds"] = tuple(args.thresholds)
    if args.scales_km:
        changes["scales_km"] = tuple(args.scales_km)
    asked = tuple(f for f in OPTIONAL_FAMILIES if getattr(args, f, False) and f not in config.families)
    if asked:
        changes["families"] = (*config.families, *asked)
    if getattr(args, "quality_weight", False):
        changes["quality_weight"] = True
    return dataclasses.replace(config, **changes)


def _summary(table) -> str:
    from qpe.evaluation.report import headline_levels

    threshold, scale = headline_levels(table)
    wanted = [
        ("CSI", threshold, None),
        ("ETS", threshold, None),
        ("BIAS", threshold, None),
        ("FSS", threshold, scale),
        ("RMSE", None, None),
        ("CSI_matched", threshold, None),
        ("CRPS_fair", None, None),
    ]
    rows = {}
    for metric, thr, sc in wanted:
        sel = table["metric"] == metric
        sel &= (table["threshold"] == thr) if thr is not None else table["threshold"].isna()
        sel &= (table["scale"] == sc) if sc is not None else table["scale"].isna()
        label = metric + (f">{thr:g}" if thr is not None and sc is None else "")
        label += f">={thr:g}@{sc:g}km" if sc is not None else ""
        for _, row in table[sel].iterrows():
            rows.setdefault(row["model"], {})[label] = row["value"]
    if not rows:
        return ""
    labels = list(dict.fromkeys(k for r in rows.values() for k in r))
    width = max(len(m) for m in rows) + 2
    lines = ["".join([f"{'model':<{width}}", *(f"{c:>16}" for c in labels)])]
    for model, values in rows.items():
        cells = (
            f"{values[c]:>16.3f}" if c in values and values[c] == values[c] else f"{'-':>16}" for c in labels
        )
        lines.append("".join([f"{model:<{width}}", *cells]))
    return "\n".join(lines)


def check_arguments(args: argparse.Namespace) -> None:
    """One clear error, before any model is loaded, for a bad ``--start``/``--end``, ``--out`` or
    ``--cache-dir``."""
    from qpe.data.output_paths import check_folder_output
    from qpe.data.times import parse_utc_time

    for option, value in (("--start", args.start), ("--end", args.end)):
        if value is not None:
            parse_utc_time(value, option)
    inputs = [args.data, *args.checkpoints, *args.estimates]
    check_folder_output(args.out, inputs)
    if args.cache_dir and not args.no_cache:
        check_folder_output(args.cache_dir, inputs, option="--cache-dir")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    from qpe.data.catalog import resolve_data
    from qpe.data.paired import describe_times
    from qpe.errors import InputError
    from qpe.evaluation import (
        EvaluationConfig,
        accumulate_period,
        score_table,
        summarize_scores,
        write_outputs,
    )
    from qpe.inference.cache import EstimateCache
    from qpe.inference.engine import EstimateConfig
    from qpe.inference.estimators import find_estimators
    from qpe.inference.external import ExternalEstimates

    if not args.checkpoints and not args.crr and not args.estimates:
        raise InputError(
            "nothing to evaluate: give --checkpoints DIR [DIR ...], --crr GLOB and/or --estimates DIR [DIR ...]"
        )
    estimators = find_estimators(args.checkpoints, crr=args.crr) if args.checkpoints or args.crr else []
    estimators += [ExternalEstimates(folder, regrid=args.estimates_regrid) for folder in args.estimates]
    names = [e.name for e in estimators]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise InputError(f"two models are both called {duplicate!r}: rename a checkpoint's card or an estimates folder")
    if args.compare_to is not None and args.compare_to not in names:
        raise InputError(f"--compare-to {args.compare_to!r} is not among the models: {', '.join(names)}")
    data = resolve_data(args.data, progress=True)
    config = EvaluationConfig(
        scores=_score_config(args),
        estimate=EstimateConfig(
            members=args.members,
            steps=args.steps,
            sampler=args.sampler,
            seed=args.seed,
            device=args.device,
            tile=args.tile,
            precision=args.precision,
        ),
        chunk_times=args.chunk_times,
        n_resamples=args.bootstrap,
        compare_to=args.compare_to,
    )
    cache = None if args.no_cache else EstimateCache(args.cache_dir)
    print(f"evaluating {', '.join(e.name for e in estimators)} on {data}", flush=True)
    if config.scores.quality_weight:
        print("pixel-wise scores weighted by the radar quality index (QIND; weight 1 where OPERA gives none)")
    accumulators, info = accumulate_period(
        data,
        estimators,
        args.start,
        args.end,
        config,
        scheduler=args.scheduler,
        workers=args.workers,
        cache=cache,
    )
    scores = summarize_scores(accumulators, info, config)
    outputs = write_outputs(scores, args.out, accumulators=accumulators)
    skipped = len(info["skipped"])
    attrs = scores.attrs
    left_out = f"; left out {skipped} time(s) of the period that lack the IR frames or an estimate a model needs"
    print(
        f"scored {attrs['n_times']} times ({attrs['period_start']} .. {attrs['period_end']} UTC, "
        f"{attrs['n_days']} day(s)){left_out if skipped else ''}"
    )
    for name, missing in info["not_held"].items():
        print(f"{name}: no estimate at {missing.size} time(s) of the period ({describe_times(missing)}), "
              "left out for every model")
    print(f"confidence intervals: {scores.attrs['confidence_interval']}")
    print(_summary(score_table(scores)))
    print(
        f"wrote {outputs.scores_nc}, {outputs.scores_csv.name}, "
        + (f"{outputs.scorecard.name}, " if outputs.scorecard else "")
        + f"{len(outputs.figures)} figures in "
        f"{outputs.folder / 'figures'}, {outputs.report.name}"
    )
    return 0
