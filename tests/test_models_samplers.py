"""Schedules, paths and samplers checked against exact answers on a Gaussian toy problem (no network).

Data ``x ~ N(μ, s²)``. For the straight flow path from ``N(0, 1)`` the exact marginal velocity is
``v(x, t) = μ + (t s² - (1 - t)) / ((1 - t)² + t² s²) (x - t μ)`` and its flow map is ``x_0 -> μ + s x_0``;
for diffusion the exact denoiser is ``E[x_0 | x_n] = μ + α s² / (α² s² + σ²) (x_n - α μ)``.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from qpe.errors import InputError
from qpe.models import samplers
from qpe.models.paths import DirectTarget, GaussianSource, ResidualTarget, StraightPath
from qpe.models.sampling import SAMPLERS, SamplingSettings, family_samplers, is_ensemble, resolve_sampling
from qpe.models.schedules import NoiseSchedule

MU, S = 0.8, 0.5


def exact_velocity(x: torch.Tensor, t: float) -> torch.Tensor:
    return MU + (t * S**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * S**2) * (x - t * MU)


def exact_denoiser(schedule: NoiseSchedule):
    def denoise(x: torch.Tensor, n: int) -> torch.Tensor:
        a = schedule.alpha_bar(n)
        return MU + math.sqrt(a) * S**2 / (a * S**2 + 1 - a) * (x - math.sqrt(a) * MU)

    return denoise


def normal(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- schedules ------------------------------------------------------------------------------------------
def test_cosine_schedule_follows_its_formula():
    sched = NoiseSchedule.cosine(1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for n in (0, 10, 500, 900):
        np.testing.assert_allclose(sched.alpha_bar(n), f(n + 1) / f(0), rtol=1e-9)
    assert sched.alpha_bar(999) < 1e-8 and sched.alpha_bar(-1) == 1.0


def test_linear_schedule_follows_its_formula():
    sched = NoiseSchedule.linear(1000)
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(sched.alphas_cumprod.numpy(), np.cumprod(1 - betas), rtol=1e-9)


@pytest.mark.parametrize(
    "steps, expected", [(1, [99]), (4, [99, 74, 49, 24]), (100, list(range(99, -1, -1)))]
)
def test_timesteps_use_trailing_spacing(steps, expected):
    assert NoiseSchedule.cosine(100).timesteps(steps) == expected


def test_timesteps_beyond_the_schedule_are_refused():
    with pytest.raises(InputError, match="between 1 and 100"):
        NoiseSchedule.cosine(100).timesteps(101)


# -- paths ----------------------------------------------------------------------------------------------
def test_straight_path_interpolates_with_constant_velocity():
    x0, x1 = torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 3) * 2
    point = StraightPath().sample(x0, x1, torch.tensor([0.25, 1.0]))
    np.testing.assert_allclose(point.x_t[:, 0, 0, 0].numpy(), [0.5, 2.0])
    np.testing.assert_allclose(point.dx_t.numpy(), 2.0)


def test_residual_target_round_trips_and_gaussian_source_has_its_std():
    y, mean = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    np.testing.assert_allclose(ResidualTarget().decode(ResidualTarget().encode(y, mean), mean), y, atol=1e-7)
    assert DirectTarget().encode(y, mean) is y
    x = GaussianSource(0.5).sample((100_000,), generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(float(x.std()), 0.5, rtol=0.01)


# -- flow samplers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "solver, steps, tol",
    [
        (samplers.euler, 4, 0.8),
        (samplers.euler, 16, 0.23),
        (samplers.euler, 64, 0.06),
        (samplers.heun, 4, 0.025),
        (samplers.heun, 16, 0.004),
        (samplers.heun, 64, 3e-4),
        (samplers.midpoint, 4, 0.025),
        (samplers.midpoint, 16, 0.004),
        (samplers.midpoint, 64, 3e-4),
    ],
)
def test_flow_solvers_reach_the_exact_transport_map(solver, steps, tol):
    x0 = normal(10_000, 0)
    x1 = solver(exact_velocity, x0, steps)
    error = float((x1 - (MU + S * x0)).abs().max())
    assert error < tol


@pytest.mark.parametrize("second_order", [samplers.heun, samplers.midpoint])
@pytest.mark.parametrize("steps", [4, 16])
def test_second_order_solvers_are_more_accurate_than_euler(steps, second_order):
    x0 = normal(10_000, 0)
    exact = MU + S * x0
    euler_err = float((samplers.euler(exact_velocity, x0, steps) - exact).abs().max())
    err = float((second_order(exact_velocity, x0, steps) - exact).abs().max())
    assert err < euler_err / 5


def test_midpoint_never_evaluates_the_data_end_and_heun_does():
    seen = {"midpoint": [], "heun": []}
    for name in seen:
        def velocity(x, t, name=name):
            seen[name].append(t)
            return exact_velocity(x, t)

        getattr(samplers, name)(velocity, normal(10, 0), 4)
    assert seen["midpoint"] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]
    assert max(seen["heun"]) == 1.0 and len(seen["heun"]) == 8


# -- diffusion samplers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_ddim_recovers_the_data_distribution(schedule):
    sched = NoiseSchedule.from_name(schedule, 1000)
    y = samplers.ddim(exact_denoiser(sched), sched, normal(100_000, 1), 200, eta=0.0)
    np.testing.assert_allclose([float(y.mean()), float(y.std())], [MU, S], rtol=0.02)


def test_ddpm_recovers_the_data_distribution():
    sched = NoiseSchedule.cosine(400)
    g = torch.Generator().manual_seed(2)
    y = samplers.ddpm(exact_denoiser(sched), sched, normal(50_000, 1), 400, generator=g)
    np.testing.assert_allclose([float(y.mean()), float(y.std())], [MU, S], rtol=0.02)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_diffusion_error_shrinks_with_steps(sampler):
    sched = NoiseSchedule.cosine(1000)
    errors = []
    for steps in (4, 16, 64):
        kw = {"eta": 0.0} if sampler == "ddim" else {}
        fn = getattr(samplers, sampler)
        y = fn(
            exact_denoiser(sched),
            sched,
            normal(50_000, 1),
            steps,
            generator=torch.Generator().manual_seed(3),
            **kw,
        )
        errors.append(abs(float(y.std()) - S))
    assert errors[0] > errors[1] > errors[2]


def exact_flow_map(schedule: NoiseSchedule, x: torch.Tensor) -> torch.Tensor:
    """Where the probability-flow ODE takes ``x`` from the noisiest step to clean data (Gaussian data)."""
    a = schedule.alpha_bar(schedule.timesteps_total - 1)
    return MU + S * (x - math.sqrt(a) * MU) / math.sqrt(a * S**2 + 1 - a)


def _flow_map_errors(sampler, steps: int) -> float:
    sched = NoiseSchedule.cosine(1000)
    x = normal(20_000, 7)
    return float((sampler(exact_denoiser(sched), sched, x, steps) - exact_flow_map(sched, x)).abs().max())


@pytest.mark.parametrize("steps", [10, 20, 40])
def test_dpm_solver_2m_follows_the_exact_flow_map_closer_than_ddim(steps):
    err, ddim_err = _flow_map_errors(samplers.dpm_solver_2m, steps), _flow_map_errors(samplers.ddim, steps)
    # measured: 0.113 / 0.337 (K = 10), 0.0069 / 0.175 (20), 0.0039 / 0.089 (40)
    assert err < ddim_err / 2.5 and err < {10: 0.15, 20: 0.01, 40: 0.005}[steps], (err, ddim_err)


def test_dpm_solver_2m_converges_faster_than_ddim():
    """From 10 to 20 steps a 2nd-order method's error falls at least 4-fold, DDIM's (1st order) about 2-fold.
    (With more steps both are limited by the last step into clean data, which returns x̂_0.)"""
    dpm = [_flow_map_errors(samplers.dpm_solver_2m, k) for k in (10, 20)]
    ddim = [_flow_map_errors(samplers.ddim, k) for k in (10, 20)]
    assert dpm[1] < dpm[0] / 4 and ddim[1] > ddim[0] / 2.5, (dpm, ddim)


def test_ddim_with_eta_one_is_ancestral_ddpm():
    sched = NoiseSchedule.linear(200)
    x = normal(1000, 4)
    a = samplers.ddim(
        exact_denoiser(sched), sched, x, 20, eta=1.0, generator=torch.Generator().manual_seed(5)
    )
    b = samplers.ddpm(exact_denoiser(sched), sched, x, 20, generator=torch.Generator().manual_seed(5))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-10)


def test_ddim_eta_zero_is_deterministic_given_the_initial_noise():
    sched = NoiseSchedule.cosine(100)
    x = normal(100, 6)
    a = samplers.ddim(
        exact_denoiser(sched), sched, x, 10, eta=0.0, generator=torch.Generator().manual_seed(1)
    )
    b = samplers.ddim(
        exact_denoiser(sched), sched, x, 10, eta=0.0, generator=torch.Generator().manual_seed(2)
    )
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "sampler, steps, expected",
    [
        ("euler", 1, 1),
        ("euler", 16, 16),
        ("heun", 1, 2),
        ("heun", 8, 16),
        ("midpoint", 8, 16),
        ("ddim", 50, 50),
        ("ddpm", 4, 4),
        ("dpmpp2m", 10, 10),
    ],
)
def test_network_evaluations(sampler, steps, expected):
    assert SAMPLERS[sampler].network_evaluations(steps) == expected
    assert SamplingSettings(1, sampler, steps).network_evaluations == expected


# -- the sampler table and the resolution of a request ----------------------------------------------------
def test_family_samplers_and_defaults_come_from_the_table():
    assert family_samplers("ddpm") == ("ddim", "ddpm", "dpmpp2m") and family_samplers("flow") == ("heun", "euler", "midpoint")
    assert family_samplers("unet") == () and not is_ensemble("unet") and is_ensemble("flow")
    assert resolve_sampling("flow", SamplingSettings()) == SamplingSettings(1, "heun", 8, ())
    assert resolve_sampling("ddpm", SamplingSettings()) == SamplingSettings(1, "ddim", 20, (("eta", 0.0),))
    assert resolve_sampling("unet", SamplingSettings(), members=8) == SamplingSettings(1, None, None, ())


def test_a_request_is_completed_from_the_defaults_it_leaves_open():
    card = SamplingSettings(1, "midpoint", 12, (("eta", 0.3),))
    assert resolve_sampling("flow", card, members=3) == SamplingSettings(3, "midpoint", 12, ())
    assert resolve_sampling("flow", card, sampler="euler") == SamplingSettings(1, "euler", 12, ())  # card's K
    ddim = SamplingSettings(1, "ddim", 10, (("eta", 0.3),))
    assert resolve_sampling("ddpm", ddim).options == (("eta", 0.3),)
    assert resolve_sampling("ddpm", ddim, options={"eta": 1.0}, steps=5) == SamplingSettings(1, "ddim", 5, (("eta", 1.0),))


@pytest.mark.parametrize(
    "family, sampler, steps, options, max_steps, message",
    [
        ("flow", "rk4", 4, {}, None, "samples with heun or euler or midpoint, not 'rk4'"),
        ("flow", "heun", 0, {}, None, "positive integer"),
        ("flow", "euler", 2.5, {}, None, "positive integer"),
        ("flow", "euler", 1001, {}, None, "at most 1000"),
        ("ddpm", "ddim", 101, {}, 100, "at most 100 .the model's diffusion timesteps"),
        ("ddpm", "ddim", 4, {"eta": 2.0}, None, r"eta must be in \[0, 1\]"),
        ("ddpm", "ddpm", 4, {"eta": 0.5}, None, "takes no option eta"),
        ("gan", None, 4, {}, None, "unknown model family 'gan'"),
    ],
)
def test_bad_sampling_requests_are_refused(family, sampler, steps, options, max_steps, message):
    with pytest.raises(InputError, match=message):
        resolve_sampling(family, SamplingSettings(), sampler=sampler, steps=steps, options=options,
                         max_steps=max_steps)


@pytest.mark.parametrize("members", [0, -1, 1.5, 10**6])
def test_bad_member_counts_are_refused(members):
    with pytest.raises(InputError, match="members must be"):
        resolve_sampling("flow", SamplingSettings(), members=members)


def test_the_command_line_offers_the_table_without_importing_torch():
    code = ("import sys; from qpe.cli import build_parser; p = build_parser(); "
            "a = p.parse_args(['estimate', '--checkpoint', 'c', '--data', 'd', '--time', 't', '--out', 'o', "
            "'--sampler', 'midpoint']); print(a.sampler, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["midpoint", "False"], out.stderr
    help_text = subprocess.run([sys.executable, "-m", "qpe", "evaluate", "--help"], capture_output=True, text=True,
                               timeout=120).stdout
    assert "{" + ",".join(SAMPLERS) + "}" in help_text.replace("\n", "").replace(" ", "")
