"""A small dataset and tiny checkpoints for the dashboard tests (CPU, seconds).

The dataset is the synthetic benchmark on 96 x 96 pixels, two channels, 22:30 .. 01:15 UTC (so it
spans two dates). The checkpoints are tiny networks trained for a few steps on it — a U-Net, a DDPM
and a residual flow on that U-Net — plus three that must fail visibly: modified weights
(``broken``), a card asking for a channel the data lack (``needs_ir134``) and an unreadable card
(``bad_card``).
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import torch
from models_testing import TINY, tiny_card, train

from qpe.data.normalization import read_ir_normalization
from qpe.data.paired import open_paired, save_paired
from qpe.data.samples import PairedSamples, SampleConfig
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.models import (
    DiffusionConfig,
    FileReference,
    FlowConfig,
    SamplingDefaults,
    build_model,
    load,
    save_checkpoint,
)

CHANNELS = ("WV_062", "IR_108")
SYNTH = SynthConfig(hours=3, size=96, seed=3, start="2021-06-01T22:30", channels=CHANNELS)
#: The working checkpoints (keys under the models folder).
GOOD = ("ddpm", "flow_residual", "unet")
#: Checkpoints that fail: to load, to estimate, to be read at all.
BAD = ("broken", "needs_ir134", "bad_card")


def make_dataset(path: Path) -> Path:
    """Write the small paired dataset (12 times, 2 dates) to ``path`` (.zarr)."""
    return save_paired(generate_paired(SYNTH), path)


def _batch(data: Path) -> dict[str, torch.Tensor]:
    samples = PairedSamples(open_paired(data), SampleConfig(frames=2, crop=48, channels=CHANNELS, random_crop=False))
    items = [samples[i] for i in range(min(6, len(samples)))]
    return {k: torch.stack([item[k] for item in items]) for k in ("ir", "rain", "mask")}


def make_checkpoints(root: Path, data: Path, steps: int = 30) -> Path:
    """Write the tiny checkpoints of :data:`GOOD` and :data:`BAD` under ``root``; returns ``root``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks train fastest on one thread (and do not fight other work)
    try:
        return _make_checkpoints(root, data, steps)
    finally:
        torch.set_num_threads(threads)


def _make_checkpoints(root: Path, data: Path, steps: int) -> Path:
    torch.manual_seed(0)
    norm = read_ir_normalization(open_paired(data)).select(CHANNELS)
    batch = _batch(data)

    def card(family: str, name: str, **sections):
        return dataclasses.replace(tiny_card(family, name=name, **sections), normalization=norm)

    unet_card = card("unet", "unet")
    unet = build_model(unet_card)
    train(unet, batch, steps)
    save_checkpoint(unet, unet_card, root / "unet")
    base = load(root / "unet")

    ddpm_card = card("ddpm", "ddpm", diffusion=DiffusionConfig(timesteps=100, prediction="v"),
                     sampling=SamplingDefaults("ddim", 4))
    ddpm = build_model(ddpm_card)
    train(ddpm, batch, steps)
    save_checkpoint(ddpm, ddpm_card, root / "ddpm")

    flow_card = dataclasses.replace(
        card("flow", "flow_residual", flow=FlowConfig(source="residual"), sampling=SamplingDefaults("heun", 2)),
        base_checkpoint=FileReference("../unet", base.sha256),
    )
    flow = build_model(flow_card, base.model)
    train(flow, batch, steps)
    save_checkpoint(flow, flow_card, root / "flow_residual")

    # fails to load: weights changed after the card recorded their hash
    save_checkpoint(build_model(unet_card), dataclasses.replace(unet_card, name="broken"), root / "broken")
    weights = root / "broken" / "weights.safetensors"
    data_bytes = bytearray(weights.read_bytes())
    data_bytes[-1] ^= 0xFF
    weights.write_bytes(bytes(data_bytes))
    # loads, but the data lack its channel: the estimate fails
    odd = tiny_card("unet", name="needs_ir134", channels=("IR_108", "IR_134"), architecture=TINY)
    save_checkpoint(build_model(odd), odd, root / "needs_ir134")
    # a card that is not a model card
    (root / "bad_card").mkdir(parents=True, exist_ok=True)
    (root / "bad_card" / "card.yaml").write_text("format: something-else\n")
    return root


def shown_text(pane) -> str:
    """The text a browser shows for a Markdown, Alert or Str pane (its HTML rendered, tags removed)."""
    received = html.unescape(pane._transform_object(pane.object)["object"])  # Panel sends it escaped once
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", received)).split())
