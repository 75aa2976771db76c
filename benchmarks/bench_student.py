"""A distilled student against its teacher: the study's headline scores with intervals, and the time of a
dashboard estimate.

Scores, on the study's held-out synthetic benchmark (studies/demo.yaml, benchmark ``synthetic``: catalog
set ``holdout``, 96 times every 75 minutes of 6 days, 4 members, 200 bootstrap resamples of the day),
through the evaluation of ``qpe evaluate`` and ``qpe study`` (``accumulate_period``, ``summarize_scores``
and the study's headline): the teacher at its card's sampler and K, the teacher with plain Euler at the
student's network evaluations and below (what one gets without distillation), and the student. Each
headline score of the student is checked against the teacher's interval, and its paired difference from
the teacher's is given with its interval.

Speed: 4 members of a 256 x 256 field of the demo data (``model.sample``, as the dashboard's estimate
runs it: ``LoadedModel.predict``), torch on ``--threads`` threads, median of ``--repeats`` runs after one
untimed run.

    OMP_NUM_THREADS=2 python benchmarks/bench_student.py models/demo/flow_residual_student
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from qpe.data.catalog import resolve_data
from qpe.data.paired import open_paired
from qpe.evaluation import EvaluationConfig, accumulate_period, summarize_scores
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig
from qpe.inference.estimators import CheckpointEstimator
from qpe.models import load
from qpe.models.checkpoint import read_card
from qpe.study.config import BenchmarkSpec, StudyConfig, load_study
from qpe.study.metrics import measure_headline
from qpe.study.plan import SampledEstimator
from qpe.study.run import benchmark_times, bootstrap_unit, open_benchmark
from qpe.verify import ScoreConfig

#: The headline scores the student must keep, with how they are printed.
COLUMNS = {"csi_1": "CSI 1 mm/h", "fss_5_32": "FSS 5 mm/h 32 km", "psd_ratio": "spectral ratio 8-32 km",
           "wet_fraction_ratio": "wet fraction / radar", "p99_ratio": "p99 / radar", "crps": "fair CRPS (mm/h)"}


def estimators(students: list[Path], teacher: Path) -> list[SampledEstimator]:
    """The teacher at its card's K, the teacher with Euler at K = 1 .. the students' largest K, and each
    student (named by its folder)."""
    s_cards, t_card = [read_card(s) for s in students], read_card(teacher)  # cards only: no weights
    t_inner = CheckpointEstimator(teacher)
    out = [SampledEstimator(t_inner, t_card.sampling.steps, t_card.sampling.sampler,
                            f"{t_card.name}_{t_card.sampling.sampler}_k{t_card.sampling.steps}")]
    out += [SampledEstimator(t_inner, k, "euler", f"{t_card.name}_euler_k{k}")
            for k in range(1, max(c.sampling.steps for c in s_cards) + 1)]
    out += [SampledEstimator(CheckpointEstimator(path), card.sampling.steps, card.sampling.sampler,
                             f"{path.name}_euler_k{card.sampling.steps}")
            for path, card in zip(students, s_cards)]
    return out


def score(students: list[Path], teacher: Path, spec: BenchmarkSpec, config: StudyConfig, members: int,
          cache: Path | None) -> None:
    ds = open_benchmark(spec, progress=False)
    models = estimators(students, teacher)
    times = benchmark_times(ds, spec, max(e.frames for e in models))
    settings = EvaluationConfig(scores=ScoreConfig(thresholds=config.thresholds, scales_km=config.scales_km),
                                estimate=EstimateConfig(members=members, seed=config.seed),
                                n_resamples=config.n_resamples, confidence=config.confidence,
                                bootstrap_unit=bootstrap_unit(config, times))
    start = time.perf_counter()
    accumulators, info = accumulate_period(ds.load(), models, times=times, config=settings, progress=False,
                                           cache=EstimateCache(cache) if cache is not None else None)
    headline = measure_headline(summarize_scores(accumulators, info, settings), accumulators, settings)
    print(f"{spec.name} ({spec.data}): {len(times)} times, {members} members, "
          f"{headline.resampling.describe()}; scored in {time.perf_counter() - start:.0f} s")
    print("| model | NFE | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for e in models:
        nfe = int(headline.values.loc[e.name, "nfe"])
        cells = [headline.interval(e.name, c).format() for c in COLUMNS]
        print(f"| {e.name} | {nfe} | " + " | ".join(cells) + " |")
    reference = models[0].name
    for candidate in (e.name for e in models[-len(students):]):
        inside = {c: _inside(headline.interval(candidate, c), headline.interval(reference, c))
                  for c in COLUMNS}
        print(f"{candidate} inside {reference}'s intervals: "
              + ", ".join(f"{COLUMNS[c]} {'yes' if ok else 'NO'}" for c, ok in inside.items()))
        print(f"paired differences {candidate} - {reference} (same resampled days): "
              + ", ".join(f"{COLUMNS[c]} {headline.compare(candidate, reference, c).format('{:+.3f}')}"
                          for c in COLUMNS))
        distances = {c: distance(headline.interval(candidate, c), headline.interval(reference, c))
                     for c in COLUMNS}
        worst = max(distances, key=distances.get)
        print(f"{candidate}: largest distance from {reference} {distances[worst]:.2f} ({COLUMNS[worst]}; "
              "|student - teacher| / half-width of the teacher's interval; <= 1: inside)")


def distance(value, interval) -> float:
    """|value - the interval's value| in half-widths of ``interval`` (<= 1 when inside a symmetric one)."""
    return abs(value.value - interval.value) / ((interval.high - interval.low) / 2)


