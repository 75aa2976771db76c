"""The four hypotheses of the model comparison study, judged from a benchmark's headline table.

Conventions (stated on the study page too):

- Scores of an ensemble are means over members: they judge one realisation, as a forecaster sees it.
- H1-H3 concern the largest T of the study. "At K <= 8" means with a budget of at most 8 sampler
  steps: a hypothesis holds when some K <= 8 satisfies all of its conditions; the page lists which K do.
- "Within [a, b]" for the power-spectrum ratio means every wavelength bin of 8-32 km lies in [a, b];
  "< 0.5" for the U-Net means every bin of the band lies below 0.5.
- H3's "matches DDPM@K_max realism": for each of |log spectral ratio|, |wet-fraction ratio - 1| and
  |p99 ratio - 1| the flow's error is at most DDPM@K_max's plus 0.05, with at most a tenth of its network
  evaluations.
- H4 compares each family at its reference K (the U-Net has no K; its CRPS is its mean absolute error).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qpe.study.config import StudyConfig
from qpe.study.plan import checkpoint_name, variant_name

#: Tolerance of H3's "matches realism".
REALISM_TOLERANCE = 0.05
#: A U-Net CSI below this is no skill: H1 then has nothing to match and is "not tested".
NO_SKILL = 0.02


@dataclass
class Verdict:
    """A hypothesis judged on one benchmark: ``holds`` is None when the table lacks what it needs."""

    number: int
    statement: str
    holds: bool | None
    evidence: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return {True: "holds", False: "does not hold", None: "not tested"}[self.holds]


@dataclass(frozen=True)
class Roles:
    """Which study model plays which part."""

    unet: str
    ddpm: str
    gaussian: str
    residual: str

    @classmethod
    def of(cls, study: StudyConfig) -> Roles:
        residual = next(m for m in study.models if m.family == "flow" and m.base is not None)
        gaussian = next(m for m in study.models if m.family == "flow" and m.base is None)
        ddpm = next(m for m in study.models if m.family == "ddpm")
        return cls(residual.base, ddpm.name, gaussian.name, residual.name)


def _rows(table: pd.DataFrame, model: str, frames: int) -> pd.DataFrame:
    """The variants of ``model`` at T = ``frames`` with the model's own sampler, by K."""
    own = (table["base_model"] == model) & (table["frames"] == frames) & (table["alt_sampler"] == "")
    return table[own].sort_values("steps")


def _f(x: float) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.3f}"


def realism_errors(row: pd.Series) -> np.ndarray:
    """|log spectral ratio 8-32 km|, |wet-fraction ratio - 1|, |p99 ratio - 1|."""
    return np.abs([np.log(row["psd_ratio"]), row["wet_fraction_ratio"] - 1, row["p99_ratio"] - 1])


def judge(table: pd.DataFrame, study: StudyConfig, max_steps: int = 8) -> list[Verdict]:
    """The verdicts of H1-H4 on one benchmark's :func:`~qpe.study.metrics.headline_metrics` table."""
    roles = Roles.of(study)
    t_hi, t_lo = max(study.frames), min(study.frames)
    unet = table.loc[checkpoint_name(roles.unet, t_hi)] if checkpoint_name(roles.unet, t_hi) in table.index else None
    residual = _rows(table, roles.residual, t_hi)
    budget = residual[residual["steps"] <= max_steps]
    ddpm = _rows(table, roles.ddpm, t_hi)
    return [
        _h1(unet, budget, t_hi, max_steps),
        _h2(unet, budget, t_hi, max_steps),
        _h3(residual, ddpm, t_hi),
        _h4(table, study, roles, t_lo, t_hi),
    ]


def _h1(unet, budget, t, max_steps) -> Verdict:
    v = Verdict(1, f"Residual flow matching at K <= {max_steps}: CSI at 1 mm/h >= 0.95 x U-Net's and "
                   "FSS (5 mm/h, 32 km) >= U-Net's - 0.02", None)
    if unet is None or budget.empty:
        return v
    good = []
    v.evidence.append(f"U-Net (T={t}): CSI@1 {_f(unet.csi_1)}, FSS(5, 32 km) {_f(unet.fss_5_32)}"
                      + (" (no skill at 1 mm/h: the comparison is degenerate)" if unet.csi_1 < NO_SKILL else ""))
    for name, row in budget.iterrows():
        ok = row.csi_1 >= 0.95 * unet.csi_1 and row.fss_5_32 >= unet.fss_5_32 - 0.02
        good += [int(row.steps)] if ok else []
        v.evidence.append(f"{name}: CSI@1 {_f(row.csi_1)} ({_f(row.csi_1 / unet.csi_1 if unet.csi_1 else np.nan)}"
                          f" x U-Net), FSS {_f(row.fss_5_32)} ({row.fss_5_32 - unet.fss_5_32:+.3f}) "
                          f"-> {'yes' if ok else 'no'}")
    if unet.csi_1 < NO_SKILL:  # matching a U-Net that never reaches 1 mm/h says nothing about placement
        v.evidence.append(f"conditions met at K = {good}, but against a U-Net without skill: not a test")
        return v
    v.holds = bool(good)
    v.evidence.append(f"holds at K = {good}" if good else "holds at no K")
    return v


