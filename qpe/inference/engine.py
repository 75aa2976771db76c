"""Run a model on chosen times of a paired dataset: estimates (member, time, y, x) in mm/h.

``estimate`` gathers the T successive IR frames each time needs, cuts large grids into overlapping
tiles, batches tiles through the model with all ensemble members at once (bf16 autocast on a GPU,
float32 on the CPU, unless ``EstimateConfig.precision`` says otherwise), blends the tiles back and caches
each (model, time) result on disk.

Speed on a CPU (measured by ``benchmarks/bench_inference.py --engine-options``, docs/performance.md)
    bf16 autocast on a CPU (``precision="bfloat16"``) is opt-in: about 2.2x faster where the CPU has bf16
    units (AMX), but it changes the numbers. Fewer fields per call (``batch_fields=1``) is about 1.2x faster
    on a CPU and changes only the last bits; channels-last weights and ``torch.compile`` gained nothing.

Progress and cancel
    ``estimate(..., on_progress=, cancel=)`` reports an :class:`EstimateProgress` after every sampler
    step of every network call (a call is a batch of tiles x a turn of members), with the time left
    extrapolated from the steps done, and checks ``cancel`` (anything with ``is_set()``, such as a
    :class:`threading.Event`) at the same points: between network evaluations. A cancelled estimate raises
    :class:`~qpe.errors.EstimateCancelled` and caches nothing of the time it was computing (times finished
    before are cached: they are whole). Neither changes a number: the sampler calls back after a step,
    with no access to its state or its noise.
"""

from __future__ import annotations

import dataclasses
import os
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from qpe import __version__
from qpe.data.grid import GRID_MAPPING_NAME
from qpe.data.paired import rain_attrs, validate_paired
from qpe.data.times import has_frames, utc_naive
from qpe.errors import CheckpointError, DatasetError, EstimateCancelled, InputError
from qpe.inference.cache import EstimateCache, array_digest, cache_key
from qpe.inference.device import autocast, autocast_dtype, check_precision, exclusive, resolve_device
from qpe.inference.tiling import check_tiling, plan_tiles, tile_weights
from qpe.models.sampling import SamplingSettings


