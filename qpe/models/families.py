"""The three model families: U-Net regression, conditional DDPM and conditional flow matching.

Each family wraps a :class:`~qpe.models.unet.UNet` backbone and defines two things:

- ``loss(batch) -> Tensor``: the training objective on a batch of the training-sample contract
  (``ir`` (B, T, C, H, W) float32, already normalised; ``rain`` (B, H, W) mm/h with NaN replaced by 0;
  ``mask`` (B, H, W) bool, True where radar is valid), averaged over valid pixels only;
- ``sample(ir, settings, generator) -> rain``: (B, M, H, W) rain rate in mm/h >= 0, drawn as a
  :class:`~qpe.models.sampling.SamplingSettings` (members, sampler, steps, options) says.

A model answers its own questions (``is_ensemble``, ``needs_base``, ``extra_channels``,
``network_evaluations(settings)``); callers never compare family names. Families know nothing of
optimisers, data loaders or checkpoints. The network input is the IR stack
flattened to ``T * C`` channels, followed (for the generative families) by the current state ``x`` and,
for the residual flow, the U-Net mean ``μ``. All model-space quantities are in the space of the
:class:`~qpe.models.transforms.RainTransform` (``y = log1p(R) / scale``).

Randomness (training noise, diffusion steps, sampling noise) comes only from an explicit
``torch.Generator`` (or torch's default generator when None is given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from qpe.errors import CheckpointError, InputError
from qpe.models import samplers
from qpe.models.paths import FLOW_TARGETS, GaussianSource, ResidualScale, StraightPath, sample_times
from qpe.models.sampling import Sampler, SamplingSettings, is_ensemble
from qpe.models.schedules import NoiseSchedule
from qpe.models.transforms import RainTransform
from qpe.models.unet import UNet

if TYPE_CHECKING:
    from qpe.models.card import ModelCard

def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid pixels only.

    Parameters
    ----------
    prediction, target : torch.Tensor
        (B, 1, H, W).
    mask : torch.Tensor
        (B, H, W) bool, True where the target is valid. A batch without valid pixels gives 0.
    """
    weight = mask[:, None].to(prediction.dtype)
    return ((prediction.float() - target.float()) ** 2 * weight).sum() / weight.sum().clamp(min=1.0)


