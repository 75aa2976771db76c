"""The four hypotheses of the model comparison study, each decided by bootstrap intervals.

How a hypothesis is decided is set here and nowhere else: :data:`CONVENTIONS` (the rules in words,
printed on the study page) and :data:`RULES` (every condition: the statistic, and what its interval must
satisfy; the page prints them with :func:`rules_table`). In short: a condition holds only when the
whole bootstrap interval of its statistic satisfies it; comparisons between models are paired
(difference or ratio on each replicate); a hypothesis holds when all its conditions hold (at one K).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from qpe.study.config import StudyConfig
from qpe.study.intervals import Interval
from qpe.study.metrics import PLACEMENT, Headline
from qpe.study.plan import checkpoint_name, variant_name
from qpe.verify.bootstrap import MIN_DAYS, MIN_UNITS

#: Tolerance of H3's "matches realism" (errors at most DDPM@K_max's plus this).
REALISM_TOLERANCE = 0.05
#: A U-Net placement not shown above this is no skill: H1 then has nothing to match ("not tested").
NO_SKILL = 0.02
#: H3's cost: at least this many times fewer network evaluations than DDPM at its largest K.
COST_FACTOR = 10


#: The conventions of the verdicts, in words (the study page prints them; docs/study.md explains them).
CONVENTIONS = (
    ("A condition holds only when the **whole bootstrap interval** of its statistic satisfies it (95 % "
    "by default): 'ratio >= 0.95' holds when the interval's lower bound is >= 0.95, 'difference < 0' when "
    "its upper bound is < 0, 'within [a, b]' when both bounds are. A better-than must be better by more "
    "than the noise; a within-noise result does not hold."),
    ("A statistic comparing two models is **paired**: the difference (or ratio) is taken on every "
    "bootstrap replicate, in which both models are scored on the same resampled days (or times), and the "
    "interval of those replicates decides, never two separate intervals. Counts (network evaluations) "
    "are exact."),
    ("The resampling unit is the UTC day, or the times within each day when a benchmark has fewer than "
    f"{MIN_DAYS} days (each benchmark says which). With fewer than {MIN_UNITS} units that vary (days, or "
    "times of days with two or more) the intervals are shown but decide nothing: 'not tested'."),
    ("The thresholds (0.95, -0.02, [0.7, 1.4], 15 %, 0.05, 10x) are the hypotheses' own, set before the "
    "results; they are not tuned to the data."),
    ("Scores of an ensemble are means over members: they judge one realisation. **Placement** is the CSI "
    "at matched wet fraction at 1 mm/h (each field thresholded where it is as often wet as radar is above "
    "1 mm/h): a single member is not charged twice for a displaced cell against the U-Net's smooth, "
    "too-wide field, and neither gains from its frequency bias. **CRPS** is the fair CRPS of an ensemble "
    "(unbiased for few members), the mean absolute error of the U-Net."),
    ("H1-H3 concern the largest T. 'At K <= 8': some K <= 8 satisfies *all* the conditions at once (the "
    "evidence lists every K). H3's two parts (beats DDPM, at each of DDPM's K; matches DDPM@K_max realism "
    "with a tenth of its network evaluations) must hold at the same K."),
    (f"H1 is 'not tested' against a U-Net whose placement is not shown above no skill ({NO_SKILL}). H4 "
    "compares each family at its reference K (the U-Net has no K)."),
)


@dataclass(frozen=True)
class Claim:
    """What the interval ``[low, high]`` of a statistic must satisfy: ``low >= at_least`` and
    ``high <= at_most`` (``>`` and ``<`` when ``strict``); an undefined interval never satisfies it."""

    at_least: float | None = None
    at_most: float | None = None
    strict: bool = False

    def holds(self, interval: Interval) -> bool:
        if not interval.defined:
            return False
        above = self.at_least is None or (interval.low > self.at_least if self.strict
                                          else interval.low >= self.at_least)
        below = self.at_most is None or (interval.high < self.at_most if self.strict
                                         else interval.high <= self.at_most)
        return bool(above and below)

    def describe(self) -> str:
        """E.g. 'lower bound >= 0.95', 'upper bound < 0', 'interval within [0.85, 1.15]'."""
        gt, lt = (">", "<") if self.strict else (">=", "<=")
        if self.at_least is not None and self.at_most is not None:
            return f"interval within [{self.at_least:g}, {self.at_most:g}]"
        if self.at_least is not None:
            return f"lower bound {gt} {self.at_least:g}"
        return f"upper bound {lt} {self.at_most:g}"


@dataclass(frozen=True)
class Condition:
    """A claim about one headline statistic of a model, or of a model against another.

    Parameters
    ----------
    label : str
        What is measured, for the page.
    column : str
        Headline column (:mod:`qpe.study.metrics`).
    how : {"value", "difference", "ratio"}
        The model's value, ``model - other`` or ``model / other`` (paired replicates).
    claim : Claim
        What its interval must satisfy.
    fmt : str
        Number format on the page.
    """

    label: str
    column: str
    how: str
    claim: Claim
    fmt: str = "{:.3f}"

    def check(self, headline: Headline, model: str, other: str | None = None) -> Check:
        interval = (headline.interval(model, self.column) if self.how == "value"
                    else headline.compare(model, other, self.column, self.how))
        subject = model if self.how == "value" else f"{model} {'-' if self.how == 'difference' else '/'} {other}"
        return Check(self, subject, interval, self.claim.holds(interval))


@dataclass(frozen=True)
class Check:
    """A condition measured on the benchmark: the interval that decides it, and the decision."""

    condition: Condition
    subject: str
    interval: Interval
    holds: bool

    def describe(self) -> str:
        fmt = "{:+.3f}" if self.condition.how == "difference" else self.condition.fmt
        return (f"{self.condition.label} ({self.subject}) {self.interval.format(fmt)}, needs "
                f"{self.condition.claim.describe()}: {'yes' if self.holds else 'no'}")


_PLACE = "placement (CSI at matched wet fraction, 1 mm/h)"
#: Every condition of every hypothesis (the decision rules; see the module notes).
RULES: dict[str, tuple[Condition, ...]] = {
    "H1 U-Net has skill": (Condition(f"U-Net {_PLACE}", PLACEMENT, "value", Claim(at_least=NO_SKILL)),),
    "H1 residual flow vs U-Net": (
        Condition(f"{_PLACE} residual flow / U-Net", PLACEMENT, "ratio", Claim(at_least=0.95)),
        Condition("FSS (5 mm/h, 32 km) residual flow - U-Net", "fss_5_32", "difference", Claim(at_least=-0.02)),
    ),
    "H2 U-Net smooth": (
        Condition("U-Net PSD ratio 8-32 km, largest bin", "psd_ratio_max", "value",
                  Claim(at_most=0.5, strict=True), "{:.2f}"),
    ),
    "H2 residual flow realistic": (
        Condition("PSD ratio 8-32 km, smallest bin", "psd_ratio_min", "value", Claim(at_least=0.7), "{:.2f}"),
        Condition("PSD ratio 8-32 km, largest bin", "psd_ratio_max", "value", Claim(at_most=1.4), "{:.2f}"),
        Condition("wet fraction / radar", "wet_fraction_ratio", "value", Claim(0.85, 1.15), "{:.2f}"),
        Condition("p99 / radar", "p99_ratio", "value", Claim(0.85, 1.15), "{:.2f}"),
    ),
    "H3 residual flow beats DDPM (at each DDPM K)": (
        Condition(f"{_PLACE} residual flow - DDPM", PLACEMENT, "difference", Claim(at_least=0.0, strict=True)),
        Condition("fair CRPS residual flow - DDPM", "crps", "difference", Claim(at_most=0.0, strict=True)),
    ),
    "H3 residual flow matches DDPM@K_max realism, cheaply": (
        Condition("|log PSD ratio| residual flow - DDPM@K_max", "psd_error", "difference",
                  Claim(at_most=REALISM_TOLERANCE)),
        Condition("|wet fraction ratio - 1| residual flow - DDPM@K_max", "wet_fraction_error", "difference",
                  Claim(at_most=REALISM_TOLERANCE)),
        Condition("|p99 ratio - 1| residual flow - DDPM@K_max", "p99_error", "difference",
                  Claim(at_most=REALISM_TOLERANCE)),
        Condition("network evaluations residual flow / DDPM@K_max (exact)", "nfe", "ratio",
                  Claim(at_most=1.0 / COST_FACTOR)),
    ),
    "H4 T max beats T min (each family)": (
        Condition(f"{_PLACE} T max - T min", PLACEMENT, "difference", Claim(at_least=0.0, strict=True)),
        Condition("fair CRPS T max - T min", "crps", "difference", Claim(at_most=0.0, strict=True)),
    ),
}


def rules_table() -> list[tuple[str, str, str]]:
    """(part of a hypothesis, statistic, what its interval must satisfy) for every condition."""
    return [(part, c.label, c.claim.describe()) for part, conditions in RULES.items() for c in conditions]


@dataclass
class Verdict:
    """A hypothesis judged on one benchmark: ``holds`` is None when it could not be tested.

    ``decision`` names the interval(s) that decided it: the checks of the first K where every condition
    holds, or the first failing check of each K (or family).
    """

    number: int
    statement: str
    holds: bool | None
    evidence: list[str] = field(default_factory=list)
    decision: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {True: "holds", False: "does not hold", None: "not tested"}[self.holds]


@dataclass(frozen=True)
class Roles:
    """Which study model plays which part (the first of each kind; None when the study has none, e.g. an
    ablation of residual flows: the hypotheses that need it are then not tested)."""

    unet: str | None
    ddpm: str | None
    gaussian: str | None
    residual: str | None

    @classmethod
    def of(cls, study: StudyConfig) -> Roles:
        def first(family: str, anchored: bool | None = None) -> str | None:
            return next((m.name for m in study.models if m.family == family
                         and (anchored is None or (m.base is not None) == anchored)), None)

        residual = first("flow", anchored=True)
        return cls(study.model(residual).base if residual else first("unet"), first("ddpm"),
                   first("flow", anchored=False), residual)


def _rows(table: pd.DataFrame, model: str, frames: int) -> pd.DataFrame:
    """The variants of ``model`` at T = ``frames`` with the model's own sampler, by K."""
    own = (table["base_model"] == model) & (table["frames"] == frames) & (table["alt_sampler"] == "")
    return table[own].sort_values("steps")


