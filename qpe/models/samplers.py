"""Samplers: integrate a flow ODE or run a reverse diffusion in K steps.

A sampler takes a plain callable and an initial state; it knows nothing of networks, conditioning or
rain. Flow samplers take ``velocity(x, t) -> dx/dt`` and go from ``t = 0`` (source) to ``t = 1`` (data);
diffusion samplers take ``denoise(x_n, n) -> x̂_0`` (the model's estimate of the clean sample from step
``n`` of a :class:`~qpe.models.schedules.NoiseSchedule`) and go from ``n = N - 1`` to clean data.
All states are tensors of any shape (typically (B, 1, H, W)). The solvers of one kind share a signature
(a flow solver takes ``generator`` even when it draws no noise), so that a model calls any row of the
sampler table (:data:`qpe.models.sampling.SAMPLERS`) the same way; their names, costs and options live
in that table.

Every solver takes an optional ``callback(k, K)``, called after step ``k`` (1-based) of ``K`` is done,
between network evaluations: progress for a caller, and its chance to stop the sampler by raising
(cooperative cancellation). It sees no state, so it cannot change the result or the noise drawn.

Nothing here imports torch at module level: the table that names these functions is read by
``qpe --help``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from qpe.errors import InputError

if TYPE_CHECKING:
    import torch

    from qpe.models.schedules import NoiseSchedule

#: ``velocity(x, t)``: (B, ...) state and time in [0, 1] -> (B, ...) dx/dt.
Velocity = Callable[["torch.Tensor", float], "torch.Tensor"]
#: ``denoise(x_n, n)``: (B, ...) noisy state at integer step n -> (B, ...) estimate of x_0.
Denoiser = Callable[["torch.Tensor", int], "torch.Tensor"]
#: ``callback(k, K)``: step k (1-based) of K is done; may raise to stop the sampler.
StepCallback = Callable[[int, int], None]


def check_steps(steps: int) -> None:
    """Raise a clear error unless ``steps`` is a positive integer."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"sampler steps must be a positive integer, got {steps!r}")


def _done(callback: StepCallback | None, k: int, steps: int) -> None:
    """Tell ``callback`` that step ``k`` (0-based here) of ``steps`` is done."""
    if callback is not None:
        callback(k + 1, steps)


