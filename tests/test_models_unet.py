"""The U-Net backbone and the rain transform: shapes, padding, time embedding, configuration limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models_testing import one_torch_thread, tiny_card  # noqa: F401 (autouse fixture)

from qpe.errors import CheckpointError
from qpe.models import RainTransform, UNet, UNetConfig, build_model


@pytest.mark.parametrize("mults", [(1,), (1, 2), (1, 2, 4), (1, 2, 4, 4)])
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (9, 40)])
def test_any_field_size_comes_back_with_its_size(mults, size):
    net = UNet(
        UNetConfig(base_channels=8, channel_mults=mults, groups=4),
        in_channels=5,
        out_channels=2,
        time_embedding=True,
    )
    out = net(torch.randn(3, 5, *size), torch.rand(3))
    assert out.shape == (3, 2, *size)


def test_odd_fields_are_edge_padded_then_cropped():
    """A 15 x 15 field runs as the 16 x 16 field that replicates its last row and column, cropped back."""
    torch.manual_seed(0)
    net = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4), 3)
    torch.nn.init.normal_(net.head.weight, std=0.1)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        odd = net(x[..., :15, :15])  # padded by replicating row/column 14
        replicated = net(torch.nn.functional.pad(x[..., :15, :15], (0, 1, 0, 1), mode="replicate"))
    assert odd.shape == (1, 1, 15, 15)
    np.testing.assert_allclose(odd.numpy(), replicated[..., :15, :15].numpy(), atol=1e-6)


def test_time_is_required_exactly_with_a_time_embedding():
    net = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4), 3, time_embedding=True)
    with pytest.raises(ValueError, match="pass t exactly"):
        net(torch.randn(1, 3, 8, 8))
    plain = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4), 3)
    with pytest.raises(ValueError, match="pass t exactly"):
        plain(torch.randn(1, 3, 8, 8), torch.rand(1))


def test_time_changes_the_output():
    torch.manual_seed(0)
    net = UNet(UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4), 3, time_embedding=True)
    torch.nn.init.normal_(net.head.weight, std=0.1)
    for block in net.modules():
        if hasattr(block, "conv2"):
            torch.nn.init.normal_(block.conv2.weight, std=0.1)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(net(x, torch.tensor([0.1])), net(x, torch.tensor([0.9])))


def test_attention_at_the_lowest_resolution():
    net = UNet(
        UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4, attention=True), 3, time_embedding=True
    )
    assert net(torch.randn(2, 3, 12, 10), torch.rand(2)).shape == (2, 1, 12, 10)


def test_demo_architecture_stays_small():
    """The default architecture on T=4 x C=7 inputs: under 1 M parameters (< 4 MB of weights)."""
    channels = ["WV_062", "WV_073", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134"]
    model = build_model(tiny_card("flow", frames=4, channels=channels, architecture=UNetConfig()))
    n = sum(p.numel() for p in model.parameters())
    assert 300_000 < n < 1_000_000


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_channels": 0}, "base_channels >= 1"),
        ({"channel_mults": ()}, "positive channel_mults"),
        ({"blocks_per_level": 0}, "blocks_per_level >= 1"),
    ],
)
def test_bad_architecture_is_refused(kwargs, message):
    with pytest.raises(CheckpointError, match=message):
        UNetConfig(**kwargs)


# -- rain transform ------------------------------------------------------------------------------------------
def test_transform_values_and_round_trip():
    t = RainTransform(scale=2.0)
    rain = torch.tensor([0.0, 0.1, 1.0, 10.0, 100.0])
    y = t.forward(rain)
    np.testing.assert_allclose(y.numpy(), np.log1p(rain.numpy()) / 2.0, rtol=1e-6)
    np.testing.assert_allclose(t.inverse(y).numpy(), rain.numpy(), rtol=1e-5, atol=1e-6)


def test_inverse_clamps_to_physical_rates():
    t = RainTransform(max_rate=200.0)
    out = t.inverse(torch.tensor([-3.0, -0.01, 50.0]))
    np.testing.assert_allclose(out.numpy(), [0.0, 0.0, 200.0], rtol=1e-6)


@pytest.mark.shared_data
def test_default_transform_gives_real_rain_roughly_unit_spread(opera_files):
    """On rainy 128 x 128 crops of a real OPERA composite, y = 2 log1p(R) has a spread near 1."""
    from pysteps.io import import_opera_hdf5

    rain, _, _ = import_opera_hdf5(str(opera_files[0]))
    rain = np.where(rain > 300, np.nan, rain)  # clutter
    stds = []
    for i in range(0, rain.shape[0] - 128, 128):
        for j in range(0, rain.shape[1] - 128, 128):
            crop = rain[i : i + 128, j : j + 128]
            valid = crop[np.isfinite(crop)]
            if valid.size > 0.5 * crop.size and (valid > 0.1).mean() > 0.1:
                stds.append(float(RainTransform().forward(torch.from_numpy(valid)).std()))
    assert len(stds) > 20
    assert 0.4 < np.median(stds) < 1.2


def test_bad_transform_is_refused():
    with pytest.raises(CheckpointError, match="unknown rain transform 'sqrt'"):
        RainTransform(kind="sqrt")
    with pytest.raises(CheckpointError, match="scale must be positive"):
        RainTransform(scale=0.0)
