"""Which samples each optimiser step sees: a pure function of (seed, step), so runs resume exactly.

Epoch ``e`` visits the training samples in the order of ``randperm(n, seed=(seed, e))``, in batches of
``batch_size`` (the last incomplete batch is dropped). Step ``s`` is batch ``s % per_epoch`` of epoch
``s // per_epoch``. With W data-parallel processes, process ``r`` takes items ``r, r + W, ...`` of each
batch, so W processes together see exactly the samples of a single process.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from qpe.errors import DatasetError


class StepBatches(torch.utils.data.Sampler):
    """Batches of ``(epoch, sample)`` keys for steps ``start, start + 1, ..., stop - 1``.

    Parameters
    ----------
    n_samples : int
        Training samples.
    batch_size : int
        Samples per step over all processes.
    seed : int
        Seed of the epoch orders.
    start, stop : int
        First and one-past-last step.
    rank, world : int
        This process and the number of data-parallel processes (``batch_size`` must divide by it).
    """

    def __init__(
        self, n_samples: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1
    ) -> None:
        if batch_size > n_samples:
            raise DatasetError(f"batch size {batch_size} exceeds the {n_samples} training samples")
        if batch_size % world:
            raise DatasetError(f"batch size {batch_size} does not divide among {world} processes")
        self.n, self.batch_size, self.seed = n_samples, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.per_epoch = n_samples // batch_size

    def epoch_order(self, epoch: int) -> np.ndarray:
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
        return torch.randperm(self.n, generator=g).numpy()

    def batch(self, step: int) -> list[tuple[int, int]]:
        """The ``(epoch, sample)`` keys this process loads for ``step``."""
        epoch, k = divmod(step, self.per_epoch)
        items = self.epoch_order(epoch)[k * self.batch_size : (k + 1) * self.batch_size]
        return [(epoch, int(i)) for i in items[self.rank :: self.world]]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def step_generator(seed: int, step: int, rank: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of the training noise (diffusion times, source noise) of one step and process."""
    state = int(np.random.SeedSequence([seed, step, rank, 7]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(state)
