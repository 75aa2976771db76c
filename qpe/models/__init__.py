"""Models: a U-Net backbone under three families (regression, DDPM, flow matching) and their checkpoints.

The math lives in small pieces that do not know each other: :mod:`~qpe.models.transforms` (rain <->
model space), :mod:`~qpe.models.schedules` (DDPM noise levels), :mod:`~qpe.models.paths` (flow-matching
paths, sources and targets), :mod:`~qpe.models.samplers` (DDIM, DDPM, Euler, Heun over plain callables)
and :mod:`~qpe.models.unet` (the network). :mod:`~qpe.models.families` combines them into trainable
models with ``loss(batch)`` and ``sample(...)``; :mod:`~qpe.models.card` and
:mod:`~qpe.models.checkpoint` describe, save and safely load them::

    model = qpe.models.load("models/demo/flow_residual")      # never unpickles
    rain = model.predict(ir_kelvin, members=8, steps=8, generator=g)   # (B, M, H, W) mm/h
"""

from qpe.models.card import (
    FileReference,
    InputSpec,
    ModelCard,
    SamplingDefaults,
    TrainingInfo,
    WeightsInfo,
    current_code_revision,
)
from qpe.models.checkpoint import LoadedModel, base_reference, load, save_checkpoint, sha256_file
from qpe.models.discovery import FoundCheckpoint, find_checkpoints
from qpe.models.families import (
    FAMILIES,
    ConditionalDDPM,
    ConditionalFlow,
    DiffusionConfig,
    FlowConfig,
    RainModel,
    UNetRegression,
    build_model,
    masked_mse,
)
from qpe.models.schedules import NoiseSchedule
from qpe.models.transforms import RainTransform
from qpe.models.unet import UNet, UNetConfig

__all__ = [
    "FAMILIES",
    "ConditionalDDPM",
    "ConditionalFlow",
    "DiffusionConfig",
    "FileReference",
    "FoundCheckpoint",
    "FlowConfig",
    "InputSpec",
    "LoadedModel",
    "ModelCard",
    "NoiseSchedule",
    "RainModel",
    "RainTransform",
    "SamplingDefaults",
    "TrainingInfo",
    "UNet",
    "UNetConfig",
    "UNetRegression",
    "WeightsInfo",
    "base_reference",
    "build_model",
    "current_code_revision",
    "find_checkpoints",
    "load",
    "masked_mse",
    "save_checkpoint",
    "sha256_file",
]