def _checks(part: str, headline: Headline, model: str, other: str | None = None) -> list[Check]:
    return [c.check(headline, model, other) for c in RULES[part]]


def _decide(v: Verdict, candidates: dict[str, list[Check]], every: bool = False) -> None:
    """``holds`` when some candidate (or, with ``every``, each) passes all its checks; the decision."""
    passing = [key for key, checks in candidates.items() if all(c.holds for c in checks)]
    for key, checks in candidates.items():
        v.evidence.append(f"{key}: " + "; ".join(c.describe() for c in checks)
                          + f" -> {'yes' if key in passing else 'no'}")
    v.holds = len(passing) == len(candidates) if every else bool(passing)
    failing = {k: next(c for c in checks if not c.holds) for k, checks in candidates.items() if k not in passing}
    if v.holds and not every:
        v.decision = [f"{passing[0]}: {c.describe()}" for c in candidates[passing[0]]]
    elif v.holds:
        v.decision = [f"{k}: {c.describe()}" for k, checks in candidates.items() for c in checks]
    else:
        v.decision = [f"{k}: {c.describe()}" for k, c in failing.items()]


def judge(headline: Headline, study: StudyConfig, max_steps: int = 8) -> list[Verdict]:
    """The verdicts of H1-H4 on one benchmark's :class:`~qpe.study.metrics.Headline` (with intervals)."""
    roles = Roles.of(study)
    table = headline.values
    t_hi, t_lo = max(study.frames), min(study.frames)
    unet = checkpoint_name(roles.unet, t_hi) if checkpoint_name(roles.unet, t_hi) in table.index else None
    residual = _rows(table, roles.residual, t_hi)
    budget = residual[residual["steps"] <= max_steps]
    ddpm = _rows(table, roles.ddpm, t_hi)
    verdicts = [
        _h1(headline, unet, budget, t_hi, max_steps),
        _h2(headline, unet, budget, t_hi, max_steps),
        _h3(headline, residual, ddpm, t_hi),
        _h4(headline, study, roles, t_lo, t_hi),
    ]
    if not headline.resampling.decides:  # no claim without an interval over enough units
        why = (f"intervals over {headline.resampling.n_units} units decide nothing (needs {MIN_UNITS})"
               if headline.resampling.has_intervals else "no bootstrap interval")
        for v in verdicts:
            if v.evidence:
                v.holds, v.decision = None, [f"{why}: {headline.resampling.describe()}"]
    return verdicts


