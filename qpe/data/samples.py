"""Training samples: T successive IR frames x C channels -> the radar rain of the last frame.

A sample at target time ``t_i`` holds the IR frames ``t_{i-T+1} .. t_i`` (oldest first, all exactly
15 minutes apart) and the radar rain at ``t_i``, optionally cropped to a square. IR is normalised
with the statistics stored in the dataset; NaN radar becomes 0 with ``mask = False`` so that losses
can ignore it.

**Joint augmentation** (``SampleConfig.augment``, training only): a sample may be flipped or turned by
quarter turns, the same way for its T IR frames, every channel, the rain and the mask, so the cloud,
its motion (the wind seen across the frames) and the rain under it move together. Whether that is
physically valid depends on what is direction-dependent in the scene:

- the rain, its advection and the cloud physics of the synthetic generator have no preferred direction
  (the winds are drawn from 200-320 degrees, so turned samples show winds from elsewhere, which is
  possible weather, only rarer over Europe);
- the **parallax** is not: SEVIRI sees each cloud top displaced away from the sub-satellite point
  (0 N, 0 E), over France northward (1.3-1.4 km per km of cloud-top height) and slightly eastward.
  A north-south flip, a half turn or a quarter turn moves the displacement to the south, east or west:
  a parallax no SEVIRI image of Europe has, so the network learns to expect cloud displaced in any
  direction and loses the cue of where rain lies under a tall cloud. ``flip_x`` (east-west mirror)
  keeps it northward (only its small eastward part turns westward, as west of 0 E), so it is the only
  transform that stays close to real European geometry. The viewing zenith (a north-south gradient)
  and the fixed south-east corner without radar move with any transform too (the mask follows).

What each choice did to the study's T = 4 U-Net is measured in docs/calibration.md (training sets).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from qpe.data.archive import StreamedVariable, streamed_arrays, validate_view
from qpe.data.normalization import IRNormalization, compute_ir_normalization, read_ir_normalization
from qpe.data.paired import describe_times
from qpe.data.times import SEVIRI_STEP, has_frames
from qpe.errors import DatasetError

#: Datasets smaller than this are loaded into memory once instead of read from disk per sample.
IN_MEMORY_LIMIT_BYTES = 2 * 1024**3
#: The symmetries of a square field (y, x), rows running north to south, as (quarter turns
#: counter-clockwise, then columns reversed): ``flip_x`` mirrors east-west, ``flip_y`` north-south.
TRANSFORMS: dict[str, tuple[int, bool]] = {
    "identity": (0, False), "rot90": (1, False), "rot180": (2, False), "rot270": (3, False),
    "flip_x": (0, True), "flip_y": (2, True), "transpose": (3, True), "antitranspose": (1, True),
}
#: Every transform but the identity: flips and quarter turns.
DIHEDRAL = tuple(name for name in TRANSFORMS if name != "identity")
#: Distinguishes the random stream of the transforms from that of the crops.
_AUGMENT_STREAM = 1
#: Threads decoding an archive's chunks for a batch (:meth:`PairedSamples.__getitems__`) by default.
READ_THREADS = 2


@dataclass(frozen=True)
class SampleConfig:
    """How samples are cut from a paired dataset.

    Parameters
    ----------
    frames : int
        T, number of successive IR frames per sample (1..8), 15 minutes apart.
    crop : int or None
        Side of the square crop, pixels; None for the whole field.
    channels : tuple of str or None
        IR channels in model order; None for all channels of the dataset, in dataset order.
    random_crop : bool
        Draw a new crop position every epoch (training); otherwise a fixed position per sample.
    min_radar_fraction : float
        A crop position is redrawn (up to 10 times) while less than this fraction of it has radar.
    augment : tuple of str
        Names of :data:`TRANSFORMS` a sample may undergo (e.g. ``("flip_x",)`` or :data:`DIHEDRAL`):
        each sample draws one of them or the identity, with equal chances, from (seed, epoch, index)
        like its crop, and applies it to all its IR frames, channels, rain and mask. Empty (the
        default): none. For training only; see the module notes on when it is physically valid.
    """

    frames: int = 4
    crop: int | None = 128
    channels: tuple[str, ...] | None = None
    random_crop: bool = True
    min_radar_fraction: float = 0.5
    augment: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 8:
            raise DatasetError(f"frames (T) must be between 1 and 8, got {self.frames}")
        if self.crop is not None and self.crop < 8:
            raise DatasetError(f"crop must be at least 8 pixels, got {self.crop}")
        unknown = [str(name) for name in self.augment if name not in TRANSFORMS]
        if unknown:
            raise DatasetError(
                f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)}"
            )

    @property
    def transforms(self) -> tuple[str, ...]:
        """The transforms a sample draws from: the identity and those of ``augment``, each once."""
        return tuple(dict.fromkeys(("identity", *self.augment)))


def apply_transform(field: np.ndarray, name: str) -> np.ndarray:
    """``field`` (..., y, x) under the square symmetry ``name`` of :data:`TRANSFORMS`, a contiguous array.

    The leading axes (time, channel) are untouched: every frame and channel moves the same way.
    """
    turns, mirror = TRANSFORMS[name]
    out = np.rot90(field, turns, axes=(-2, -1))
    return np.ascontiguousarray(out[..., ::-1] if mirror else out)


def target_indices(times: np.ndarray, frames: int, step: pd.Timedelta = SEVIRI_STEP) -> np.ndarray:
    """Indices ``i`` whose ``frames`` preceding times (``i`` included) are consecutive at ``step``."""
    return np.flatnonzero(has_frames(times, frames, step))


def chronological_split(targets: np.ndarray, val_fraction: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Split target indices into an earlier training block and a later validation block.

    The training block stops ``frames`` steps before the first validation target so that no IR frame
    is shared between a training input and a validation input.
    """
    if not 0 < val_fraction < 1:
        raise DatasetError(f"validation fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, round(len(targets) * val_fraction))
    if len(targets) - n_val < 1:
        raise DatasetError(f"too few samples ({len(targets)}) to split off a validation set")
    val = targets[-n_val:]
    train = targets[targets <= val[0] - frames]
    if train.size == 0:
        raise DatasetError("no training samples left before the validation block; use more data")
    return train, val


def radar_present(rain, indices: np.ndarray, block: int = 64) -> np.ndarray:
    """Whether the radar has any valid (non-NaN) pixel at each time index, read ``block`` times at once.

    Parameters
    ----------
    rain : numpy.ndarray or xarray.Variable
        (time, y, x) rain rate, mm/h.
    indices : numpy.ndarray
        Time indices to look at.

    Returns
    -------
    numpy.ndarray
        Bool, one per index.
    """
    present = [
        np.isfinite(np.asarray(rain[indices[start : start + block]])).any(axis=(1, 2))
        for start in range(0, len(indices), block)
    ]
    return np.concatenate(present) if present else np.zeros(0, dtype=bool)


class PairedSamples(torch.utils.data.Dataset):
    """A :class:`torch.utils.data.Dataset` of (IR stack, rain, mask) samples.

    Parameters
    ----------
    ds : xarray.Dataset
        Paired dataset with ``ir``, ``rain`` and stored normalisation (see :mod:`qpe.data.normalization`).
    config : SampleConfig
        Frames, crop and channels.
    targets : sequence of int, optional
        Target time indices to use (e.g. one side of :func:`chronological_split`); all valid ones if None.
    normalization : IRNormalization, optional
        Statistics to apply (e.g. a model card's); if None, the dataset's stored ones, or (for an
        in-memory dataset that has none) computed from its ``ir``.
    seed : int
        Seed of the crop positions; with :meth:`set_epoch`, sample ``(epoch, index)`` is reproducible.
    in_memory : bool, optional
        Load the arrays once; by default when the dataset is under 2 GiB and not a paired archive. A
        paired archive (:mod:`qpe.data.archive`) is otherwise read a chunk at a time, raw chunks straight
        into the sample, compressed ones through a cache of bounded size
        (:func:`qpe.data.archive.streamed_arrays`), so memory does not grow with its length; another
        dataset through xarray's lazy indexing.
    read_threads : int
        Threads that read and decode a streamed archive's chunks for a batch at once
        (:meth:`__getitems__`, what a :class:`torch.utils.data.DataLoader` calls); 0: one at a time on
        the calling thread. The samples are the same either way.
    validate : bool
        Check the dataset (:func:`qpe.data.paired.validate_paired`, which reads every value of one that
        is not an archive); False only for one :func:`~qpe.data.paired.open_paired` has just validated.

    Each item is a dict: ``ir`` (T, C, h, w) float32 normalised; ``rain`` (h, w) float32 mm/h with
    NaN replaced by 0; ``mask`` (h, w) bool, True where radar is valid; ``index`` the target time index.

    Raises
    ------
    DatasetError
        The dataset is not a valid paired one with ``ir`` and ``rain``; a target lacks its frames; or
        the radar has no valid pixel at any target time (a training set or validation block that would
        train on nothing and report a loss of 0), naming those times.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        config: SampleConfig = SampleConfig(),
        *,
        targets: Sequence[int] | None = None,
        normalization: IRNormalization | None = None,
        seed: int = 0,
        in_memory: bool | None = None,
        read_threads: int = READ_THREADS,
        validate: bool = True,
    ) -> None:
        if validate:
            validate_view(ds, require=("ir", "rain"))  # an archive: its layout (values checked when built)
        self.config = config
        self.channels = tuple(config.channels or (str(c) for c in ds["channel"].values))
        missing = sorted(set(self.channels) - {str(c) for c in ds["channel"].values})
        if missing:
            raise DatasetError(f"dataset lacks IR channel(s) {', '.join(missing)}")
        if normalization is None:
            has_stats = "ir_mean" in ds.variables
            normalization = read_ir_normalization(ds) if has_stats else compute_ir_normalization(ds["ir"])
        self.normalization = normalization.select(self.channels)
        valid = target_indices(ds["time"].values, config.frames)
        if targets is None:
            self.targets = valid
        else:
            self.targets = np.asarray(targets, dtype=int)
            bad = np.setdiff1d(self.targets, valid)
            if bad.size:
                raise DatasetError(
                    f"{bad.size} target(s) lack {config.frames} consecutive 15-min IR frames "
                    f"(first: {pd.Timestamp(ds['time'].values[bad[0]]):%Y-%m-%dT%H:%M})"
                )
        if self.targets.size == 0:
            raise DatasetError(f"no time in the dataset has {config.frames} consecutive 15-min IR frames")
        self.shape = (ds.sizes["y"], ds.sizes["x"])
        if config.crop is not None and config.crop > min(self.shape):
            raise DatasetError(f"crop {config.crop} is larger than the grid {self.shape[0]}x{self.shape[1]}")
        turning = [name for name in config.transforms if TRANSFORMS[name][0] % 2]
        if turning and config.crop is None and self.shape[0] != self.shape[1]:
            raise DatasetError(f"augmentation {', '.join(turning)} turns the field: it needs square samples "
                               f"(a crop), not the whole {self.shape[0]}x{self.shape[1]} grid")
        self.times = ds["time"].values
        ir = ds["ir"].sel(channel=list(self.channels))
        streamed = None if in_memory else streamed_arrays(ds, self.channels)
        if in_memory is None:
            in_memory = streamed is None and ir.nbytes + ds["rain"].nbytes < IN_MEMORY_LIMIT_BYTES
        if in_memory:
            self._ir, self._rain = ir.values, ds["rain"].values
        elif streamed is not None:  # an archive: chunk by chunk through a bounded cache
            self._ir, self._rain = streamed
        else:
            self._ir, self._rain = ir.variable, ds["rain"].variable
        if not radar_present(self._rain, self.targets).any():
            raise DatasetError(
                f"the radar has no valid pixel at any of the {self.targets.size} sample times "
                f"({describe_times(self.times[self.targets])}): nothing to learn from or score against"
            )
        self.seed = seed
        self.epoch = 0
        self.read_threads = read_threads
        self._pool, self._pool_pid = None, 0

    def __getstate__(self) -> dict:  # a data-loader's worker processes make their own threads
        state = dict(self.__dict__)
        state["_pool"] = None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (training); fixed crops are the same in every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self.targets.size)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Sample ``item``, or ``(epoch, item)``: the crop of that epoch, whatever :meth:`set_epoch` said
        (what a sampler running in worker processes needs)."""
        epoch, item = item if isinstance(item, tuple) else (self.epoch, item)
        rain = np.asarray(self._rain[int(self.targets[item])])
        window = self._window(item, epoch, rain)
        return self._sample(epoch, item, window, rain, self._read_ir(item, window))

    def _read_ir(self, item: int, window: tuple[slice, slice]) -> np.ndarray:
        """The T frames of sample ``item`` in ``window``, (T, C, h, w) float32, an array of its own."""
        i = int(self.targets[item])
        ir = self._ir[i - self.config.frames + 1 : i + 1, :, window[0], window[1]]
        copy = None if isinstance(self._ir, StreamedVariable) else True  # a streamed read is a new array
        return np.array(ir, dtype="float32", copy=copy)

    def _sample(self, epoch: int, item: int, window: tuple[slice, slice], rain_field: np.ndarray,
                ir: np.ndarray) -> dict[str, torch.Tensor]:
        """Sample ``item`` from its IR frames ``ir`` (normalised here, in place) and the target's rain field."""
        rain = np.array(rain_field[window], dtype="float32")
        transform = self.transform(item, epoch)
        if transform != "identity":
            ir, rain = apply_transform(ir, transform), apply_transform(rain, transform)
        mask = np.isfinite(rain)
        rain[~mask] = 0.0
        return {
            "ir": torch.from_numpy(self.normalization.apply(ir, in_place=True)),
            "rain": torch.from_numpy(rain),
            "mask": torch.from_numpy(mask),
            "index": torch.tensor(int(self.targets[item])),
        }

    def __getitems__(self, items: Sequence[int | tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        """The samples ``items`` (as :meth:`__getitem__` takes them), what a data-loader asks for a batch.

        From a streamed archive the reading runs on ``read_threads`` threads: from raw chunks, each
        sample's frames are read on a thread while this one finishes the samples before it; from
        compressed chunks, those of the batch's frames (as many samples at a time as half the cache
        holds) are decoded on the threads first. The samples are the same as one by one.
        """
        if not isinstance(self._ir, StreamedVariable) or self.read_threads < 1 or len(items) < 2:
            return [self[item] for item in items]
        if self._pool is None or self._pool_pid != os.getpid():  # a forked worker has none of its parent's threads
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.read_threads, thread_name_prefix="qpe-archive-read")
            self._pool_pid = os.getpid()
        keys = [item if isinstance(item, tuple) else (self.epoch, item) for item in items]
        if self._ir.raw:
            rains = [np.asarray(self._rain[int(self.targets[item])]) for _, item in keys]
            windows = [self._window(item, epoch, rain) for (epoch, item), rain in zip(keys, rains)]
            reads = [self._pool.submit(self._read_ir, item, window) for (_, item), window in zip(keys, windows)]
            return [self._sample(epoch, item, window, rain, read.result())
                    for (epoch, item), window, rain, read in zip(keys, windows, rains, reads)]
        offsets = np.arange(1 - self.config.frames, 1)
        targets = self.targets[[item for _, item in keys]]
        group = max(1, self._ir.cache_bytes // (2 * offsets.size * self._ir.chunk_bytes))
        samples = []
        for start in range(0, len(keys), group):
            chosen = targets[start : start + group]
            self._rain.prefetch(chosen, self._pool)
            self._ir.prefetch((chosen[:, None] + offsets).ravel(), self._pool)
            samples += [self[key] for key in keys[start : start + group]]
        return samples

    def normalized_ir(self, times: np.ndarray) -> np.ndarray:
        """IR of the given time indices, ``(time, channel, y, x)`` float32, normalised, whole grid.

        The values of the samples (:meth:`__getitem__` casts to float32, then normalises; so does this).
        """
        return self.normalization.apply(np.asarray(self._ir[np.asarray(times, dtype=int)], dtype="float32"))

    def rain_at(self, times: np.ndarray) -> np.ndarray:
        """Radar rain of the given time indices, ``(time, y, x)`` float32 mm/h, NaN where there is no radar."""
        return np.asarray(self._rain[np.asarray(times, dtype=int)], dtype="float32")

    def transform(self, item: int, epoch: int | None = None) -> str:
        """The :data:`TRANSFORMS` name sample ``item`` undergoes in ``epoch`` (default: the current one).

        Drawn from (seed, epoch, index) like the crop (from a stream of its own, so crops are the same
        with or without augmentation); fixed over epochs when the crops are (``random_crop`` False).
        """
        choices = self.config.transforms
        if len(choices) == 1:
            return choices[0]
        epoch = self.epoch if epoch is None else epoch
        key = (self.seed, epoch if self.config.random_crop else 0, item, _AUGMENT_STREAM)
        return choices[int(np.random.default_rng(key).integers(len(choices)))]

    def window(self, item: int, epoch: int | None = None) -> tuple[slice, slice]:
        """The (rows, columns) of the grid sample ``item`` is cut from in ``epoch`` (default: the current one).

        A random position per (seed, epoch, index) for random crops, a fixed one per index otherwise,
        redrawn while less than ``min_radar_fraction`` of the crop has radar; the whole grid without a crop.
        """
        epoch = self.epoch if epoch is None else epoch
        if self.config.crop is None:
            return slice(None), slice(None)
        return self._window(item, epoch, np.asarray(self._rain[int(self.targets[item])]))

    def _window(self, item: int, epoch: int, rain: np.ndarray) -> tuple[slice, slice]:
        """:meth:`window`, given the rain (y, x) of the sample's target time."""
        crop = self.config.crop
        if crop is None:
            return slice(None), slice(None)
        ny, nx = self.shape
        key = (self.seed, epoch if self.config.random_crop else 0, item)
        rng = np.random.default_rng(key)
        for _ in range(10):
            r, c = int(rng.integers(0, ny - crop + 1)), int(rng.integers(0, nx - crop + 1))
            window = (slice(r, r + crop), slice(c, c + crop))
            if np.isfinite(rain[window]).mean() >= self.config.min_radar_fraction:
                break
        return window

    def target_time(self, item: int) -> pd.Timestamp:
        """Valid time (UTC) of sample ``item``."""
        return pd.Timestamp(self.times[int(self.targets[item])])
