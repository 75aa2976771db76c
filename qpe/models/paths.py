"""Probability paths of conditional flow matching: where a sample is at time t, and how fast it moves.

A flow carries a source sample ``x_0`` (noise) at ``t = 0`` to a data sample ``x_1`` at ``t = 1``. On the
straight (conditional optimal-transport) path

    x_t = (1 - t) x_0 + t x_1,        dx_t/dt = u_t = x_1 - x_0,

and a network ``v(x_t, t | cond)`` trained by ``E ||v - u_t||²`` learns the marginal velocity whose ODE
``dx/dt = v`` transports the source distribution to the data distribution.

What "data" means is the flow's *target*:

- :class:`DirectTarget`: ``x_1 = y`` (the transformed rain itself);
- :class:`ResidualTarget`: ``x_1 = y - μ`` with ``μ`` the U-Net's estimate in the same space, and
  ``y = μ + x_1`` after sampling. The flow only adds what the U-Net cannot place (texture, intensity
  spread), so every ensemble member stays anchored to the U-Net's rain placement. This is the same as a
  flow on ``y`` whose source is ``μ + x_0`` (a Gaussian centred on the U-Net mean): both give identical
  paths up to the shift by ``μ``, which the network also receives as input.

A target is chosen by the flow's ``source`` setting (:data:`FLOW_TARGETS`); whether it is *anchored* on
the U-Net mean says everything the model needs (an extra input channel ``μ``, a base U-Net to compute it).
Objects here know nothing of networks or samplers.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class ResidualTarget:
    """``x_1 = y - μ``: the flow samples the residual on the U-Net mean ``μ`` (B, 1, H, W)."""

    anchored = True

    def encode(self, y: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        return y - mean

    def decode(self, x_1: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        return mean + x_1


#: Flow targets by the ``source`` a card's ``flow`` section names.
FLOW_TARGETS: dict[str, type[DirectTarget] | type[ResidualTarget]] = {
    "gaussian": DirectTarget,
    "residual": ResidualTarget,
}
