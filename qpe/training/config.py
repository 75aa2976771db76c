"""Training settings: one :class:`TrainConfig`, read from YAML and saved with every checkpoint.

A config names the model (family, inputs, architecture and the family's section, as in a model card)
and how to train it::

    name: flow_residual
    family: flow
    data: demo                          # a catalog name (data/catalog.yaml) or a dataset path
    input: {frames: 4}                  # channels: all of the data's unless listed
    architecture: {base_channels: 16, channel_mults: [1, 2, 4, 4]}
    flow: {source: residual, residual_scale: intensity}
    base_checkpoint: models/demo/unet   # residual flow: its trained U-Net (used at test time)
    cross_fit: [models/unet_fold0, models/unet_fold1]   # optional: out-of-sample training residuals
    sampling: {sampler: heun, steps: 8}
    optim: {steps: 3000, batch_size: 16, crop: 64, lr: 2.0e-3, ema_decay: 0.999}
    validation: {fraction: 0.15, every: 500, samples: 8, crop: 128, members: 2}
    checkpoint_every: 250
    seed: 0

A distilled student (:mod:`qpe.training.distill`) names its teacher flow and samples in one or two Euler
steps::

    distill: {teacher: models/demo/flow_residual, teacher_sampler: midpoint, teacher_steps: 8, pairs: 1024}
    sampling: {sampler: euler, steps: 2}

A fold U-Net (for ``cross_fit``) is trained with ``fold: {folds: 2, leave_out: i}``: it never sees the
training days of fold ``i``, and gives the residuals of those days. Relative paths (``data``,
``base_checkpoint``, ``cross_fit``) are relative to the working directory, like the command line's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from qpe.data.samples import TRANSFORMS
from qpe.errors import InputError, QpeError
from qpe.models.card import DiffusionConfig, FlowConfig, SamplingDefaults, family_sections
from qpe.models.sampling import is_ensemble
from qpe.models.transforms import RainTransform
from qpe.models.unet import UNetConfig
from qpe.settings import from_mapping, plain, read_yaml_mapping

#: Settings of how the training steps are computed, not of what they compute (left out of the digest).
HOW_SETTINGS = ("optim.data_on_device", "optim.compile")


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation settings.

    Parameters
    ----------
    steps : int
        Optimiser steps in total.
    batch_size : int
        Samples per step over all processes (each of W DDP processes takes ``batch_size / W``).
    crop : int
        Side of the random training crops, pixels.
    lr : float
        Peak learning rate of AdamW.
    warmup_steps : int
        Linear warm-up from 0 to ``lr``; then cosine decay to ``min_lr_ratio * lr`` at ``steps``.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    weight_decay : float
        AdamW decoupled weight decay.
    grad_clip : float or None
        Clip the global gradient norm to this; None to disable.
    ema_decay : float or None
        Decay of the exponential moving average of the weights (generative families; the saved
        checkpoint holds the EMA weights). None disables it; the U-Net never uses one.
    amp : bool
        bfloat16 autocast on a GPU (ignored on the CPU).
    workers : int
        Data-loader worker processes (unused with ``data_on_device``).
    data_on_device : bool
        Move the training samples' arrays (normalised IR of every frame a training window reads, rain
        and radar mask) to the training device once, and cut every batch there
        (:class:`~qpe.training.device_samples.DeviceSamples`): no data-loader, no copy of sample data per
        step. The batches are those of the data-loader, value for value (same crops, same transforms).
        The arrays must fit in the device's free memory.
    compile : bool
        Train through ``torch.compile`` of the model (its loss, network included; the random draws stay
        eager). Validation and checkpoints use the plain module, whose state dict the checkpoint holds.
        The first step pays the compilation (tens of seconds; inductor caches it on disk for the next
        run of the same graph).
    augment : tuple of str
        Joint flips / quarter turns of the training samples (IR frames, rain and mask together), by the
        names of :data:`qpe.data.samples.TRANSFORMS`, e.g. ``[flip_x]``; empty (default): none.
        Validation samples are never augmented. Only ``flip_x`` keeps SEVIRI's northward parallax over
        Europe (:mod:`qpe.data.samples`).
    """

    steps: int = 3000
    batch_size: int = 16
    crop: int = 64
    lr: float = 2e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 1e-4
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    amp: bool = True
    workers: int = 0
    augment: tuple[str, ...] = ()
    data_on_device: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("amp", "data_on_device", "compile"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise InputError(f"optim {name} must be true or false, got {value!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise InputError(f"optim workers must be a whole number >= 0, got {self.workers!r}")
        unknown = [str(name) for name in self.augment if name not in TRANSFORMS]
        if unknown:
            raise InputError(f"optim augment: unknown transform(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(TRANSFORMS)}")
        if self.steps < 1 or self.batch_size < 1 or self.crop < 8:
            raise InputError("optim needs steps >= 1, batch_size >= 1 and crop >= 8")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1 or self.warmup_steps < 0:
            raise InputError("optim needs lr > 0, 0 <= min_lr_ratio <= 1 and warmup_steps >= 0")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise InputError(f"optim ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InputError(f"optim grad_clip must be positive or null, got {self.grad_clip}")


@dataclass(frozen=True)
class ValidationConfig:
    """Periodic validation on a later, disjoint block of the data.

    Parameters
    ----------
    fraction : float
        Share of the target times held out (the last ones; see
        :func:`qpe.data.samples.chronological_split`).
    every : int
        Validate every this many steps (and at the end).
    samples : int
        Validation samples (fixed crops), spread evenly over the held-out times.
    crop : int
        Side of the validation crops, pixels.
    members : int
        Samples per field drawn from a generative model (CRPS when at least 2).
    """

    fraction: float = 0.15
    every: int = 500
    samples: int = 8
    crop: int = 128
    members: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.fraction < 1 or self.every < 1 or self.samples < 1 or self.members < 1:
            raise InputError("validation needs 0 < fraction < 1, every >= 1, samples >= 1, members >= 1")


@dataclass(frozen=True)
class InputConfig:
    """T successive frames of the listed channels (None: every channel of the data, in its order)."""

    frames: int = 4
    channels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or not 1 <= self.frames <= 8:
            raise InputError(f"input frames (T) must be an integer from 1 to 8, got {self.frames!r}")
        if self.channels is not None and not all(isinstance(c, str) for c in self.channels):
            raise InputError(f"input channels must be a list of channel names, got {list(self.channels)!r}")


@dataclass(frozen=True)
class FoldConfig:
    """Train without one fold of the training days (a fold U-Net, for cross-fitted residuals).

    Parameters
    ----------
    folds : int
        Number of folds; a day's fold is its UTC day number modulo ``folds`` (:func:`qpe.data.times.day_folds`).
    leave_out : int
        The fold whose days this model does not see.
    """

    folds: int = 2
    leave_out: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.folds, int) or self.folds < 2 or not 0 <= self.leave_out < self.folds:
            raise InputError(f"fold needs folds >= 2 and 0 <= leave_out < folds, got {self.folds}, {self.leave_out}")


#: Most steps of a distilled student: it exists to sample in one or two network evaluations.
MAX_STUDENT_STEPS = 4


@dataclass(frozen=True)
class DistillConfig:
    """Train a few-step student on a teacher flow's endpoints (reflow distillation, :mod:`qpe.training.distill`).

    Parameters
    ----------
    teacher : str
        Checkpoint folder of the trained teacher flow (relative to the working directory).
    teacher_sampler : str, optional
        The sampler that draws the teacher's endpoints; None: the teacher card's.
    teacher_steps : int, optional
        Its steps K; None: the teacher card's.
    pairs : int
        (source sample, teacher endpoint) pairs, one per training crop, drawn once per run and cached
        beside the run state.
    from_teacher : bool
        Start from the teacher's weights (the student then has the teacher's architecture).
    """

    teacher: str
    teacher_sampler: str | None = None
    teacher_steps: int | None = None
    pairs: int = 1024
    from_teacher: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, str) or not self.teacher:
            raise InputError(f"distill teacher must be a checkpoint folder, got {self.teacher!r}")
        if isinstance(self.pairs, bool) or not isinstance(self.pairs, int) or self.pairs < 1:
            raise InputError(f"distill pairs must be a positive integer, got {self.pairs!r}")
        if not isinstance(self.from_teacher, bool):
            raise InputError(f"distill from_teacher must be true or false, got {self.from_teacher!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (see the module docstring for the YAML form)."""

    name: str
    family: str
    data: str = "demo"
    description: str = ""
    input: InputConfig = InputConfig()
    architecture: UNetConfig = UNetConfig()
    rain_transform: RainTransform = RainTransform()
    diffusion: DiffusionConfig | None = None
    flow: FlowConfig | None = None
    base_checkpoint: str | None = None
    cross_fit: tuple[str, ...] = ()
    fold: FoldConfig | None = None
    distill: DistillConfig | None = None
    sampling: SamplingDefaults | None = None
    optim: OptimConfig = OptimConfig()
    validation: ValidationConfig = ValidationConfig()
    checkpoint_every: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            sections = family_sections(self.family, diffusion=self.diffusion, flow=self.flow)
        except InputError as err:
            raise InputError(f"{self.name}: {err}") from None
        for name, value in sections.items():
            object.__setattr__(self, name, value)  # frozen dataclass: the family's section, filled
        needs_base = self.flow is not None and self.flow.needs_base
        if needs_base and not self.base_checkpoint:
            raise InputError(f"{self.name}: a residual flow needs 'base_checkpoint' (its trained U-Net)")
        if self.base_checkpoint and not needs_base:
            raise InputError(f"{self.name}: only a residual flow takes a 'base_checkpoint'")
        if self.cross_fit and (not needs_base or len(self.cross_fit) < 2):
            raise InputError(f"{self.name}: cross_fit names the fold U-Nets (2 or more) of a residual flow")
        if self.checkpoint_every < 1:
            raise InputError("checkpoint_every must be at least 1")
        if self.distill is not None:
            self._check_student()

    def _check_student(self) -> None:
        """A distilled student: a flow sampled with Euler in a few steps, trained on teacher pairs only."""
        if self.family != "flow":
            raise InputError(f"{self.name}: distill trains a flow student, not a {self.family} model")
        sampling = self.sampling or SamplingDefaults()
        if sampling.sampler != "euler" or not sampling.steps or sampling.steps > MAX_STUDENT_STEPS:
            raise InputError(f"{self.name}: a distilled student samples with sampling: {{sampler: euler, steps: 1 "
                             f"to {MAX_STUDENT_STEPS}}} (it learns the straight path on Euler's grid), "
                             f"got {sampling.sampler} with {sampling.steps} steps")
        if self.cross_fit or self.fold is not None:
            raise InputError(f"{self.name}: a distilled student learns its teacher's endpoints: no cross_fit or fold")
        if self.optim.data_on_device or self.optim.augment:
            raise InputError(f"{self.name}: a distilled student trains on cached teacher pairs: "
                             "no optim.data_on_device and no optim.augment")
        if self.distill.pairs < self.optim.batch_size:
            raise InputError(f"{self.name}: distill pairs ({self.distill.pairs}) must be at least the batch size "
                             f"({self.optim.batch_size})")

    @property
    def uses_ema(self) -> bool:
        """An EMA of the weights is kept for generative (ensemble) families when ``optim.ema_decay`` is set."""
        return is_ensemble(self.family) and self.optim.ema_decay is not None

    # -- plain data / YAML ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=110)

    def digest(self, exclude: tuple[str, ...] = ("optim.steps", "validation.every", "checkpoint_every"),
               identify: Callable[[str], str] | None = None) -> str:
        """Hash of the settings that make a run what it is (a resumed run must match it).

        By default the total number of steps and the validation / checkpoint periods may change
        between an interrupted run and its resumption (to extend a run). How the steps are computed
        (:data:`HOW_SETTINGS`: where the batches are cut, compiled or not) never enters it, so a run
        may resume with other values and runs started before these settings existed keep their digest.

        Parameters
        ----------
        exclude : tuple of str
            Dotted settings left out.
        identify : callable, optional
            Maps each checkpoint the config names by path (``base_checkpoint``, ``cross_fit``,
            ``distill.teacher``) to what identifies it (its weights hash), so that a run moved to another
            folder with the checkpoints it reads keeps its digest. None: the paths as written (the digest
            of runs started before this existed).
        """
        d = self.to_dict()
        if d.get("distill") is None:  # runs started before distillation existed keep their digest
            d.pop("distill", None)
        if identify is not None:
            if d.get("base_checkpoint"):
                d["base_checkpoint"] = identify(d["base_checkpoint"])
            d["cross_fit"] = [identify(path) for path in d.get("cross_fit", ())]
            if d.get("distill"):
                d["distill"]["teacher"] = identify(d["distill"]["teacher"])
        for dotted in (*exclude, *HOW_SETTINGS):
            section, _, key = dotted.rpartition(".")
            (d[section] if section else d).pop(key, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Any, where: str = "training config") -> TrainConfig:
        return from_mapping(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        data = read_yaml_mapping(path, "training config")
        try:
            return cls.from_dict(data, str(path))
        except QpeError as err:
            raise InputError(f"{path}: {err}") from None

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
