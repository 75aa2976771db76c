"""Small paired datasets and tiny saved checkpoints shared by tests/test_evaluate*.py and the CRR tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import xarray as xr
from models_testing import CHANNELS, fit_unet, synthetic_batch, tiny_card, variant_card

from qpe.data.paired import save_paired
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.models import base_reference, build_model, load, save_checkpoint


def synthetic_data(
    start: str, hours: float, size: int = 40, pixel_km: float = 2.0, seed: int = 1
) -> xr.Dataset:
    """A synthetic paired dataset (IR in the tiny cards' channels, radar rain with gaps)."""
    config = SynthConfig(hours=hours, size=size, pixel_km=pixel_km, start=start, seed=seed, channels=CHANNELS)
    return generate_paired(config)


def evaluation_data(path: Path) -> Path:
    """13 times across UTC midnight with a missing 23:45 frame: runs of 6 and 7 consecutive frames.

    2021-06-01 22:15 .. 23:30 and 2021-06-02 00:00 .. 01:30, 40 x 40 pixels of 2 km.
    """
    ds = synthetic_data("2021-06-01T22:15", hours=3.5)
    ds = ds.drop_sel(time=[ds["time"].values[6]])
    return save_paired(ds, path)


def save_tiny_checkpoints(root: Path, variants=("ddpm_v", "flow_residual"), frames: int = 2) -> Path:
    """Save a tiny U-Net and tiny checkpoints of ``variants`` under ``root/<name>``; returns ``root``.

    The U-Net is trained a few steps on the toy problem of models_testing (so that its rain varies in
    space); the others keep their seeded initial weights. A residual flow gets that U-Net as its base.
    """
    kw = {"frames": frames}
    unet = fit_unet(synthetic_batch(batch=2, size=24), steps=5, **kw)
    save_checkpoint(unet, tiny_card("unet", **kw), root / "unet")
    base = load(root / "unet")
    for i, variant in enumerate(variants):
        torch.manual_seed(10 + i)
        card = variant_card(variant, **kw)
        if card.needs_base:
            card = dataclasses.replace(card, base_checkpoint=base_reference(base, root / variant))
            model = build_model(card, base=base.model)
        else:
            model = build_model(card)
        save_checkpoint(model, card, root / variant)
    return root
