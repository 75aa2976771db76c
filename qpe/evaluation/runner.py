"""Scores of several models over a period of a paired dataset, computed in parallel with Dask.

::

    estimators = find_estimators(["models/demo"])                 # checkpoints (and CRR files)
    scores = evaluate_period("data/demo/demo.zarr", estimators, "2021-06-01T06:00", "2021-06-01T12:00")
    write_outputs(scores, "out/")                                 # scores.nc, scores.csv, figures, report

How it runs
    The dataset is opened and validated once; every check (channels, frames, weights, reference files,
    FSS scales) runs before any estimate. :mod:`~qpe.evaluation.period` picks the times every model
    can be estimated at and cuts them into tasks (runs of at most ``chunk_times`` times within one
    UTC day); :mod:`~qpe.evaluation.tasks` runs them on Dask (local threads by default, a
    ``distributed`` cluster when a scheduler address or a ``Client`` is given), each returning one
    :class:`~qpe.verify.ScoreAccumulator` per model. Accumulators are merged in task order, so the
    scores do not depend on which worker finished first; :mod:`~qpe.evaluation.summary` computes the
    scores and their bootstrap confidence intervals (days resampled) from the merged statistics, and
    :mod:`~qpe.evaluation.outputs` writes the files.
Common mask
    With ``common_mask`` (the default) a pixel is scored for every model or for none: it needs radar
    and a finite value from every member of every model. Models are then compared on the same pixels,
    and the radar reference curves (``*_radar``) are the same for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from qpe.data.grid import Grid
from qpe.data.paired import open_paired, validate_paired
from qpe.errors import InputError
from qpe.evaluation.config import EvaluationConfig
from qpe.evaluation.period import not_held, plan_tasks, select_period, usable_times
from qpe.evaluation.summary import summarize_scores
from qpe.evaluation.tasks import run_distributed, run_local
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import find_times
from qpe.inference.estimators import Estimator
from qpe.verify import ScoreAccumulator, ScoreConfig, window_sizes
from qpe.verify.regimes import paired_quality_weights


def open_data(data: str | os.PathLike | xr.Dataset) -> tuple[xr.Dataset, str | xr.Dataset, str]:
    """The validated dataset, what tasks open (its path, or the Dataset), and its description."""
    if isinstance(data, xr.Dataset):
        return (
            validate_paired(data, require=("ir", "rain")),
            data,
            data.attrs.get("catalog_name", "in-memory dataset"),
        )
    path = Path(data)
    return open_paired(path, require=("ir", "rain")), str(path.resolve()), str(path)


def _check_scales(ds: xr.Dataset, scores: ScoreConfig) -> None:
    """FSS scales must be whole windows of the data's pixels: say so before any estimate is made."""
    if not {"fss", "ensemble_fss"} & set(scores.families):
        return
    pixel_km = Grid.from_dataset(ds).dx / 1000.0
    try:
        window_sizes(scores.scales_km, pixel_km)
    except InputError as err:
        raise InputError(f"{err}: give FSS scales of at least {pixel_km / 2:g} km (--scales-km)") from None


