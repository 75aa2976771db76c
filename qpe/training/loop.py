"""The training loop, top to bottom: data, model, optimiser, then steps with validation and checkpoints.

``train(config)`` trains one model of any family on a paired dataset and writes a checkpoint folder
(``card.yaml`` + ``weights.safetensors``, usable by :func:`qpe.models.load` at every checkpoint) and,
beside it, the resumable run state (``<out>.state/state.pt`` and ``history.csv``). A config with a
``distill`` section trains a few-step student on its teacher flow's endpoints instead of the radar
(:mod:`qpe.training.distill`); everything else (validation, checkpoints, resuming) is the same.

Everything random is a function of the seed and the step (which samples, which crops, which noise),
and the state holds the rest (weights, EMA, optimiser moments, dropout's random state): a run stopped at
any point and resumed with ``resume=True`` continues from its last checkpoint at the same step with the
same state, and reaches the same weights as a run that was never stopped.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from qpe.data.archive import is_archive, validate_view
from qpe.data.catalog import display_path, resolve_data
from qpe.data.paired import open_paired
from qpe.data.provenance import dataset_sha256
from qpe.data.samples import (
    IN_MEMORY_LIMIT_BYTES,
    PairedSamples,
    SampleConfig,
    chronological_split,
    target_indices,
)
from qpe.data.times import day_folds
from qpe.errors import CheckpointError, InputError
from qpe.files import atomic_write
from qpe.models.card import RESIDUAL_SCALE_BINS, FileReference, FlowConfig, InputSpec, ModelCard, TrainingInfo
from qpe.models.checkpoint import (
    LoadedModel,
    base_reference,
    check_base,
    check_checkpoint_target,
    load,
    read_card,
    save_checkpoint,
    weights_sha256,
)
from qpe.models.families import RainModel, build_model
from qpe.models.paths import fit_residual_scale
from qpe.training.batches import StepBatches, step_generator
from qpe.training.config import TrainConfig
from qpe.training.device_samples import DeviceSamples
from qpe.training.distill import (
    PAIRS_FILE,
    PairsProvenance,
    StudentObjective,
    TeacherPairs,
    load_teacher,
    student_card,
    teacher_pairs,
    teacher_settings,
)
from qpe.training.distributed import Processes
from qpe.training.ema import EMA
from qpe.training.state import TrainingState, has_state
from qpe.training.validation import validate


def state_dir(out: str | os.PathLike) -> Path:
    """Where the resumable state of a run writing checkpoint ``out`` lives: ``<out>.state``."""
    out = Path(out)
    return out.with_name(out.name + ".state")


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr_ratio * lr`` at the last step."""
    o = config.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    progress = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A batch of training items: each of their tensors stacked along a new first axis."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _evenly(targets: np.ndarray, n: int) -> np.ndarray:
    """``n`` targets spread evenly over ``targets`` (all of them when there are fewer)."""
    if n >= targets.size:
        return targets
    return targets[np.linspace(0, targets.size - 1, n).round().astype(int)]


def train(
    config: TrainConfig,
    *,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = tqdm.write,
) -> Path:
    """Train a model as ``config`` says and write its checkpoint folder.

    Parameters
    ----------
    config : TrainConfig
        Model and training settings.
    data : str or path-like, optional
        Dataset path or catalog name; default ``config.data``.
    out : path-like, optional
        Checkpoint folder to write; default ``runs/<config.name>``.
    resume : bool
        Continue the run found at ``out`` from its last checkpoint. Without it, an existing run state
        at ``out`` is an error (nothing is overwritten).
    device : str
        ``"auto"`` (a GPU when present), ``"cpu"`` or ``"cuda"``.
    progress : bool
        Show a progress bar (main process only).
    log : callable
        Receives one line per validation and checkpoint.

    Returns
    -------
    pathlib.Path
        The checkpoint folder.
    """
    procs = Processes.from_env()
    dev = procs.device(device)
    procs.start(dev)
    try:
        return _train(config, procs, dev, data, out, resume, progress and procs.is_main, log)
    finally:
        procs.stop()


@dataclass
class _Data:
    """The samples a run trains and validates on, and where they come from."""

    path: Path
    reference: FileReference
    #: The training items: crops (PairedSamples), or a distilled student's teacher pairs (TeacherPairs).
    train: PairedSamples | TeacherPairs
    validation: PairedSamples
    pixel_m: float
    #: (time,) fold of every time of the data when training on cross-fitted residuals, else None.
    folds: torch.Tensor | None = None


