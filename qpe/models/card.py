"""Model cards: everything needed to rebuild, run and trace a checkpoint, as YAML (or JSON).

A card sits next to the weights (``card.yaml`` beside ``weights.safetensors``)::

    format: qpe-model-card
    version: 1
    name: flow_residual
    family: flow                      # unet | ddpm | flow
    input: {channels: [WV_062, ..., IR_134], frames: 4, frame_step_min: 15}
    normalization: {ir_mean: {IR_108: 265.1, ...}, ir_std: {IR_108: 21.3, ...}}   # K
    rain_transform: {kind: log1p, scale: 1.0, max_rate: 500.0}
    architecture: {base_channels: 32, channel_mults: [1, 2, 4], blocks_per_level: 1, ...}
    diffusion: null                   # ddpm: {schedule: cosine, timesteps: 1000, prediction: v}
    flow: {source: residual, source_std: 1.0}
    sampling: {sampler: heun, steps: 8, eta: 0.0}
    data: {path: data/demo.zarr, sha256: ...}
    training: {steps: 3000, seed: 0, settings: {...}}
    validation: {crps: 0.41, ...}
    code_revision: 20269d9
    base_checkpoint: {path: ../unet, sha256: ...}   # residual flow only: the U-Net's weights file
    distilled_from: {name: flow_residual, path: ../flow_residual, sha256: ..., sampler: midpoint, steps: 8}
                                      # a distilled student only: its teacher (left out otherwise)
    weights: {file: weights.safetensors, sha256: ..., parameters: 1234567}

Reading uses ``yaml.safe_load`` / ``json.loads`` (plain data only) and rejects unknown fields, unknown
families and unsupported versions with one :class:`~qpe.errors.CheckpointError` line.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from qpe import __version__
from qpe.data.normalization import IRNormalization
from qpe.data.paired import SEVIRI_CHANNELS
from qpe.errors import CheckpointError, DatasetError, InputError
from qpe.models.paths import FLOW_TARGETS, TIME_SAMPLINGS, ResidualScale
from qpe.models.sampling import FAMILIES, SamplingSettings, family_samplers, is_ensemble, resolve_sampling
from qpe.models.schedules import NoiseSchedule
from qpe.models.transforms import RainTransform
from qpe.models.unet import UNetConfig
from qpe.settings import from_mapping, plain

#: Value of the card's ``format`` field: what tells a qpe card from any other YAML file.
CARD_FORMAT = "qpe-model-card"
#: Card layout version this code reads and writes.
CARD_VERSION = 1
#: Largest card file read, bytes (a card is a few kB).
MAX_CARD_BYTES = 1 << 20
#: Card records written only when present (cards of models without them read and hash as before).
OPTIONAL_RECORDS = ("distilled_from",)


@dataclass(frozen=True)
class InputSpec:
    """What the model reads: ``frames`` (T) successive IR images of ``channels``, oldest first."""

    channels: list[str]
    frames: int
    frame_step_min: int = 15

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", [str(c) for c in self.channels])
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise CheckpointError(
                f"card input channels must be a non-empty list without repeats, got {self.channels}"
            )
        unknown = [c for c in self.channels if c not in SEVIRI_CHANNELS]
        if unknown:
            raise CheckpointError(f"card names unknown IR channel(s) {', '.join(unknown)}")
        if not isinstance(self.frames, int) or not 1 <= self.frames <= 8:
            raise CheckpointError(
                f"card input frames (T) must be an integer from 1 to 8, got {self.frames!r}"
            )
        if self.frame_step_min != 15:
            raise CheckpointError(
                f"frames must be 15 minutes apart (SEVIRI), card says {self.frame_step_min}"
            )


#: Residual scales a flow may use, and the quantile bins of the U-Net mean each fits.
RESIDUAL_SCALE_BINS: dict[str, int] = {"none": 0, "global": 1, "intensity": 8}


@dataclass(frozen=True)
class DiffusionConfig:
    """The ``ddpm`` family's objective (model card ``diffusion``).

    Parameters
    ----------
    schedule : str
        ``"cosine"`` or ``"linear"`` (:mod:`qpe.models.schedules`).
    timesteps : int
        N, training steps of the schedule.
    prediction : str
        What the network predicts: ``"eps"`` (the noise ε) or ``"v"`` (``v = α ε - σ x_0``).
    """

    schedule: str = "cosine"
    timesteps: int = 1000
    prediction: str = "v"

    def __post_init__(self) -> None:
        if self.prediction not in ("eps", "v"):
            raise CheckpointError(f"diffusion prediction must be 'eps' or 'v', got {self.prediction!r}")
        NoiseSchedule.from_name(self.schedule, self.timesteps)  # validates name and length


@dataclass(frozen=True)
class FlowConfig:
    """The ``flow`` family's objective (model card ``flow``).

    Parameters
    ----------
    source : str
        ``"gaussian"`` (the flow samples ``y`` from noise) or ``"residual"`` (it samples ``y - μ``, the
        residual on a U-Net mean ``μ``; see :data:`qpe.models.paths.FLOW_TARGETS`).
    source_std : float
        Standard deviation of the Gaussian source noise, in model space.
    residual_scale : str
        Residual flow only: ``"none"``, ``"global"`` (the residual divided by its RMS over the training
        data, as CorrDiff does) or ``"intensity"`` (by its RMS as a function of ``μ``, in quantile bins).
    residual_std : tuple of (float, float)
        The fitted scale, ``(μ, σ)`` knots (:class:`qpe.models.paths.ResidualScale`); empty in a training
        config (training fits it), set in a trained model's card.
    time_sampling : str
        How training times are drawn: ``"uniform"`` or ``"logit_normal"``.
    """

    source: str = "gaussian"
    source_std: float = 1.0
    residual_scale: str = "none"
    residual_std: tuple[tuple[float, float], ...] = ()
    time_sampling: str = "uniform"

    def __post_init__(self) -> None:
        if self.source not in FLOW_TARGETS:
            raise CheckpointError(f"flow source must be one of {', '.join(map(repr, FLOW_TARGETS))}, "
                                  f"got {self.source!r}")
        if not self.source_std > 0:
            raise CheckpointError(f"flow source_std must be positive, got {self.source_std}")
        if self.residual_scale not in RESIDUAL_SCALE_BINS:
            raise CheckpointError(f"flow residual_scale must be one of {', '.join(map(repr, RESIDUAL_SCALE_BINS))},"
                                  f" got {self.residual_scale!r}")
        if self.residual_scale != "none" and not self.needs_base:
            raise CheckpointError("flow residual_scale applies to a residual flow only")
        if self.time_sampling not in TIME_SAMPLINGS:
            raise CheckpointError(f"flow time_sampling must be one of {', '.join(map(repr, TIME_SAMPLINGS))}, "
                                  f"got {self.time_sampling!r}")
        try:
            knots = tuple((float(m), float(s)) for m, s in self.residual_std)
        except (TypeError, ValueError):
            raise CheckpointError(f"flow residual_std must be (mu, sigma) pairs, got {self.residual_std!r}") from None
        if any(not s > 0 for _, s in knots) or any(b[0] <= a[0] for a, b in zip(knots, knots[1:])):
            raise CheckpointError("flow residual_std needs increasing mu and positive sigma")
        object.__setattr__(self, "residual_std", knots)

    @property
    def scale(self) -> ResidualScale:
        """The residual's fitted scale ``σ(μ)`` (``σ = 1`` without one)."""
        if self.residual_scale != "none" and not self.residual_std:
            raise CheckpointError(f"this residual flow's {self.residual_scale} residual scale was never fitted "
                                  "(residual_std is empty): train it with qpe train")
        return ResidualScale(self.residual_std)

    @property
    def needs_base(self) -> bool:
        """Whether the flow is anchored on a U-Net mean (the residual flow), so needs a base U-Net."""
        return FLOW_TARGETS[self.source].anchored