def _h2(unet, budget, t, max_steps) -> Verdict:
    v = Verdict(2, f"Residual flow at K <= {max_steps}: power-spectrum ratio to radar at 8-32 km within "
                   "[0.7, 1.4] where the U-Net's is < 0.5; wet fraction and p99 within 15% of radar", None)
    if unet is None or budget.empty:
        return v
    unet_smooth = bool(unet.psd_ratio_max < 0.5)
    v.evidence.append(f"U-Net (T={t}): spectral ratio 8-32 km {_f(unet.psd_ratio_min)}..{_f(unet.psd_ratio_max)}"
                      f" -> {'< 0.5' if unet_smooth else 'not < 0.5'}")
    good = []
    for name, row in budget.iterrows():
        spectrum = 0.7 <= row.psd_ratio_min and row.psd_ratio_max <= 1.4
        amounts = abs(row.wet_fraction_ratio - 1) <= 0.15 and abs(row.p99_ratio - 1) <= 0.15
        ok = spectrum and amounts
        good += [int(row.steps)] if ok else []
        v.evidence.append(f"{name}: spectral ratio {_f(row.psd_ratio_min)}..{_f(row.psd_ratio_max)}, "
                          f"wet fraction x{_f(row.wet_fraction_ratio)}, p99 x{_f(row.p99_ratio)} "
                          f"-> {'yes' if ok else 'no'}")
    v.holds = bool(good) and unet_smooth
    v.evidence.append(f"flow conditions hold at K = {good}" if good else "flow conditions hold at no K")
    return v


def _h3(residual, ddpm, t) -> Verdict:
    v = Verdict(3, "Residual flow beats DDPM (at any K) on CSI and CRPS, and matches the realism of DDPM at "
                   "its largest K with >= 10x fewer network evaluations", None)
    if residual.empty or ddpm.empty:
        return v
    best_csi, best_crps = ddpm.csi_1.max(), ddpm.crps.min()
    top = ddpm.iloc[-1]  # largest K
    v.evidence.append(f"DDPM (T={t}) over K = {[int(k) for k in ddpm.steps]}: best CSI@1 {_f(best_csi)}, "
                      f"best CRPS {_f(best_crps)}; at K={int(top.steps)} ({int(top.nfe)} NFE) realism errors "
                      + ", ".join(_f(e) for e in realism_errors(top)))
    beats, matches = [], []
    for name, row in residual.iterrows():
        beat = row.csi_1 > best_csi and row.crps < best_crps
        cheap = row.nfe * 10 <= top.nfe
        match = cheap and bool(np.all(realism_errors(row) <= realism_errors(top) + REALISM_TOLERANCE))
        beats += [int(row.steps)] if beat else []
        matches += [int(row.steps)] if match else []
        v.evidence.append(f"{name} ({int(row.nfe)} NFE): CSI@1 {_f(row.csi_1)}, CRPS {_f(row.crps)}, realism "
                          "errors " + ", ".join(_f(e) for e in realism_errors(row))
                          + f" -> beats DDPM: {'yes' if beat else 'no'}, matches its realism cheaply: "
                          f"{'yes' if match else 'no'}")
    v.holds = bool(beats) and bool(matches)
    v.evidence.append(f"beats DDPM at K = {beats}; matches DDPM@{int(top.steps)} realism at K = {matches}")
    return v


def _h4(table, study, roles, t_lo, t_hi) -> Verdict:
    v = Verdict(4, f"T = {t_hi} beats T = {t_lo} on CSI at 1 mm/h and on CRPS, for every family", None)
    if t_lo == t_hi:
        return v
    results = []
    for model in (roles.unet, roles.ddpm, roles.gaussian, roles.residual):
        k = study.model(model).reference_steps
        lo, hi = variant_name(model, t_lo, k), variant_name(model, t_hi, k)
        if lo not in table.index or hi not in table.index:
            return v
        a, b = table.loc[lo], table.loc[hi]
        ok = b.csi_1 > a.csi_1 and b.crps < a.crps
        results.append(ok)
        v.evidence.append(f"{model}{f' K={k}' if k else ''}: CSI@1 {_f(a.csi_1)} -> {_f(b.csi_1)}, "
                          f"CRPS {_f(a.crps)} -> {_f(b.crps)} -> {'yes' if ok else 'no'}")
    v.holds = all(results)
    return v