@dataclass
class _Run:
    """What a run holds from step to step, and what a checkpoint writes of it."""

    config: TrainConfig
    card: ModelCard
    model: RainModel
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    base: LoadedModel | None
    out: Path
    trained_on: dict[str, object]
    #: The config's digest, its checkpoints named by weights hash (what the saved state carries).
    digest: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    #: What a step's loss is computed by: the model's own ``loss``, or a distilled student's objective.
    objective: torch.nn.Module | None = None

    @property
    def state_dir(self) -> Path:
        return state_dir(self.out)


def _train(config, procs, device, data, out, resume, progress, log) -> Path:
    out = Path(out) if out is not None else Path("runs") / config.name
    check_checkpoint_target(out)  # before hours of training, not at the first checkpoint
    if has_state(state_dir(out)) and not resume:
        raise InputError(f"{out} already has a training run ({state_dir(out)}); pass --resume to continue it, "
                         "or choose another --out")
    if resume and not has_state(state_dir(out)):
        raise InputError(f"nothing to resume: no training state at {state_dir(out)}")
    state = _resumable(config, out) if resume else None
    if state is not None and state.step >= config.optim.steps:  # before reading data or building the model
        log(f"{config.name}: already trained for {state.step} steps")
        return out
    base = load(config.base_checkpoint) if config.base_checkpoint else None
    fold_bases = [load(path) for path in config.cross_fit]
    teacher = load_teacher(config) if config.distill is not None else None
    samples = _samples(config, data, base, progress)
    run = _start(config, samples, base, fold_bases, out, device, procs, teacher)
    if teacher is not None:
        samples = _distillation(run, samples, teacher, device, procs, progress)
    if state is not None:
        _resume(run, state, log)

    # -- the loop ---------------------------------------------------------------------------------------
    model, ema = run.model, run.ema
    validation_sampling = run.card.sampling_settings(members=config.validation.members)
    bar = tqdm(total=config.optim.steps, initial=run.step, desc=f"train {config.name}", unit="step",
               disable=not progress, dynamic_ncols=True)
    for step, loss, grad_norm in _steps(run, samples, procs, device, stop=config.optim.steps):
        run.step = done = step + 1
        bar.update(1)
        last = done == config.optim.steps
        validating = procs.is_main and (done % config.validation.every == 0 or last)
        if validating or done % SHOW_LOSS_EVERY == 0 or last:  # reading the loss waits for the device
            loss_value = float(loss)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{learning_rate(config, step):.1e}",
                            **({"grad": f"{float(grad_norm):.2f}"} if grad_norm is not None else {}))
        if validating:
            with _exported(model, ema) as judged:
                scores = validate(judged, samples.validation, settings=validation_sampling,
                                  pixel_m=samples.pixel_m, device=device, seed=config.seed)
            run.history.append({"step": done, "train_loss": round(loss_value, 6), **scores})
            log(f"{config.name} step {done}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
        if done % config.checkpoint_every == 0 or last:
            if procs.is_main:
                _checkpoint(run)
            procs.barrier()
    bar.close()
    return out


#: The progress bar shows the loss every this many steps (reading it makes the host wait for the GPU).
SHOW_LOSS_EVERY = 10


def _steps(run: _Run, samples: _Data, procs: Processes, device: torch.device,
           stop: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor | None]]:
    """The optimiser steps ``run.step .. stop - 1``: after each, ``(step, loss, grad_norm)`` (detached
    tensors, on the device; grad_norm None without clipping).

    Per step: the batch (:class:`~qpe.training.batches.StepBatches`, read by a data-loader or cut on the
    device), the learning rate, the loss (bf16 autocast on a GPU with ``amp``; through ``torch.compile``
    with ``compile``), the gradient (DDP-averaged), clipping, the AdamW step and the EMA update.
    """
    config, model, optimizer, ema = run.config, run.model, run.optimizer, run.ema
    net: torch.nn.Module = run.objective if run.objective is not None else model
    if procs.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    if config.optim.compile:  # the plain ``model`` is what is validated, averaged and saved
        net = torch.compile(net)
    batches = StepBatches(len(samples.train), config.optim.batch_size, config.seed, run.step, stop,
                          procs.rank, procs.world)
    if config.optim.data_on_device:
        loader: Iterable[dict[str, torch.Tensor]] = map(DeviceSamples(samples.train, device).batch, batches)
    else:
        loader = torch.utils.data.DataLoader(samples.train, batch_sampler=batches, collate_fn=collate,
                                             num_workers=config.optim.workers)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.optim.amp else None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    folds = samples.folds.to(device) if samples.folds is not None else None
    model.train()
    for step, batch in enumerate(loader, run.step):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if folds is not None:  # which fold U-Net gives each sample's (out-of-sample) residual
            batch["fold"] = folds[batch["index"]]
        with amp or nullcontext():
            loss = net(batch, step_generator(config.seed, step, procs.rank, device))
        optimizer.zero_grad(set_to_none=True)
        procs.global_mean(loss, batch["mask"]).backward()
        grad_norm = (torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
                     if config.optim.grad_clip else None)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        yield step, loss.detach(), grad_norm


