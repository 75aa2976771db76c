"""``qpe study CONFIG.yaml --out DIR``: train, evaluate and compare every model family, and judge."""

from __future__ import annotations

import argparse
import dataclasses

from qpe.cli import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "study", help="run a model comparison study (train, evaluate, judge the hypotheses)",
        description="Train (or reuse) every model family for every T, fit the IR baseline, score them on "
        "the study's benchmarks and write study.md / study.html with the headline tables, the verdicts "
        "on the hypotheses and the figures.",
    )
    p.add_argument("config", help="study config (YAML), e.g. studies/demo.yaml")
    p.add_argument("--out", required=True, help="output folder, e.g. results/demo")
    p.add_argument("--quick", action="store_true", help="the config's quick profile (minutes, for CI)")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="models trained at once, each in its own process (default: the config's jobs, 1)")
    p.add_argument("--scheduler", help="address of a Dask distributed scheduler for the evaluations")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qpe.study import load_study, run_study

    config = load_study(args.config, quick=args.quick)
    if args.jobs is not None:
        config = dataclasses.replace(config, jobs=args.jobs)
    result = run_study(config, args.out, scheduler=args.scheduler)
    for bench in result.benchmarks:
        print(f"{bench.spec.name}: " + "; ".join(f"H{v.number} {v.label}" for v in bench.verdicts))
    for name, why in result.skipped.items():
        print(f"{name}: skipped ({why})")
    print(f"wrote {result.out / 'study.html'} and {result.out / 'study.md'}")
    return 0