class RainModel(nn.Module):
    """Common part of the families: conditioning layout, rain transform, checkpoint state.

    Parameters
    ----------
    backbone : UNet
        Network whose ``in_channels`` is ``frames * channels + extra_channels``.
    transform : RainTransform
        Rain rate <-> model space.
    frames, channels : int
        T successive IR frames of C channels each.
    """

    family: str = ""
    #: Channels the family adds to the IR stack at the network input.
    extra_channels: int = 0
    #: Whether the backbone takes a time / noise level.
    uses_time: bool = False

    def __init__(self, backbone: UNet, transform: RainTransform, frames: int, channels: int) -> None:
        super().__init__()
        want = frames * channels + self.extra_channels
        if (
            backbone.in_channels != want
            or backbone.time_embedding != self.uses_time
            or backbone.out_channels != 1
        ):
            raise CheckpointError(
                f"{self.family} backbone must take {want} input channels (T={frames} x C={channels}"
                f"{f' + {self.extra_channels}' if self.extra_channels else ''}), give 1 output and "
                f"{'have' if self.uses_time else 'not have'} a time embedding"
            )
        self.backbone = backbone
        self.transform = transform
        self.frames, self.channels = frames, channels

    # -- what the model is ----------------------------------------------------------------------
    @property
    def is_ensemble(self) -> bool:
        """Whether it draws ensemble members (its family has samplers)."""
        return is_ensemble(self.family)

    @property
    def needs_base(self) -> bool:
        """Whether it needs a base U-Net to run (the residual flow)."""
        return False

    def network_evaluations(self, settings: SamplingSettings) -> int:
        """Network evaluations per sample drawn as ``settings`` says (a base U-Net adds its one)."""
        return settings.network_evaluations + int(self.needs_base)

    # -- construction from a card --------------------------------------------------------------
    @classmethod
    def extra_channels_of(cls, card: ModelCard) -> int:
        """Channels the model of ``card`` adds to the IR stack at the network input."""
        return cls.extra_channels

    @classmethod
    def backbone_for(cls, card: ModelCard) -> UNet:
        """A fresh backbone of the card's architecture with this family's input channels."""
        c_in = card.input.frames * len(card.input.channels) + cls.extra_channels_of(card)
        return UNet(card.architecture, c_in, 1, time_embedding=cls.uses_time)

    # -- shared helpers ------------------------------------------------------------------------
    def conditioning(self, ir: torch.Tensor) -> torch.Tensor:
        """Normalised IR (B, T, C, H, W) -> network conditioning (B, T*C, H, W)."""
        if ir.ndim != 5 or ir.shape[1] != self.frames or ir.shape[2] != self.channels:
            raise InputError(
                f"model expects IR of shape (batch, T={self.frames}, C={self.channels}, H, W), "
                f"got {tuple(ir.shape)}"
            )
        return ir.flatten(1, 2).float()

    def target(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Transformed rain ``y`` (B, 1, H, W), 0 where radar is missing, and the mask (B, H, W)."""
        mask = batch["mask"].bool()
        y = self.transform.forward(batch["rain"].float())
        return torch.where(mask, y, torch.zeros_like(y))[:, None], mask

    def forward(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Same as :meth:`loss` (so that ``DistributedDataParallel(model)(batch)`` trains it)."""
        return self.loss(batch, generator)

    def loss(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Scalar training loss of a batch, averaged over pixels with radar.

        Parameters
        ----------
        batch : mapping
            ``ir`` (B, T, C, H, W) float32 normalised; ``rain`` (B, H, W) mm/h (NaN replaced by 0);
            ``mask`` (B, H, W) bool, True where radar is valid. Other keys are ignored.
        generator : torch.Generator, optional
            Source of the training noise and times (torch's default generator if None).
        """
        raise NotImplementedError

    def sample(
        self,
        ir: torch.Tensor,
        settings: SamplingSettings,
        generator: torch.Generator | None = None,
        callback: samplers.StepCallback | None = None,
    ) -> torch.Tensor:
        """Rain rate (B, M, H, W), mm/h >= 0, from normalised IR (B, T, C, H, W).

        ``settings`` (from :meth:`qpe.models.ModelCard.sampling_settings`): M = ``settings.members``
        independent samples per field (1 for the U-Net), drawn by its sampler in its steps with its
        options; noise from ``generator``. ``callback(k, K)`` is handed to the sampler (progress, and
        cancellation by raising; :mod:`~qpe.models.samplers`); a deterministic model has no steps to report.
        """
        raise NotImplementedError

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores (all of them; the residual flow leaves out its base U-Net)."""
        return dict(self.state_dict())

    def _sampler(self, settings: SamplingSettings) -> Sampler:
        """The settings' row of the sampler table; an error if it samples another family."""
        if settings.sampler is None or settings.solver.family != self.family:
            raise InputError(f"a {self.family} model cannot sample with {settings.sampler!r}: resolve the "
                             "settings with its card (ModelCard.sampling_settings)")
        return settings.solver


def _repeat_members(x: torch.Tensor, members: int) -> torch.Tensor:
    """(B, ...) -> (B * M, ...), each item repeated M times in a row."""
    if members < 1:
        raise InputError(f"members must be at least 1, got {members}")
    return x.repeat_interleave(members, dim=0)


def _noise(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=torch.float32)


# -- U-Net regression -----------------------------------------------------------------------------------
class UNetRegression(RainModel):
    """Deterministic regression of the transformed rain: ``ŷ = f(IR stack)``.

    Loss: masked MSE ``mean_valid (ŷ - y)²`` with ``y = log1p(R) / scale``, so ``ŷ`` estimates the
    conditional mean of ``y`` (a smooth, "median-like" rain field in mm/h after the inverse).
    """

    family = "unet"

    @classmethod
    def from_card(cls, card: ModelCard, base: UNetRegression | None = None) -> UNetRegression:
        return cls(cls.backbone_for(card), card.rain_transform, card.input.frames, len(card.input.channels))

    def mean(self, ir: torch.Tensor) -> torch.Tensor:
        """Normalised IR (B, T, C, H, W) -> ``ŷ`` (B, 1, H, W) in model space."""
        return self.backbone(self.conditioning(ir)).float()

    def loss(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        y, mask = self.target(batch)
        return masked_mse(self.mean(batch["ir"]), y, mask)

    def sample(
        self, ir: torch.Tensor, settings: SamplingSettings = SamplingSettings(),
        generator: torch.Generator | None = None, callback: samplers.StepCallback | None = None,
    ) -> torch.Tensor:
        """Rain (B, 1, H, W) in mm/h; ``settings`` and ``generator`` are ignored (one deterministic field)."""
        return self.transform.inverse(self.mean(ir))


# -- conditional DDPM -------------------------------------------------------------------------------------
class ConditionalDDPM(RainModel):
    """Conditional denoising diffusion on ``y`` with an ε- or v-predicting network.

    Training: ``n ~ U{0..N-1}``, ``ε ~ N(0, I)``, ``x_n = α_n y + σ_n ε``; the network sees
    ``[IR stack, x_n]`` and ``t = (n + 1) / N`` and is trained on the masked MSE to

    - ``ε`` (``prediction = "eps"``), giving ``x̂_0 = (x_n - σ_n ε̂) / α_n``, or
    - ``v = α_n ε - σ_n y`` (``prediction = "v"``), giving ``x̂_0 = α_n x_n - σ_n v̂``.

    Sampling walks K steps of the schedule with a diffusion sampler of the table (DDIM, η configurable,
    or ancestral DDPM); ``x̂_0`` is clipped to the range of the data, ``[0, y_max]``, before each step.
    """

    family = "ddpm"
    extra_channels = 1
    uses_time = True

    def __init__(
        self,
        backbone: UNet,
        transform: RainTransform,
        frames: int,
        channels: int,
        schedule: NoiseSchedule,
        prediction: str = "v",
    ) -> None:
        super().__init__(backbone, transform, frames, channels)
        if prediction not in ("eps", "v"):
            raise CheckpointError(f"diffusion prediction must be 'eps' or 'v', got {prediction!r}")
        self.schedule = schedule
        self.prediction = prediction

    @classmethod
    def from_card(cls, card: ModelCard, base: UNetRegression | None = None) -> ConditionalDDPM:
        d = card.diffusion
        schedule = NoiseSchedule.from_name(d.schedule, d.timesteps)
        return cls(
            cls.backbone_for(card),
            card.rain_transform,
            card.input.frames,
            len(card.input.channels),
            schedule,
            d.prediction,
        )

    def _network(self, cond: torch.Tensor, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        t = (n.float() + 1) / self.schedule.timesteps_total
        return self.backbone(torch.cat([cond, x], dim=1), t).float()

    def loss(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        y, mask = self.target(batch)
        cond = self.conditioning(batch["ir"])
        n = torch.randint(
            0, self.schedule.timesteps_total, (y.shape[0],), generator=generator, device=y.device
        )
        eps = _noise(tuple(y.shape), y, generator)
        alpha, sigma = (a.float()[:, None, None, None] for a in self.schedule.alpha_sigma(n))
        out = self._network(cond, alpha * y + sigma * eps, n)
        target = eps if self.prediction == "eps" else alpha * eps - sigma * y
        return masked_mse(out, target, mask)

    def denoiser(self, cond: torch.Tensor) -> samplers.Denoiser:
        """``denoise(x_n, n) -> x̂_0`` for conditioning (B, T*C, H, W), clipped to ``[0, y_max]``."""

        def denoise(x: torch.Tensor, n: int) -> torch.Tensor:
            steps = torch.full((x.shape[0],), n, device=x.device, dtype=torch.long)
            out = self._network(cond, x, steps)
            a = self.schedule.alpha_bar(n)
            alpha, sigma = a**0.5, (1 - a) ** 0.5
            x0 = (x - sigma * out) / alpha if self.prediction == "eps" else alpha * x - sigma * out
            return x0.clamp(0.0, self.transform.y_max)

        return denoise

    def sample(
        self, ir: torch.Tensor, settings: SamplingSettings, generator: torch.Generator | None = None,
        callback: samplers.StepCallback | None = None,
    ) -> torch.Tensor:
        """Rain (B, M, H, W) in mm/h from M reverse diffusions of K steps each, as ``settings`` says."""
        solve = self._sampler(settings).solve
        members = settings.members
        cond = _repeat_members(self.conditioning(ir), members)
        b, _, h, w = cond.shape
        x = _noise((b, 1, h, w), cond, generator)
        y = solve(self.denoiser(cond), self.schedule, x, settings.steps, generator=generator, callback=callback,
                  **dict(settings.options))
        return self.transform.inverse(y).reshape(ir.shape[0], members, h, w)


# -- conditional flow matching ----------------------------------------------------------------------------
class ConditionalFlow(RainModel):
    """Conditional flow matching on the straight path, from Gaussian noise or as a residual on a U-Net.

    Training: ``x_0 ~ N(0, s² I)``, ``x_1 = y`` (source ``"gaussian"``) or ``x_1 = (y - μ) / σ(μ)`` with
    the frozen U-Net mean ``μ = base.mean(IR)`` and the residual scale ``σ`` (source ``"residual"``);
    ``t`` uniform or logit-normal on (0, 1), ``x_t = (1 - t) x_0 + t x_1``; the network sees
    ``[IR stack, x_t (, μ)]`` and ``t`` and is trained on the masked MSE to the velocity ``x_1 - x_0``.
    Where radar is missing the target is set to "dry" (gaussian) or "as the U-Net says" (residual), so
    those pixels feed no rain into the state. A residual flow may be trained on *cross-fitted* residuals:
    with fold U-Nets attached (:meth:`attach_fold_bases`), a sample of fold ``i`` (``batch["fold"]``) takes
    ``μ`` from the U-Net trained without fold ``i``, so its residual is out-of-sample, as at test time.

    Sampling integrates ``dx/dt = v(x, t)`` from ``t = 0`` to 1 with a flow solver of the sampler table
    in K steps and decodes ``y = x_1`` (gaussian) or ``y = μ + σ(μ) x_1`` (residual).

    Parameters
    ----------
    base : UNetRegression, optional
        The residual flow's U-Net (frozen, not part of this model's checkpoint state); may be attached
        later with :meth:`attach_base`.
    scale : ResidualScale
        The residual flow's ``σ(μ)`` (``σ = 1`` by default).
    time_sampling : str
        ``"uniform"`` or ``"logit_normal"`` training times (:func:`qpe.models.paths.sample_times`).
    """

    family = "flow"
    uses_time = True

    def __init__(
        self,
        backbone: UNet,
        transform: RainTransform,
        frames: int,
        channels: int,
        source: str = "gaussian",
        source_std: float = 1.0,
        base: UNetRegression | None = None,
        scale: ResidualScale = ResidualScale(),
        time_sampling: str = "uniform",
    ) -> None:
        if source not in FLOW_TARGETS:
            raise CheckpointError(f"flow source must be one of {', '.join(map(repr, FLOW_TARGETS))}, "
                                  f"got {source!r}")
        target = FLOW_TARGETS[source]
        self.flow_target = target(scale) if target.anchored else target()
        self.extra_channels = self._extra_channels(target.anchored)
        super().__init__(backbone, transform, frames, channels)
        self.source = source
        self.path = StraightPath()
        self.noise = GaussianSource(source_std)
        self.time_sampling = time_sampling
        self.base: UNetRegression | None = None
        self.fold_bases: tuple[UNetRegression, ...] = ()  # training only; a tuple is not a submodule
        if base is not None:
            self.attach_base(base)

    @staticmethod
    def _extra_channels(anchored: bool) -> int:
        """The state ``x``, plus the U-Net mean ``μ`` for an anchored (residual) flow."""
        return 1 + int(anchored)

    @classmethod
    def extra_channels_of(cls, card: ModelCard) -> int:
        return cls._extra_channels(card.needs_base)

    @property
    def needs_base(self) -> bool:
        return self.flow_target.anchored

    @classmethod
    def from_card(cls, card: ModelCard, base: UNetRegression | None = None) -> ConditionalFlow:
        f = card.flow
        return cls(
            cls.backbone_for(card),
            card.rain_transform,
            card.input.frames,
            len(card.input.channels),
            f.source,
            f.source_std,
            base if card.needs_base else None,
            f.scale,
            f.time_sampling,
        )

    def _frozen_base(self, base: UNetRegression) -> UNetRegression:
        if not self.needs_base:
            raise CheckpointError("only a residual flow has a base U-Net")
        if not isinstance(base, UNetRegression):
            raise CheckpointError(
                f"the base of a residual flow must be a U-Net regression, got {type(base).__name__}"
            )
        if (base.frames, base.channels) != (self.frames, self.channels) or base.transform != self.transform:
            raise CheckpointError(
                f"base U-Net takes T={base.frames} x C={base.channels} with {base.transform}, but the flow "
                f"takes T={self.frames} x C={self.channels} with {self.transform}"
            )
        return base.requires_grad_(False).eval()

    def attach_base(self, base: UNetRegression) -> None:
        """Give the residual flow its U-Net; the U-Net is frozen (no gradients, eval mode)."""
        self.base = self._frozen_base(base)

    def attach_fold_bases(self, bases: Sequence[UNetRegression]) -> None:
        """For training on cross-fitted residuals: U-Net ``i`` was trained without the samples of fold ``i``
        (``batch["fold"] == i``) and gives their ``μ``. Frozen; not part of the checkpoint; not moved by
        ``.to()`` (put them on the device first)."""
        self.fold_bases = tuple(self._frozen_base(b) for b in bases)

    def train(self, mode: bool = True) -> ConditionalFlow:
        super().train(mode)
        if self.base is not None:
            self.base.eval()
        return self

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("base.")}

    def anchor(self, ir: torch.Tensor, fold: torch.Tensor | None = None) -> torch.Tensor | None:
        """The U-Net mean ``μ`` (B, 1, H, W) for the residual flow (no gradient); None otherwise.

        With fold U-Nets attached and ``fold`` (B,) given, each sample's ``μ`` comes from its fold's U-Net.
        """
        if not self.needs_base:
            return None
        with torch.no_grad():
            if fold is not None and self.fold_bases:
                mean = torch.empty((ir.shape[0], 1, *ir.shape[-2:]), device=ir.device)
                for i, base in enumerate(self.fold_bases):
                    chosen = fold == i
                    if chosen.any():
                        mean[chosen] = base.mean(ir[chosen])
                return mean
            if self.base is None:
                raise CheckpointError("this residual flow has no base U-Net attached (see attach_base)")
            return self.base.mean(ir)

    def _network(
        self, cond: torch.Tensor, x: torch.Tensor, mean: torch.Tensor | None, t: torch.Tensor
    ) -> torch.Tensor:
        parts = [cond, x] if mean is None else [cond, x, mean]
        return self.backbone(torch.cat(parts, dim=1), t).float()

    def loss(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        y, mask = self.target(batch)
        mean = self.anchor(batch["ir"], batch.get("fold"))
        if mean is not None:  # missing radar: "as the U-Net says" (residual 0) rather than "dry"
            y = torch.where(mask[:, None], y, mean)
        x_1 = self.flow_target.encode(y, mean)
        x_0 = self.noise.sample(tuple(y.shape), generator=generator, device=y.device)
        t = sample_times(self.time_sampling, y.shape[0], generator=generator, device=y.device)
        return self.path_loss(batch["ir"], x_0, x_1, t, mask, mean)

    def path_loss(
        self, ir: torch.Tensor, x_0: torch.Tensor, x_1: torch.Tensor, t: torch.Tensor, mask: torch.Tensor,
        mean: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masked MSE of the network's velocity at ``x_t = (1 - t) x_0 + t x_1`` against ``x_1 - x_0``.

        The flow-matching objective on the straight path between given ends: :meth:`loss` draws ``x_0``
        from the source and takes ``x_1`` from the radar; a distilled student
        (:mod:`qpe.training.distill`) takes a teacher's source sample and its endpoint.

        Parameters
        ----------
        ir : torch.Tensor
            (B, T, C, H, W) normalised IR.
        x_0, x_1 : torch.Tensor
            (B, 1, H, W) ends of the path, in the flow's state space (``x_1`` encoded by its target).
        t : torch.Tensor
            (B,) times in [0, 1].
        mask : torch.Tensor
            (B, H, W) bool, the pixels scored.
        mean : torch.Tensor, optional
            (B, 1, H, W) the U-Net mean ``μ`` of a residual flow (:meth:`anchor`); None otherwise.
        """
        point = self.path.sample(x_0, x_1, t)
        return masked_mse(self._network(self.conditioning(ir), point.x_t, mean, t), point.dx_t, mask)

    def velocity(self, cond: torch.Tensor, mean: torch.Tensor | None) -> samplers.Velocity:
        """``velocity(x, t)`` for conditioning (B, T*C, H, W) and U-Net mean (B, 1, H, W) or None."""

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            return self._network(cond, x, mean, torch.full((x.shape[0],), t, device=x.device))

        return velocity

    def sample(
        self, ir: torch.Tensor, settings: SamplingSettings, generator: torch.Generator | None = None,
        callback: samplers.StepCallback | None = None,
    ) -> torch.Tensor:
        """Rain (B, M, H, W) in mm/h from M flow integrations of K steps each, as ``settings`` says."""
        solve = self._sampler(settings).solve
        members = settings.members
        cond = _repeat_members(self.conditioning(ir), members)
        mean = self.anchor(ir)
        mean = _repeat_members(mean, members) if mean is not None else None
        b, _, h, w = cond.shape
        x_0 = self.noise.sample((b, 1, h, w), generator=generator, device=cond.device)
        x_1 = solve(self.velocity(cond, mean), x_0, settings.steps, generator=generator, callback=callback,
                    **dict(settings.options))
        return self.transform.inverse(self.flow_target.decode(x_1, mean)).reshape(ir.shape[0], members, h, w)


#: The class of each family.
FAMILY_CLASSES: dict[str, type[RainModel]] = {cls.family: cls for cls in (UNetRegression, ConditionalDDPM,
                                                                            ConditionalFlow)}


def build_model(card: ModelCard, base: UNetRegression | None = None) -> RainModel:
    """A freshly initialised model of the family, architecture and inputs a card describes.

    Parameters
    ----------
    card : ModelCard
        Family, ``input`` (T, channels), ``architecture``, ``rain_transform`` and the family's section.
    base : UNetRegression, optional
        The residual flow's U-Net (ignored by the other families).
    """
    return FAMILY_CLASSES[card.family].from_card(card, base)