@dataclass(frozen=True)
class TrainingSpeed:
    """How fast a config trains here (:func:`measure_training`).

    Attributes
    ----------
    steps : int
        Optimiser steps timed.
    seconds : float
        Their wall time, s (the device's queue drained at both ends).
    setup_seconds : float
        From the call to the first timed step: reading the data (and moving it to the device), building
        the model, and the untimed first steps (where ``torch.compile`` compiles).
    device : str
        Where it ran.
    """

    steps: int
    seconds: float
    setup_seconds: float
    device: str

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.seconds / self.steps


def measure_training(
    config: TrainConfig,
    *,
    data: str | os.PathLike | None = None,
    device: str = "auto",
    seconds: float = 10.0,
    warmup_steps: int = 3,
    ready: Callable[[], None] | None = None,
) -> TrainingSpeed:
    """Time the training steps of ``config`` (its data, model and settings) on one process; writes nothing.

    The steps are the loop's own (:func:`train`), from step 0, without validation or checkpoints:
    ``warmup_steps`` untimed steps (compilation, allocator and cuDNN warm-up), then steps until
    ``seconds`` have passed (at least one).

    Parameters
    ----------
    config : TrainConfig
        What to time; a residual flow's ``base_checkpoint`` (and ``cross_fit``) must exist.
    data : str or path-like, optional
        Dataset path or catalog name; default ``config.data``.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seconds : float
        Timed wall time, s.
    warmup_steps : int
        Untimed steps first (at least 1).
    ready : callable, optional
        Called between the untimed and the timed steps (e.g. to wait for other processes timed at the
        same time: a barrier), outside both the setup and the timed seconds.

    Returns
    -------
    TrainingSpeed
        Steps, seconds and setup seconds.
    """
    if config.distill is not None:
        raise InputError(f"{config.name}: timing a distillation run is not supported (its teacher pairs are drawn "
                         "first); time the teacher's config")
    start = time.perf_counter()
    procs = Processes()
    dev = procs.device(device)
    base = load(config.base_checkpoint) if config.base_checkpoint else None
    fold_bases = [load(path) for path in config.cross_fit]
    samples = _samples(config, data, base, progress=False)
    run = _start(config, samples, base, fold_bases, Path(os.devnull), dev, procs)
    steps = _steps(run, samples, procs, dev, stop=2**62)
    for _ in range(max(1, warmup_steps)):
        next(steps)
    _drain(dev)
    setup = time.perf_counter() - start
    if ready is not None:
        ready()
    timed_from = time.perf_counter()
    timed = 0
    while timed == 0 or time.perf_counter() - timed_from < seconds:
        next(steps)
        timed += 1
    _drain(dev)
    end = time.perf_counter()
    steps.close()
    return TrainingSpeed(timed, end - timed_from, setup, str(dev))


def _drain(device: torch.device) -> None:
    """Wait until the device has done all the work queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _samples(config: TrainConfig, data, base: LoadedModel | None, progress: bool) -> _Data:
    """A chronological split of the data: random crops of the earlier block for training, fixed crops of
    the later one for validation, normalised with the base U-Net's statistics when there is one."""
    data_path = resolve_data(data if data is not None else config.data, progress=progress)
    ds = open_paired(data_path, validate=False)
    if not is_archive(ds) and ds.nbytes < IN_MEMORY_LIMIT_BYTES:
        ds = ds.load()  # read once: validated, hashed and sampled from memory
    validate_view(ds, require=("ir", "rain"))  # here, once (an archive: its layout, checked when built)
    frames = config.input.frames
    channels = config.input.channels or tuple(str(c) for c in ds["channel"].values)
    targets = target_indices(ds["time"].values, frames)
    train_targets, val_targets = chronological_split(targets, config.validation.fraction, frames)
    if config.fold is not None:  # a fold U-Net: none of the days of the fold it leaves out
        seen = day_folds(ds["time"].values[train_targets], config.fold.folds) != config.fold.leave_out
        train_targets = train_targets[seen]
    train_config = SampleConfig(frames, config.optim.crop, channels, augment=config.optim.augment)
    train_set = PairedSamples(ds, train_config, targets=train_targets,
                              normalization=base.card.normalization if base is not None else None,
                              seed=config.seed, validate=False)
    val_crop = min(config.validation.crop, *train_set.shape)
    val_set = PairedSamples(ds, SampleConfig(frames, val_crop, channels, random_crop=False),
                            targets=_evenly(val_targets, config.validation.samples),
                            normalization=train_set.normalization, seed=config.seed + 1, validate=False)
    reference = FileReference(display_path(data_path), dataset_sha256(ds))
    folds = torch.from_numpy(day_folds(ds["time"].values, len(config.cross_fit))) if config.cross_fit else None
    pixel_m = float(abs(ds["x"].values[1] - ds["x"].values[0]))
    return _Data(Path(data_path), reference, train_set, val_set, pixel_m, folds)