def _k(name: str, table: pd.DataFrame) -> str:
    return f"K = {int(table.loc[name, 'steps'])} ({name})"


def _h1(headline: Headline, unet: str | None, budget: pd.DataFrame, t: int, max_steps: int) -> Verdict:
    v = Verdict(1, f"Residual flow matching at K <= {max_steps} keeps the U-Net's placement (T = {t}): placement "
                   "(CSI at matched wet fraction, 1 mm/h) >= 0.95 x U-Net's and FSS (5 mm/h, 32 km) >= U-Net's "
                   "- 0.02", None)
    if unet is None or budget.empty:
        return v
    skill = _checks("H1 U-Net has skill", headline, unet)[0]
    v.evidence.append(skill.describe())
    _decide(v, {_k(name, headline.values): _checks("H1 residual flow vs U-Net", headline, name, unet)
                for name in budget.index})
    if not skill.holds:  # matching a U-Net that never places 1 mm/h says nothing about placement
        v.holds, v.decision = None, [f"not a test: {skill.describe()}"]
    return v


def _h2(headline: Headline, unet: str | None, budget: pd.DataFrame, t: int, max_steps: int) -> Verdict:
    v = Verdict(2, f"Residual flow at K <= {max_steps}: power-spectrum ratio to radar at 8-32 km within "
                   "[0.7, 1.4] where the U-Net's is < 0.5; wet fraction and p99 within 15% of radar", None)
    if unet is None or budget.empty:
        return v
    smooth = _checks("H2 U-Net smooth", headline, unet)[0]
    v.evidence.append(smooth.describe())
    _decide(v, {_k(name, headline.values): _checks("H2 residual flow realistic", headline, name)
                for name in budget.index})
    if not smooth.holds:
        v.holds = False
        v.decision.insert(0, smooth.describe())
    return v


