"""The model families: losses that learn and ignore missing radar, samplers, shapes, seeding, cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models_testing import (  # noqa: F401 (one_torch_thread is an autouse fixture)
    VARIANTS,
    build_variant,
    fit_unet,
    mean_loss,
    one_torch_thread,
    sampling,
    seeded,
    synthetic_batch,
    tiny_card,
    train,
)

from qpe.errors import CheckpointError, InputError
from qpe.models import ConditionalFlow, FlowConfig, build_model, masked_mse

VARIANT_IDS = [v[0] for v in VARIANTS]


@pytest.fixture(scope="module")
def batch():
    return synthetic_batch(batch=2)


@pytest.fixture(scope="module")
def base(batch):
    """A tiny U-Net trained on the toy problem: the residual flows' base."""
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        return fit_unet(batch)


# -- losses ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_a_few_adam_steps_reduce_the_loss(variant, batch, base):
    model = build_variant(variant, base=base)
    before = mean_loss(model, batch)
    train(model, batch, steps=30)
    after = mean_loss(model, batch)
    assert after < 0.6 * before, f"{variant}: loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_loss_ignores_pixels_without_radar(variant, batch, base):
    model = build_variant(variant, base=base)
    torch.nn.init.normal_(model.backbone.head.weight, std=0.1)  # untrained heads output 0 whatever the input
    changed = {
        **batch,
        "rain": torch.where(batch["mask"], batch["rain"], torch.full_like(batch["rain"], 50.0)),
    }
    with torch.no_grad():
        np.testing.assert_array_equal(
            float(model.loss(batch, seeded(0))), float(model.loss(changed, seeded(0)))
        )
        valid_changed = {**batch, "rain": batch["rain"] + 5.0 * batch["mask"]}
        assert float(model.loss(valid_changed, seeded(0))) != float(model.loss(batch, seeded(0)))


def test_masked_mse_averages_over_valid_pixels_only():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(pred)
    mask = torch.tensor([[[True, False], [True, False]]])
    np.testing.assert_allclose(float(masked_mse(pred, target, mask)), (1 + 9) / 2)
    np.testing.assert_allclose(float(masked_mse(pred, target, torch.zeros_like(mask))), 0.0)


