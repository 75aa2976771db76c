"""What a study trains and what it scores: training configs per (family, T), estimators per (model, K).

Names follow one pattern everywhere (folders, scores, tables, figures): ``<model>_t<T>`` for a trained
checkpoint, ``<model>_t<T>_k<K>`` for a generative model sampled with K steps of its sampler,
``<model>_t<T>_<sampler>_k<K>`` with one of its ``also_samplers``, ``ir_rule`` for the baseline.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr

from qpe.errors import InputError, MissingInputError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig
from qpe.inference.estimators import CheckpointEstimator
from qpe.models.checkpoint import read_card
from qpe.models.sampling import family_samplers
from qpe.study.config import CheckpointSpec, ModelSpec, StudyConfig, deep_merge
from qpe.training import TrainConfig


def checkpoint_name(model: str, frames: int) -> str:
    return f"{model}_t{frames}"


def variant_name(model: str, frames: int, steps: int | None, sampler: str | None = None) -> str:
    """``<model>_t<T>[_<sampler>][_k<K>]``; the sampler is named only when it is not the model's own."""
    return (checkpoint_name(model, frames) + (f"_{sampler}" if sampler else "")
            + (f"_k{steps}" if steps is not None else ""))


@dataclass(frozen=True)
class TrainingRun:
    """One checkpoint the study trains: its config and folder; ``scored`` is False for a fold U-Net."""

    spec: ModelSpec
    frames: int
    config: TrainConfig
    out: Path
    scored: bool = True


def reference_variant(study: StudyConfig) -> str | None:
    """The model the study compares every other with (``compare_to`` at the largest T and its reference
    K): the reference of the page's paired table and of each benchmark's scorecard; None without one."""
    if study.compare_to is None:
        return None
    return variant_name(study.compare_to, max(study.frames), study.model(study.compare_to).reference_steps)


def fold_name(base: str, fold: int, folds: int) -> str:
    """Study name of the fold U-Net of ``base`` trained without fold ``fold`` of ``folds``."""
    return f"{base}_fold{fold}of{folds}"


def _config(study: StudyConfig, spec: ModelSpec, frames: int, name: str, models_dir: Path,
            **extra) -> TrainConfig:
    """The training config of ``spec`` at T = ``frames``: the study's settings, the model's over them."""
    settings = deep_merge(study.training, spec.sections)
    settings.update(name=name, family=spec.family, data=spec.sections.get("data", study.train_data),
                    input={**settings.get("input", {}), "frames": frames},
                    description=settings.get("description") or f"{study.name} study: {spec.name}, T={frames}")
    settings.setdefault("seed", study.seed)
    if spec.base is not None:
        settings["base_checkpoint"] = str(models_dir / checkpoint_name(spec.base, frames))
    if spec.sampler is not None:
        settings["sampling"] = {"sampler": spec.sampler, "steps": spec.reference_steps}
    settings.update(extra)
    return TrainConfig.from_dict(settings, f"study model {name}")


def training_runs(study: StudyConfig, models_dir: str | os.PathLike) -> list[TrainingRun]:
    """Every (family, T) to train: bases (the U-Nets of residual flows) first, then the fold U-Nets a
    cross-fitted flow needs, just before it."""
    models_dir = Path(models_dir)
    ordered = sorted(study.models, key=lambda m: m.base is not None)
    runs: dict[str, TrainingRun] = {}
    for frames in study.frames:
        for spec in ordered:
            extra = {}
            if spec.cross_fit:
                base = study.model(spec.base)
                folds = []
                for i in range(spec.cross_fit):
                    name = checkpoint_name(fold_name(base.name, i, spec.cross_fit), frames)
                    config = _config(study, base, frames, name, models_dir,
                                     fold={"folds": spec.cross_fit, "leave_out": i})
                    runs.setdefault(name, TrainingRun(base, frames, config, models_dir / name, scored=False))
                    folds.append(str(models_dir / name))
                extra["cross_fit"] = folds
            name = checkpoint_name(spec.name, frames)
            runs[name] = TrainingRun(spec, frames, _config(study, spec, frames, name, models_dir, **extra),
                                     models_dir / name)
    return list(runs.values())


