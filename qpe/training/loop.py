"""The training loop, top to bottom: data, model, optimiser, then steps with validation and checkpoints.

``train(config)`` trains one model of any family on a paired dataset and writes a checkpoint folder
(``card.yaml`` + ``weights.safetensors``, usable by :func:`qpe.models.load` at every checkpoint) and,
beside it, the resumable run state (``<out>.state/state.pt`` and ``history.csv``).

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
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from qpe.data.catalog import display_path, resolve_data
from qpe.data.paired import open_paired
from qpe.data.provenance import dataset_sha256
from qpe.data.samples import PairedSamples, SampleConfig, chronological_split, target_indices
from qpe.errors import CheckpointError, InputError
from qpe.models import (
    FileReference,
    InputSpec,
    ModelCard,
    TrainingInfo,
    base_reference,
    build_model,
    load,
    save_checkpoint,
)
from qpe.models.families import RainModel
from qpe.training.batches import StepBatches, step_generator
from qpe.training.config import TrainConfig
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
    return {k: torch.stack([it[k] for it in items]) for k in ("ir", "rain", "mask")}


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


def _train(config, procs, device, data, out, resume, progress, log) -> Path:
    out = Path(out) if out is not None else Path("runs") / config.name
    run_dir = state_dir(out)
    if has_state(run_dir) and not resume:
        raise InputError(f"{out} already has a training run ({run_dir}); pass --resume to continue it, "
                         "or choose another --out")
    if resume and not has_state(run_dir):
        raise InputError(f"nothing to resume: no training state at {run_dir}")

    # -- data: a chronological split, random crops for training, fixed crops for validation ------------
    data_path = resolve_data(data if data is not None else config.data, progress=progress)
    ds = open_paired(data_path, require=("ir", "rain"))
    frames = config.input.frames
    channels = config.input.channels or tuple(str(c) for c in ds["channel"].values)
    targets = target_indices(ds["time"].values, frames)
    train_targets, val_targets = chronological_split(targets, config.validation.fraction, frames)
    train_set = PairedSamples(ds, SampleConfig(frames, config.optim.crop, channels), targets=train_targets,
                              seed=config.seed)
    val_crop = min(config.validation.crop, *train_set.shape)
    val_set = PairedSamples(ds, SampleConfig(frames, val_crop, channels, random_crop=False),
                            targets=_evenly(val_targets, config.validation.samples),
                            normalization=train_set.normalization, seed=config.seed + 1)
    pixel_m = float(abs(ds["x"].values[1] - ds["x"].values[0]))

    # -- model, card, optimiser -------------------------------------------------------------------------
    base = _load_base(config, train_set) if config.base_checkpoint else None
    card = ModelCard(
        name=config.name, family=config.family, description=config.description,
        input=InputSpec(list(channels), frames), normalization=train_set.normalization,
        architecture=config.architecture, rain_transform=config.rain_transform,
        diffusion=config.diffusion, flow=config.flow, sampling=config.sampling,
        data=FileReference(display_path(data_path), dataset_sha256(ds)),
    )
    validation_sampling = card.sampling_settings(members=config.validation.members)
    torch.manual_seed(config.seed)
    model = build_model(card, base.model if base is not None else None).to(device)
    ema = EMA(model, config.optim.ema_decay) if config.uses_ema else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    history: list[dict[str, float]] = []
    start = 0
    if resume:
        state = TrainingState.load(run_dir)
        if state.config_digest != config.digest():
            raise InputError(f"cannot resume {out}: the config differs from the interrupted run's "
                             "(only optim.steps, validation.every and checkpoint_every may change)")
        model.load_state_dict(state.model, strict=False)
        optimizer.load_state_dict(state.optimizer)
        if ema is not None:
            ema.load_state_dict(state.ema)
        torch.set_rng_state(state.rng)
        start, history = state.step, list(state.history)
        log(f"resuming {config.name} at step {start} from {run_dir}")
    if start >= config.optim.steps:
        log(f"{config.name}: already trained for {start} steps")
        return out

    net: torch.nn.Module = model
    if procs.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = StepBatches(len(train_set), config.optim.batch_size, config.seed, start, config.optim.steps,
                          procs.rank, procs.world)
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=config.optim.workers)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.optim.amp else None

    # -- the loop ---------------------------------------------------------------------------------------
    bar = tqdm(total=config.optim.steps, initial=start, desc=f"train {config.name}", unit="step",
               disable=not progress, dynamic_ncols=True)
    model.train()
    for step, batch in enumerate(loader, start):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with amp or nullcontext():
            loss = net(batch, step_generator(config.seed, step, procs.rank, device))
        optimizer.zero_grad(set_to_none=True)
        procs.global_mean(loss, batch["mask"]).backward()
        grad_norm = (torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
                     if config.optim.grad_clip else None)
        optimizer.step()
        loss_value = float(loss.detach())
        if ema is not None:
            ema.update(model)
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{learning_rate(config, step):.1e}",
                        **({"grad": f"{float(grad_norm):.2f}"} if grad_norm is not None else {}))

        last = done == config.optim.steps
        if procs.is_main and (done % config.validation.every == 0 or last):
            scores = validate(_export(model, ema), val_set, settings=validation_sampling, pixel_m=pixel_m,
                              device=device, seed=config.seed)
            history.append({"step": done, "train_loss": round(loss_value, 6), **scores})
            log(f"{config.name} step {done}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
            model.train()
        if done % config.checkpoint_every == 0 or last:
            if procs.is_main:
                _checkpoint(config, card, model, ema, optimizer, base, history, done, out, run_dir,
                            trained_on={"device": str(device), "processes": procs.world})
            procs.barrier()
    bar.close()
    return out


def _load_base(config: TrainConfig, train_set: PairedSamples):
    """The residual flow's U-Net; it must read the same inputs with the same normalisation."""
    base = load(config.base_checkpoint)
    if base.card.family != "unet":
        raise CheckpointError(f"base_checkpoint {config.base_checkpoint} is a {base.card.family} model, "
                              "not a U-Net")
    if tuple(base.card.input.channels) != train_set.channels or base.card.input.frames != train_set.config.frames:
        raise CheckpointError(
            f"base U-Net {config.base_checkpoint} reads T={base.card.input.frames} x "
            f"{base.card.input.channels}, the flow T={train_set.config.frames} x {list(train_set.channels)}")
    if base.card.rain_transform != config.rain_transform:
        raise CheckpointError(f"base U-Net {config.base_checkpoint} uses another rain transform")
    train_set.normalization = base.card.normalization
    return base


def _export(model: RainModel, ema: EMA | None) -> RainModel:
    """The model to validate and save: a copy holding the EMA weights, or the model itself."""
    if ema is None:
        return model.eval()
    copied = copy.deepcopy(model)
    ema.copy_to(copied)
    return copied.eval()


def _checkpoint(config, card, model, ema, optimizer, base, history, step, out, run_dir, trained_on) -> None:
    """Write the resumable state, then the usable checkpoint (card with the latest validation)."""
    TrainingState(
        step=step, config_digest=config.digest(), model=model.checkpoint_state(),
        optimizer=optimizer.state_dict(), rng=torch.get_rng_state(),
        ema=ema.state_dict() if ema is not None else None, history=history,
    ).save(run_dir)
    _write_history(history, run_dir / "history.csv")
    validation = {k: v for k, v in (history[-1] if history else {}).items()}
    card = dataclasses.replace(
        card, validation=validation,
        training=TrainingInfo(steps=step, seed=config.seed, settings={**config.to_dict(), **trained_on}),
        base_checkpoint=base_reference(base, out) if base is not None else None,
    )
    save_checkpoint(_export(model, ema), card, out)
    model.train()


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    if not history:
        return
    names = list(dict.fromkeys(k for row in history for k in row))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
