"""Tiny model cards, batches and trained-model helpers shared by tests/test_models_*.py (CPU, seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qpe.data.normalization import IRNormalization
from qpe.models import (
    DiffusionConfig,
    FlowConfig,
    InputSpec,
    ModelCard,
    RainModel,
    SamplingSettings,
    UNetConfig,
    build_model,
)

CHANNELS = ("WV_062", "IR_108")
TINY = UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4)

#: (id, family, family section) of every trainable variant.
VARIANTS = [
    ("unet", "unet", {}),
    ("ddpm_eps", "ddpm", {"diffusion": DiffusionConfig(timesteps=100, prediction="eps")}),
    ("ddpm_v", "ddpm", {"diffusion": DiffusionConfig(timesteps=100, prediction="v")}),
    ("flow_gaussian", "flow", {"flow": FlowConfig(source="gaussian")}),
    ("flow_residual", "flow", {"flow": FlowConfig(source="residual")}),
]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("" where unknown). With torch's version and CPU capability it
    decides which kernels run, and so the last bits of an estimate: two CPUs of one instruction set (an
    Intel Xeon and an AMD EPYC, both "AVX512") sum in other orders."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    names = (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
    return next(names, "")


def tiny_card(
    family: str,
    *,
    frames: int = 2,
    channels: Sequence[str] = CHANNELS,
    architecture: UNetConfig = TINY,
    name: str | None = None,
    **sections,
) -> ModelCard:
    """A card for a tiny network on ``frames`` x ``channels`` (made-up normalisation: 250 +- 20 K)."""
    norm = IRNormalization(
        tuple(channels),
        tuple(250.0 + i for i in range(len(channels))),
        tuple(20.0 + i for i in range(len(channels))),
    )
    return ModelCard(
        name or family, family, InputSpec(list(channels), frames), norm, architecture=architecture, **sections
    )


def variant_card(variant: str, **kw) -> ModelCard:
    _, family, sections = next(v for v in VARIANTS if v[0] == variant)
    return tiny_card(family, name=variant, **sections, **kw)


def sampling(variant: str, members: int = 1, steps: int | None = None, sampler: str | None = None,
             **options: float) -> SamplingSettings:
    """A request to sample a variant, resolved by its card (the card's defaults for None)."""
    return variant_card(variant).sampling_settings(members, steps, sampler, **options)


def synthetic_batch(
    batch: int = 4, frames: int = 2, channels: int = 2, size: int | tuple[int, int] = 24, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A fixed toy problem: smooth normalised IR; rain where the last frame's last channel is cold.

    ``rain = 8 * relu(-ir[:, -1, -1] - 0.3)`` mm/h; radar missing in the top-left 8 x 8 corner.
    """
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch * frames * channels, 1, h + 8, w + 8, generator=g)
    ir = F.avg_pool2d(noise, 9, stride=1)[:, 0].reshape(batch, frames, channels, h, w) * 3.0
    rain = 8.0 * F.relu(-ir[:, -1, -1] - 0.3)
    mask = torch.ones(batch, h, w, dtype=torch.bool)
    mask[:, :8, :8] = False
    return {"ir": ir, "rain": torch.where(mask, rain, torch.zeros_like(rain)), "mask": mask}


def fit_unet(batch: dict[str, torch.Tensor], steps: int = 40, seed: int = 0, **card_kw) -> RainModel:
    """A tiny U-Net regression trained a little on ``batch`` (the base of residual flows in tests)."""
    torch.manual_seed(seed)
    model = build_model(tiny_card("unet", **card_kw))
    train(model, batch, steps)
    return model.eval()


def train(
    model: RainModel, batch: dict[str, torch.Tensor], steps: int, lr: float = 3e-3, seed: int = 1
) -> None:
    """``steps`` Adam steps on one fixed batch, noise from a seeded generator."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = model.loss(batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def build_variant(variant: str, base: RainModel | None = None, seed: int = 0, **kw) -> RainModel:
    """A freshly initialised (seeded) model of a variant; residual flows get ``base``."""
    torch.manual_seed(seed)
    return build_model(variant_card(variant, **kw), base)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks run fastest, and with steady timings on a shared 2-core machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mean_loss(model: RainModel, batch: dict[str, torch.Tensor], seeds: Sequence[int] = (0, 1, 2, 3)) -> float:
    """The loss averaged over fixed noise draws (comparable before and after training)."""
    model.eval()
    with torch.no_grad():
        return sum(float(model.loss(batch, seeded(s))) for s in seeds) / len(seeds)