#: The dataclass of each family section (the values of :data:`qpe.models.sampling.FAMILIES`).
SECTION_TYPES: dict[str, type] = {"diffusion": DiffusionConfig, "flow": FlowConfig}


def family_sections(family: str, **given: Any) -> dict[str, Any]:
    """The family sections of a card or training config: the family's own (its defaults when None), no other.

    Parameters
    ----------
    family : str
        A key of :data:`qpe.models.sampling.FAMILIES`.
    **given
        ``diffusion=...``, ``flow=...`` as given (None when absent).

    Raises
    ------
    InputError
        Unknown family, or a section of another family.
    """
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    own = FAMILIES[family]
    foreign = sorted(name for name, value in given.items() if value is not None and name != own)
    if foreign:
        raise InputError(f"a {family} model must not carry a {', '.join(map(repr, foreign))} section "
                         "(of another family)")
    out = {name: None for name in SECTION_TYPES}
    if own is not None:
        out[own] = given.get(own) or SECTION_TYPES[own]()
    return out


@dataclass(frozen=True)
class SamplingDefaults:
    """The card's sampler (None for a deterministic model), steps K and DDIM ``eta``."""

    sampler: str | None = None
    steps: int | None = None
    eta: float = 0.0

    def settings(self) -> SamplingSettings:
        """As the defaults of :func:`qpe.models.sampling.resolve_sampling`."""
        return SamplingSettings(1, self.sampler, self.steps, (("eta", float(self.eta)),))


