"""Per-channel IR normalisation statistics, computed once and stored with the data.

The statistics live in the dataset itself as ``ir_mean(channel)`` and ``ir_std(channel)`` (K), so a
model trained on a dataset and the inference run on another one can both say exactly which
statistics they used (they are copied into every model card).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from qpe.errors import DatasetError


@dataclass(frozen=True)
class IRNormalization:
    """Mean and standard deviation of brightness temperature per channel, K.

    ``normalised = (ir - mean) / std`` channel by channel.
    """

    channels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.channels) == len(self.mean) == len(self.std)):
            raise DatasetError("normalisation needs one mean and one std per channel")
        if any(not np.isfinite(s) or s <= 0 for s in self.std):
            raise DatasetError(f"normalisation std must be positive and finite, got {self.std}")

    def select(self, channels: Sequence[str]) -> IRNormalization:
        """Statistics for a subset/reordering of the channels."""
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise DatasetError(f"no normalisation statistics for channel(s) {', '.join(missing)}")
        idx = [self.channels.index(c) for c in channels]
        return IRNormalization(tuple(channels), tuple(self.mean[i] for i in idx), tuple(self.std[i] for i in idx))

    def apply(self, ir: np.ndarray, channel_axis: int = -3, *, in_place: bool = False) -> np.ndarray:
        """Normalise an array of brightness temperatures (K) whose ``channel_axis`` follows ``channels``.

        ``in_place``: overwrite ``ir`` (a writeable float array) instead of making two new arrays; the
        same operations in the same precision, so the same values bit for bit.
        """
        shape = [1] * ir.ndim
        shape[channel_axis] = len(self.channels)
        mean = np.asarray(self.mean, dtype=ir.dtype).reshape(shape)
        std = np.asarray(self.std, dtype=ir.dtype).reshape(shape)
        if in_place:
            np.subtract(ir, mean, out=ir)
            return np.divide(ir, std, out=ir)
        return (ir - mean) / std

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{"ir_mean": {channel: K}, "ir_std": {channel: K}}`` (the model-card form)."""
        return {
            "ir_mean": {c: float(m) for c, m in zip(self.channels, self.mean)},
            "ir_std": {c: float(s) for c, s in zip(self.channels, self.std)},
        }

    @classmethod
    def from_dict(cls, d: dict[str, dict[str, float]]) -> IRNormalization:
        channels = tuple(d["ir_mean"])
        return cls(channels, tuple(float(d["ir_mean"][c]) for c in channels),
                   tuple(float(d["ir_std"][c]) for c in channels))


def compute_ir_normalization(ir: xr.DataArray) -> IRNormalization:
    """Mean and std of ``ir (time, channel, y, x)`` in K per channel, one time step at a time.

    Accumulates sums in float64 over time steps, so datasets larger than memory are fine.
    """
    channels = tuple(str(c) for c in ir["channel"].values)
    total = np.zeros(len(channels))
    total_sq = np.zeros(len(channels))
    count = np.zeros(len(channels))
    for i in range(ir.sizes["time"]):
        frame = np.asarray(ir.isel(time=i).values, dtype="float64")
        valid = np.isfinite(frame)
        frame = np.where(valid, frame, 0.0)
        total += frame.sum(axis=(1, 2))
        total_sq += (frame**2).sum(axis=(1, 2))
        count += valid.sum(axis=(1, 2))
    if (count == 0).any():
        raise DatasetError("cannot compute IR normalisation: a channel has no valid value")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return IRNormalization(channels, tuple(mean.tolist()), tuple(std.tolist()))


def with_ir_normalization(ds: xr.Dataset) -> xr.Dataset:
    """Return ``ds`` with ``ir_mean``/``ir_std`` variables (K) computed from its ``ir``."""
    norm = compute_ir_normalization(ds["ir"])
    attrs = {"units": "K", "comment": "computed over all times and pixels of this dataset"}
    return ds.assign(
        ir_mean=("channel", np.asarray(norm.mean, dtype="float64"), {**attrs, "long_name": "IR mean"}),
        ir_std=("channel", np.asarray(norm.std, dtype="float64"), {**attrs, "long_name": "IR std"}),
    )


def read_ir_normalization(ds: xr.Dataset) -> IRNormalization:
    """The statistics stored in a dataset (see :func:`with_ir_normalization`)."""
    if "ir_mean" not in ds.variables or "ir_std" not in ds.variables:
        raise DatasetError(
            "dataset has no IR normalisation statistics (ir_mean, ir_std); datasets written by "
            "qpe.data.save_paired carry them"
        )
    channels = tuple(str(c) for c in ds["channel"].values)
    return IRNormalization(channels, tuple(map(float, ds["ir_mean"].values)), tuple(map(float, ds["ir_std"].values)))