class SampledEstimator:
    """A checkpoint estimator sampled with a fixed sampler and number of steps, under its own name.

    Parameters
    ----------
    inner : CheckpointEstimator
        The checkpoint.
    steps : int or None
        Sampler steps K (None for a U-Net).
    sampler : str or None
        Sampler name (None: the card's).
    name : str
        Name in scores and figures.
    """

    def __init__(self, inner: CheckpointEstimator, steps: int | None, sampler: str | None, name: str) -> None:
        self.inner, self.steps, self.sampler, self.name = inner, steps, sampler, name

    def __repr__(self) -> str:
        return f"SampledEstimator({self.name!r}, steps={self.steps}, sampler={self.sampler!r})"

    family = property(lambda self: self.inner.family)
    frames = property(lambda self: self.inner.frames)
    source = property(lambda self: self.inner.source)
    is_ensemble = property(lambda self: self.inner.is_ensemble)

    def check(self, ds: xr.Dataset, times: Sequence | pd.DatetimeIndex = (),
              config: EstimateConfig | None = None) -> None:
        self.inner.check(ds, times, dataclasses.replace(config, steps=self.steps, sampler=self.sampler)
                         if config is not None else None)

    def estimate(self, ds: xr.Dataset, times, config: EstimateConfig | None = None, *,
                 cache: EstimateCache | None = None, progress: bool = True) -> xr.Dataset:
        config = dataclasses.replace(config or EstimateConfig(), steps=self.steps, sampler=self.sampler)
        out = self.inner.estimate(ds, times, config, cache=cache, progress=progress)
        return out.assign_attrs(model=self.name)


def study_estimators(study: StudyConfig, runs: Sequence[TrainingRun], baseline=None) -> list:
    """The estimators a benchmark scores: the baseline, then every model at every K (with its sampler,
    then each of its ``also_samplers``), by T."""
    estimators = [baseline] if baseline is not None else []
    for run in (r for r in runs if r.scored):
        inner = CheckpointEstimator(run.out)
        spec = run.spec
        for sampler in (spec.sampler, *spec.also_samplers):
            label = None if sampler == spec.sampler else sampler
            for steps in spec.steps or (None,):
                estimators.append(SampledEstimator(inner, steps, sampler,
                                                   variant_name(spec.name, run.frames, steps, label)))
    return estimators


def checkpoint_estimators(study: StudyConfig) -> tuple[list[SampledEstimator], dict[str, str]]:
    """The study's ``checkpoints`` (trained elsewhere), each at its card's sampler and K under
    ``<name>_t<T>[_k<K>]``, and the optional ones skipped because their folder is absent (name -> why).

    Raises
    ------
    MissingInputError
        A checkpoint that is not optional is absent (one line: where, and that it is trained elsewhere).
    InputError
        One reads more IR frames than the study's largest T (the benchmark's times are chosen for those).
    CheckpointError
        A folder that is there but holds no valid card.
    """
    estimators, skipped = [], {}
    for spec in study.checkpoints:
        path = Path(spec.path)
        if not path.exists():
            why = f"no checkpoint at {path} (it is trained outside the study: see its training config)"
            if not spec.optional:
                raise MissingInputError(f"study checkpoint {spec.name!r}: {why}")
            skipped[spec.name] = why
            continue
        estimators.append(_checkpoint_estimator(spec, study))
    return estimators, skipped


def _checkpoint_estimator(spec: CheckpointSpec, study: StudyConfig) -> SampledEstimator:
    card = read_card(spec.path)
    if card.input.frames > max(study.frames):
        raise InputError(f"study checkpoint {spec.name!r} reads T = {card.input.frames} IR frames, more than "
                         f"the study's largest T = {max(study.frames)}")
    settings = card.sampling_settings() if family_samplers(card.family) else None  # None: deterministic
    steps, sampler = (settings.steps, settings.sampler) if settings is not None else (None, None)
    return SampledEstimator(CheckpointEstimator(spec.path), steps, sampler,
                            variant_name(spec.name, card.input.frames, steps))
