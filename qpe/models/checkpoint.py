"""Checkpoints: a folder with ``weights.safetensors`` and ``card.yaml``, written atomically, loaded safely.

Loading never unpickles. The weights file is checked byte by byte before any tensor is read: its
safetensors header must parse as plain JSON, every tensor must lie inside the file, the file's SHA-256
must equal the card's, and the tensor names and shapes must be exactly those of the model the card
describes. Pickles, ``torch.save`` archives, truncated or edited files, images, random bytes and cards
that do not match their weights all stop with one :class:`~qpe.errors.CheckpointError` line. A residual
flow finds its U-Net through the card's ``base_checkpoint`` (path relative to the flow's folder) and
checks that U-Net's weights hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from qpe.errors import CheckpointError, InputError
from qpe.files import atomic_write
from qpe.models.card import FileReference, ModelCard, WeightsInfo, current_code_revision, utc_now
from qpe.models.families import RainModel, UNetRegression, build_model
from qpe.models.samplers import StepCallback
from qpe.models.sampling import SamplingSettings

#: File names inside a checkpoint folder.
WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.yaml"
#: Card names :func:`load` looks for, in order.
CARD_FILES = ("card.yaml", "card.yml", "card.json")
#: Largest safetensors header accepted, bytes.
MAX_HEADER_BYTES = 16 << 20
#: Bytes per element of the dtypes a qpe checkpoint may hold.
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "BOOL": 1, "U8": 1}
#: Signatures of files that are not safetensors, for a helpful message.
FOREIGN_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (a torch.save file?)"),
    (b"\x89PNG", "a PNG image"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inspect_safetensors(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Check that a file is a complete safetensors file without reading its tensors.

    Returns
    -------
    dict
        Tensor name -> (dtype, shape) from the header.

    Raises
    ------
    CheckpointError
        The file is foreign (pickle, zip, image, random bytes), truncated, or its header is malformed.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a safetensors file (only {size} bytes)")
        if head[0] == 0x80 and 2 <= head[1] <= 5:
            raise CheckpointError(f"{path} is a Python pickle, not safetensors; qpe never unpickles weights")
        for signature, what in FOREIGN_SIGNATURES:
            if head.startswith(signature):
                raise CheckpointError(f"{path} is {what}, not a safetensors weights file")
        n = int.from_bytes(head, "little")
        first = f.read(1)
        if n < 2 or n > MAX_HEADER_BYTES or first != b"{":
            raise CheckpointError(f"{path} is not a safetensors file (no JSON header)")
        if 8 + n > size:
            raise CheckpointError(f"{path} is truncated: {size} bytes, its header alone needs {8 + n}")
        raw = first + f.read(n - 1)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file (its header is not a JSON object)")
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = (
                info["dtype"],
                tuple(int(s) for s in info["shape"]),
                info["data_offsets"],
            )
            nbytes = DTYPE_BYTES[dtype] * int(torch.Size(shape).numel())
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path} has a malformed or unsupported header entry for tensor {name!r}"
            ) from None
        if stop - start != nbytes or start < 0:
            raise CheckpointError(f"{path} is corrupt: tensor {name!r} does not fit its declared shape")
        tensors[name] = (dtype, shape)
        end = max(end, stop)
    if 8 + n + end > size:
        raise CheckpointError(f"{path} is truncated: {size} bytes, its header promises {8 + n + end}")
    if 8 + n + end < size:
        raise CheckpointError(f"{path} is corrupt: {size - 8 - n - end} unexpected bytes after the tensors")
    return tensors


def check_state_matches(
    expected: Mapping[str, tuple[int, ...]], shapes: Mapping[str, tuple[int, ...]], where: str
) -> None:
    """Raise unless ``shapes`` (tensor name -> shape) are exactly the ``expected`` ones (the card's model)."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in set(expected) & set(shapes) if tuple(shapes[k]) != tuple(expected[k]))
    problems = []
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} tensor(s) of another shape (e.g. {k}: {list(shapes[k])} in the weights, "
            f"{list(expected[k])} from the card)"
        )
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {unexpected[0]})")
    if problems:
        raise CheckpointError(f"{where}: the weights do not match the model card: {'; '.join(problems)}")


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


