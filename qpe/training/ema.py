"""Exponential moving average of a model's weights (what a generative model is sampled with)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """``θ_ema ← d θ_ema + (1 - d) θ`` after every optimiser step, with ``d = min(decay, (1 + n) / (10 + n))``.

    The warm-up of ``d`` (``n`` = updates so far) keeps the average from being dominated by the random
    initialisation in short runs. Only floating-point parameters and buffers that the model trains
    are averaged; a residual flow's frozen U-Net is left out.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (not a DDP wrapper).
    decay : float
        Target decay ``d``, in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in self._tracked(model).items()}

    @staticmethod
    def _tracked(model: nn.Module) -> dict[str, torch.Tensor]:
        state = model.checkpoint_state() if hasattr(model, "checkpoint_state") else model.state_dict()
        return {k: v for k, v in state.items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        tracked = self._tracked(model)
        # One multi-tensor kernel instead of one per tensor (the same values as lerp_ tensor by tensor).
        torch._foreach_lerp_([self.shadow[name] for name in tracked], [v.detach() for v in tracked.values()],
                             1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, "__updates__": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        self.updates = int(state.pop("__updates__"))
        missing = set(self.shadow) ^ set(state)
        if missing:
            raise KeyError(f"EMA state does not match the model ({sorted(missing)[0]})")
        for name, value in state.items():
            self.shadow[name].copy_(value)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights into ``model`` (e.g. a copy used for validation or saving)."""
        model.load_state_dict(self.shadow, strict=False)
