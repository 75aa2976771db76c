"""A trained flow's ensemble is calibrated on a toy problem whose conditional distribution is known.

Conditioning ``c``: a smooth random field (one IR channel, T = 1). Rain in model space:
``y = 1.5 + 0.3 c + 0.3 ε``, ``ε ~ N(0, 1)`` independent per pixel, so ``p(y | c)`` is
``N(1.5 + 0.3 c, 0.3²)``. A Gaussian-source flow trained on fresh draws must then give members whose
spread matches the error of their mean: with M members of a perfect ensemble,
``sqrt((M + 1) / M) · spread / RMSE(ensemble mean) = 1`` (the fair spread/skill ratio), and the RMSE of
the mean is ``0.3 sqrt(1 + 1/M)``. Measured (1000 steps, 8 members, midpoint K = 8): ratio 0.99,
RMSE 0.321 (ideal 0.318); after only 300 steps the ensemble is still over-dispersed (ratio 1.28).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from models_testing import one_torch_thread, tiny_card  # noqa: F401 (autouse fixture)

from qpe.models import FlowConfig, UNetConfig, build_model

MEAN, SLOPE, NOISE = 1.5, 0.3, 0.3
MEMBERS = 8


def toy(n: int, generator: torch.Generator, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(conditioning (n, 1, 1, size, size), y (n, size, size)) drawn from the toy problem."""
    noise = torch.randn(n, 1, size + 8, size + 8, generator=generator)
    c = F.avg_pool2d(noise, 9, stride=1) * 3.0  # smooth, about unit variance
    y = MEAN + SLOPE * c[:, 0] + NOISE * torch.randn(n, size, size, generator=generator)
    return c[:, None], y


@pytest.mark.slow
def test_a_trained_flow_spreads_as_much_as_it_errs():
    card = tiny_card("flow", frames=1, channels=("IR_108",), flow=FlowConfig(source="gaussian"),
                     architecture=UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4))
    torch.manual_seed(0)
    model = build_model(card)
    steps = 1000
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        c, y = toy(16, g)
        rain = model.transform.inverse(y)
        loss = model.loss({"ir": c, "rain": rain, "mask": torch.ones_like(rain, dtype=torch.bool)}, g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    c, y = toy(32, torch.Generator().manual_seed(99))
    settings = card.sampling_settings(members=MEMBERS, steps=8, sampler="midpoint")
    with torch.no_grad():
        members = model.transform.forward(model.sample(c, settings, torch.Generator().manual_seed(5)))
    rmse = float(((members.mean(1) - y) ** 2).mean().sqrt())
    spread = float(members.var(1, unbiased=True).mean().sqrt())
    ratio = math.sqrt((MEMBERS + 1) / MEMBERS) * spread / rmse
    assert 0.8 <= ratio <= 1.25, (ratio, spread, rmse)
    assert rmse == pytest.approx(NOISE * math.sqrt(1 + 1 / MEMBERS), rel=0.1)  # the mean is right too