class LoadedModel:
    """A model ready to run: the family object, its card, and where and what it was loaded from.

    Attributes
    ----------
    model : RainModel
        The family object (``UNetRegression``, ``ConditionalDDPM`` or ``ConditionalFlow``), in eval mode.
    card : ModelCard
        Its card.
    path : pathlib.Path
        The checkpoint folder.
    sha256 : str
        SHA-256 of the weights file (what a residual flow's ``base_checkpoint`` names).
    """

    def __init__(self, model: RainModel, card: ModelCard, path: Path, sha256: str) -> None:
        self.model = model.eval()
        self.card = card
        self.path = path
        self.sha256 = sha256
        self._norm_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"LoadedModel({self.card.name!r}, family={self.card.family!r}, path={str(self.path)!r})"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> LoadedModel:
        """Move the model (and a residual flow's U-Net) to ``device``; returns self."""
        self.model.to(device)
        return self

    def normalize_ir(self, ir: torch.Tensor) -> torch.Tensor:
        """Brightness temperature (B, T, C, H, W) in K, channels in card order -> normalised float32."""
        norm = self.card.normalization
        key = (ir.device, len(norm.channels))
        if key not in self._norm_cache:
            mean = torch.tensor(norm.mean, dtype=torch.float32, device=ir.device).reshape(1, 1, -1, 1, 1)
            std = torch.tensor(norm.std, dtype=torch.float32, device=ir.device).reshape(1, 1, -1, 1, 1)
            self._norm_cache[key] = (mean, std)
        mean, std = self._norm_cache[key]
        return (ir.float() - mean) / std

    def _check_ir(self, ir: torch.Tensor) -> None:
        spec = self.card.input
        if (
            not isinstance(ir, torch.Tensor)
            or ir.ndim != 5
            or ir.shape[1:3] != (spec.frames, len(spec.channels))
        ):
            shape = tuple(ir.shape) if isinstance(ir, torch.Tensor) else type(ir).__name__
            raise InputError(
                f"model {self.card.name!r} expects IR of shape (batch, T={spec.frames}, "
                f"C={len(spec.channels)} [{', '.join(spec.channels)}], H, W) in K, got {shape}"
            )

    def sampling(self, members: int = 1, steps: int | None = None, sampler: str | None = None,
                 **options: float) -> SamplingSettings:
        """A request to sample (None: the card's defaults), resolved and validated by the card.

        See :meth:`qpe.models.ModelCard.sampling_settings`.
        """
        return self.card.sampling_settings(members, steps, sampler, **options)

    def predict(
        self,
        ir: torch.Tensor,
        settings: SamplingSettings | None = None,
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
    ) -> torch.Tensor:
        """Rain rate from IR brightness temperatures.

        Parameters
        ----------
        ir : torch.Tensor
            (B, T, C, H, W) brightness temperature in K (not normalised), channels in
            ``card.input.channels`` order, oldest frame first, on the model's device.
        settings : SamplingSettings, optional
            Members, sampler, steps and options, from :meth:`sampling`; the card's defaults (one member)
            if None.
        generator : torch.Generator, optional
            Source of the sampling noise (on the model's device).
        callback : callable, optional
            ``callback(k, K)`` after each sampler step (:mod:`qpe.models.samplers`); may raise to stop.

        Returns
        -------
        torch.Tensor
            (B, M, H, W) rain rate, mm/h, >= 0 (M = 1 for a deterministic model).
        """
        self._check_ir(ir)
        settings = self.sampling() if settings is None else settings
        with torch.no_grad():
            return self.model.sample(self.normalize_ir(ir), settings, generator, callback)

    def network_evaluations(self, settings: SamplingSettings | None = None) -> int:
        """Network evaluations per sample (the card's defaults for None; a residual flow adds its U-Net's one)."""
        return self.model.network_evaluations(self.sampling() if settings is None else settings)


