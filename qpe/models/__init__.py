"""Models: a U-Net backbone under three families (regression, DDPM, flow matching) and their checkpoints.

The math lives in small pieces that do not know each other: :mod:`~qpe.models.transforms` (rain <->
model space), :mod:`~qpe.models.schedules` (DDPM noise levels), :mod:`~qpe.models.paths` (flow-matching
paths, sources and targets), :mod:`~qpe.models.samplers` (DDIM, DDPM, Euler, Heun, midpoint over plain
callables) and :mod:`~qpe.models.unet` (the network). :mod:`~qpe.models.sampling` holds the table of
samplers (family, solver, cost, defaults, options) and resolves a request to sample once.
:mod:`~qpe.models.families` combines them into trainable models with ``loss(batch)`` and
``sample(ir, settings, generator)``; :mod:`~qpe.models.card` and :mod:`~qpe.models.checkpoint` describe,
save and safely load them::

    model = qpe.models.load("models/demo/flow_residual")      # never unpickles
    settings = model.sampling(members=8, steps=8)             # validated against the card, once
    rain = model.predict(ir_kelvin, settings, generator=g)    # (B, M, H, W) mm/h

Names are imported on first use (PEP 562), so that ``qpe.models.sampling`` (and ``qpe --help``, which
lists the samplers) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    **dict.fromkeys(
        ("DiffusionConfig", "DistilledFrom", "FileReference", "FlowConfig", "InputSpec", "ModelCard", "SamplingDefaults",
         "TrainingInfo", "WeightsInfo", "current_code_revision"), "card"),
    **dict.fromkeys(("LoadedModel", "base_reference", "load", "save_checkpoint", "sha256_file"), "checkpoint"),
    **dict.fromkeys(("FoundCheckpoint", "find_checkpoints"), "discovery"),
    **dict.fromkeys(("ConditionalDDPM", "ConditionalFlow", "RainModel", "UNetRegression", "build_model",
                     "masked_mse"), "families"),
    **dict.fromkeys(("FAMILIES", "SAMPLERS", "SamplingSettings", "family_samplers", "is_ensemble"), "sampling"),
    "NoiseSchedule": "schedules",
    "RainTransform": "transforms",
    **dict.fromkeys(("UNet", "UNetConfig"), "unet"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'qpe.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"qpe.models.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