def _start(config: TrainConfig, samples: _Data, base: LoadedModel | None, fold_bases: list[LoadedModel],
           out: Path, device, procs, teacher: LoadedModel | None = None) -> _Run:
    """The card (with the fitted residual scale), the freshly initialised (seeded) model, its EMA and its
    optimiser. A distilled student takes its teacher's flow section (residual scale included) and, with
    ``distill.from_teacher``, starts from the teacher's weights."""
    spec = samples.train
    card = ModelCard(
        name=config.name, family=config.family, description=config.description,
        input=InputSpec(list(spec.channels), spec.config.frames), normalization=spec.normalization,
        architecture=config.architecture, rain_transform=config.rain_transform,
        diffusion=config.diffusion, flow=config.flow, sampling=config.sampling, data=samples.reference,
    )
    if base is not None:
        check_base(base.card, card, f"base_checkpoint {config.base_checkpoint}")
    for i, fold_base in enumerate(fold_bases):
        _check_fold_base(fold_base, i, card, config)
        fold_base.to(device)
    if teacher is not None:
        card = student_card(card, teacher, base.sha256 if base is not None else None, config, out)
    if card.flow is not None and card.flow.residual_scale != "none" and not card.flow.residual_std:
        card = dataclasses.replace(card, flow=_fitted_scale(card.flow, samples, base, fold_bases, device))
    torch.manual_seed(config.seed)
    model = build_model(card, base.model if base is not None else None).to(device)
    if teacher is not None and config.distill.from_teacher:
        model.load_state_dict(teacher.model.checkpoint_state(), strict=False)
    if fold_bases:
        model.attach_fold_bases([b.model for b in fold_bases])
    ema = EMA(model, config.optim.ema_decay) if config.uses_ema else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    return _Run(config, card, model, ema, optimizer, base, out,
                trained_on={"device": str(device), "processes": procs.world},
                digest=config.digest(identify=weights_sha256))


def _distillation(run: _Run, samples: _Data, teacher: LoadedModel, device, procs: Processes,
                  progress: bool) -> _Data:
    """A distilled student's run: its teacher pairs (drawn by the main process, or read from the run's
    cache) as the training items, and its objective as the loss."""
    config = run.config
    settings = teacher_settings(teacher, config.distill)
    provenance = PairsProvenance(teacher.sha256, settings.sampler, settings.steps, samples.reference.sha256,
                                 config.optim.crop, config.seed, config.distill.pairs)
    cache = run.state_dir / PAIRS_FILE
    pairs = teacher_pairs(teacher, settings, samples.train, provenance, cache, device, progress) if procs.is_main else None
    procs.barrier()
    if pairs is None:  # the other processes read what the main one drew
        pairs = teacher_pairs(teacher, settings, samples.train, provenance, cache, device, progress=False)
    teacher.model.cpu()
    run.objective = StudentObjective(run.model, config.sampling.steps)
    return dataclasses.replace(samples, train=TeacherPairs(samples.train, pairs))


def _check_fold_base(fold_base: LoadedModel, i: int, card: ModelCard, config: TrainConfig) -> None:
    """The i-th cross-fit U-Net must read what the flow reads, and have been trained on the same data
    without (only) the days of fold i."""
    where = f"cross_fit[{i}] {config.cross_fit[i]}"
    check_base(fold_base.card, card, where)
    fold = fold_base.card.training.settings.get("fold")
    wanted = {"folds": len(config.cross_fit), "leave_out": i}
    if fold != wanted:
        raise CheckpointError(f"{where} must be a U-Net trained with fold: {wanted} (it says {fold})")
    if fold_base.card.data != card.data:
        raise CheckpointError(f"{where} was trained on other data ({fold_base.card.data.path}); its folds would "
                              "not be this flow's")


#: Training samples whose residuals fit a flow's residual scale (spread evenly over the training set).
SCALE_SAMPLES = 64


