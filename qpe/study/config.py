"""Settings of a model comparison study (``studies/*.yaml``), with an optional ``quick`` profile.

::

    name: demo
    train_data: demo                       # catalog name or path: what every model is trained on
    frames: [1, 4]                         # every family is trained once per T
    training: {architecture: {...}, optim: {steps: 800, ...}, validation: {...}, seed: 0}
    models:
      unet: {family: unet}
      ddpm: {family: ddpm, diffusion: {...}, sampler: ddim, steps: [10, 50, 250]}
      flow_gaussian: {family: flow, flow: {source: gaussian}, sampler: midpoint, steps: [1, 2, 4, 8, 16]}
      flow_residual: {family: flow, flow: {source: residual}, base: unet, sampler: midpoint,
                      also_samplers: [euler], steps: [...]}    # euler scored too, for the cost figure
    baseline: {channel: IR_108, cirrus_split_k: null}   # the IR probability-matching rule
    benchmarks:
      - {name: synthetic, data: holdout, stride: 4}
      - {name: semisynthetic, data: opera-semisynthetic, optional: true, stride: 4, box: [...]}
    members: 4
    seed: 0
    n_resamples: 200                       # bootstrap replicates of every interval (0: none)
    bootstrap_unit: auto                   # day, time (within days) or auto: days from 5 days up
    confidence: 0.95                       # coverage of the intervals that decide the hypotheses
    jobs: 1                                # models trained at once, each in its own process (--jobs)
    compare_to: flow_residual              # optional: every other model's paired difference from it
    checkpoints:                           # optional: trained elsewhere, scored beside the study's models
      flow_residual_student: {path: models/demo/flow_residual_student, optional: true}
    quick: {training: {optim: {steps: 40}}, ...}      # deep-merged over the above by --quick

Mappings of ``quick`` are merged key by key into the main settings; lists and values replace them.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qpe.errors import InputError, QpeError
from qpe.models.sampling import FAMILIES, family_samplers
from qpe.settings import from_mapping, plain, read_yaml_mapping
from qpe.verify.bootstrap import UNITS
from qpe.verify.pairs import DEFAULT_SCALES_KM, DEFAULT_THRESHOLDS


@dataclass(frozen=True)
class ModelSpec:
    """One family of the study, trained for every T.

    Parameters
    ----------
    name : str
        Name of the family in the study (``unet``, ``ddpm``, ``flow_gaussian``, ``flow_residual``).
    family : str
        Model family.
    sections : dict
        Family sections of the training config (``diffusion``, ``flow``, ``architecture`` ...),
        merged over the study's ``training``.
    base : str or None
        Name of the study model whose checkpoint (same T) is this residual flow's U-Net.
    sampler : str or None
        Sampler used in the evaluation (the headline, the verdicts and the model's card).
    also_samplers : tuple of str
        Other samplers scored at the same K, for the comparison of samplers in the cost figure and the
        full table; named ``<model>_t<T>_<sampler>_k<K>``. They never enter the verdicts.
    steps : tuple of int
        Sampler steps K evaluated (empty for the U-Net).
    reference_steps : int or None
        The K of the headline table and of the T comparison (default: the middle of ``steps``).
    cross_fit : int
        A residual flow trained on cross-fitted residuals: the study also trains this many fold U-Nets
        of its ``base`` (each without the days of one fold, named ``<base>_fold<i>of<n>_t<T>``, never
        scored) and the flow takes each training sample's residual from the one that never saw it.
        0: the base's in-sample residuals.

    A model's ``data`` section (a catalog name or path) trains it on other data than the study's
    ``train_data`` (e.g. to measure what more varied training data changes).
    """

    name: str
    family: str
    sections: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    sampler: str | None = None
    also_samplers: tuple[str, ...] = ()
    steps: tuple[int, ...] = ()
    reference_steps: int | None = None
    cross_fit: int = 0

    def __post_init__(self) -> None:
        if self.cross_fit and (self.base is None or self.cross_fit < 2):
            raise InputError(f"study model {self.name!r}: cross_fit needs a base and at least 2 folds")
        if self.steps and self.reference_steps is None:
            object.__setattr__(self, "reference_steps", sorted(self.steps)[(len(self.steps) - 1) // 2])
        if self.reference_steps is not None and self.reference_steps not in self.steps:
            raise InputError(f"study model {self.name!r}: reference_steps {self.reference_steps} is not "
                             f"among its steps {list(self.steps)}")


@dataclass(frozen=True)
class BenchmarkSpec:
    """A dataset the models are scored on.

    Parameters
    ----------
    name : str
        Label of the benchmark in the outputs.
    data : str
        Catalog name or path.
    description : str
        One line for the page.
    stride : int
        Score every ``stride``-th time that has the frames every model needs (1: all).
    max_times : int or None
        At most this many times (evenly spread), after the stride.
    box : tuple of float or None
        ``(xmin, ymin, xmax, ymax)`` in m: the models run on this part of the grid only.
    optional : bool
        Skip (and say why) when the dataset's input files are absent, e.g. the real radar files on a
        machine that has none; any other problem with it still stops the study.
    """

    name: str
    data: str
    description: str = ""
    stride: int = 1
    max_times: int | None = None
    box: tuple[float, float, float, float] | None = None
    optional: bool = False


@dataclass(frozen=True)
class CheckpointSpec:
    """A checkpoint trained outside the study (e.g. a distilled student of the study's residual flow),
    scored beside the study's models on every benchmark at its card's sampler and K: it appears in the
    full table, the paired table and the cost figure, never in the verdicts.

    Parameters
    ----------
    name : str
        Its name in the study; its scores are named ``<name>_t<T>[_k<K>]``, T and K from its card.
    path : str
        The checkpoint folder (relative to the working directory).
    optional : bool
        Skip it (and say why) when the folder does not exist, e.g. a model the user has not trained; a
        folder that is there but is not a valid checkpoint still stops the study.
    """

    name: str
    path: str
    optional: bool = False


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study (see the module docstring)."""

    name: str
    train_data: str
    models: tuple[ModelSpec, ...]
    benchmarks: tuple[BenchmarkSpec, ...]
    frames: tuple[int, ...] = (1, 4)
    training: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = field(default_factory=lambda: {"channel": "IR_108"})
    members: int = 4
    seed: int = 0
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    scales_km: tuple[float, ...] = DEFAULT_SCALES_KM
    n_resamples: int = 200
    bootstrap_unit: str = "auto"
    confidence: float = 0.95
    title: str = ""
    profile: str = "full"
    jobs: int = 1
    compare_to: str | None = None
    checkpoints: tuple[CheckpointSpec, ...] = ()

    def __post_init__(self) -> None:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise InputError(f"study models must have distinct names, got {names}")
        clashes = sorted({c.name for c in self.checkpoints} & {*names, "ir_rule"})
        if clashes:
            raise InputError(f"study checkpoints {clashes} have the name of a study model: rename them")
        for m in self.models:
            if m.family not in FAMILIES:
                raise InputError(f"study model {m.name!r}: unknown family {m.family!r}")
            known = family_samplers(m.family)
            if not known and (m.steps or m.sampler):
                raise InputError(f"study model {m.name!r}: a deterministic {m.family} model (a U-Net has no "
                                 "sampler steps) takes no sampler or steps")
            if known and (not m.steps or m.sampler not in known):
                raise InputError(f"study model {m.name!r}: give steps and a {m.family} sampler "
                                 f"({' or '.join(known)})")
            others = [s for s in m.also_samplers if s not in known or s == m.sampler]
            if others:
                raise InputError(f"study model {m.name!r}: also_samplers {others} must be other {m.family} "
                                 f"samplers ({' or '.join(known) or 'none'})")
            if m.base is not None and m.base not in names:
                raise InputError(f"study model {m.name!r}: base {m.base!r} is not a model of the study")
        if not self.benchmarks:
            raise InputError("a study needs at least one benchmark")
        if not self.frames or not all(1 <= t <= 8 for t in self.frames):
            raise InputError(f"study frames must be between 1 and 8, got {list(self.frames)}")
        if self.members < 2:
            raise InputError("a study needs at least 2 ensemble members (CRPS, rank histograms)")
        if self.bootstrap_unit not in ("auto", *UNITS):
            raise InputError(f"bootstrap_unit must be auto, {' or '.join(UNITS)}, got {self.bootstrap_unit!r}")
        if not 0 < self.confidence < 1:
            raise InputError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.compare_to is not None and self.compare_to not in names:
            raise InputError(f"compare_to {self.compare_to!r} is not a model of the study "
                             f"({', '.join(names)})")
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise InputError("jobs (models trained at once) must be a whole number of at least 1, "
                             f"got {self.jobs!r}")

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def load_study(path: str | Path, *, quick: bool = False) -> StudyConfig:
    """Read a study config, with its ``quick`` profile merged in when asked."""
    path = Path(path)
    raw = read_yaml_mapping(path, "study config")
    raw = copy.deepcopy(raw)
    overrides = raw.pop("quick", None) or {}
    if quick:
        raw = deep_merge(raw, overrides)
    raw["profile"] = "quick" if quick else "full"
    try:
        return _parse(raw)
    except QpeError as err:
        raise InputError(f"{path}: {err}") from None


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into ``base``: mappings key by key (recursively), anything else replaced.

    A ``benchmarks`` list in the override is matched to the base's benchmarks by ``name``.
    """
    out = dict(base)
    for key, value in override.items():
        if key == "benchmarks" and isinstance(value, list) and isinstance(base.get(key), list):
            by_name = {b.get("name"): b for b in value}
            out[key] = [deep_merge(b, by_name.get(b.get("name"), {})) for b in base[key]]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = deep_merge(base[key], value)
        else:
            out[key] = value
    return out


_MODEL_KEYS = {"family", "base", "sampler", "also_samplers", "steps", "reference_steps", "cross_fit"}


def _parse(raw: dict) -> StudyConfig:
    models = []
    for name, spec in (raw.get("models") or {}).items():
        if not isinstance(spec, dict) or "family" not in spec:
            raise InputError(f"study model {name!r} needs a 'family'")
        sections = {k: v for k, v in spec.items() if k not in _MODEL_KEYS}
        models.append(ModelSpec(str(name), spec["family"], sections, spec.get("base"), spec.get("sampler"),
                                tuple(spec.get("also_samplers") or ()),
                                tuple(int(k) for k in spec.get("steps") or ()), spec.get("reference_steps"),
                                int(spec.get("cross_fit") or 0)))
    benchmarks = []
    for spec in raw.get("benchmarks") or []:
        if not isinstance(spec, dict) or "name" not in spec or "data" not in spec:
            raise InputError("every study benchmark needs a 'name' and 'data'")
        benchmark = from_mapping(BenchmarkSpec, spec, f"benchmark {spec['name']!r}")
        if benchmark.box is not None:
            benchmark = dataclasses.replace(benchmark, box=tuple(float(v) for v in benchmark.box))
        benchmarks.append(benchmark)
    checkpoints = []
    for name, spec in (raw.get("checkpoints") or {}).items():
        if not isinstance(spec, dict) or "path" not in spec:
            raise InputError(f"study checkpoint {name!r} needs a 'path' (its checkpoint folder)")
        checkpoints.append(from_mapping(CheckpointSpec, {"name": str(name), **spec}, f"checkpoint {name!r}"))
    settings = {k: v for k, v in raw.items() if k not in ("models", "benchmarks", "checkpoints")}
    return from_mapping(StudyConfig, {**settings, "models": tuple(models), "benchmarks": tuple(benchmarks),
                                      "checkpoints": tuple(checkpoints)}, "study")
