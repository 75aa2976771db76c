"""Training samples held on the training device, with every batch cut there (``optim.data_on_device``).

The data-loader path reads each sample from host memory (crop, transform, normalise), stacks a batch and
copies it to the device every step. Here the arrays a run's training windows read are normalised and
moved to the device once:

- ``ir`` (frame, channel, y, x) float32: the normalised IR of every time some training window reads;
- ``rain`` (sample, y, x) float32 mm/h (NaN -> 0) and ``mask`` (sample, y, x) bool at each target time;

and a batch is one gather of each at the crop positions of its samples. Which samples, which crop
positions and which transforms a step takes are decided exactly as on the data-loader path (by
:class:`~qpe.training.batches.StepBatches` and :meth:`~qpe.data.samples.PairedSamples.window` /
:meth:`~qpe.data.samples.PairedSamples.transform`, on the host, from the seed): the batches are the same,
value for value. Per step only the ``B x 3`` integers of the positions travel to the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from qpe.data.samples import TRANSFORMS, PairedSamples
from qpe.errors import InputError

#: Times normalised and copied to the device at once (bounds the host memory of the move).
_BLOCK_TIMES = 64
#: Share of the device's free memory the arrays may take (the model, its activations and the optimiser
#: need the rest).
_MEMORY_SHARE = 0.5


class DeviceSamples:
    """The training samples of ``samples`` on ``device``, cut into batches there.

    Parameters
    ----------
    samples : PairedSamples
        The training samples (random crops, optional augmentation).
    device : torch.device
        Where the arrays live and the batches are cut.

    Raises
    ------
    InputError
        The arrays do not fit in half of the free memory of a GPU ``device``.
    """

    def __init__(self, samples: PairedSamples, device: torch.device | str) -> None:
        self.samples = samples
        self.device = device = torch.device(device)
        frames = samples.config.frames
        targets = samples.targets
        windows = targets[:, None] + np.arange(1 - frames, 1)[None, :]  # (sample, T) time indices
        times = np.unique(windows)
        row_of = np.full(int(times.max()) + 1, -1, dtype=np.int64)
        row_of[times] = np.arange(times.size)
        ny, nx = samples.shape
        channels = len(samples.channels)
        self.nbytes = (times.size * channels * 4 + targets.size * 5) * ny * nx
        _check_fits(self.nbytes, device)

        self.ir = torch.empty((times.size, channels, ny, nx), dtype=torch.float32, device=device)
        for start in range(0, times.size, _BLOCK_TIMES):
            block = times[start : start + _BLOCK_TIMES]
            self.ir[start : start + block.size] = torch.from_numpy(samples.normalized_ir(block)).to(device)
        rain = samples.rain_at(targets)
        mask = np.isfinite(rain)
        self.rain = torch.from_numpy(np.where(mask, rain, 0.0).astype("float32")).to(device)
        self.mask = torch.from_numpy(mask).to(device)
        self.index = torch.from_numpy(targets.astype(np.int64)).to(device)
        self.frame_rows = torch.from_numpy(row_of[windows]).to(device)  # (sample, T) rows of ``ir``
        self._channels = torch.arange(channels, device=device)

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, keys: Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """The samples ``keys`` (``(epoch, item)`` pairs, as :class:`~qpe.training.batches.StepBatches`
        gives them) as one batch on the device.

        Returns
        -------
        dict of str to torch.Tensor
            ``ir`` (B, T, C, h, w) float32 normalised, ``rain`` (B, h, w) float32 mm/h (0 without radar),
            ``mask`` (B, h, w) bool, ``index`` (B,) int64 target time indices: what
            :func:`qpe.training.loop.collate` makes of the same samples read from the host.
        """
        samples = self.samples
        origins, transforms = [], []
        for epoch, item in keys:
            rows, cols = samples.window(item, epoch)
            origins.append((item, rows.start or 0, cols.start or 0))
            transforms.append(samples.transform(item, epoch))
        crop = samples.config.crop
        height, width = (crop, crop) if crop is not None else samples.shape
        where = torch.tensor(origins, dtype=torch.int64).to(self.device, non_blocking=True)
        items = where[:, 0]
        rows = where[:, 1, None] + torch.arange(height, device=self.device)  # (B, h)
        cols = where[:, 2, None] + torch.arange(width, device=self.device)  # (B, w)
        ir = self.ir[self.frame_rows[items][:, :, None, None, None], self._channels[None, None, :, None, None],
                     rows[:, None, None, :, None], cols[:, None, None, None, :]]
        rain = self.rain[items[:, None, None], rows[:, :, None], cols[:, None, :]]
        mask = self.mask[items[:, None, None], rows[:, :, None], cols[:, None, :]]
        for b, name in enumerate(transforms):
            if name != "identity":
                ir[b], rain[b], mask[b] = [_transformed(x[b], name) for x in (ir, rain, mask)]
        return {"ir": ir, "rain": rain, "mask": mask, "index": self.index[items]}


def _transformed(field: torch.Tensor, name: str) -> torch.Tensor:
    """``field`` (..., y, x) under the square symmetry ``name``: what
    :func:`qpe.data.samples.apply_transform` does to a NumPy array."""
    turns, mirror = TRANSFORMS[name]
    out = torch.rot90(field, turns, dims=(-2, -1))
    return out.flip(-1) if mirror else out


def _check_fits(nbytes: int, device: torch.device) -> None:
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > _MEMORY_SHARE * free:
        raise InputError(f"optim data_on_device: the training samples take {nbytes / 2**30:.1f} GiB, more than "
                         f"half of the {free / 2**30:.1f} GiB free on {device}; set data_on_device: false")
