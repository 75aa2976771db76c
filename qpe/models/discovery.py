"""Finding checkpoints: every folder under a root that holds a model card, without loading weights."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qpe.errors import CheckpointError, QpeError
from qpe.models.card import ModelCard
from qpe.models.checkpoint import CARD_FILES


@dataclass(frozen=True)
class FoundCheckpoint:
    """A checkpoint folder and its card, or the one-line reason the card could not be read.

    Parameters
    ----------
    path : Path
        The checkpoint folder.
    card : ModelCard or None
        Its parsed card (weights not yet verified: :func:`qpe.models.load` does that).
    error : str or None
        Why the card is unusable, when it is.
    """

    path: Path
    card: ModelCard | None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.card.name if self.card is not None else self.path.name


def find_checkpoints(*roots: str | os.PathLike) -> list[FoundCheckpoint]:
    """Checkpoint folders at or below ``roots`` (a folder holding ``card.yaml``/``card.yml``/``card.json``).

    Hidden folders (temporary files of an atomic write, ``.git``) are skipped. A root that is itself a
    checkpoint is returned as is. Folders whose card does not parse are returned with ``error`` set, so a
    caller can show why instead of silently dropping them.

    Raises
    ------
    CheckpointError
        A root does not exist.
    """
    found: dict[Path, FoundCheckpoint] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise CheckpointError(f"no checkpoint folder at {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            card_file = next((n for n in CARD_FILES if n in filenames), None)
            if card_file is None:
                continue
            folder = Path(dirpath).resolve()
            try:
                found[folder] = FoundCheckpoint(folder, ModelCard.read(folder / card_file))
            except QpeError as err:
                found[folder] = FoundCheckpoint(folder, None, str(err))
            dirnames[:] = []  # a checkpoint folder holds no further checkpoints
    return sorted(found.values(), key=lambda c: str(c.path))