@dataclass(frozen=True)
class EstimateConfig:
    """How estimates are produced.

    ``members``, ``steps`` and ``sampler`` are a request, resolved against each model's card (and
    validated there) by :meth:`qpe.models.ModelCard.sampling_settings`.

    Parameters
    ----------
    members : int
        Ensemble members per time (a deterministic U-Net always gives one).
    steps : int or None
        Sampler steps K; None for the model card's default.
    sampler : str or None
        A sampler of the model's family (:data:`qpe.models.sampling.SAMPLERS`); None for the card's default.
    seed : int
        Seed of the sampling noise; with the same inputs the estimate is reproducible.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    tile, overlap : int
        Tile side and overlap, pixels, for grids larger than one tile.
    batch_tiles : int
        Most tiles per network call.
    batch_fields : int
        Most fields (tiles x members) per network call: what bounds the memory of a call (about
        0.4 GiB per 256 x 256 field for the demo flows on a CPU); members beyond it are drawn in turns.
    precision : str
        Precision of the network passes (:data:`qpe.inference.precision.PRECISIONS`): ``"auto"`` (bf16
        autocast on a GPU, float32 on a CPU), ``"float32"``, or ``"bfloat16"`` (bf16 autocast on a CPU too:
        faster where the CPU has bf16 units, but rain differs from float32 by up to a few tenths of a mm/h;
        docs/performance.md). Estimates of another precision are cached apart.
    """

    members: int = 1
    steps: int | None = None
    sampler: str | None = None
    seed: int = 0
    device: str = "auto"
    tile: int = 256
    overlap: int = 32
    batch_tiles: int = 4
    batch_fields: int = 16
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_tiling(self.tile, self.overlap)
        check_precision(self.precision)
        for name in ("batch_tiles", "batch_fields"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")

    def sampling(self, model) -> SamplingSettings:
        """This request resolved for ``model`` (a :class:`qpe.models.LoadedModel`), validated by its card."""
        return model.sampling(self.members, self.steps, self.sampler)


class CancelFlag(Protocol):
    """What ``cancel`` must offer (a :class:`threading.Event` does)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class EstimateProgress:
    """Where a running estimate is, as :func:`estimate` reports it to ``on_progress``.

    Counts are 1-based ("step 3 of 8"). A *call* is one pass of the sampler over a batch of tiles
    ``tile_first .. tile_last`` (of ``tiles``) for members ``member_first .. member_last`` (of
    ``members``); a deterministic model has one step per call.

    Attributes
    ----------
    time, times : int
        The time being computed and how many were asked for.
    call, calls : int
        The network call of this time and how many it takes.
    step, steps : int
        The sampler step done within the call, and K.
    tile_first, tile_last, tiles : int
        Tiles of the call, and of the grid.
    member_first, member_last, members : int
        Members of the call, and of the estimate.
    elapsed_s : float
        Seconds since the first field was started.
    remaining_s : float or None
        Seconds left, extrapolated from the steps done so far (as if no later time were cached).
    """

    time: int
    times: int
    call: int
    calls: int
    step: int
    steps: int
    tile_first: int
    tile_last: int
    tiles: int
    member_first: int
    member_last: int
    members: int
    elapsed_s: float
    remaining_s: float | None

    @property
    def fraction(self) -> float:
        """Share of the work done, 0..1."""
        per_time = self.calls * self.steps
        return ((self.time - 1) * per_time + (self.call - 1) * self.steps + self.step) / (self.times * per_time)

    def describe(self) -> str:
        """One line, e.g. ``step 3/8, tiles 1-4 of 9, members 1-2 of 4, time 1/2, 1 min 05 s left``."""
        parts = [f"step {self.step}/{self.steps}"]
        if self.tiles > 1:
            span = f"{self.tile_first}" if self.tile_first == self.tile_last else f"{self.tile_first}-{self.tile_last}"
            parts.append(f"tile{'s' if self.tile_first != self.tile_last else ''} {span} of {self.tiles}")
        if self.member_last - self.member_first + 1 < self.members:
            parts.append(f"members {self.member_first}-{self.member_last} of {self.members}")
        if self.times > 1:
            parts.append(f"time {self.time}/{self.times}")
        if self.remaining_s is not None:
            minutes, seconds = divmod(round(self.remaining_s), 60)
            parts.append(f"{minutes} min {seconds:02d} s left" if minutes else f"{seconds} s left")
        return ", ".join(parts)


class _Progress:
    """Counts the steps of an estimate, reports them and checks for a cancel (see the module notes)."""

    def __init__(
        self, on_progress: Callable[[EstimateProgress], None] | None, cancel: CancelFlag | None, times: int,
        calls: int, steps: int, tiles: int, members: int,
    ) -> None:
        self.on_progress, self.cancel = on_progress, cancel
        self.times, self.calls, self.steps, self.tiles, self.members = times, calls, steps, tiles, members
        self.started: float | None = None
        self.time = 1
        self.here: dict = {}

    def check(self) -> None:
        """Raise :class:`EstimateCancelled` if the estimate was cancelled."""
        if self.cancel is not None and self.cancel.is_set():
            raise EstimateCancelled("estimate cancelled")

    def start_call(self, call: int, tiles: tuple[int, int], members: tuple[int, int]) -> None:
        self.check()
        if self.started is None:
            self.started = clock.perf_counter()
        self.here = {"call": call, "tile_first": tiles[0], "tile_last": tiles[1],
                     "member_first": members[0], "member_last": members[1]}

    def step_done(self, step: int, steps: int) -> None:
        """The sampler's callback: report step ``step`` of the call in progress, then check for a cancel."""
        if self.on_progress is not None:
            elapsed = clock.perf_counter() - (self.started or clock.perf_counter())
            report = EstimateProgress(
                time=self.time, times=self.times, calls=self.calls, step=step, steps=self.steps, tiles=self.tiles,
                members=self.members, elapsed_s=elapsed, remaining_s=None, **self.here,
            )
            done = report.fraction
            remaining = elapsed * (1 - done) / done if done > 0 and elapsed > 0 else None
            self.on_progress(dataclasses.replace(report, remaining_s=remaining))
        self.check()


def find_times(ds: xr.Dataset, times: Sequence | pd.DatetimeIndex) -> np.ndarray:
    """Indices of ``times`` in ``ds``; one clear error for the first time that is not in the data."""
    index = pd.DatetimeIndex(ds["time"].values)
    wanted = utc_naive(pd.DatetimeIndex(pd.to_datetime(list(times))))
    if wanted.empty:
        raise DatasetError("no time asked for: the period is empty")
    positions = index.get_indexer(wanted)
    missing = wanted[positions < 0]
    if missing.size:
        nearest = index[np.abs(index - missing[0]).argmin()]
        raise DatasetError(
            f"time {missing[0]:%Y-%m-%dT%H:%M} is not in the data ({index[0]:%Y-%m-%dT%H:%M} .. "
            f"{index[-1]:%Y-%m-%dT%H:%M}; nearest {nearest:%Y-%m-%dT%H:%M})"
        )
    return positions


def check_compatible(model, ds: xr.Dataset) -> None:
    """Raise when the dataset lacks the channels the checkpoint was trained on."""
    channels = list(model.card.input.channels)
    have = [str(c) for c in ds["channel"].values]
    missing = [c for c in channels if c not in have]
    if missing:
        raise DatasetError(
            f"checkpoint {model.card.name!r} needs IR channel(s) {', '.join(missing)}, which the data "
            f"lack (data has {', '.join(have)})"
        )


def input_stack(ds: xr.Dataset, index: int, frames: int, channels: Sequence[str]) -> np.ndarray:
    """IR frames ``index - frames + 1 .. index`` as (T, C, H, W) float32 K, oldest first.

    Raises when the frames are not consecutive 15-minute steps.
    """
    t0 = index - frames + 1
    times = ds["time"].values
    when = pd.Timestamp(times[index])
    if t0 < 0:
        raise DatasetError(
            f"time {when:%Y-%m-%dT%H:%M} needs {frames} IR frames but only {index + 1} precede it in the data"
        )
    if not has_frames(times[t0 : index + 1], frames)[-1]:
        raise DatasetError(
            f"time {when:%Y-%m-%dT%H:%M} needs {frames} consecutive 15-min IR frames; the data have a gap"
        )
    ir = ds["ir"].isel(time=slice(t0, index + 1)).sel(channel=list(channels))
    return np.asarray(ir.values, dtype="float32")


def _calls(shape: tuple[int, int], settings: SamplingSettings, config: EstimateConfig) -> tuple[list, int, int]:
    """The tile batches of a field (tiles of one batch share a shape), members per call, and tiles in all."""
    tiles = plan_tiles(shape, config.tile, config.overlap)
    # Members drawn per call, and tiles per call, so that a call holds at most batch_fields fields.
    per_call = min(settings.members, max(1, config.batch_fields))
    tiles_per_call = max(1, min(config.batch_tiles, config.batch_fields // per_call))
    # Tiles of one batch must share a shape: group them by shape (edge tiles may be smaller).
    groups: dict[tuple[int, int], list] = {}
    for tile in tiles:
        groups.setdefault((tile.rows.stop - tile.rows.start, tile.cols.stop - tile.cols.start), []).append(tile)
    batches = [group[start : start + tiles_per_call] for group in groups.values()
               for start in range(0, len(group), tiles_per_call)]
    return batches, per_call, len(tiles)


def _predict_field(
    model, stack: np.ndarray, settings: SamplingSettings, config: EstimateConfig, device: torch.device,
    progress: _Progress | None = None,
) -> np.ndarray:
    """(T, C, H, W) K -> (M, H, W) mm/h through overlapping tiles."""
    _, _, h, w = stack.shape
    valid = np.isfinite(stack).all(axis=(0, 1))
    stack = np.where(np.isfinite(stack), stack, np.nanmean(stack, axis=(2, 3), keepdims=True))
    batches, per_call, _ = _calls((h, w), settings, config)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    total = np.zeros((settings.members, h, w), dtype="float32")
    weight = np.zeros((h, w), dtype="float32")
    callback = None if progress is None or settings.sampler is None else progress.step_done
    call, tile_first = 0, 1
    for batch in batches:
        ir = torch.from_numpy(np.stack([stack[:, :, t.rows, t.cols] for t in batch])).to(device)
        parts = []
        for first in range(0, settings.members, per_call):
            turn = dataclasses.replace(settings, members=min(per_call, settings.members - first))
            call += 1
            if progress is not None:
                progress.start_call(call, (tile_first, tile_first + len(batch) - 1), (first + 1, first + turn.members))
            with autocast(device, config.precision):
                parts.append(model.predict(ir, turn, generator, callback).float().cpu().numpy())
            if progress is not None and callback is None:  # a deterministic model: one step per call
                progress.step_done(1, 1)
        tile_first += len(batch)
        rain = np.concatenate(parts, axis=1)  # (tiles, members, h, w)
        for tile, field in zip(batch, rain):
            wts = tile_weights(tile, (h, w), config.overlap)
            total[:, tile.rows, tile.cols] += field * wts
            weight[tile.rows, tile.cols] += wts
    rain = total / weight
    if not np.isfinite(rain[:, valid]).all():
        raise CheckpointError(
            f"model {model.card.name!r} gave non-finite rain where its IR input is complete "
            f"({np.mean(~np.isfinite(rain[:, valid])):.0%} of those pixels): are its weights corrupt?"
        )
    rain[:, ~valid] = np.nan
    return rain


def estimate(
    model,
    ds: xr.Dataset,
    times: Sequence | pd.DatetimeIndex,
    config: EstimateConfig = EstimateConfig(),
    *,
    cache: EstimateCache | None = None,
    progress: bool = True,
    on_progress: Callable[[EstimateProgress], None] | None = None,
    cancel: CancelFlag | None = None,
) -> xr.Dataset:
    """Estimate rain with a model on chosen times of a paired dataset.

    Parameters
    ----------
    model : LoadedModel or path-like
        A model from :func:`qpe.models.load`, or the checkpoint directory to load.
    ds : xarray.Dataset
        Paired dataset holding ``ir`` (rain is not needed).
    times : sequence of datetime-like
        Valid times (UTC); each must be in ``ds`` with its T - 1 predecessors at 15-minute steps.
    config : EstimateConfig
        Members, steps, sampler, seed, device and tiling.
    cache : EstimateCache, optional
        Where (model, time) estimates are cached; no caching if None.
    progress : bool
        Show a progress bar over times.
    on_progress : callable, optional
        Called with an :class:`EstimateProgress` after every sampler step (in the calling thread).
    cancel : CancelFlag, optional
        E.g. a :class:`threading.Event`; once set, the estimate stops at the next step (module notes).

    Returns
    -------
    xarray.Dataset
        ``rain (member, time, y, x)`` in mm/h (NaN where an IR input was missing), on the grid of
        ``ds``, with the model, checkpoint hash and sampling settings in ``attrs``.

    Raises
    ------
    EstimateCancelled
        ``cancel`` was set; the time in progress is not cached.
    """
    from qpe.models import load

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    if "time" not in ds.coords:
        raise DatasetError("dataset has no 'time' coordinate")
    positions = find_times(ds, times)
    # Validate (units, ranges, grid) only the frames these estimates read: a long dataset is not
    # read in full for one time.
    frames = model.card.input.frames
    needed = np.unique(np.concatenate([np.arange(max(0, p - frames + 1), p + 1) for p in positions]))
    validate_paired(ds.isel(time=needed), require=("ir",))
    check_compatible(model, ds)
    settings = config.sampling(model)
    device = resolve_device(config.device)
    card = model.card
    with exclusive(device):  # a first move to a GPU must not overlap another session's forward pass
        model.to(device)
    dtype = autocast_dtype(device, config.precision)
    # float32 estimates keep the keys they always had; reduced precision is cached apart.
    numerics = {} if dtype is None else {"precision": str(dtype).removeprefix("torch.")}
    fields = []
    tracker = None
    if on_progress is not None or cancel is not None:
        batches, per_call, tiles = _calls((ds.sizes["y"], ds.sizes["x"]), settings, config)
        turns = -(-settings.members // per_call)
        steps = settings.steps if settings.sampler is not None else 1
        tracker = _Progress(on_progress, cancel, len(positions), len(batches) * turns, steps, tiles,
                            settings.members)
    bar = tqdm(positions, desc=f"estimate {card.name}", unit="time", disable=not progress, leave=False)
    for number, index in enumerate(bar, start=1):
        if tracker is not None:
            tracker.check()
            tracker.time = number
        stack = input_stack(ds, int(index), card.input.frames, card.input.channels)
        key = cache_key(model=model.sha256, inputs=array_digest(stack), sampling=settings.to_dict(),
                        seed=settings.seed(config.seed), tile=config.tile, overlap=config.overlap, **numerics)
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            fields.append(cached["rain"].values)
            continue
        with exclusive(device), torch.no_grad():
            rain = _predict_field(model, stack, settings, config, device, tracker)
        if cache is not None:
            cache.put(key, xr.Dataset({"rain": (("member", "y", "x"), rain)}))
        fields.append(rain)
    rain = np.stack(fields, axis=1)  # (member, time, y, x)
    out = xr.Dataset(
        {"rain": (("member", "time", "y", "x"), rain, {**rain_attrs(), "long_name": f"rain rate estimated by {card.name}"})},
        coords={
            "member": np.arange(rain.shape[0]),
            "time": ds["time"].values[positions],
            "y": ds["y"], "x": ds["x"],
            GRID_MAPPING_NAME: ds[GRID_MAPPING_NAME],
        },
    )
    out.attrs.update({
        "model": card.name, "family": card.family, "checkpoint_sha256": model.sha256,
        "members": settings.members, "steps": -1 if settings.steps is None else settings.steps,
        "sampler": settings.sampler or "none", "seed": config.seed, "device": str(device),
        "precision": "float32" if dtype is None else str(dtype).removeprefix("torch."),
        "network_evaluations": model.network_evaluations(settings),
        "qpe_version": __version__,
    })
    return out