@dataclass(frozen=True)
class FileReference:
    """A file or folder and the SHA-256 of its content (data provenance, base checkpoint)."""

    path: str
    sha256: str

    def __post_init__(self) -> None:
        digest = str(self.sha256)
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise CheckpointError(f"sha256 of {self.path!r} must be 64 lowercase hex digits, got {digest!r}")


@dataclass(frozen=True)
class DistilledFrom:
    """The teacher of a distilled student (:mod:`qpe.training.distill`): whose endpoints it learnt.

    Parameters
    ----------
    name : str
        The teacher's card name.
    path : str
        The teacher's checkpoint folder, relative to the student's (as written at training).
    sha256 : str
        SHA-256 of the teacher's weights file.
    sampler : str
        The sampler that drew the teacher's endpoints (a row of :data:`qpe.models.sampling.SAMPLERS`).
    steps : int
        Its steps K (network evaluations: the sampler's per step times K).
    """

    name: str
    path: str
    sha256: str
    sampler: str
    steps: int

    def __post_init__(self) -> None:
        FileReference(self.path, self.sha256)
        if not isinstance(self.name, str) or not self.name:
            raise CheckpointError(f"distilled_from name must be the teacher's name, got {self.name!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise CheckpointError(f"distilled_from steps must be a positive integer, got {self.steps!r}")


@dataclass(frozen=True)
class TrainingInfo:
    """How the weights were trained: optimiser ``steps``, ``seed``, and the trainer's full settings."""

    steps: int = 0
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightsInfo:
    """The weights file: name (inside the checkpoint folder), SHA-256 and parameter count."""

    file: str
    sha256: str
    parameters: int

    def __post_init__(self) -> None:
        if Path(self.file).name != self.file or self.file in ("", ".", ".."):
            raise CheckpointError(f"card weights file must be a plain file name, got {self.file!r}")
        FileReference(self.file, self.sha256)


@dataclass(frozen=True)
class ModelCard:
    """The description of a checkpoint (see the module docstring for the YAML form).

    ``diffusion`` (ddpm) and ``flow`` (flow) default to their config's defaults when omitted in code;
    a card read from a file must carry the section of its family. ``sampling`` is completed from the
    sampler table (:data:`qpe.models.sampling.SAMPLERS`) where it is silent.
    """

    name: str
    family: str
    input: InputSpec
    normalization: IRNormalization
    architecture: UNetConfig = UNetConfig()
    rain_transform: RainTransform = RainTransform()
    diffusion: DiffusionConfig | None = None
    flow: FlowConfig | None = None
    sampling: SamplingDefaults | None = None
    data: FileReference | None = None
    training: TrainingInfo = TrainingInfo()
    validation: dict[str, Any] = field(default_factory=dict)
    code_revision: str = ""
    base_checkpoint: FileReference | None = None
    distilled_from: DistilledFrom | None = None
    weights: WeightsInfo | None = None
    created: str = ""
    description: str = ""
    version: int = CARD_VERSION

    def __post_init__(self) -> None:
        if self.version != CARD_VERSION:
            raise CheckpointError(
                f"model card version {self.version!r} is not supported (this qpe reads {CARD_VERSION})"
            )
        if not isinstance(self.name, str) or not self.name:
            raise CheckpointError(f"model card name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.validation, dict):
            raise CheckpointError("model card validation must be a mapping of score names to values")
        if sorted(self.normalization.channels) != sorted(self.input.channels):
            raise CheckpointError(
                f"card normalisation covers channels {list(self.normalization.channels)} but the input is "
                f"{self.input.channels}"
            )
        # statistics are keyed by channel name: hold them in input order
        object.__setattr__(self, "normalization", self.normalization.select(self.input.channels))
        try:  # frozen dataclass: fill the family's section and the sampling defaults
            for name, value in family_sections(self.family, diffusion=self.diffusion, flow=self.flow).items():
                object.__setattr__(self, name, value)
            if self.sampling is None:
                object.__setattr__(self, "sampling", SamplingDefaults())
            if not is_ensemble(self.family) and (self.sampling.sampler or self.sampling.steps):
                raise InputError(f"a {self.family} model has no sampler: leave sampling.sampler and steps empty")
            resolved = self.sampling_settings()
        except InputError as err:
            raise CheckpointError(f"model card: {err}") from None
        if is_ensemble(self.family):
            object.__setattr__(self, "sampling", dataclasses.replace(
                self.sampling, sampler=resolved.sampler, steps=resolved.steps))
        if self.base_checkpoint is not None and not self.needs_base:
            raise CheckpointError("only a residual flow card names a base_checkpoint")
        if self.distilled_from is not None and not is_ensemble(self.family):
            raise CheckpointError(f"a {self.family} model is not a distilled student: it has no sampler")

    # -- what the card's model is -----------------------------------------------------------------
    @property
    def is_ensemble(self) -> bool:
        """Whether its model draws ensemble members (DDPM, flow) rather than one field (U-Net)."""
        return is_ensemble(self.family)

    @property
    def needs_base(self) -> bool:
        """Whether its model needs a base U-Net (the residual flow)."""
        return self.flow is not None and self.flow.needs_base

    @property
    def samplers(self) -> tuple[str, ...]:
        """The samplers its model can use, the card's default first."""
        own = family_samplers(self.family)
        return tuple(dict.fromkeys((self.sampling.sampler, *own))) if own else ()

    def sampling_settings(
        self, members: int = 1, steps: int | None = None, sampler: str | None = None, **options: float
    ) -> SamplingSettings:
        """A request to sample this model (None: the card's defaults), resolved and validated once.

        See :func:`qpe.models.sampling.resolve_sampling`; a deterministic model gives one member
        whatever ``members`` asks.

        Raises
        ------
        InputError
            Sampler of another family, steps or members out of range, unknown option.
        """
        return resolve_sampling(
            self.family, self.sampling.settings(), members=members, steps=steps, sampler=sampler,
            options=options, max_steps=self.diffusion.timesteps if self.diffusion is not None else None,
        )

    # -- dict / YAML / JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts, numbers, strings) in the field order of the YAML form."""
        out: dict[str, Any] = {"format": CARD_FORMAT, "version": self.version}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in OPTIONAL_RECORDS:
                continue
            out.setdefault(f.name, plain(value.to_dict() if isinstance(value, IRNormalization) else value))
        return out

    @classmethod
    def from_dict(cls, d: Any) -> ModelCard:
        """Parse the plain-data form; raises :class:`CheckpointError` on anything unexpected."""
        if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
            raise CheckpointError(f"not a qpe model card (no 'format: {CARD_FORMAT}')")
        d = dict(d)
        d.pop("format")
        if d.get("version") != CARD_VERSION:
            raise CheckpointError(
                f"model card version {d.get('version')!r} is not supported (this qpe reads {CARD_VERSION})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise CheckpointError(f"model card has unknown field(s) {', '.join(unknown)}")
        missing = sorted(
            {"name", "family", "input", "normalization", "architecture", "rain_transform"} - set(d)
        )
        section = FAMILIES.get(d.get("family"))
        if section is not None and d.get(section) is None:
            missing.append(section)
        if missing:
            raise CheckpointError(f"model card lacks field(s) {', '.join(missing)}")
        try:
            norm = IRNormalization.from_dict(_mapping(d["normalization"], "normalization"))
        except (KeyError, TypeError, ValueError, DatasetError) as err:
            raise CheckpointError(f"model card normalization is malformed: {err}") from None
        sections = {
            "input": InputSpec,
            "architecture": UNetConfig,
            "rain_transform": RainTransform,
            **SECTION_TYPES,
            "sampling": SamplingDefaults,
            "data": FileReference,
            "training": TrainingInfo,
            "base_checkpoint": FileReference,
            "distilled_from": DistilledFrom,
            "weights": WeightsInfo,
        }
        kwargs = {k: v for k, v in d.items() if k not in sections}
        kwargs["normalization"] = norm
        for key, section in sections.items():
            if d.get(key) is not None:
                kwargs[key] = _section(section, d[key], key)
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise CheckpointError(f"model card is malformed: {err}") from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=110)

    def write(self, path: str | Path) -> Path:
        """Write the card as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) if path.suffix == ".json" else self.to_yaml()
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read a YAML or JSON card (plain data only; at most 1 MiB)."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no model card at {path}")
        if path.stat().st_size > MAX_CARD_BYTES:
            raise CheckpointError(f"{path} is too large to be a model card ({path.stat().st_size} bytes)")
        try:
            text = path.read_bytes().decode("utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise CheckpointError(f"{path} is not a readable YAML/JSON model card ({reason})") from None
        try:
            return cls.from_dict(data)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None


def _mapping(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"model card field {name!r} must be a mapping, got {type(value).__name__}")
    return value


def _section(cls: type, value: Any, name: str) -> Any:
    """Build a card section dataclass from a mapping, rejecting unknown or missing keys."""
    try:
        return from_mapping(cls, _mapping(value, name), f"model card {name!r}", error=CheckpointError)
    except CheckpointError:
        raise
    except (TypeError, ValueError) as err:  # a section's own check that is not a CheckpointError
        raise CheckpointError(f"model card field {name!r} is malformed: {err}") from None


def current_code_revision() -> str:
    """``git`` commit of the qpe source (with ``-dirty`` for uncommitted changes), else ``qpe <version>``."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"qpe {__version__}"
    return f"{rev}-dirty" if dirty else rev


def utc_now() -> str:
    """Current time, UTC, ISO 8601 to the second (``created`` field)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
