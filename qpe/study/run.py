"""Running a study: train (or reuse) every model, fit the IR baseline, score every benchmark, judge.

``run_study(load_study("studies/demo.yaml"), "results/demo")`` writes::

    results/demo/study.yaml                 the resolved settings (profile full or quick)
    results/demo/models/<model>_t<T>/       checkpoints (and their resumable .state beside them), trained
                                            ``jobs`` at a time (:mod:`~qpe.study.schedule`)
    results/demo/models/ir_rule.yaml        the fitted baseline
    results/demo/<benchmark>/               qpe evaluate outputs: scores.nc, scores.csv, figures, report.html,
                                            statistics/<model>.nc (per-day or per-time, to re-bootstrap)
    results/demo/study.md, study.html       the comparison page (headline tables, hypotheses, figures)

A second run reuses what exists: trained checkpoints are kept (an interrupted training resumes), and
estimates come from the on-disk cache (``results/demo/cache``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from qpe.data.catalog import resolve_data
from qpe.data.paired import open_paired
from qpe.errors import DatasetError, InputError, MissingInputError
from qpe.evaluation import EvaluationConfig, accumulate_period, summarize_scores, write_outputs
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig
from qpe.inference.rule import IRRuleEstimator
from qpe.models.ir_rule import fit_ir_rule
from qpe.study.config import BenchmarkSpec, StudyConfig
from qpe.study.hypotheses import Verdict, judge
from qpe.study.metrics import Headline, measure_headline
from qpe.study.plan import checkpoint_estimators, reference_variant, study_estimators, training_runs
from qpe.study.schedule import train_runs
from qpe.verify import ScoreConfig
from qpe.verify.bootstrap import choose_unit


@dataclass
class BenchmarkResult:
    """The scores, headline (with intervals) and verdicts of one benchmark."""

    spec: BenchmarkSpec
    scores: xr.Dataset
    headline: Headline
    verdicts: list[Verdict]
    times: pd.DatetimeIndex
    seconds: float

    @property
    def table(self) -> pd.DataFrame:
        """The headline values, one row per model."""
        return self.headline.values


@dataclass
class StudyResult:
    config: StudyConfig
    out: Path
    benchmarks: list[BenchmarkResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    skipped_checkpoints: dict[str, str] = field(default_factory=dict)
    training_seconds: dict[str, float] = field(default_factory=dict)


def crop_to_box(ds: xr.Dataset, box: tuple[float, float, float, float] | None) -> xr.Dataset:
    """The part of ``ds`` whose pixel centres lie in ``(xmin, ymin, xmax, ymax)`` (m)."""
    if box is None:
        return ds
    xmin, ymin, xmax, ymax = box
    x, y = ds["x"].values, ds["y"].values
    cols, rows = np.flatnonzero((x >= xmin) & (x <= xmax)), np.flatnonzero((y >= ymin) & (y <= ymax))
    if cols.size < 16 or rows.size < 16:
        raise DatasetError(f"benchmark box {box} leaves {rows.size} x {cols.size} pixels of the data")
    return ds.isel(x=slice(cols[0], cols[-1] + 1), y=slice(rows[0], rows[-1] + 1))


def open_benchmark(spec: BenchmarkSpec, progress: bool = True) -> xr.Dataset:
    """The dataset of a benchmark, built if needed and cropped to its box.

    Raises
    ------
    MissingInputError
        Its input files are absent (an optional benchmark is then skipped).
    QpeError
        Anything else that keeps it from being scored (a corrupt file, a box outside the grid, a dataset
        that does not validate): that stops a study, optional benchmark or not.
    """
    ds = open_paired(resolve_data(spec.data, progress=progress), require=("ir", "rain"))
    return crop_to_box(ds, spec.box)


def benchmark_times(ds: xr.Dataset, spec: BenchmarkSpec, frames: int) -> pd.DatetimeIndex:
    """Every ``stride``-th time that has ``frames`` - 1 predecessors at 15 minutes, at most ``max_times``."""
    from qpe.data.samples import target_indices

    index = pd.DatetimeIndex(ds["time"].values)
    usable = target_indices(ds["time"].values, frames)[:: spec.stride]
    if spec.max_times is not None and usable.size > spec.max_times:
        usable = usable[np.linspace(0, usable.size - 1, spec.max_times).round().astype(int)]
    if usable.size == 0:
        raise DatasetError(f"benchmark {spec.name}: no time has the {frames} IR frames the models need")
    return index[usable]


def bootstrap_unit(config: StudyConfig, times: pd.DatetimeIndex) -> str:
    """The study's resampling unit for a benchmark's times: as configured, or by the number of UTC days."""
    if config.bootstrap_unit != "auto":
        return config.bootstrap_unit
    return choose_unit(int(np.unique(times.values.astype("datetime64[D]")).size))


def run_study(
    config: StudyConfig,
    out: str | os.PathLike,
    *,
    scheduler=None,
    progress: bool = True,
    log=print,
) -> StudyResult:
    """Train, evaluate and judge a study; returns its results and writes the files of the module notes."""
    from qpe.study.page import write_study_page

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"the study output {out} is a file: give a folder (e.g. results/demo)")
    if any((out / marker).exists() for marker in (".zgroup", "zarr.json", "card.yaml")):
        raise InputError(f"{out} is a dataset or a checkpoint, not a study folder: give another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    result = StudyResult(config, out)
    models_dir = out / "models"

    extra, result.skipped_checkpoints = checkpoint_estimators(config)  # a missing one stops before training
    for name, why in result.skipped_checkpoints.items():
        log(f"[study] checkpoint {name} skipped: {why}")
    runs = training_runs(config, models_dir)
    result.training_seconds = train_runs(runs, jobs=config.jobs, progress=progress, log=log)

    baseline = None
    if config.baseline is not None:
        train_ds = open_paired(resolve_data(config.train_data), require=("ir", "rain"))
        rule = fit_ir_rule(train_ds, source=f"probability matching on {config.train_data}", **config.baseline)
        baseline = IRRuleEstimator(rule.write(models_dir / "ir_rule.yaml"))
    estimators = study_estimators(config, runs, baseline) + extra
    names = [e.name for e in estimators]  # the scorecard compares each with the study's reference, if any
    evaluation = EvaluationConfig(
        scores=ScoreConfig(thresholds=config.thresholds, scales_km=config.scales_km),
        estimate=EstimateConfig(members=config.members, seed=config.seed),
        n_resamples=config.n_resamples,
        confidence=config.confidence,
        compare_to=reference_variant(config) if reference_variant(config) in names else None,
    )
    cache = EstimateCache(out / "cache")
    for spec in config.benchmarks:
        try:
            ds = open_benchmark(spec, progress)
        except MissingInputError as err:  # absent files, and nothing else, make an optional benchmark a skip
            if not spec.optional:
                raise
            result.skipped[spec.name] = str(err)
            log(f"[study] benchmark {spec.name} skipped: {err}")
            continue
        times = benchmark_times(ds, spec, max(config.frames))
        log(f"[study] scoring {len(estimators)} models on {spec.name}: {len(times)} times of "
            f"{ds.sizes['y']} x {ds.sizes['x']} pixels, {config.members} members")
        start = time.perf_counter()
        settings = dataclasses.replace(evaluation, bootstrap_unit=bootstrap_unit(config, times))
        accumulators, info = accumulate_period(ds.load(), estimators, times=times, config=settings,
                                               scheduler=scheduler, cache=cache, progress=progress)
        scores = summarize_scores(accumulators, info, settings)
        headline = measure_headline(scores, accumulators, settings)
        seconds = time.perf_counter() - start
        write_outputs(scores, out / spec.name, accumulators=accumulators)
        log(f"[study] {spec.name}: {headline.resampling.describe()}")
        result.benchmarks.append(BenchmarkResult(spec, scores, headline, judge(headline, config), times, seconds))
    write_study_page(result)
    return result