# -- shapes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frames", [1, 4, 8])
@pytest.mark.parametrize("n_channels", [1, 7])
@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_shapes_for_any_stack_and_odd_fields(variant, frames, n_channels):
    channels = ["WV_062", "WV_073", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134"][-n_channels:]
    shape = dict(frames=frames, channels=channels)
    base = build_model(tiny_card("unet", **shape)) if variant == "flow_residual" else None
    model = build_variant(variant, base=base, **shape)
    b = synthetic_batch(batch=2, frames=frames, channels=n_channels, size=(29, 35))
    loss = model.loss(b, seeded(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    rain = model.sample(b["ir"], sampling(variant, members=3, steps=2), seeded(0))
    assert rain.shape == ((2, 1, 29, 35) if variant == "unet" else (2, 3, 29, 35))


def test_wrong_input_stack_is_refused():
    model = build_model(tiny_card("unet", frames=2))
    with pytest.raises(InputError, match=r"T=2, C=2"):
        model.sample(torch.zeros(1, 3, 2, 16, 16), sampling("unet"))


# -- sampling ----------------------------------------------------------------------------------------------
SAMPLING = [
    ("ddpm_v", "ddim"),
    ("ddpm_v", "ddpm"),
    ("ddpm_eps", "ddim"),
    ("ddpm_v", "dpmpp2m"),
    ("flow_gaussian", "euler"),
    ("flow_gaussian", "heun"),
    ("flow_residual", "euler"),
    ("flow_residual", "heun"),
    ("flow_residual", "midpoint"),
]


@pytest.mark.parametrize("steps", [1, 4, 16])
@pytest.mark.parametrize("variant, sampler", SAMPLING)
def test_samplers_give_finite_non_negative_rain(variant, sampler, steps, batch, base):
    model = build_variant(variant, base=base)
    with torch.no_grad():
        rain = model.sample(batch["ir"][:2], sampling(variant, 3, steps, sampler), seeded(0))
    assert rain.shape == (2, 3, 24, 24)
    assert torch.isfinite(rain).all() and (rain >= 0).all()


@pytest.mark.parametrize("variant, sampler", SAMPLING)
def test_same_seed_same_samples_members_differ(variant, sampler, batch, base):
    model = build_variant(variant, base=base)
    with torch.no_grad():
        settings = sampling(variant, 2, 3, sampler)
        a = model.sample(batch["ir"][:1], settings, seeded(7))
        b = model.sample(batch["ir"][:1], settings, seeded(7))
        c = model.sample(batch["ir"][:1], settings, seeded(8))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not torch.equal(a[:, 0], a[:, 1]), "ensemble members must differ"
    assert not torch.equal(a, c), "another seed must give other samples"


def test_residual_flow_samples_scatter_around_the_unet(batch, base):
    """Untrained, the flow's velocity is 0: every member is the U-Net mean plus the source noise."""
    model = build_variant("flow_residual", base=base)
    with torch.no_grad():
        rain = model.sample(batch["ir"][:1], sampling("flow_residual", 4, 4, "euler"), seeded(0))
        mean = base.mean(batch["ir"][:1])
    y = model.transform.forward(rain)
    x0 = torch.randn((4, 1, 24, 24), generator=seeded(0))
    expected = model.transform.forward(model.transform.inverse(mean + x0))[:, 0]
    np.testing.assert_allclose(y[0].numpy(), expected.numpy(), atol=1e-5)


def test_unknown_sampler_is_refused(batch):
    with pytest.raises(InputError, match="heun or euler or midpoint, not 'ddim'"):
        sampling("flow_gaussian", 1, 2, "ddim")
    model = build_variant("flow_gaussian")  # settings resolved for another family are refused too
    with pytest.raises(InputError, match="a flow model cannot sample with 'ddim'"):
        model.sample(batch["ir"][:1], sampling("ddpm_v", 1, 2, "ddim"))


@pytest.mark.parametrize(
    "variant, sampler, steps, expected",
    [
        ("unet", None, None, 1),
        ("ddpm_v", "ddim", 50, 50),
        ("ddpm_eps", "ddpm", 4, 4),
        ("flow_gaussian", "euler", 8, 8),
        ("flow_gaussian", "heun", 8, 16),
        ("flow_residual", "euler", 8, 9),
        ("flow_residual", "heun", 4, 9),
        ("flow_residual", "midpoint", 4, 9),
    ],
)
def test_network_evaluations(variant, sampler, steps, expected, base):
    model = build_variant(variant, base=base)
    assert model.network_evaluations(sampling(variant, 1, steps, sampler)) == expected


# -- the residual flow's U-Net ----------------------------------------------------------------------------
def test_residual_flow_keeps_its_unet_frozen_and_out_of_its_state(batch, base):
    model = build_variant("flow_residual", base=base)
    assert all(not p.requires_grad for p in model.base.parameters())
    assert not any(k.startswith("base.") for k in model.checkpoint_state())
    before = {k: v.clone() for k, v in base.state_dict().items()}
    train(model, batch, steps=2)
    assert not model.base.training
    for k, v in base.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_residual_flow_without_unet_says_so(batch):
    model = build_model(tiny_card("flow", flow=FlowConfig(source="residual")))
    with pytest.raises(CheckpointError, match="no base U-Net attached"):
        model.loss(batch)


def test_residual_flow_refuses_a_unet_of_other_inputs():
    model = build_model(tiny_card("flow", flow=FlowConfig(source="residual")))
    assert isinstance(model, ConditionalFlow)
    with pytest.raises(CheckpointError, match="base U-Net takes T=3"):
        model.attach_base(build_model(tiny_card("unet", frames=3)))
