"""What each model family samples with: one table of samplers, and a request to sample resolved once.

Everything the rest of qpe knows about samplers comes from :data:`SAMPLERS`: the samplers a family
allows (its first row is the family's default), the defaults a model card fills in, the solver a model
calls, the cost in network evaluations, the options a sampler takes (DDIM's ``eta``) and the command
line's choices. A request (members, steps, sampler, options; any of them left to the card) is turned into
a validated, frozen :class:`SamplingSettings` by :func:`resolve_sampling` — once, where the card is
known — and passed unchanged down to ``model.sample(ir, settings, generator)``.

Adding a sampler is one solver function in :mod:`qpe.models.samplers` (with the signature of its family,
below) and one row here. A family's solvers all share one signature:

- ``ddpm``: ``solve(denoise, schedule, x, steps, *, generator, **options) -> x_0``;
- ``flow``: ``solve(velocity, x, steps, *, generator, **options) -> x_1``.

This module imports no torch (``qpe --help`` lists the samplers without it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qpe.errors import InputError
from qpe.models import samplers

#: Model families, and the model-card section that holds each one's objective (None: no section).
FAMILIES: dict[str, str | None] = {"unet": None, "ddpm": "diffusion", "flow": "flow"}
#: Most ensemble members one estimate draws: ensemble scores settle with tens of members, and 256
#: members of the full OPERA grid (2200 x 1900) already hold 4 GiB per time.
MAX_MEMBERS = 256
#: Most steps of a flow solver: the scores of the demo flows stop changing by K = 16 (docs/study.md), so
#: more than 1000 steps only spend time (a run of 10^6 steps would not end).
MAX_FLOW_STEPS = 1000


@dataclass(frozen=True)
class SamplerOption:
    """A numeric option of a sampler: its default and the closed range it must lie in."""

    default: float
    low: float
    high: float
    doc: str = ""


@dataclass(frozen=True)
class Sampler:
    """One row of the sampler table.

    Parameters
    ----------
    name : str
        What cards, configs and the command line call it.
    family : str
        The family whose models it samples (a key of :data:`FAMILIES`).
    solve : callable
        The solver (:mod:`qpe.models.samplers`), with its family's signature (module notes).
    evaluations_per_step : int
        Network evaluations per step (Heun and midpoint: 2).
    default_steps : int
        Steps K when neither the request nor the card says.
    options : mapping
        Option name -> :class:`SamplerOption`, passed to ``solve`` as keywords.
    max_steps : int or None
        Most steps accepted (None: only the model's own bound, e.g. a diffusion schedule's length).
    summary : str
        One line for help texts.
    """

    name: str
    family: str
    solve: Callable[..., Any]
    evaluations_per_step: int
    default_steps: int
    options: Mapping[str, SamplerOption] = field(default_factory=dict)
    max_steps: int | None = None
    summary: str = ""

    def network_evaluations(self, steps: int) -> int:
        """Network evaluations of one sample in ``steps`` steps."""
        return self.evaluations_per_step * steps


#: Every sampler, by name; a family's first row is its default.
SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler("ddim", "ddpm", samplers.ddim, 1, 20,
                {"eta": SamplerOption(0.0, 0.0, 1.0, "0: deterministic given the initial noise; 1: ancestral")},
                summary="DDIM (Song et al. 2021) over K steps of the training schedule"),
        Sampler("ddpm", "ddpm", samplers.ddpm, 1, 20, summary="ancestral DDPM (Ho et al. 2020), K strided steps"),
        Sampler("dpmpp2m", "ddpm", samplers.dpm_solver_2m, 1, 10,
                summary="DPM-Solver++(2M) (Lu et al. 2022), 2nd-order multistep, K evaluations"),
        Sampler("heun", "flow", samplers.heun, 2, 8, max_steps=MAX_FLOW_STEPS,
                summary="Heun's 2nd-order method, 2K evaluations (the last at t = 1)"),
        Sampler("euler", "flow", samplers.euler, 1, 8, max_steps=MAX_FLOW_STEPS,
                summary="explicit Euler, K evaluations"),
        Sampler("midpoint", "flow", samplers.midpoint, 2, 8, max_steps=MAX_FLOW_STEPS,
                summary="explicit midpoint (2nd-order Runge-Kutta), 2K evaluations, none at t = 1"),
    )
}


def family_samplers(family: str) -> tuple[str, ...]:
    """The samplers of ``family``, its default first (empty for a deterministic family)."""
    return tuple(name for name, s in SAMPLERS.items() if s.family == family)


def is_ensemble(family: str) -> bool:
    """Whether models of ``family`` draw members (they have samplers) rather than one field."""
    return bool(family_samplers(family))


@dataclass(frozen=True)
class SamplingSettings:
    """How a model draws its estimate, resolved and validated (see :func:`resolve_sampling`).

    Parameters
    ----------
    members : int
        Ensemble members M (1 for a deterministic model).
    sampler : str or None
        A row of :data:`SAMPLERS`; None for a deterministic model.
    steps : int or None
        Sampler steps K; None for a deterministic model.
    options : tuple of (str, float)
        Every option of the sampler with its value, sorted by name.
    """

    members: int = 1
    sampler: str | None = None
    steps: int | None = None
    options: tuple[tuple[str, float], ...] = ()

    @property
    def is_ensemble(self) -> bool:
        """Whether a sampler draws the fields (so the seed matters)."""
        return self.sampler is not None

    @property
    def solver(self) -> Sampler:
        """The sampler's row of :data:`SAMPLERS` (an error for a deterministic model)."""
        if self.sampler is None:
            raise InputError("a deterministic model has no sampler")
        return SAMPLERS[self.sampler]

    def seed(self, seed: int) -> int | None:
        """The seed that matters for an estimate drawn with these settings: None for a deterministic model."""
        return seed if self.is_ensemble else None

    @property
    def network_evaluations(self) -> int:
        """Network evaluations of one sample (one forward pass for a deterministic model)."""
        return 1 if self.sampler is None else self.solver.network_evaluations(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"members": self.members, "sampler": self.sampler, "steps": self.steps,
                "options": dict(self.options)}


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")
    return value


