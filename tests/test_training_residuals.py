"""The residual flow's training options: cross-fitted residuals (fold U-Nets), a fitted residual scale
and logit-normal training times."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from models_testing import fit_unet, synthetic_batch, tiny_card
from test_training import TINY, tiny_config

from qpe.data.paired import save_paired
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.data.times import day_folds
from qpe.errors import CheckpointError
from qpe.models import FlowConfig, build_model, load
from qpe.models.paths import ResidualScale, ResidualTarget, fit_residual_scale, sample_times
from qpe.training import train
from qpe.training.loop import _samples


@pytest.fixture(scope="module")
def two_days(tmp_path_factory) -> Path:
    """6 hours of 32 x 32 synthetic data across midnight (two UTC days, so two folds), 2 channels."""
    ds = generate_paired(SynthConfig(hours=6, size=32, seed=5, start="2021-06-01T21:00",
                                     channels=("WV_062", "IR_108")))
    return save_paired(ds, tmp_path_factory.mktemp("data") / "two_days.zarr")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def residual_config(name: str, base: Path, flow: dict | None = None, **changes):
    return tiny_config("flow_gaussian", name=name, flow={"source": "residual", **(flow or {})},
                       base_checkpoint=str(base), **changes)


@pytest.fixture(scope="module")
def unets(two_days, tmp_path_factory):
    """The full U-Net and its two fold U-Nets (each trained without one of the two days)."""
    root = tmp_path_factory.mktemp("unets")
    out = {"full": train(tiny_config("unet", steps=4, name="unet"), data=two_days, out=root / "unet",
                         progress=False, log=lambda _: None)}
    for i in (0, 1):
        out[i] = train(tiny_config("unet", steps=4, name=f"unet_fold{i}", fold={"folds": 2, "leave_out": i}),
                       data=two_days, out=root / f"fold{i}", progress=False, log=lambda _: None)
    return out


def test_a_fold_unet_never_trains_on_the_days_it_leaves_out(two_days):
    for leave_out in (0, 1):
        config = tiny_config("unet", fold={"folds": 2, "leave_out": leave_out})
        samples = _samples(config, two_days, None, progress=False)
        folds = day_folds(samples.train.times[samples.train.targets], 2)
        assert folds.size > 0 and (folds != leave_out).all()
    everything = _samples(tiny_config("unet"), two_days, None, progress=False).train.targets
    assert set(day_folds(samples.train.times[everything], 2)) == {0, 1}


def test_cross_fitted_flow_takes_each_sample_mean_from_the_unet_that_never_saw_it():
    batch = synthetic_batch(batch=4)
    bases = [fit_unet(batch, steps=3, seed=s) for s in (1, 2)]
    flow = build_model(tiny_card("flow", flow=FlowConfig(source="residual")), base=fit_unet(batch, steps=3, seed=3))
    flow.attach_fold_bases(bases)
    fold = torch.tensor([0, 1, 1, 0])
    mean = flow.anchor(batch["ir"], fold)
    for i in range(4):
        torch.testing.assert_close(mean[i], bases[int(fold[i])].mean(batch["ir"][i : i + 1])[0])
    torch.testing.assert_close(flow.anchor(batch["ir"]), flow.base.mean(batch["ir"]))  # test time: the base
    assert not any(k.startswith("fold") for k in flow.checkpoint_state())


def test_a_flow_trains_on_cross_fitted_residuals_and_checks_its_fold_unets(two_days, unets, tmp_path):
    config = residual_config("flow_cf", unets["full"], cross_fit=(str(unets[0]), str(unets[1])), steps=4)
    out = train(config, data=two_days, out=tmp_path / "flow", progress=False, log=lambda _: None)
    card = load(out).card
    assert card.training.settings["cross_fit"] == [str(unets[0]), str(unets[1])]
    assert card.base_checkpoint.sha256 == load(unets["full"]).sha256  # test time uses the full U-Net
    swapped = residual_config("flow_bad", unets["full"], cross_fit=(str(unets[1]), str(unets[0])), steps=2)
    with pytest.raises(CheckpointError, match=r"cross_fit\[0\] .* must be a U-Net trained with fold"):
        train(swapped, data=two_days, out=tmp_path / "bad", progress=False, log=lambda _: None)


def test_the_residual_scale_is_fitted_stored_and_used(two_days, unets, tmp_path):
    config = residual_config("flow_scaled", unets["full"], flow={"source": "residual",
                                                                "residual_scale": "intensity"}, steps=4)
    card = load(train(config, data=two_days, out=tmp_path / "flow", progress=False, log=lambda _: None)).card
    knots = card.flow.residual_std
    assert 2 <= len(knots) <= 8 and all(s >= 0.02 for _, s in knots)
    assert knots[-1][1] > knots[0][1]  # residuals grow with the U-Net's rain
    model = load(tmp_path / "flow").model
    assert model.flow_target.scale == ResidualScale(knots)
    y, mean = torch.rand(2, 1, 8, 8) * 3, torch.rand(2, 1, 8, 8) * 3
    torch.testing.assert_close(model.flow_target.decode(model.flow_target.encode(y, mean), mean), y)


def test_residual_scale_fit_and_interpolation():
    rng = np.random.default_rng(0)
    mean = rng.uniform(0, 4, 100_000)
    residual = rng.normal(0, 0.05 + 0.2 * mean)  # known: sigma(mu) = 0.05 + 0.2 mu
    scale = fit_residual_scale(residual, mean, bins=8)
    mu = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    np.testing.assert_allclose(scale(mu).numpy(), 0.05 + 0.2 * mu.numpy(), rtol=0.06)
    assert float(ResidualScale(((0.0, 0.1),))(mu)[3]) == 0.1 and float(ResidualScale()(mu)[0]) == 1.0
    target = ResidualTarget(scale)
    assert float(target.encode(torch.tensor([2.6]), torch.tensor([2.0]))) == pytest.approx(0.6 / 0.45, rel=0.06)


def test_an_unfitted_residual_scale_cannot_be_used():
    with pytest.raises(CheckpointError, match="never fitted"):
        build_model(tiny_card("flow", flow=FlowConfig(source="residual", residual_scale="global")))
    with pytest.raises(CheckpointError, match="residual flow only"):
        FlowConfig(source="gaussian", residual_scale="global")


def test_logit_normal_times_favour_the_middle_of_the_path():
    g = torch.Generator().manual_seed(0)
    t = sample_times("logit_normal", 200_000, generator=g)
    middle = float(((t > 0.25) & (t < 0.75)).float().mean())
    # P(|z| < logit(0.75)) for z ~ N(0, 1): erf(ln 3 / sqrt 2)
    assert middle == pytest.approx(math.erf(math.log(3) / math.sqrt(2)), abs=0.005)
    assert float(t.mean()) == pytest.approx(0.5, abs=0.005) and 0 < float(t.min()) and float(t.max()) < 1
    uniform = sample_times("uniform", 200_000, generator=g)
    assert float(((uniform > 0.25) & (uniform < 0.75)).float().mean()) == pytest.approx(0.5, abs=0.005)


def test_a_logit_normal_flow_trains(two_days, tmp_path):
    config = tiny_config("flow_gaussian", name="flow_ln", flow={"source": "gaussian", "time_sampling": "logit_normal"},
                         steps=4)
    card = load(train(config, data=two_days, out=tmp_path / "f", progress=False, log=lambda _: None)).card
    assert card.flow.time_sampling == "logit_normal" and np.isfinite(card.validation["loss"])
    assert TINY["base_channels"] == card.architecture.base_channels