# -- flow matching: ODE solvers on t in [0, 1] ----------------------------------------------------------
def euler(
    velocity: Velocity,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Explicit Euler from t = 0 to 1 in ``steps`` equal steps ``h = 1 / K``.

    ``x_{k+1} = x_k + h v(x_k, t_k)``. Returns the state at t = 1 (same shape as ``x``); ``generator``
    is unused (the method is deterministic).
    """
    check_steps(steps)
    h = 1.0 / steps
    for k in range(steps):
        x = x + h * velocity(x, k * h)
        _done(callback, k, steps)
    return x


def heun(
    velocity: Velocity,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Heun's method (explicit trapezoid, 2nd order) from t = 0 to 1 in ``steps`` steps.

    ``x̃ = x_k + h v(x_k, t_k)``; ``x_{k+1} = x_k + h/2 [v(x_k, t_k) + v(x̃, t_{k+1})]``.
    """
    check_steps(steps)
    h = 1.0 / steps
    for k in range(steps):
        t = k * h
        v = velocity(x, t)
        v_next = velocity(x + h * v, t + h)
        x = x + 0.5 * h * (v + v_next)
        _done(callback, k, steps)
    return x


def midpoint(
    velocity: Velocity,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """The explicit midpoint method (2nd-order Runge-Kutta) from t = 0 to 1 in ``steps`` equal steps.

    ``x_{k+1} = x_k + h v(x_k + h/2 v(x_k, t_k), t_k + h/2)``: as accurate as Heun for smooth velocities,
    but no evaluation at t = 1. There the straight-path velocity ``(E[x_1 | x_t] - x_t) / (1 - t)`` is
    finite only in the limit, and where the data have a point mass (dry pixels, exactly 0 mm/h) it must
    collapse a neighbourhood onto one value, which a network learns worst. Heun's last corrector,
    evaluated there, sprinkles drizzle over dry areas (a residual flow's wet fraction 2.1 x radar's at
    K = 4 on the held-out synthetic benchmark, 0.9 x with this method; docs/study.md).
    """
    check_steps(steps)
    h = 1.0 / steps
    for k in range(steps):
        t = k * h
        x = x + h * velocity(x + 0.5 * h * velocity(x, t), t + 0.5 * h)
        _done(callback, k, steps)
    return x


# -- diffusion: reverse processes over a NoiseSchedule --------------------------------------------------
def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    import torch

    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _transitions(schedule: NoiseSchedule, steps: int) -> list[tuple[int, float, float]]:
    """``(n, ᾱ_n, ᾱ_p)`` of each of the ``steps`` moves of a strided sampler: from visited step ``n`` to the
    next visited ``p`` (``ᾱ_p = 1``, clean data, after the last)."""
    check_steps(steps)
    visited = schedule.timesteps(steps)
    following = [*visited[1:], -1]
    return [(n, schedule.alpha_bar(n), schedule.alpha_bar(p)) for n, p in zip(visited, following)]


def ddim(
    denoise: Denoiser,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    steps: int,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021) over ``steps`` of the training schedule (:meth:`NoiseSchedule.timesteps`).

    From step ``n`` to the next visited step ``p`` (``ᾱ_p = 1`` after the last one), with
    ``x̂_0 = denoise(x_n, n)`` and ``ε̂ = (x_n - α_n x̂_0) / σ_n``:

        s = η sqrt((1 - ᾱ_p) / (1 - ᾱ_n)) sqrt(1 - ᾱ_n / ᾱ_p)
        x_p = α_p x̂_0 + sqrt(1 - ᾱ_p - s²) ε̂ + s z,    z ~ N(0, I)

    ``η = 0`` is the deterministic probability-flow sampler; ``η = 1`` is ancestral sampling (equal to
    :func:`ddpm`). ``x`` is the initial noise at step ``N - 1``; returns ``x_0``.
    """
    if not 0.0 <= eta <= 1.0:
        raise InputError(f"DDIM eta must be in [0, 1], got {eta}")
    for k, (n, a_n, a_p) in enumerate(_transitions(schedule, steps)):
        x0 = denoise(x, n)
        eps = (x - math.sqrt(a_n) * x0) / math.sqrt(1 - a_n)
        s = eta * math.sqrt((1 - a_p) / (1 - a_n) * (1 - a_n / a_p))
        x = math.sqrt(a_p) * x0 + math.sqrt(max(1 - a_p - s * s, 0.0)) * eps
        if s > 0:
            x = x + s * _noise_like(x, generator)
        _done(callback, k, steps)
    return x


def ddpm(
    denoise: Denoiser,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Ancestral DDPM sampling (Ho et al. 2020) over ``steps`` of the training schedule.

    Each step draws from the Gaussian posterior ``q(x_p | x_n, x̂_0)`` of the (strided) forward process,
    with ``β' = 1 - ᾱ_n / ᾱ_p``:

        mean = sqrt(ᾱ_p) β' / (1 - ᾱ_n) · x̂_0 + sqrt(ᾱ_n / ᾱ_p) (1 - ᾱ_p) / (1 - ᾱ_n) · x_n
        var  = β' (1 - ᾱ_p) / (1 - ᾱ_n)

    With ``steps = N`` this is the original sampler; the last step returns ``x̂_0`` (var = 0).
    """
    for k, (n, a_n, a_p) in enumerate(_transitions(schedule, steps)):
        beta = 1 - a_n / a_p
        x0 = denoise(x, n)
        mean = math.sqrt(a_p) * beta / (1 - a_n) * x0 + math.sqrt(a_n / a_p) * (1 - a_p) / (1 - a_n) * x
        var = beta * (1 - a_p) / (1 - a_n)
        x = mean + math.sqrt(var) * _noise_like(x, generator) if var > 0 else mean
        _done(callback, k, steps)
    return x


def dpm_solver_2m(
    denoise: Denoiser,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): the probability-flow ODE, 2nd order, one evaluation per step.

    In ``λ = log(α / σ)``, from step ``n`` to the next visited step ``p`` with ``h = λ_p - λ_n``:

        x_p = (σ_p / σ_n) x_n - α_p (e^{-h} - 1) D,
        D = x̂_0 (first step),   D = (1 + 1/(2r)) x̂_0 - 1/(2r) x̂_0' (later),  r = h' / h,

    where ``x̂_0'`` and ``h'`` are the previous step's. The last step, into clean data (``σ = 0``), returns
    ``x̂_0`` (first order, as DDIM does). Deterministic: ``generator`` is unused.
    """
    x0_previous, h_previous = None, None
    for k, (n, a_n, a_p) in enumerate(_transitions(schedule, steps)):
        x0 = denoise(x, n)
        if a_p == 1.0:  # the last move, into clean data
            _done(callback, k, steps)
            return x0
        h = 0.5 * math.log(a_p / (1 - a_p)) - 0.5 * math.log(a_n / (1 - a_n))
        d = x0 if x0_previous is None else x0 + (x0 - x0_previous) * (h / (2 * h_previous))
        x = math.sqrt((1 - a_p) / (1 - a_n)) * x - math.sqrt(a_p) * math.expm1(-h) * d
        x0_previous, h_previous = x0, h
        _done(callback, k, steps)
    return x