def _inside(value, interval) -> bool:
    return bool(interval.low <= value.value <= interval.high)


def speed(paths: list[Path], threads: int, repeats: int, members: int, size: int) -> None:
    torch.set_num_threads(threads)
    ds = open_paired(resolve_data("demo"), require=("ir", "rain"))
    for path in paths:
        model = load(path)
        frames = model.card.input.frames
        ir = ds["ir"].sel(channel=model.card.input.channels).isel(time=slice(0, frames), y=slice(0, size),
                                                                  x=slice(0, size))
        ir = ir.transpose("time", "channel", "y", "x").values.astype("float32")
        x = torch.from_numpy(np.ascontiguousarray(ir))[None]  # brightness temperatures, K
        settings = model.sampling(members=members)
        seconds = []
        for k in range(repeats + 1):
            start = time.perf_counter()
            model.predict(x, settings, torch.Generator().manual_seed(k))
            seconds.append(time.perf_counter() - start)
        print(f"{model.card.name}: {settings.sampler} K={settings.steps}, "
              f"{model.model.network_evaluations(settings)} network evaluations, {members} members of "
              f"{size}x{size} on {threads} threads: {statistics.median(seconds[1:]):.2f} s "
              f"(median of {repeats}; runs {', '.join(f'{s:.2f}' for s in seconds[1:])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("students", type=Path, nargs="+",
                        help="the students' checkpoint folders (of one teacher)")
    parser.add_argument("--teacher", type=Path, help="default: the first student card's distilled_from")
    parser.add_argument("--study", default="studies/demo.yaml")
    parser.add_argument("--benchmark", default="synthetic", help="the study's benchmark to score on")
    parser.add_argument("--data", help="score on this catalog dataset instead of a study benchmark (e.g. "
                        "'demo': neither trained on nor the test set, to choose a recipe without it)")
    parser.add_argument("--stride", type=int, default=1, help="with --data: every stride-th time")
    parser.add_argument("--max-times", type=int, default=96, help="with --data: at most this many times")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--no-scores", action="store_true", help="time only")
    parser.add_argument("--no-speed", action="store_true", help="score only")
    parser.add_argument("--cache-dir", type=Path, help="estimate cache (default: none)")
    args = parser.parse_args()
    card = read_card(args.students[0])
    teacher = args.teacher or (args.students[0] / card.distilled_from.path).resolve()
    if not args.no_speed:
        speed([teacher, *args.students], args.threads, args.repeats, args.members, args.size)
    if not args.no_scores:
        torch.set_num_threads(1)
        config = load_study(args.study)
        spec = (BenchmarkSpec(name=f"dev-{args.data}", data=args.data, stride=args.stride,
                              max_times=args.max_times)
                if args.data else next(b for b in config.benchmarks if b.name == args.benchmark))
        score(args.students, teacher, spec, config, args.members, args.cache_dir)


if __name__ == "__main__":
    main()
