"""Estimates on demand: the library's :func:`qpe.inference.engine.estimate`, one (model, time) at a time.

Fields come from, in order: a process-wide memory of recent fields (shared by the sessions of one
server), the on-disk inference cache (:class:`qpe.inference.cache.EstimateCache`, shared by every
user of that folder), or the model itself; for a folder of external estimates, from its files
(:class:`qpe.inference.external.ExternalEstimates`). Nothing here changes an estimate. A running
estimate reports its progress and stops when cancelled (``on_progress``, ``cancel`` of
:func:`~qpe.inference.engine.estimate`); a cancelled field is neither remembered nor cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr

from dashboard.checkpoints import CheckpointRegistry
from qpe.errors import QpeError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import CancelFlag, EstimateConfig, EstimateProgress, estimate

#: Bytes of estimated fields kept in memory per server process.
MEMORY_BYTES = 1 << 30


@dataclass(frozen=True)
class EstimateSettings:
    """Members, sampler steps (None: the card's default), seed and precision of the estimates."""

    members: int = 4
    steps: int | None = None
    seed: int = 0
    precision: str = "auto"

    def config(self) -> EstimateConfig:
        """The engine settings of these estimates."""
        return EstimateConfig(members=self.members, steps=self.steps, seed=self.seed, precision=self.precision)


class _FieldMemory:
    """A thread-safe LRU of fields, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._fields: OrderedDict[tuple, xr.DataArray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> xr.DataArray | None:
        with self._lock:
            field = self._fields.get(key)
            if field is not None:
                self._fields.move_to_end(key)
            return field

    def put(self, key: tuple, field: xr.DataArray) -> None:
        with self._lock:
            if key in self._fields:
                return
            self._fields[key] = field
            self._bytes += field.nbytes
            while self._bytes > self.max_bytes and len(self._fields) > 1:
                _, old = self._fields.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._fields.clear()
            self._bytes = 0


MEMORY = _FieldMemory(MEMORY_BYTES)


class Estimates:
    """Rain estimates of the checkpoints of a registry on one dataset.

    Parameters
    ----------
    data_path : Path
        Where the dataset lives (part of the memory key).
    dataset : xarray.Dataset
        The paired dataset (``ir`` is what the models read).
    registry : CheckpointRegistry
        The checkpoints, by key.
    cache : EstimateCache or None
        The on-disk inference cache; None to compute every field afresh.
    """

    def __init__(
        self, data_path: Path, dataset: xr.Dataset, registry: CheckpointRegistry, cache: EstimateCache | None
    ) -> None:
        self.data_path = Path(data_path)
        self.dataset = dataset
        self.registry = registry
        self.cache = cache

    def _memory_key(self, model: str, time: pd.Timestamp, settings: EstimateSettings) -> tuple:
        if model in self.registry.external:  # settings do not apply; the files, their times and the regridding do
            external = self.registry.external[model].estimates
            stamps = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in external.files)
            return (str(self.registry.external[model].path), stamps, external.regrid, str(self.data_path),
                    pd.Timestamp(time).isoformat())
        checkpoint = self.registry[model]
        card = checkpoint.card
        sampling = card.sampling_settings(members=settings.members, steps=settings.steps)
        weights = card.weights.sha256 if card.weights is not None else ""
        return (str(checkpoint.path), weights, str(self.data_path), pd.Timestamp(time).isoformat(),
                sampling, sampling.seed(settings.seed), settings.precision)

    def recall(self, model: str, time, settings: EstimateSettings) -> xr.DataArray | None:
        """The field if it is in memory already (no disk, no model); None otherwise (also when the
        settings do not suit the model: :meth:`field` then says why)."""
        try:
            key = self._memory_key(model, time, settings)
        except (QpeError, OSError):
            return None
        return MEMORY.get(key)

    def field(
        self,
        model: str,
        time,
        settings: EstimateSettings,
        *,
        on_progress: Callable[[EstimateProgress], None] | None = None,
        cancel: CancelFlag | None = None,
    ) -> xr.DataArray:
        """(member, y, x) rain rate, mm/h, of ``model`` at ``time``: from memory, the cache, the model or,
        for external estimates, their files.

        ``on_progress`` and ``cancel`` go to :func:`qpe.inference.engine.estimate` (a field read from files
        or memory reports nothing).

        Raises
        ------
        QpeError
            The checkpoint does not load, or the estimate is impossible (channels, missing frames, a time
            or grid the external files do not have); :class:`~qpe.errors.EstimateCancelled` when cancelled.
        """
        key = self._memory_key(model, time, settings)
        field = MEMORY.get(key)
        if field is not None:
            return field
        if model in self.registry.external:
            out = self.registry.external[model].estimates.estimate(self.dataset, [pd.Timestamp(time)])
        else:
            loaded = self.registry.load(model)
            out = estimate(loaded, self.dataset, [pd.Timestamp(time)], settings.config(), cache=self.cache,
                           progress=False,
                           on_progress=on_progress, cancel=cancel)
        field = out["rain"].isel(time=0)
        field.attrs.update({k: out.attrs[k] for k in ("model", "family", "members", "steps", "sampler", "precision")
                            if k in out.attrs})
        field.name = model
        MEMORY.put(key, field)
        return field