def resolve_sampling(
    family: str,
    defaults: SamplingSettings,
    *,
    members: int = 1,
    steps: int | None = None,
    sampler: str | None = None,
    options: Mapping[str, float] | None = None,
    max_steps: int | None = None,
) -> SamplingSettings:
    """A request to sample, completed from a model's defaults and validated.

    Parameters
    ----------
    family : str
        The model's family.
    defaults : SamplingSettings
        The model card's sampler, steps and options (its ``members`` is not used); any may be None.
    members : int
        Ensemble members asked for (a deterministic model gives one whatever is asked).
    steps, sampler : optional
        Steps K and sampler; None for the card's, else the table's default. Ignored by a deterministic
        model. Steps default to the card's even when another sampler is asked for.
    options : mapping, optional
        Sampler options asked for (e.g. ``{"eta": 0.5}`` for DDIM); the card's, else the table's, for the rest.
    max_steps : int, optional
        The model's own bound on steps (a diffusion schedule's length).

    Raises
    ------
    InputError
        Unknown family, sampler of another family, steps or members out of range, unknown option or
        option out of range.
    """
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    _positive_int(members, "members")
    if members > MAX_MEMBERS:
        raise InputError(f"members must be at most {MAX_MEMBERS}, got {members}: ensemble scores settle with "
                         f"tens of members, and {MAX_MEMBERS} members of the OPERA grid already take 4 GiB per time")
    known = family_samplers(family)
    if not known:
        return SamplingSettings()
    name = sampler or defaults.sampler or known[0]
    if name not in known:
        raise InputError(f"a {family} model samples with {' or '.join(known)}, not {name!r}")
    row = SAMPLERS[name]
    k = _positive_int(steps if steps is not None else defaults.steps or row.default_steps, "sampler steps")
    for bound, why in ((row.max_steps, "more do not change a sample, they only take time"),
                       (max_steps, "the model's diffusion timesteps")):
        if bound is not None and k > bound:
            raise InputError(f"sampler steps must be at most {bound} ({why}), got {k}")
    asked = dict(options or {})
    unknown = sorted(set(asked) - set(row.options))
    if unknown:
        takes = ", ".join(row.options) or "none"
        raise InputError(f"sampler {name} takes no option {', '.join(unknown)} (its options: {takes})")
    card = dict(defaults.options)
    values = []
    for key, option in sorted(row.options.items()):
        value = float(asked.get(key, card.get(key, option.default)))
        if not option.low <= value <= option.high:
            raise InputError(f"{name} option {key} must be in [{option.low:g}, {option.high:g}], got {value:g}")
        values.append((key, value))
    return SamplingSettings(members, name, k, tuple(values))
