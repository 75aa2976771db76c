"""One task of an evaluation (estimate every model at a few times, accumulate its scores), and running
the tasks on Dask: local threads by default, a ``distributed`` cluster when given a scheduler.

A task returns one :class:`~qpe.verify.ScoreAccumulator` per model (small per-day or per-time
statistics, never fields); estimates are made in batches of times sized to a memory budget, so the full OPERA grid fits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from qpe.data.paired import open_paired
from qpe.errors import InputError
from qpe.evaluation.config import EvaluationConfig
from qpe.inference.cache import EstimateCache
from qpe.netcdf import reading_lock
from qpe.verify import ScoreAccumulator
from qpe.verify.regimes import paired_quality_weights, paired_regime_masks

if TYPE_CHECKING:
    from qpe.inference.estimators import Estimator


@dataclass
class TaskResult:
    """What one task returns: an accumulator and the estimate attributes of each model."""

    accumulators: dict[str, ScoreAccumulator]
    info: dict[str, dict]
    n_times: int


def _batch_size(ds: xr.Dataset, estimators: Sequence[Estimator], config: EvaluationConfig) -> int:
    """Times estimated together so that a task's fields stay within the memory budget."""
    pixels = ds.sizes["y"] * ds.sizes["x"]
    frames = max(e.frames for e in estimators)
    members = sum(config.estimate.members if e.is_ensemble else 1 for e in estimators)
    # per time: IR frames (and the engine's working copy), every member twice (estimate, masked copy), radar
    per_time = 4 * pixels * (2 * frames * ds.sizes.get("channel", 1) + 2 * members + 2)
    return int(max(1, min(config.chunk_times, config.memory_budget_mb * 2**20 // per_time)))


def score_times(
    source: str | os.PathLike | xr.Dataset,
    estimators: Sequence[Estimator],
    times: pd.DatetimeIndex,
    config: EvaluationConfig,
    cache: EstimateCache | None = None,
    on_estimate: Callable[[int], None] | None = None,
) -> TaskResult:
    """Estimate every model at ``times`` and accumulate its scores against the radar (one Dask task).

    Parameters
    ----------
    source : path-like or xarray.Dataset
        The paired dataset (IR and radar rain), already validated.
    estimators : sequence of Estimator
        The models (checkpoints, reference products).
    times : pandas.DatetimeIndex
        Valid times of the task, each with the IR frames every model needs.
    config : EvaluationConfig
    cache : EstimateCache, optional
        Cache of estimates.
    on_estimate : callable, optional
        Called with the number of times after each model's estimate of a batch (progress).
    """
    # the source was validated once, before the tasks; each reopens it lazily and reads its own times
    ds = source if isinstance(source, xr.Dataset) else open_paired(source, validate=False)
    index = pd.DatetimeIndex(ds["time"].values)
    positions = index.get_indexer(times)
    frames = max(e.frames for e in estimators)
    batch = _batch_size(ds, estimators, config)
    accumulators = {
        e.name: ScoreAccumulator(config.scores, model=e.name, resolution=config.statistics_resolution)
        for e in estimators
    }
    info: dict[str, dict] = {}
    try:
        for start in range(0, positions.size, batch):
            chosen = positions[start : start + batch]
            window = ds.isel(time=slice(chosen[0] - frames + 1, chosen[-1] + 1))
            with reading_lock(source):  # a Zarr store reads in parallel, NetCDF one thread at a time
                window = window.load()
            when = index[chosen]
            radar = window["rain"].sel(time=when)
            # scores by regime: the masks of each time from its IR, radar, quality and lon/lat
            masks = paired_regime_masks(window, when) if "regimes" in config.scores.families else None
            # weighting by radar quality: QIND of each pixel (1 where OPERA gives none)
            weights = paired_quality_weights(window, when) if config.scores.quality_weight else None
            estimates = {}
            for est in estimators:
                out = est.estimate(window, when, config.estimate, cache=cache, progress=False)
                info.setdefault(est.name, dict(out.attrs))
                estimates[est.name] = out["rain"]
                if on_estimate is not None:
                    on_estimate(len(when))
            valid = radar.notnull()
            if config.common_mask:
                for rain in estimates.values():
                    valid = valid & rain.notnull().all("member")
            for name, rain in estimates.items():
                if rain.sizes["member"] == 1:  # deterministic: no ensemble scores
                    rain = rain.isel(member=0, drop=True)
                accumulators[name].accum(rain.where(valid), radar.where(valid), masks, weights)
    finally:
        if not isinstance(source, xr.Dataset):
            ds.close()
    return TaskResult(accumulators, info, int(positions.size))


def _score_on_one_thread(*args, **kwargs) -> TaskResult:
    """:func:`score_times` with one torch thread in this worker thread, as on a ``distributed`` worker.

    Torch fixes a thread's intra-op thread count when the thread first computes, so the threads of
    Dask's pool, reused across calls, would otherwise keep whatever count was in force then: the same
    estimate could differ in its last bits between two evaluations (or from the one made on a cluster,
    whose workers run with ``OMP_NUM_THREADS=1``). One thread per task also keeps parallel tasks from
    oversubscribing the cores.
    """
    import torch

    torch.set_num_threads(1)
    return score_times(*args, **kwargs)


def run_local(
    task_args: list[tuple],
    workers: int | None,
    progress: bool,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[TaskResult]:
    """Tasks (the arguments of :func:`score_times`) on local threads, with a bar over estimates (model x
    time): a task of a slow model takes minutes, so counting tasks would leave the bar still.

    ``on_progress(done, total)`` is called, from the worker threads, after each model's estimate of a
    batch, with the estimates done so far and in all (e.g. for a progress bar in an app)."""
    import dask

    total = sum(len(args[1]) * len(args[2]) for args in task_args)
    bar = tqdm(total=total, desc="evaluate", unit="estimate", disable=not progress)
    lock = threading.Lock()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        with lock:
            bar.update(n)
            done += n
            if on_progress is not None:
                on_progress(done, total)

    tasks = [dask.delayed(_score_on_one_thread, pure=False)(*args, on_estimate=advance) for args in task_args]
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    try:
        return list(dask.compute(*tasks, scheduler="threads", num_workers=workers))
    finally:
        bar.close()


def run_distributed(task_args: list[tuple], scheduler, progress: bool) -> list[TaskResult]:
    """Tasks on a ``distributed`` cluster, with a bar over finished tasks."""
    import dask
    from distributed import Client, as_completed

    tasks = [dask.delayed(score_times, pure=False)(*args) for args in task_args]
    own = not isinstance(scheduler, Client)
    if own:
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({err})".replace("\n", " ")
            ) from err
    else:
        client = scheduler
    try:
        futures = client.compute(tasks)
        with tqdm(total=len(futures), desc="evaluate", unit="task", disable=not progress) as bar:
            for _ in as_completed(futures, loop=client.loop):
                bar.update()
        return client.gather(futures)
    finally:
        if own:
            client.close()