def _h3(headline: Headline, residual: pd.DataFrame, ddpm: pd.DataFrame, t: int) -> Verdict:
    v = Verdict(3, f"Residual flow (T = {t}), at one K, beats DDPM at every K on placement and fair CRPS, and "
                   f"matches the realism of DDPM at its largest K with >= {COST_FACTOR}x fewer network "
                   "evaluations", None)
    if residual.empty or ddpm.empty:
        return v
    top = ddpm.index[-1]  # largest K
    v.evidence.append(f"DDPM at K = {[int(k) for k in ddpm.steps]}; realism reference {top} "
                      f"({int(ddpm.loc[top, 'nfe'])} NFE)")
    candidates = {}
    for name in residual.index:
        beats = [c for d in ddpm.index for c in _checks("H3 residual flow beats DDPM (at each DDPM K)", headline,
                                                         name, d)]
        matches = _checks("H3 residual flow matches DDPM@K_max realism, cheaply", headline, name, top)
        candidates[_k(name, headline.values)] = beats + matches
    _decide(v, candidates)
    return v


def _h4(headline: Headline, study: StudyConfig, roles: Roles, t_lo: int, t_hi: int) -> Verdict:
    v = Verdict(4, f"T = {t_hi} beats T = {t_lo} on placement and on fair CRPS, for every family", None)
    models = (roles.unet, roles.ddpm, roles.gaussian, roles.residual)
    if t_lo == t_hi or None in models:
        return v
    candidates = {}
    for model in models:
        k = study.model(model).reference_steps
        lo, hi = variant_name(model, t_lo, k), variant_name(model, t_hi, k)
        if lo not in headline.values.index or hi not in headline.values.index:
            return v
        candidates[f"{model}{f' K={k}' if k else ''}"] = _checks("H4 T max beats T min (each family)", headline,
                                                                 hi, lo)
    _decide(v, candidates, every=True)
    return v

