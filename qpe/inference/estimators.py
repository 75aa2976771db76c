"""Everything that estimates rain through one call: checkpoints and reference products alike.

An *estimator* has a ``name``, a ``family``, a ``source`` (where it comes from, for provenance), the
number of successive IR ``frames`` each estimate reads, whether it ``is_ensemble`` (draws several
members), and two methods::

    check(ds, times, config)                        # raise one clear error if it cannot run so there
    estimate(ds, times, config, cache=, progress=)  # -> rain (member, time, y, x), mm/h

:class:`CheckpointEstimator` wraps a checkpoint folder and runs the inference engine
(:func:`qpe.inference.engine.estimate`); :class:`qpe.inference.reference.CrrReference` reads NWC SAF CRR
files onto the grid of the data. The evaluation runner and ``qpe estimate`` take either, so a reference
product is scored exactly like a model. Estimators pickle as their paths (weights are reloaded, and
re-verified, where they are unpickled), so Dask can ship them to the workers of a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd
import xarray as xr

from qpe.errors import CheckpointError, DatasetError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig, check_compatible


@runtime_checkable
class Estimator(Protocol):
    """What the runner needs of a model or a reference product (see the module notes)."""

    name: str
    family: str
    frames: int
    source: str
    is_ensemble: bool

    def check(
        self, ds: xr.Dataset, times: Sequence | pd.DatetimeIndex = (), config: EstimateConfig | None = None
    ) -> None: ...

    def estimate(
        self,
        ds: xr.Dataset,
        times: Sequence | pd.DatetimeIndex,
        config: EstimateConfig = EstimateConfig(),
        *,
        cache: EstimateCache | None = None,
        progress: bool = True,
    ) -> xr.Dataset: ...


class CheckpointEstimator:
    """A checkpoint folder as an estimator; its weights are loaded (and verified) on first use.

    Parameters
    ----------
    path : path-like
        Checkpoint folder (``card.yaml`` + ``weights.safetensors``).
    name : str, optional
        Name of the model in scores and figures; the card's name by default.
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None) -> None:
        from qpe.models.card import ModelCard
        from qpe.models.checkpoint import CARD_FILES

        self.path = Path(path)
        card_file = next((self.path / n for n in CARD_FILES if (self.path / n).is_file()), None)
        if card_file is None:
            raise CheckpointError(f"{self.path} is not a checkpoint folder (no {' / '.join(CARD_FILES)})")
        self.card = ModelCard.read(card_file)
        self.name = name or self.card.name
        self._model = None

    def __repr__(self) -> str:
        return f"CheckpointEstimator({self.name!r}, family={self.family!r}, path={str(self.path)!r})"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}  # ship the path, not the weights

    @property
    def family(self) -> str:
        return self.card.family

    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def is_ensemble(self) -> bool:
        """Whether it draws several members (a generative model) rather than one field."""
        return self.card.is_ensemble

    @property
    def frames(self) -> int:
        """IR frames T each estimate reads (the valid time and T - 1 predecessors)."""
        return self.card.input.frames

    @property
    def model(self):
        """The :class:`qpe.models.LoadedModel`, loaded safely on first access."""
        if self._model is None:
            from qpe.models import load

            self._model = load(self.path)
        return self._model

    def check(
        self, ds: xr.Dataset, times: Sequence | pd.DatetimeIndex = (), config: EstimateConfig | None = None
    ) -> None:
        """Load (and verify) the weights; raise when ``ds`` lacks the checkpoint's IR channels or ``config``
        asks what the model cannot do (members, steps, sampler).

        The frames each time needs are checked by the engine (and by the evaluation runner up front).
        """
        check_compatible(self.model, ds)
        if config is not None:
            config.sampling(self.model)

    def estimate(
        self,
        ds: xr.Dataset,
        times: Sequence | pd.DatetimeIndex,
        config: EstimateConfig = EstimateConfig(),
        *,
        cache: EstimateCache | None = None,
        progress: bool = True,
    ) -> xr.Dataset:
        """Rain (member, time, y, x), mm/h: :func:`qpe.inference.engine.estimate` with this checkpoint."""
        from qpe.inference.engine import estimate

        out = estimate(self.model, ds, times, config, cache=cache, progress=progress)
        out.attrs["model"] = self.name
        return out


def find_estimators(
    checkpoints: Sequence[str | os.PathLike] = (), crr: str | Sequence[str] | None = None
) -> list[Estimator]:
    """Estimators for checkpoint folders (each a checkpoint or a folder of them) and CRR files.

    Names are the cards' names; when two cards share a name, the folder names tell them apart.

    Parameters
    ----------
    checkpoints : sequence of path-like
        Checkpoint folders, or folders searched for checkpoints (:func:`qpe.models.find_checkpoints`).
    crr : str or sequence of str, optional
        Glob(s) or paths of NWC SAF CRR files, scored as one more model (``nwcsaf_crr``).

    Raises
    ------
    CheckpointError
        A folder holds no checkpoint, or a card does not parse.
    InputError
        The CRR glob matches nothing.
    """
    from qpe.inference.reference import CrrReference
    from qpe.models import find_checkpoints

    by_path = {}  # a checkpoint given twice (itself and through its parent folder) counts once
    for root in checkpoints:
        here = find_checkpoints(root)
        if not here:
            raise CheckpointError(f"no checkpoint (folder with card.yaml) at or below {root}")
        bad = next((c for c in here if c.error), None)
        if bad is not None:
            raise CheckpointError(f"checkpoint {bad.path}: {bad.error}")
        by_path.update({c.path: c for c in here if c.path not in by_path})
    found = list(by_path.values())
    names = [c.card.name for c in found]
    estimators: list[Estimator] = [
        CheckpointEstimator(
            c.path, c.card.name if names.count(c.card.name) == 1 else f"{c.card.name} ({c.path.name})"
        )
        for c in found
    ]
    if crr is not None:
        estimators.append(CrrReference(crr))
    if not estimators:
        raise DatasetError("no model to run: give checkpoints and/or NWC SAF CRR files")
    names = [e.name for e in estimators]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise CheckpointError(f"two models are both called {duplicate!r}: rename one card")
    return estimators
