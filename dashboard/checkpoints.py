"""The models a dashboard offers: checkpoints found under the models folder, loaded once per server
process, and folders of estimates made elsewhere (:mod:`qpe.inference.external`) found there too.

A folder of estimates on another grid than the data's is refused unless a regridding method is chosen for
it (:meth:`CheckpointRegistry.set_regrid`, per session): the choices are :data:`REGRID_CHOICES`, those of
``qpe evaluate --estimates-regrid``, passed to the same :class:`~qpe.inference.external.ExternalEstimates`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from dashboard.text import plain_markdown
from qpe.data.grid import Grid
from qpe.errors import CheckpointError, InputError, QpeError
from qpe.inference.external import REGRID_METHODS, ExternalEstimates, find_estimate_folders
from qpe.models import FoundCheckpoint, LoadedModel, ModelCard, find_checkpoints, load

#: What may be chosen for estimates on another grid than the data's: refuse them (the default, as
#: ``qpe evaluate`` without ``--estimates-regrid``), or one of the CLI's regridding methods.
REFUSE = "refuse"
REGRID_CHOICES = (REFUSE, *REGRID_METHODS)

_LOADED: dict[tuple[str, int], LoadedModel] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder offered by the dashboard, under the name ``key`` (its path under the root)."""

    key: str
    path: Path
    card: ModelCard

    @property
    def is_ensemble(self) -> bool:
        """Whether it samples several members (DDPM, flow) rather than one (U-Net)."""
        return self.card.is_ensemble

    def describe(self) -> str:
        """A few Markdown lines: family, inputs, sampling defaults, training and validation scores.

        Every value comes from the card or the folder name, so each is shown as plain text
        (:func:`dashboard.text.plain_markdown`): a card cannot put markup or HTML in the page.
        """
        card, text = self.card, plain_markdown
        flow = f" ({text(card.flow.source)} source)" if card.flow is not None else ""
        lines = [
            f"**{text(self.key)}** — {text(card.family)}{flow}",
            f"- input: T = {text(card.input.frames)} frames x {text(', '.join(card.input.channels))}",
        ]
        if card.sampling.sampler:
            lines.append(f"- sampling: {text(card.sampling.sampler)}, {text(card.sampling.steps)} steps")
        if card.training.steps:
            lines.append(f"- trained {text(card.training.steps)} steps (seed {text(card.training.seed)})")
        if card.weights is not None:
            lines.append(f"- {card.weights.parameters:,} parameters, weights {text(card.weights.sha256[:12])}")
        if card.validation:
            scores = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in card.validation.items())
            lines.append(f"- validation: {text(scores)}")
        if card.description:
            lines.append(f"- {text(card.description)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ExternalModel:
    """A folder of estimates made elsewhere, offered as a model under the name ``key``."""

    key: str
    path: Path
    estimates: ExternalEstimates

    @property
    def is_ensemble(self) -> bool:
        return self.estimates.is_ensemble

    @property
    def regrid_choice(self) -> str:
        """How estimates on another grid are brought onto the data's: :data:`REFUSE` or a regridding method."""
        return self.estimates.regrid or REFUSE

    def grid_note(self, target: Grid) -> str:
        """One line on the files' grid against the data's ``target`` grid, and what is done about it."""
        if self.estimates.grid.matches(target):
            return "on the data's grid"
        other = f"on another grid ({self.estimates.grid.describe()}) than the data ({target.describe()})"
        if self.estimates.regrid is None:
            return f"{other}: refused; choose a regridding method"
        return f"{other}: regridded ({self.estimates.regrid})"

    def describe(self) -> str:
        """A few Markdown lines: what the folder holds (plain text, as for a card)."""
        est, text = self.estimates, plain_markdown
        span = f"{est.times[0]:%Y-%m-%d %H:%M} .. {est.times[-1]:%Y-%m-%d %H:%M} UTC"
        return "\n".join([
            f"**{text(self.key)}** — your own estimates (read from files)",
            f"- {text(len(est.files))} file(s), {text(est.times.size)} time(s): {text(span)}",
            f"- {text(est.members)} member(s); members, steps, seed and precision do not apply",
        ])


class CheckpointRegistry:
    """Checkpoints and folders of external estimates under a root folder; the folders that are unusable,
    with the reason.

    Parameters
    ----------
    root : Path
        Folder searched recursively (:func:`qpe.models.find_checkpoints`,
        :func:`qpe.inference.external.find_estimate_folders`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.checkpoints: dict[str, Checkpoint] = {}
        self.external: dict[str, ExternalModel] = {}
        self.problems: dict[str, str] = {}
        #: Regridding method chosen per folder of external estimates (absent: refuse another grid).
        self.regrid: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Search the root again (new or removed checkpoints and estimate folders)."""
        self.checkpoints, self.external, self.problems = {}, {}, {}
        if not self.root.is_dir():
            self.problems[str(self.root)] = f"no checkpoint folder at {self.root}"
            return
        found: list[FoundCheckpoint] = find_checkpoints(self.root)
        for item in found:
            key = self._key(item.path)
            if item.card is None:
                self.problems[key] = item.error or "unreadable model card"
            else:
                self.checkpoints[key] = Checkpoint(key, item.path, item.card)
        for folder in find_estimate_folders(self.root):
            key = self._key(folder)
            if key in self.checkpoints or key in self.problems:
                continue  # a checkpoint folder that also holds files
            try:
                self.external[key] = ExternalModel(key, folder,
                                                   ExternalEstimates(folder, name=key, regrid=self.regrid.get(key)))
            except QpeError as err:
                self.problems[key] = str(err)

    def set_regrid(self, key: str, choice: str) -> ExternalModel:
        """Choose how the external estimates ``key`` on another grid are brought onto the data's grid.

        Parameters
        ----------
        key : str
            A folder of external estimates offered by the registry.
        choice : str
            :data:`REFUSE` (another grid is an error, the default) or a method of
            :data:`qpe.inference.external.REGRID_METHODS`, as ``qpe evaluate --estimates-regrid``.

        Raises
        ------
        InputError
            ``key`` is not a folder of external estimates, or ``choice`` is not one of :data:`REGRID_CHOICES`.
        """
        if key not in self.external:
            raise InputError(f"{key!r} is not a folder of your own estimates; regridding applies to those only")
        if choice not in REGRID_CHOICES:
            raise InputError(f"unknown regridding choice {choice!r}; choose one of {', '.join(REGRID_CHOICES)}")
        method = None if choice == REFUSE else choice
        model = self.external[key]
        if model.estimates.regrid != method:
            self.external[key] = ExternalModel(key, model.path, ExternalEstimates(model.path, name=key, regrid=method))
        if method is None:
            self.regrid.pop(key, None)
        else:
            self.regrid[key] = method
        return self.external[key]

    def _key(self, path: Path) -> str:
        try:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            relative = path.name
        return path.name if relative in ("", ".") else relative

    @property
    def keys(self) -> list[str]:
        """Every model offered: checkpoints and external estimates."""
        return sorted([*self.checkpoints, *self.external])

    def offers(self, key: str) -> bool:
        """Whether ``key`` is a model the dashboard can show (a checkpoint or external estimates)."""
        return key in self.checkpoints or key in self.external

    def model(self, key: str) -> Checkpoint | ExternalModel:
        """The checkpoint or external estimates offered as ``key`` (:meth:`__getitem__` for checkpoints only)."""
        return self.external[key] if key in self.external else self[key]

    def __getitem__(self, key: str) -> Checkpoint:
        if key not in self.checkpoints:
            reason = self.problems.get(key)
            known = ", ".join(self.keys) or "none"
            raise CheckpointError(
                f"checkpoint {key!r}: {reason}" if reason else
                f"no checkpoint {key!r} under {self.root} (found: {known})"
            )
        return self.checkpoints[key]

    def load(self, key: str) -> LoadedModel:
        """The model of checkpoint ``key``, loaded (and verified) once per process and card version.

        Raises
        ------
        CheckpointError
            Unknown key, or the checkpoint does not load (modified weights, missing U-Net...).
        """
        checkpoint = self[key]
        card_files = [p for p in checkpoint.path.iterdir() if p.name.startswith("card.")]
        stamp = max((p.stat().st_mtime_ns for p in card_files), default=0)
        cache_key = (str(checkpoint.path), stamp)
        with _LOCK:
            if cache_key not in _LOADED:
                _LOADED[cache_key] = load(checkpoint.path)
            return _LOADED[cache_key]