def accumulate_period(
    data: str | os.PathLike | xr.Dataset,
    estimators: Sequence[Estimator],
    start=None,
    end=None,
    config: EvaluationConfig = EvaluationConfig(),
    *,
    scheduler=None,
    workers: int | None = None,
    cache: EstimateCache | None = None,
    progress: bool = True,
    times: Sequence | pd.DatetimeIndex | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, ScoreAccumulator], dict]:
    """Run the tasks of a period and merge their accumulators (see :func:`evaluate_period`).

    ``on_progress(done, total)``, on local threads only, is called with the estimates (model x time)
    done so far and in all, after each model's estimate of a batch (from the worker threads).

    Returns
    -------
    accumulators : dict
        Model name -> merged :class:`~qpe.verify.ScoreAccumulator`, in the order of ``estimators``.
    info : dict
        ``models`` (name -> attributes of its estimates), ``times`` (the evaluated times),
        ``period`` (start, end asked for), ``data`` (description), ``skipped`` (times of the period
        left out for lack of IR frames or of an estimate), ``not_held`` (model name -> the times of the
        period that a model holding some times only, such as external estimates, lacks).
    """
    if not estimators:
        raise InputError("no model to evaluate")
    names = [e.name for e in estimators]
    if len(set(names)) != len(names):
        raise InputError(f"model names must differ, got {names}")
    ds, source, described = open_data(data)
    _check_scales(ds, config.scores)
    if config.scores.quality_weight:  # the data must hold the quality index: say so before any estimate
        paired_quality_weights(ds.isel(time=slice(0, 1)), ds["time"].values[:1])
    if times is None:
        period = select_period(ds, start, end)
    else:  # explicit valid times: each must be in the data (one clear error naming the first that is not)
        period = pd.DatetimeIndex(ds["time"].values[find_times(ds, times)])
    times = usable_times(ds, period, estimators)
    for est in estimators:  # channels, weights, reference files: every error before any work
        est.check(ds, times, config.estimate)
    tasks = [(source, list(estimators), chunk, config, cache) for chunk in plan_tasks(times, config.chunk_times)]
    results = (
        run_local(tasks, workers, progress, on_progress)
        if scheduler is None
        else run_distributed(tasks, scheduler, progress)
    )
    merged: dict[str, ScoreAccumulator] = {}
    models: dict[str, dict] = {}
    for result in results:  # task order, whatever the completion order
        for name in names:
            acc = result.accumulators[name]
            merged[name] = merged[name].merge(acc) if name in merged else acc
            models.setdefault(name, result.info[name])
    for est in estimators:
        models[est.name]["path"] = est.source
    info = {
        "models": models,
        "times": times,
        "period": (str(period[0]), str(period[-1])),
        "data": described,
        "skipped": period.difference(times),
        "not_held": not_held(period, estimators),
    }
    return {n: merged[n] for n in names}, info


def evaluate_period(
    data: str | os.PathLike | xr.Dataset,
    estimators: Sequence[Estimator],
    start=None,
    end=None,
    config: EvaluationConfig = EvaluationConfig(),
    *,
    scheduler=None,
    workers: int | None = None,
    cache: EstimateCache | None = None,
    progress: bool = True,
    times: Sequence | pd.DatetimeIndex | None = None,
) -> xr.Dataset:
    """Score several models against radar over a period of a paired dataset.

    Parameters
    ----------
    data : path-like or xarray.Dataset
        Paired dataset with ``ir`` (K) and ``rain`` (radar, mm/h).
    estimators : sequence of Estimator
        Models to score, e.g. from :func:`qpe.inference.estimators.find_estimators`.
    start, end : datetime-like, optional
        Period, UTC, inclusive; the whole dataset by default. Times without the IR frames a model
        needs (the first T - 1 of the data, or after a gap) are left out.
    config : EvaluationConfig
        Scores, estimate settings, task size, mask and bootstrap.
    scheduler : str or distributed.Client, optional
        Address of a ``distributed`` scheduler (e.g. ``tcp://10.0.0.1:8786``) or a client; the local
        threaded scheduler when None. The workers open the dataset, checkpoint and CRR paths
        themselves (the weights are never shipped), so those paths must be readable on every worker.
    workers : int, optional
        Threads of the local scheduler (default: the CPU count, at most one per task).
    cache : EstimateCache, optional
        Estimate cache (reused across runs; none when None).
    progress : bool
        Show a progress bar: over estimates (model x time) on local threads, over tasks on a cluster.
    times : sequence of datetime-like, optional
        Explicit valid times to score instead of the period ``start .. end`` (e.g. every hour); each
        must be in the data.

    Returns
    -------
    xarray.Dataset
        Scores along ``model`` with ``<name>__ci`` bounds (see the module notes).

    Raises
    ------
    QpeError
        Bad period, missing channels or frames, missing CRR times: one line each, before any work.
    """
    accumulators, info = accumulate_period(
        data,
        estimators,
        start,
        end,
        config,
        scheduler=scheduler,
        workers=workers,
        cache=cache,
        progress=progress,
        times=times,
    )
    return summarize_scores(accumulators, info, config)