@torch.no_grad()
def _fitted_scale(flow: FlowConfig, samples: _Data, base: LoadedModel, fold_bases: list[LoadedModel],
                  device) -> FlowConfig:
    """The flow section with its residual scale fitted to training residuals (cross-fitted ones when fold
    U-Nets are given: the scale must be that of the residuals the flow learns)."""
    residuals, means = [], []
    picks = _evenly(np.arange(len(samples.train)), SCALE_SAMPLES)
    for start in range(0, picks.size, 8):
        items = [samples.train[(0, int(i))] for i in picks[start : start + 8]]
        ir, rain, mask = (torch.stack([it[k] for it in items]).to(device) for k in ("ir", "rain", "mask"))
        if fold_bases:
            fold = samples.folds[torch.stack([it["index"] for it in items])]
            mean = torch.cat([fold_bases[int(f)].model.mean(x[None]) for x, f in zip(ir, fold)])
        else:
            mean = base.model.mean(ir)
        y = base.model.transform.forward(rain.float())[:, None]
        keep = mask[:, None]
        residuals.append((y - mean)[keep].cpu().numpy())
        means.append(mean[keep].cpu().numpy())
    scale = fit_residual_scale(np.concatenate(residuals), np.concatenate(means), RESIDUAL_SCALE_BINS[flow.residual_scale])
    return dataclasses.replace(flow, residual_std=scale.knots)


def _resumable(config: TrainConfig, out: Path) -> TrainingState:
    """The training state at ``out``, checked to continue ``config``'s run."""
    state = TrainingState.load(state_dir(out))
    if state.config_digest not in _digests(config, out):
        raise InputError(f"cannot resume {out}: the config differs from the interrupted run's "
                         "(only optim.steps, validation.every and checkpoint_every may change)")
    return state


def _digests(config: TrainConfig, out: Path) -> set[str]:
    """The digests a saved run of ``config`` at ``out`` may carry: its checkpoints named by weights hash;
    for runs saved before that, the digest of the config's paths or, for a residual flow moved with its
    U-Net, of the U-Net path its card recorded when its card also names the same U-Net weights."""
    digests = {config.digest(identify=weights_sha256), config.digest()}
    if config.base_checkpoint and not config.cross_fit and config.distill is None:
        try:
            card = read_card(out)
        except CheckpointError:
            return digests
        recorded = card.training.settings.get("base_checkpoint") if card.training is not None else None
        if (isinstance(recorded, str) and card.base_checkpoint is not None
                and card.base_checkpoint.sha256 == weights_sha256(config.base_checkpoint)):
            digests.add(config.replace(base_checkpoint=recorded).digest())
    return digests


def _resume(run: _Run, state: TrainingState, log: Callable[[str], None]) -> None:
    """Put back the weights, EMA, optimiser moments, random state and history of ``state``."""
    run.model.load_state_dict(state.model, strict=False)
    run.optimizer.load_state_dict(state.optimizer)
    if run.ema is not None:
        run.ema.load_state_dict(state.ema)
    torch.set_rng_state(state.rng)
    run.step, run.history = state.step, list(state.history)
    log(f"resuming {run.config.name} at step {run.step} from {run.state_dir}")


@contextmanager
def _exported(model: RainModel, ema: EMA | None) -> Iterator[RainModel]:
    """The model to validate and save, in eval mode: a copy holding the EMA weights, or the model itself,
    put back in its previous mode afterwards."""
    if ema is not None:
        copied = copy.deepcopy(model)
        ema.copy_to(copied)
        yield copied.eval()
        return
    was_training = model.training
    try:
        yield model.eval()
    finally:
        model.train(was_training)


def _checkpoint(run: _Run) -> None:
    """Write the resumable state, then the usable checkpoint (card with the latest validation)."""
    config = run.config
    TrainingState(
        step=run.step, config_digest=run.digest, model=run.model.checkpoint_state(),
        optimizer=run.optimizer.state_dict(), rng=torch.get_rng_state(),
        ema=run.ema.state_dict() if run.ema is not None else None, history=run.history,
    ).save(run.state_dir)
    _write_history(run.history, run.state_dir / "history.csv")
    card = dataclasses.replace(
        run.card, validation=dict(run.history[-1]) if run.history else {},
        training=TrainingInfo(steps=run.step, seed=config.seed, settings={**config.to_dict(), **run.trained_on}),
        base_checkpoint=base_reference(run.base, run.out) if run.base is not None else None,
    )
    with _exported(run.model, run.ema) as model:
        save_checkpoint(model, card, run.out)


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    if not history:
        return
    names = list(dict.fromkeys(k for row in history for k in row))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)