# -- saving -----------------------------------------------------------------------------------------------
def save_checkpoint(model: RainModel | LoadedModel, card: ModelCard, directory: str | os.PathLike) -> Path:
    """Write ``weights.safetensors`` and ``card.yaml`` into ``directory``, atomically.

    Both files are written into a temporary sibling folder which then replaces ``directory`` in one
    rename, so readers see the old checkpoint or the new one, never a mix. The card is completed with
    the weights' hash and parameter count, the creation time and (if empty) the code revision.

    Parameters
    ----------
    model : RainModel or LoadedModel
        The trained model; a residual flow's U-Net is not saved (the card names it).
    card : ModelCard
        Its description; must match the model's family and tensor shapes. A residual flow's card must
        name its ``base_checkpoint`` (path relative to ``directory``) with that U-Net's weights hash.

    Returns
    -------
    pathlib.Path
        ``directory``.
    """
    directory = Path(directory)
    check_checkpoint_target(directory)
    net = model.model if isinstance(model, LoadedModel) else model
    if net.family != card.family:
        raise CheckpointError(f"cannot save a {net.family} model with a {card.family} card")
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.checkpoint_state().items()}
    check_state_matches(
        _shapes(build_model(card).checkpoint_state()), _shapes(state), f"saving {card.name!r}"
    )
    if card.needs_base:
        _check_base_reference(card, directory)

    def write(folder: Path) -> None:
        folder.mkdir()
        weights = folder / WEIGHTS_FILE
        safetensors.torch.save_file(state, str(weights), metadata={"format": "qpe", "family": card.family})
        dataclasses.replace(
            card,
            weights=WeightsInfo(WEIGHTS_FILE, sha256_file(weights), sum(v.numel() for v in state.values())),
            created=utc_now(),
            code_revision=card.code_revision or current_code_revision(),
        ).write(folder / CARD_FILE)

    return atomic_write(directory, write)


def check_checkpoint_target(directory: str | os.PathLike) -> None:
    """Refuse to write a checkpoint where something else is: saving replaces the folder whole, so an
    existing ``directory`` must be a checkpoint (it holds a card) or empty.

    Raises
    ------
    InputError
        ``directory`` is a file, or a folder holding something other than a checkpoint (a dataset...).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file: a checkpoint is a folder; choose another place")
    if directory.is_dir() and any(directory.iterdir()) and not any((directory / n).is_file() for n in CARD_FILES):
        raise InputError(f"{directory} holds files but no model card: saving a checkpoint there would replace "
                         "them; choose another place")


def base_reference(base: LoadedModel, flow_directory: str | os.PathLike) -> FileReference:
    """The ``base_checkpoint`` entry of a residual flow to be saved in ``flow_directory``: the U-Net's
    folder relative to it, and the U-Net's weights hash."""
    relative = os.path.relpath(base.path.resolve(), Path(flow_directory).resolve())
    return FileReference(Path(relative).as_posix(), base.sha256)


def _check_base_reference(card: ModelCard, directory: Path) -> None:
    """A residual flow's card must name an existing U-Net checkpoint by the hash of its weights."""
    ref = card.base_checkpoint
    if ref is None:
        raise CheckpointError(f"residual flow {card.name!r}: the card must name its base_checkpoint (U-Net)")
    base_dir = (directory / ref.path).resolve()
    base_card = ModelCard.read(_find_card(base_dir))
    if base_card.weights is None:
        raise CheckpointError(f"base_checkpoint {ref.path!r} of {card.name!r} is not a saved checkpoint")
    check_base(base_card, card, f"base_checkpoint {ref.path!r} of {card.name!r}")
    actual = sha256_file(base_dir / base_card.weights.file)
    if actual != ref.sha256:
        raise CheckpointError(
            f"base_checkpoint {ref.path!r} of {card.name!r}: U-Net weights hash {actual[:12]}... differs "
            "from "
            f"the card's {ref.sha256[:12]}..."
        )


# -- loading ----------------------------------------------------------------------------------------------
def _find_card(directory: Path) -> Path:
    if not directory.is_dir():
        raise CheckpointError(
            f"no checkpoint folder at {directory} "
            f"(a checkpoint is a folder holding {CARD_FILE} and {WEIGHTS_FILE})"
        )
    for name in CARD_FILES:
        if (directory / name).is_file():
            return directory / name
    raise CheckpointError(f"{directory} has no model card ({' or '.join(CARD_FILES)})")


def read_card(directory: str | os.PathLike) -> ModelCard:
    """The model card of the checkpoint folder ``directory``, without loading its weights."""
    return ModelCard.read(_find_card(Path(directory)))


