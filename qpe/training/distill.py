"""Distilled students: a flow that draws in one or two Euler steps what a teacher flow draws in K steps.

Reflow distillation (Liu et al. 2023, "Flow straight and fast"). The teacher's sampler maps a source
sample ``z`` (with the conditioning of a training crop) to its endpoint ``x_1 = Φ(z)`` in K steps (the
demo residual flow: midpoint, K = 8, 16 network evaluations). The student, a flow of the same kind, is
trained by flow matching on the straight path between these pairs,

    x_t = (1 - t) z + t x_1,   target velocity x_1 - z,

at the times of its own Euler grid ``t ∈ {0, 1/K_s, ..., (K_s - 1)/K_s}``. Euler steps from ``z`` then
follow the straight line and land on ``x_1`` as far as the velocity is learnt: the student draws the
teacher's sample for the same ``z`` (and so the teacher's ensemble spread) with K_s evaluations. Its
flow section (the residual scale included) is the teacher's, so both live in one state space.

The pairs are drawn once per run (:func:`teacher_pairs`), on ``pairs`` training crops spread over the
training samples, and cached beside the run state (``<out>.state/teacher_pairs.safetensors``): a resumed
run reads them back instead of drawing them again. Each optimiser step takes a batch of pairs
(:class:`TeacherPairs`, whose items carry the crop's IR, ``source`` and ``endpoint``) and the loss of
:class:`StudentObjective`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn
from tqdm.auto import tqdm

from qpe.data.samples import PairedSamples
from qpe.errors import CheckpointError, InputError
from qpe.files import atomic_write
from qpe.models.card import DistilledFrom, ModelCard
from qpe.models.checkpoint import LoadedModel, load
from qpe.models.families import ConditionalFlow
from qpe.models.sampling import SamplingSettings
from qpe.training.config import DistillConfig, TrainConfig

#: The cached pairs of a run, inside its state folder.
PAIRS_FILE = "teacher_pairs.safetensors"
#: Crops whose teacher endpoints are drawn in one batch.
PAIRS_BATCH = 32


def load_teacher(config: TrainConfig) -> LoadedModel:
    """The teacher flow named by ``config.distill``, checked to be a flow.

    Raises
    ------
    CheckpointError
        No checkpoint there, or one of another family (one line naming the teacher).
    """
    path = config.distill.teacher
    try:
        teacher = load(path)
    except CheckpointError as err:
        raise CheckpointError(f"{config.name}: distill teacher {path}: {err}") from None
    if not isinstance(teacher.model, ConditionalFlow):
        raise CheckpointError(f"{config.name}: distill teacher {path} is a {teacher.card.family} model, not a flow")
    return teacher


def teacher_settings(teacher: LoadedModel, distill: DistillConfig) -> SamplingSettings:
    """How the teacher draws its endpoints: the config's sampler and steps, else its card's (one member)."""
    return teacher.card.sampling_settings(sampler=distill.teacher_sampler, steps=distill.teacher_steps)


def student_card(card: ModelCard, teacher: LoadedModel, base_sha256: str | None, config: TrainConfig,
                 out: str | os.PathLike) -> ModelCard:
    """The student's card: ``card`` (as training builds it) with the teacher's flow section and the
    ``distilled_from`` record, after checking that the student reads and encodes what the teacher does.

    Raises
    ------
    CheckpointError
        The student differs from the teacher in its inputs, normalisation, rain transform, flow source or
        residual scale, base U-Net, or (when starting from the teacher's weights) architecture.
    """
    t = teacher.card
    own = dataclasses.replace(card.flow, residual_std=t.flow.residual_std)
    mismatch = [name for name, a, b in (
        ("input", card.input, t.input), ("normalization", card.normalization, t.normalization),
        ("rain_transform", card.rain_transform, t.rain_transform), ("flow", own, t.flow),
    ) if a != b]
    if config.distill.from_teacher and card.architecture != t.architecture:
        mismatch.append("architecture (needed by from_teacher)")
    teacher_base = t.base_checkpoint.sha256 if t.base_checkpoint is not None else None
    if teacher_base != base_sha256:
        mismatch.append("base_checkpoint")
    if mismatch:
        raise CheckpointError(f"{config.name}: the student differs from its teacher {config.distill.teacher} in "
                              f"{', '.join(mismatch)}")
    settings = teacher_settings(teacher, config.distill)
    relative = os.path.relpath(teacher.path.resolve(), Path(out).resolve())
    record = DistilledFrom(t.name, Path(relative).as_posix(), teacher.sha256, settings.sampler, settings.steps)
    return dataclasses.replace(card, flow=t.flow, distilled_from=record)


def pair_keys(n_samples: int, pairs: int) -> np.ndarray:
    """(pairs, 2) ``(epoch, sample)`` keys of the pairs' training crops.

    Spread evenly over the training samples when there are at least as many samples as pairs; else every
    sample once per epoch (another random crop in each).
    """
    j = np.arange(pairs)
    if pairs <= n_samples:
        return np.stack([np.zeros_like(j), (j * n_samples) // pairs], axis=1)
    return np.stack([j // n_samples, j % n_samples], axis=1)


@dataclass(frozen=True)
class PairsProvenance:
    """What a set of pairs was drawn from: checked when a cache is read back."""

    teacher_sha256: str
    sampler: str
    steps: int
    data_sha256: str
    crop: int
    seed: int
    pairs: int

    def metadata(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}


@torch.no_grad()
def teacher_endpoints(teacher: ConditionalFlow, ir: torch.Tensor, source: torch.Tensor,
                      settings: SamplingSettings) -> torch.Tensor:
    """The teacher's endpoints ``x_1`` (B, 1, H, W), in its state space, from source samples ``z``.

    Parameters
    ----------
    teacher : ConditionalFlow
        The teacher (its base U-Net attached for a residual flow).
    ir : torch.Tensor
        (B, T, C, H, W) normalised IR.
    source : torch.Tensor
        (B, 1, H, W) source samples ``z``.
    settings : SamplingSettings
        The teacher's sampler and steps (a flow sampler).
    """
    cond = teacher.conditioning(ir)
    velocity = teacher.velocity(cond, teacher.anchor(ir))
    return settings.solver.solve(velocity, source, settings.steps, generator=None, **dict(settings.options))


def teacher_pairs(
    teacher: LoadedModel,
    settings: SamplingSettings,
    samples: PairedSamples,
    provenance: PairsProvenance,
    cache: Path,
    device: torch.device,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """The run's pairs: read from ``cache`` when it holds this provenance's, else drawn and written there.

    Returns
    -------
    dict
        ``keys`` (N, 2) int64 crop keys of ``samples``, ``source`` and ``endpoint`` (N, 1, H, W) float32.

    Raises
    ------
    InputError
        ``cache`` holds pairs of another teacher, sampler, data or crop (delete it to draw new ones).
    """
    if cache.is_file():
        with safetensors.safe_open(str(cache), framework="pt") as f:
            found = f.metadata() or {}
        if found != provenance.metadata():
            differs = sorted(k for k, v in provenance.metadata().items() if found.get(k) != v)
            raise InputError(f"{cache} holds teacher pairs of other settings ({', '.join(differs)}): delete it to "
                             "draw new pairs")
        return safetensors.torch.load_file(str(cache))
    keys = pair_keys(len(samples), provenance.pairs)
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([provenance.seed, 11]).generate_state(1)[0]))
    crop = provenance.crop
    source = teacher.model.noise.sample((provenance.pairs, 1, crop, crop), generator=generator)
    endpoint = torch.empty_like(source)
    teacher.model.to(device)
    bar = tqdm(total=provenance.pairs, desc=f"teacher pairs ({settings.sampler} K={settings.steps})", unit="pair",
               disable=not progress, dynamic_ncols=True)
    for start in range(0, provenance.pairs, PAIRS_BATCH):
        chunk = slice(start, start + PAIRS_BATCH)
        ir = torch.stack([samples[(int(e), int(i))]["ir"] for e, i in keys[chunk]]).to(device)
        endpoint[chunk] = teacher_endpoints(teacher.model, ir, source[chunk].to(device), settings).cpu()
        bar.update(ir.shape[0])
    bar.close()
    tensors = {"keys": torch.from_numpy(keys).long(), "source": source, "endpoint": endpoint}
    atomic_write(cache, lambda tmp: safetensors.torch.save_file(tensors, str(tmp), metadata=provenance.metadata()))
    return tensors


class TeacherPairs(torch.utils.data.Dataset):
    """The training items of a student: item ``j`` (or ``(epoch, j)``) is pair ``j``'s crop and ends.

    Items: ``ir`` (T, C, H, W) normalised, ``source`` and ``endpoint`` (1, H, W) in the flow's state space,
    ``mask`` (H, W) all True (the student learns the teacher's endpoint everywhere) and ``index`` (the
    data's time index).
    """

    def __init__(self, samples: PairedSamples, pairs: Mapping[str, torch.Tensor]) -> None:
        self.samples = samples
        self.keys = pairs["keys"].numpy()
        self.source, self.endpoint = pairs["source"], pairs["endpoint"]

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        j = item[1] if isinstance(item, tuple) else item
        epoch, sample = (int(k) for k in self.keys[j])
        crop = self.samples[(epoch, sample)]
        return {"ir": crop["ir"], "source": self.source[j], "endpoint": self.endpoint[j],
                "mask": torch.ones(self.source.shape[-2:], dtype=torch.bool), "index": crop["index"]}


class StudentObjective(nn.Module):
    """The student's loss on a batch of pairs: flow matching on the straight path ``z -> x_1`` at the times
    of its Euler grid, ``t = k / K_s`` with ``k`` uniform on ``0 .. K_s - 1``.

    Parameters
    ----------
    student : ConditionalFlow
        The flow trained (its base U-Net attached for a residual flow).
    steps : int
        K_s, the student's Euler steps.
    """

    def __init__(self, student: ConditionalFlow, steps: int) -> None:
        super().__init__()
        self.student = student
        self.steps = steps

    def forward(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        z, x_1 = batch["source"], batch["endpoint"]
        k = torch.randint(0, self.steps, (z.shape[0],), generator=generator, device=z.device)
        mean = self.student.anchor(batch["ir"])
        return self.student.path_loss(batch["ir"], z, x_1, k.float() / self.steps, batch["mask"], mean)
