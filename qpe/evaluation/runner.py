"""Scores of several models over a period of a paired dataset, computed in parallel with Dask.

::

    estimators = find_estimators(["models/demo"])                 # checkpoints (and CRR files)
    scores = evaluate_period("data/demo/demo.zarr", estimators, "2021-06-01T06:00", "2021-06-01T12:00")
    write_outputs(scores, "out/")                                 # scores.nc, scores.csv, figures, report

How it runs
    The period's times (those with the T - 1 predecessors every model needs) are cut into tasks: runs
    of at most ``chunk_times`` times, never across a UTC day. Each task opens the data, estimates
    every model on its times (in batches sized to a memory budget, so the full OPERA grid fits),
    scores them against the radar and returns one :class:`~qpe.verify.ScoreAccumulator` per model —
    small per-day statistics, never fields. Tasks run on Dask: the local threaded scheduler by
    default, or a ``distributed`` cluster when a scheduler address (or a ``Client``) is given.
    Accumulators are merged in task order, so the scores do not depend on which worker finished
    first, and the scores and their bootstrap confidence intervals (days resampled) are computed from
    the merged statistics.
Common mask
    With ``common_mask`` (the default) a pixel is scored for every model or for none: it needs radar
    and a finite value from every member of every model. Models are then compared on the same pixels,
    and the radar reference curves (``*_radar``) are the same for all of them.
The result
    One :class:`xarray.Dataset`: the variables of ``ScoreAccumulator.compute()`` along a ``model``
    dimension (see :mod:`qpe.verify.aggregate`; a deterministic model has member 0 only, its other
    members NaN), the confidence bounds of each score as ``<name>__ci`` with a leading ``bound``
    dimension (``ci_low``, ``ci_high``), model metadata as coordinates along ``model`` (family,
    checkpoint hash, members, steps, sampler), and the settings in ``attrs``. :func:`split_scores`
    separates scores and bounds again (the inputs of :func:`qpe.verify.scores_to_frame`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml
from tqdm.auto import tqdm

from qpe import __version__
from qpe.data.grid import Grid
from qpe.data.paired import SEVIRI_STEP, open_paired, validate_paired
from qpe.errors import DatasetError, InputError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig, find_times
from qpe.inference.estimators import Estimator
from qpe.netcdf import NETCDF_LOCK
from qpe.verify import ScoreAccumulator, ScoreConfig, bootstrap_ci, scores_to_frame, window_sizes

#: Suffix of the confidence-bound variables in the scores Dataset.
CI_SUFFIX = "__ci"
#: Fewest days a bootstrap over days needs; with fewer, no interval is given.
MIN_CI_DAYS = 2
#: Model metadata kept as coordinates along ``model`` (from the estimates' attributes).
MODEL_COORDS = ("family", "checkpoint_sha256", "members", "steps", "sampler", "network_evaluations")


@dataclass(frozen=True)
class EvaluationConfig:
    """Settings of a period evaluation (saved with its results as ``evaluation.yaml``).

    Parameters
    ----------
    scores : ScoreConfig
        Thresholds, scales, families of scores.
    estimate : EstimateConfig
        Members, sampler steps, seed, device and tiling of the estimates.
    chunk_times : int
        Most times per Dask task (a task never spans two UTC days).
    common_mask : bool
        Score every model on the same pixels (see the module notes).
    n_resamples, confidence, bootstrap_seed
        Bootstrap over days: replicates (0: no intervals), coverage and seed.
    memory_budget_mb : float
        Rough bound on the fields a task holds at once (IR frames, every model's members, radar), MiB;
        it sets how many times are estimated together. At least one time is always taken.
    """

    scores: ScoreConfig = field(default_factory=ScoreConfig)
    estimate: EstimateConfig = field(default_factory=EstimateConfig)
    chunk_times: int = 8
    common_mask: bool = True
    n_resamples: int = 1000
    confidence: float = 0.95
    bootstrap_seed: int = 0
    memory_budget_mb: float = 1024.0

    def __post_init__(self) -> None:
        if self.chunk_times < 1:
            raise InputError(f"chunk_times must be at least 1, got {self.chunk_times}")
        if self.n_resamples < 0:
            raise InputError(f"n_resamples must be 0 (no intervals) or more, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise InputError(f"confidence must lie in (0, 1), got {self.confidence}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["scores"] = self.scores.to_dict()
        return out


# -- the period -------------------------------------------------------------------------------------------
def _timestamp(value, what: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputError(f"{what} {value!r} is not an ISO 8601 time (e.g. 2021-06-01T12:00)") from None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tz is not None else stamp


def select_period(ds: xr.Dataset, start=None, end=None) -> pd.DatetimeIndex:
    """Times of ``ds`` in ``[start, end]`` (UTC; either open when None).

    Raises
    ------
    DatasetError
        The period is empty (start after end), lies outside the data, or holds no time of the data.
    """
    index = pd.DatetimeIndex(ds["time"].values)
    first, last = index[0], index[-1]
    lo = _timestamp(start, "start") or first
    hi = _timestamp(end, "end") or last
    span = f"the data cover {first:%Y-%m-%dT%H:%M} .. {last:%Y-%m-%dT%H:%M}"
    if lo > hi:
        raise DatasetError(f"empty period: start {lo:%Y-%m-%dT%H:%M} is after end {hi:%Y-%m-%dT%H:%M}")
    if hi < first or lo > last:
        raise DatasetError(f"period {lo:%Y-%m-%dT%H:%M} .. {hi:%Y-%m-%dT%H:%M} is not in the data ({span})")
    inside = index[(index >= lo) & (index <= hi)]
    if inside.empty:
        raise DatasetError(
            f"empty period: no time of the data lies in {lo:%Y-%m-%dT%H:%M} .. {hi:%Y-%m-%dT%H:%M} ({span})"
        )
    return inside


def has_frames(index: pd.DatetimeIndex, frames: int) -> np.ndarray:
    """(time,) bool: True where a time and its ``frames - 1`` predecessors are consecutive 15-min steps."""
    n = index.size
    if frames <= 1:
        return np.ones(n, dtype=bool)
    gaps = np.concatenate([[0], np.cumsum(np.diff(index.values) != SEVIRI_STEP.to_timedelta64())])
    i = np.arange(n)
    lo = i - frames + 1
    ok = lo >= 0
    ok[ok] = gaps[i[ok]] == gaps[lo[ok]]
    return ok


def _longest_run(index: pd.DatetimeIndex) -> int:
    breaks = np.flatnonzero(np.diff(index.values) != SEVIRI_STEP.to_timedelta64())
    edges = np.concatenate([[-1], breaks, [index.size - 1]])
    return int(np.diff(edges).max())


def usable_times(
    ds: xr.Dataset, period: pd.DatetimeIndex, estimators: Sequence[Estimator]
) -> pd.DatetimeIndex:
    """The times of ``period`` at which every estimator has the IR frames it reads.

    Raises
    ------
    DatasetError
        An estimator needs more successive frames than any time of the period has.
    """
    index = pd.DatetimeIndex(ds["time"].values)
    in_period = index.isin(period)
    keep = in_period.copy()
    for est in estimators:
        ok = has_frames(index, est.frames) & in_period
        if not ok.any():
            raise DatasetError(
                f"model {est.name!r} needs T={est.frames} successive 15-min IR frames, but no time of the "
                f"period has them (the data hold runs of at most {_longest_run(index)} frames)"
            )
        keep &= ok
    if not keep.any():
        raise DatasetError("no time of the period has the IR frames that all models need together")
    return index[keep]


def plan_tasks(times: pd.DatetimeIndex, chunk_times: int) -> list[pd.DatetimeIndex]:
    """Runs of at most ``chunk_times`` times, each within one UTC day, in time order.

    A day is cut into the fewest runs that fit, of near-equal length (12 times in runs of at most 8
    give 6 + 6, not 8 + 4), so that parallel workers finish together.
    """
    tasks = []
    days = times.normalize()
    for day in days.unique():
        in_day = times[days == day]
        parts = -(-in_day.size // chunk_times)
        bounds = np.linspace(0, in_day.size, parts + 1).round().astype(int)
        tasks.extend(in_day[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    return tasks


# -- one task ---------------------------------------------------------------------------------------------
@dataclass
class TaskResult:
    """What one task returns: an accumulator and the estimate attributes of each model."""

    accumulators: dict[str, ScoreAccumulator]
    info: dict[str, dict]
    n_times: int


def _open_source(source: str | os.PathLike | xr.Dataset) -> tuple[xr.Dataset, bool]:
    """The dataset of a task (the Dataset itself, or the file opened lazily; validated by the caller)
    and whether its reads must hold :data:`~qpe.netcdf.NETCDF_LOCK`: all but a Zarr store's (a given
    Dataset may be backed by a NetCDF file; loading one already in memory costs nothing)."""
    if isinstance(source, xr.Dataset):
        return source, True
    path = Path(source)
    if path.is_dir():
        return xr.open_zarr(path, chunks=None, decode_timedelta=False), False
    with NETCDF_LOCK:  # tasks run in threads; netCDF-C is not thread-safe
        return xr.open_dataset(path, decode_timedelta=False), True


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
    ds, locked = _open_source(source)
    index = pd.DatetimeIndex(ds["time"].values)
    positions = index.get_indexer(times)
    frames = max(e.frames for e in estimators)
    batch = _batch_size(ds, estimators, config)
    accumulators = {e.name: ScoreAccumulator(config.scores, model=e.name) for e in estimators}
    info: dict[str, dict] = {}
    try:
        for start in range(0, positions.size, batch):
            chosen = positions[start : start + batch]
            window = ds.isel(time=slice(chosen[0] - frames + 1, chosen[-1] + 1))
            with NETCDF_LOCK if locked else nullcontext():  # a Zarr store reads in parallel
                window = window.load()
            when = index[chosen]
            radar = window["rain"].sel(time=when)
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
                accumulators[name].accum(rain.where(valid), radar.where(valid))
    finally:
        if not isinstance(source, xr.Dataset):
            ds.close()
    return TaskResult(accumulators, info, int(positions.size))


# -- running the tasks ------------------------------------------------------------------------------------
def _run_local(task_args: list[tuple], workers: int | None, progress: bool) -> list[TaskResult]:
    """Tasks (the arguments of :func:`score_times`) on local threads, with a bar over estimates (model x
    time): a task of a slow model takes minutes, so counting tasks would leave the bar still."""
    import dask

    total = sum(len(args[1]) * len(args[2]) for args in task_args)
    bar = tqdm(total=total, desc="evaluate", unit="estimate", disable=not progress)
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    tasks = [dask.delayed(score_times, pure=False)(*args, on_estimate=advance) for args in task_args]
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    try:
        return list(dask.compute(*tasks, scheduler="threads", num_workers=workers))
    finally:
        bar.close()


def _run_distributed(task_args: list[tuple], scheduler, progress: bool) -> list[TaskResult]:
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
    if "fss" not in scores.families:
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
) -> tuple[dict[str, ScoreAccumulator], dict]:
    """Run the tasks of a period and merge their accumulators (see :func:`evaluate_period`).

    Returns
    -------
    accumulators : dict
        Model name -> merged :class:`~qpe.verify.ScoreAccumulator`, in the order of ``estimators``.
    info : dict
        ``models`` (name -> attributes of its estimates), ``times`` (the evaluated times),
        ``period`` (start, end asked for), ``data`` (description), ``skipped`` (times of the period
        left out for lack of IR frames).
    """
    if not estimators:
        raise InputError("no model to evaluate")
    names = [e.name for e in estimators]
    if len(set(names)) != len(names):
        raise InputError(f"model names must differ, got {names}")
    ds, source, described = open_data(data)
    _check_scales(ds, config.scores)
    if times is None:
        period = select_period(ds, start, end)
    else:  # explicit valid times: each must be in the data (one clear error naming the first that is not)
        period = pd.DatetimeIndex(ds["time"].values[find_times(ds, times)])
    times = usable_times(ds, period, estimators)
    for est in estimators:  # channels, weights, reference files: every error before any work
        est.check(ds, times)
    tasks = [(source, list(estimators), chunk, config, cache) for chunk in plan_tasks(times, config.chunk_times)]
    results = (
        _run_local(tasks, workers, progress)
        if scheduler is None
        else _run_distributed(tasks, scheduler, progress)
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
    }
    return {n: merged[n] for n in names}, info


# -- scores of the period ---------------------------------------------------------------------------------
def _pad_members(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Give deterministic scores member 0 where ensemble scores have a member dim (NaN-padded by concat)."""
    with_member = {name for p in parts for name, v in p.data_vars.items() if "member" in v.dims}
    out = []
    for part in parts:
        if "member" not in part.dims:
            part = part.assign(
                {name: part[name].expand_dims(member=[0]) for name in with_member if name in part.data_vars}
            )
        out.append(part)
    return out


