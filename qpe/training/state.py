"""The resumable state of a training run: one file, written atomically, read without unpickling code.

``state.pt`` holds the step, the model's and the EMA's weights, the optimiser's moments, torch's random
state (dropout), the validation history and the digest of the settings. It is written with
``torch.save`` through :func:`qpe.files.atomic_write`: a run killed at any moment (even ``kill -9``)
leaves the previous complete state. It is read with
``torch.load(weights_only=True)``, which accepts only tensors and plain containers, never code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qpe.errors import CheckpointError
from qpe.files import atomic_write

STATE_FILE = "state.pt"
STATE_FORMAT = "qpe-training-state-1"


@dataclass
class TrainingState:
    """What :func:`qpe.training.train` needs to continue a run at ``step`` exactly as if never stopped."""

    step: int
    config_digest: str
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: torch.Tensor
    ema: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/state.pt`` atomically; returns its path."""
        payload = {"format": STATE_FORMAT, **vars(self)}
        return atomic_write(Path(directory) / STATE_FILE, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TrainingState:
        """Read ``directory/state.pt``; one clear error for a missing, foreign or corrupt file."""
        path = Path(directory) / STATE_FILE
        if not path.is_file():
            raise CheckpointError(f"no training state to resume at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for corrupt or unsafe files
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{path} is not a readable training state ({reason[:200]})") from None
        if not isinstance(payload, dict) or payload.pop("format", None) != STATE_FORMAT:
            raise CheckpointError(f"{path} is not a qpe training state")
        try:
            return cls(**payload)
        except TypeError as err:
            raise CheckpointError(f"{path} is a malformed training state ({err})") from None


def has_state(directory: str | os.PathLike) -> bool:
    return (Path(directory) / STATE_FILE).is_file()