def weights_sha256(directory: str | os.PathLike) -> str:
    """SHA-256 of a saved checkpoint's weights as its card records it: what names the checkpoint whatever
    folder it is in (:func:`load` checks the file against it)."""
    card = read_card(directory)
    if card.weights is None:
        raise CheckpointError(f"{directory} is not a saved checkpoint: its card names no weights file")
    return card.weights.sha256


def load(path: str | os.PathLike, *, _chain: tuple[Path, ...] = ()) -> LoadedModel:
    """Load a checkpoint folder (or its card file) safely; never unpickles.

    Parameters
    ----------
    path : path-like
        The checkpoint folder holding ``card.yaml`` and ``weights.safetensors`` (or the card file).

    Returns
    -------
    LoadedModel
        On the CPU, in eval mode.

    Raises
    ------
    CheckpointError
        Missing or foreign files, an unknown family or card version, truncated or modified weights,
        weights that do not match the card, a residual flow whose U-Net is missing or has another hash.
    """
    path = Path(path)
    directory = path.parent if path.is_file() and path.name in CARD_FILES else path
    directory = directory.resolve()
    if directory in _chain:
        raise CheckpointError(f"checkpoint {directory} refers to itself through base_checkpoint")
    card = ModelCard.read(_find_card(directory))
    if card.weights is None:
        raise CheckpointError(f"{directory}: the model card has no 'weights' entry (not written by qpe?)")
    weights = directory / card.weights.file
    if not weights.is_file():
        raise CheckpointError(f"{directory} has no weights file {card.weights.file}")
    header = inspect_safetensors(weights)
    digest = sha256_file(weights)
    if digest != card.weights.sha256:
        raise CheckpointError(
            f"{weights}: SHA-256 {digest[:12]}... differs from the card's {card.weights.sha256[:12]}... "
            "(weights modified or replaced)"
        )
    base = _load_base(card, directory, _chain + (directory,)) if card.needs_base else None
    model = build_model(card, base)
    expected = model.checkpoint_state()
    check_state_matches(_shapes(expected), {k: shape for k, (_, shape) in header.items()}, str(directory))
    try:
        state = safetensors.torch.load_file(str(weights))
    except (safetensors.SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{weights} cannot be read as safetensors: {str(err).splitlines()[0]}"
        ) from None
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    leftover = [k for k in result.missing_keys if not k.startswith("base.")] + list(result.unexpected_keys)
    if leftover:  # cannot happen after check_state_matches; kept so that no partial load passes silently
        raise CheckpointError(f"{directory}: the weights do not match the model card ({leftover[0]})")
    return LoadedModel(model, card, directory, digest)


def _load_base(card: ModelCard, directory: Path, chain: tuple[Path, ...]) -> UNetRegression:
    """The residual flow's U-Net, found by the card's relative path and verified by its weights hash."""
    ref = card.base_checkpoint
    if ref is None:
        raise CheckpointError(f"{directory}: residual flow card names no base_checkpoint (its U-Net)")
    base = load(directory / ref.path, _chain=chain)
    if base.sha256 != ref.sha256:
        raise CheckpointError(
            f"{directory}: base U-Net {ref.path!r} has weights hash {base.sha256[:12]}..., the card expects "
            f"{ref.sha256[:12]}..."
        )
    check_base(base.card, card, f"{directory}: base_checkpoint {ref.path!r}")
    return base.model


def check_base(base: ModelCard, card: ModelCard, where: str) -> None:
    """Raise unless ``base`` can be the base U-Net of the model of ``card`` (a U-Net regression reading
    the same inputs with the same normalisation and rain transform).

    Parameters
    ----------
    base, card : ModelCard
        The base's card and the card of the model that needs it.
    where : str
        Start of the error message (which checkpoint, which base).
    """
    if base.family != UNetRegression.family:
        raise CheckpointError(f"{where} is a {base.family} model, not a U-Net")
    mismatch = [
        name
        for name, a, b in (
            ("input", base.input, card.input),
            ("normalization", base.normalization, card.normalization),
            ("rain_transform", base.rain_transform, card.rain_transform),
        )
        if a != b
    ]
    if mismatch:
        raise CheckpointError(f"{where}: the base U-Net differs from {card.name!r} in {', '.join(mismatch)}")