def _concat_models(parts: list[xr.Dataset]) -> xr.Dataset:
    return xr.concat(
        _pad_members(parts),
        dim="model",
        join="outer",
        fill_value=np.nan,
        coords="minimal",
        compat="override",
        combine_attrs="override",
    )


def summarize_scores(
    accumulators: dict[str, ScoreAccumulator],
    info: dict | None = None,
    config: EvaluationConfig = EvaluationConfig(),
) -> xr.Dataset:
    """Scores and bootstrap bounds of every model as one Dataset (see the module notes)."""
    info = info or {}
    scores, bounds = [], []
    n_days = min(acc.days.size for acc in accumulators.values())
    with_ci = config.n_resamples > 0 and n_days >= MIN_CI_DAYS
    for name, acc in accumulators.items():
        scores.append(acc.compute().assign_coords(model=name))
        if with_ci:
            bounds.append(
                bootstrap_ci(acc, config.n_resamples, config.confidence, config.bootstrap_seed).assign_coords(
                    model=name
                )
            )
    every = {name for part in scores for name in part.data_vars}
    not_applicable = {  # e.g. ensemble scores of a deterministic model: NaN in the Dataset, no table rows
        str(part["model"].values): sorted(every - set(part.data_vars)) for part in scores
    }
    out = _concat_models(scores)
    if with_ci:
        ci = _concat_models(bounds)
        out = out.assign({f"{name}{CI_SUFFIX}": ci[name] for name in ci.data_vars})
    models = info.get("models", {})
    for key in (*MODEL_COORDS, "path"):
        values = [models.get(str(m), {}).get(key, "") for m in out["model"].values]
        if any(isinstance(v, str) for v in values):
            values = [str(v) for v in values]
        out = out.assign_coords({key: ("model", np.asarray(values))})
    times = info.get("times", pd.DatetimeIndex([]))
    skipped = info.get("skipped", pd.DatetimeIndex([]))
    out.attrs = {
        "title": "qpe evaluation: scores of rain-rate estimates against radar",
        "qpe_score_config": json.dumps(config.scores.to_dict()),
        "qpe_evaluation_config": json.dumps(config.to_dict()),
        "data": str(info.get("data", "")),
        "period_start": f"{times[0]:%Y-%m-%dT%H:%M}" if len(times) else "",
        "period_end": f"{times[-1]:%Y-%m-%dT%H:%M}" if len(times) else "",
        "n_times": len(times),
        "n_skipped_times": len(skipped),
        "n_days": int(n_days),
        "days": ", ".join(str(d) for d in next(iter(accumulators.values())).days),
        "confidence_interval": (
            f"{config.confidence:.0%} percentile bootstrap over {n_days} UTC days, "
            f"{config.n_resamples} resamples, seed {config.bootstrap_seed}"
            if with_ci
            else f"none (needs at least {MIN_CI_DAYS} days, the period has {n_days})"
        ),
        "common_mask": int(config.common_mask),
        "not_applicable": json.dumps({k: v for k, v in not_applicable.items() if v}),
        "qpe_version": __version__,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return out


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


def split_scores(scores: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset | None]:
    """(scores, bounds) from an evaluation Dataset; bounds is None when it has no intervals."""
    names = [n for n in scores.data_vars if str(n).endswith(CI_SUFFIX)]
    plain = scores.drop_vars(names)
    plain = plain.drop_vars("bound", errors="ignore")
    if not names:
        return plain, None
    ci = scores[names].rename({n: n[: -len(CI_SUFFIX)] for n in names})
    return plain, ci


def score_table(scores: xr.Dataset) -> pd.DataFrame:
    """The tidy ``scores.csv`` table of an evaluation Dataset, with its confidence bounds.

    Columns ``model, metric, threshold, scale, value, ci_low, ci_high`` (:func:`qpe.verify.scores_to_frame`);
    scores that do not apply to a model (ensemble scores of a deterministic one) have no rows.
    """
    plain, ci = split_scores(scores)
    table = scores_to_frame(plain, ci)
    skip = json.loads(scores.attrs.get("not_applicable", "{}"))
    drop = np.zeros(len(table), dtype=bool)
    for model, names in skip.items():
        drop |= (table["model"] == model).to_numpy() & table["metric"].isin(names).to_numpy()
    return table[~drop].reset_index(drop=True)


def open_scores(path: str | os.PathLike) -> xr.Dataset:
    """Read a ``scores.nc`` written by :func:`write_outputs` into memory."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no scores file at {path}")
    with xr.open_dataset(path) as ds:
        return ds.load()


# -- outputs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationOutputs:
    """Paths written by :func:`write_outputs`."""

    folder: Path
    scores_nc: Path
    scores_csv: Path
    report: Path
    settings: Path
    figures: dict[str, Path]
    statistics: dict[str, Path]


def _atomic(path: Path, write) -> Path:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def write_outputs(
    scores: xr.Dataset,
    folder: str | os.PathLike,
    *,
    accumulators: dict[str, ScoreAccumulator] | None = None,
) -> EvaluationOutputs:
    """Write ``scores.nc``, ``scores.csv``, ``figures/*.png``, ``report.html`` and ``evaluation.yaml``.

    Parameters
    ----------
    scores : xarray.Dataset
        Output of :func:`evaluate_period`.
    folder : path-like
        Output folder (created).
    accumulators : dict, optional
        The per-day statistics of each model, written to ``statistics/<model>.nc`` so that a later
        study can merge or re-bootstrap them (:meth:`ScoreAccumulator.from_dataset`).

    Returns
    -------
    EvaluationOutputs
    """
    from qpe.evaluation.figures import write_figures
    from qpe.evaluation.report import write_report

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain, ci = split_scores(scores)
    table = score_table(scores)
    scores_nc = _atomic(folder / "scores.nc", lambda p: scores.to_netcdf(p, engine="netcdf4"))
    scores_csv = _atomic(folder / "scores.csv", lambda p: table.to_csv(p, index=False, float_format="%.10g"))
    settings = {
        "evaluation": json.loads(scores.attrs.get("qpe_evaluation_config", "{}")),
        "data": scores.attrs.get("data", ""),
        "period": [scores.attrs.get("period_start", ""), scores.attrs.get("period_end", "")],
        "models": {
            str(m): {k: _plain(scores[k].values[i]) for k in (*MODEL_COORDS, "path") if k in scores.coords}
            for i, m in enumerate(scores["model"].values)
        },
        "qpe_version": scores.attrs.get("qpe_version", __version__),
        "created": scores.attrs.get("created", ""),
    }
    settings_path = _atomic(
        folder / "evaluation.yaml", lambda p: p.write_text(yaml.safe_dump(settings, sort_keys=False))
    )
    figures = write_figures(plain, folder / "figures")
    report = write_report(plain, table, figures, folder / "report.html", ci=ci)
    statistics = {}
    if accumulators:
        (folder / "statistics").mkdir(exist_ok=True)
        for name, acc in accumulators.items():
            path = folder / "statistics" / f"{_safe_name(name)}.nc"
            statistics[name] = _atomic(
                path, lambda p, acc=acc: acc.to_dataset().to_netcdf(p, engine="netcdf4")
            )
    return EvaluationOutputs(folder, scores_nc, scores_csv, report, settings_path, figures, statistics)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
