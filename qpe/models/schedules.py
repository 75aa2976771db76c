"""Noise schedules of discrete-time diffusion (DDPM): the ``ᾱ_n`` that say how noisy step ``n`` is.

The forward (noising) process at step ``n = 0 .. N-1`` (``n`` is the paper's ``t - 1``) is

    x_n = α_n x_0 + σ_n ε,    α_n = sqrt(ᾱ_n),  σ_n = sqrt(1 - ᾱ_n),  ε ~ N(0, I),
    ᾱ_n = ∏_{i <= n} (1 - β_i).

``n = 0`` is nearly clean, ``n = N - 1`` nearly pure noise. A schedule knows nothing of networks or
samplers; samplers read ``alpha_bar(n)`` and walk a subsequence of steps (:meth:`NoiseSchedule.timesteps`).
"""

from __future__ import annotations

import math

import torch

from qpe.errors import CheckpointError, InputError

#: Schedules a model card may name.
SCHEDULES = ("cosine", "linear")


class NoiseSchedule:
    """A discrete schedule ``ᾱ_0 > ᾱ_1 > ... > ᾱ_{N-1}``, held in float64.

    Parameters
    ----------
    alphas_cumprod : torch.Tensor
        (N,) ``ᾱ_n``, strictly decreasing, in (0, 1].
    """

    def __init__(self, alphas_cumprod: torch.Tensor) -> None:
        a = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        if (
            a.ndim != 1
            or a.numel() < 1
            or not bool(((a > 0) & (a <= 1)).all())
            or bool((a.diff() >= 0).any())
        ):
            raise CheckpointError("a noise schedule needs strictly decreasing alpha_bar values in (0, 1]")
        self.alphas_cumprod = a

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def linear(cls, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """Ho et al. (2020): ``β_n`` linear from ``beta_start`` to ``beta_end`` (given for N = 1000,
        rescaled by ``1000 / N`` so that other N keep the same total noise)."""
        k = 1000.0 / timesteps
        betas = torch.linspace(beta_start * k, min(beta_end * k, 0.999), timesteps, dtype=torch.float64)
        return cls(torch.cumprod(1.0 - betas, dim=0))

    @classmethod
    def cosine(cls, timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Nichol & Dhariwal (2021): ``ᾱ(n) = f(n + 1) / f(0)``,
        ``f(t) = cos²((t / N + s) / (1 + s) · π / 2)``,
        with ``β_n = 1 - ᾱ_n / ᾱ_{n-1}`` clipped to ``max_beta`` (``ᾱ_{N-1}`` is then ~1e-7: almost pure
        noise, which v-prediction handles and epsilon-prediction needs x_0 clipping for)."""
        t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
        return cls(torch.cumprod(1.0 - betas, dim=0))

    @classmethod
    def from_name(cls, name: str, timesteps: int) -> NoiseSchedule:
        """``"cosine"`` or ``"linear"`` with ``timesteps`` steps."""
        if name not in SCHEDULES:
            raise CheckpointError(f"unknown noise schedule {name!r}; known: {', '.join(SCHEDULES)}")
        if timesteps < 2:
            raise CheckpointError(f"a noise schedule needs at least 2 timesteps, got {timesteps}")
        return cls.cosine(timesteps) if name == "cosine" else cls.linear(timesteps)

    # -- values ----------------------------------------------------------------------------------
    @property
    def timesteps_total(self) -> int:
        """N, the number of training steps."""
        return int(self.alphas_cumprod.numel())

    def alpha_bar(self, n: int) -> float:
        """``ᾱ_n``; ``n = -1`` stands for the clean data (``ᾱ = 1``)."""
        return 1.0 if n < 0 else float(self.alphas_cumprod[n])

    def alpha_sigma(self, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(α_n, σ_n)`` for a (B,) tensor of integer steps, float64 on the steps' device."""
        a = self.alphas_cumprod.to(n.device)[n]
        return a.sqrt(), (1 - a).sqrt()

    def timesteps(self, steps: int) -> list[int]:
        """The ``steps`` training steps a K-step sampler visits, from noisiest to cleanest.

        "Trailing" spacing (Lin et al. 2024): ``n_i = round(N (K - i) / K) - 1``, ``i = 0 .. K-1``; the
        first step is always ``N - 1`` (pure noise, as sampling starts) and the last one leads to clean
        data. ``steps = N`` visits every step.
        """
        total = self.timesteps_total
        if not 1 <= steps <= total:
            raise InputError(f"diffusion sampler steps must be between 1 and {total}, got {steps}")
        return [int(round(total * (steps - i) / steps)) - 1 for i in range(steps)]
