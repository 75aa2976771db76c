"""Probability paths of conditional flow matching: where a sample is at time t, and how fast it moves.

A flow carries a source sample ``x_0`` (noise) at ``t = 0`` to a data sample ``x_1`` at ``t = 1``. On the
straight (conditional optimal-transport) path

    x_t = (1 - t) x_0 + t x_1,        dx_t/dt = u_t = x_1 - x_0,

and a network ``v(x_t, t | cond)`` trained by ``E ||v - u_t||²`` learns the marginal velocity whose ODE
``dx/dt = v`` transports the source distribution to the data distribution.

What "data" means is the flow's *target*:

- :class:`DirectTarget`: ``x_1 = y`` (the transformed rain itself);
- :class:`ResidualTarget`: ``x_1 = (y - μ) / σ(μ)`` with ``μ`` the U-Net's estimate in the same space,
  and ``y = μ + σ(μ) x_1`` after sampling. The flow only adds what the U-Net cannot place (texture,
  intensity spread), so every ensemble member stays anchored to the U-Net's rain placement. With
  ``σ = 1`` this is the same as a flow on ``y`` whose source is ``μ + x_0`` (a Gaussian centred on the
  U-Net mean). A :class:`ResidualScale` ``σ(μ)`` fitted to the residuals (as CorrDiff normalises its
  residual) makes the flow's data about unit-variance everywhere: the residual of dry pixels is a few
  hundredths, of wet ones several tenths, while the source noise has one scale.

A target is chosen by the flow's ``source`` setting (:data:`FLOW_TARGETS`); whether it is *anchored* on
the U-Net mean says everything the model needs (an extra input channel ``μ``, a base U-Net to compute it).
Objects here know nothing of networks or samplers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PathSample:
    """A point on a path: ``x_t`` and its velocity ``dx_t``, both (B, ...), at times ``t`` (B,)."""

    x_t: torch.Tensor
    dx_t: torch.Tensor
    t: torch.Tensor


class StraightPath:
    """The conditional OT path ``x_t = (1 - t) x_0 + t x_1`` with velocity ``x_1 - x_0``."""

    def sample(self, x_0: torch.Tensor, x_1: torch.Tensor, t: torch.Tensor) -> PathSample:
        """Point and velocity at ``t``.

        Parameters
        ----------
        x_0, x_1 : torch.Tensor
            (B, ...) source and target samples.
        t : torch.Tensor
            (B,) times in [0, 1].
        """
        tt = t.reshape(-1, *([1] * (x_0.ndim - 1))).to(x_0.dtype)
        return PathSample(x_t=(1 - tt) * x_0 + tt * x_1, dx_t=x_1 - x_0, t=t)


@dataclass(frozen=True)
class GaussianSource:
    """The source distribution ``x_0 ~ N(0, std² I)``."""

    std: float = 1.0

    def sample(
        self,
        shape: tuple[int, ...],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw ``x_0`` of ``shape`` (on ``generator``'s device when a generator is given)."""
        if generator is not None:
            device = generator.device
        return self.std * torch.randn(shape, generator=generator, device=device, dtype=dtype)


class DirectTarget:
    """``x_1 = y``: the flow samples the transformed rain directly (``mean`` is ignored)."""

    #: Whether the target needs the U-Net mean ``μ``.
    anchored = False

    def encode(self, y: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        """Transformed rain ``y`` (B, 1, H, W) -> flow data ``x_1``."""
        return y

    def decode(self, x_1: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        """Flow data ``x_1`` -> transformed rain ``y``."""
        return x_1


@dataclass(frozen=True)
class ResidualScale:
    """``σ(μ)``: the residual's scale as a function of the U-Net mean ``μ`` (model space), linear between
    knots and constant beyond them; no knots is ``σ = 1``.

    Parameters
    ----------
    knots : tuple of (float, float)
        ``(μ, σ)`` pairs, ``μ`` increasing, ``σ > 0``.
    """

    knots: tuple[tuple[float, float], ...] = ()

    def __call__(self, mean: torch.Tensor) -> torch.Tensor:
        """``σ(μ)``, the shape of ``mean``."""
        if not self.knots:
            return torch.ones_like(mean)
        mu, sigma = (torch.tensor(v, dtype=mean.dtype, device=mean.device) for v in zip(*self.knots))
        if mu.numel() == 1:
            return sigma.expand_as(mean).clone()
        i = torch.bucketize(mean.clamp(mu[0], mu[-1]), mu).clamp(1, mu.numel() - 1)
        w = (mean.clamp(mu[0], mu[-1]) - mu[i - 1]) / (mu[i] - mu[i - 1])
        return sigma[i - 1] + w * (sigma[i] - sigma[i - 1])


def fit_residual_scale(
    residual: np.ndarray, mean: np.ndarray, bins: int, floor: float = 0.02
) -> ResidualScale:
    """The scale of residuals ``y - μ`` as a function of ``μ``: their RMS in ``bins`` quantile bins of ``μ``.

    Parameters
    ----------
    residual, mean : numpy.ndarray
        Residuals and U-Net means of the same pixels (model space; radar-covered pixels only).
    bins : int
        Number of quantile bins of ``μ`` (1: one global scale, CorrDiff's normalisation).
    floor : float
        Smallest scale (model space): a bin of exactly dry pixels would otherwise divide by ~0.
    """
    residual, mean = np.asarray(residual, dtype="float64").ravel(), np.asarray(mean, dtype="float64").ravel()
    if residual.size == 0:
        raise ValueError("no residual to fit a scale to")
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, max(edges.size - 2, 0))
    knots = []
    for b in np.unique(which):
        inside = which == b
        knots.append((float(np.median(mean[inside])), max(float(np.sqrt(np.mean(residual[inside] ** 2))), floor)))
    merged = dict(knots)  # equal medians (heavily dry bins) keep the last
    return ResidualScale(tuple(sorted(merged.items())))


class ResidualTarget:
    """``x_1 = (y - μ) / σ(μ)``: the flow samples the (scaled) residual on the U-Net mean ``μ`` (B, 1, H, W)."""

    anchored = True

    def __init__(self, scale: ResidualScale = ResidualScale()) -> None:
        self.scale = scale

    def encode(self, y: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        return (y - mean) / self.scale(mean)

    def decode(self, x_1: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        return mean + self.scale(mean) * x_1


def sample_times(
    kind: str, n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``n`` training times in (0, 1): ``"uniform"``, or ``"logit_normal"`` (``t = sigmoid(z)``,
    ``z ~ N(0, 1)``, Esser et al. 2024), which trains the middle of the path more than its ends."""
    if kind == "logit_normal":
        return torch.sigmoid(torch.randn((n,), generator=generator, device=device))
    return torch.rand((n,), generator=generator, device=device)


#: How a flow's training times may be drawn (:func:`sample_times`).
TIME_SAMPLINGS = ("uniform", "logit_normal")
#: Flow targets by the ``source`` a card's ``flow`` section names.
FLOW_TARGETS: dict[str, type[DirectTarget] | type[ResidualTarget]] = {
    "gaussian": DirectTarget,
    "residual": ResidualTarget,
}
