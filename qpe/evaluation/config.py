"""Settings of a period evaluation, saved with its results as ``evaluation.yaml``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from qpe.errors import InputError
from qpe.inference.engine import EstimateConfig
from qpe.verify import ScoreConfig
from qpe.verify.bootstrap import UNITS


@dataclass(frozen=True)
class EvaluationConfig:
    """Settings of a period evaluation (saved with its results as ``evaluation.yaml``).

    Parameters
    ----------
    scores : ScoreConfig
        Thresholds, scales, families of scores.
    estimate : EstimateConfig
        Members, sampler steps, seed, device and tiling of the estimates.
    chunk_times : int
        Most times per Dask task (a task never spans two UTC days).
    common_mask : bool
        Score every model on the same pixels (see the module notes).
    n_resamples, confidence, bootstrap_seed
        Bootstrap: replicates (0: no intervals), coverage and seed.
    bootstrap_unit : {"day", "time"}
        Resample UTC days, or the times within each day (statistics are then kept per time; for periods
        of a few days, see :mod:`qpe.verify.bootstrap`).
    memory_budget_mb : float
        Rough bound on the fields a task holds at once (IR frames, every model's members, radar), MiB;
        it sets how many times are estimated together. At least one time is always taken.
    compare_to : str, optional
        Reference model of the scorecard (every other model's paired differences from it); every pair
        of models when None, up to 8 models (then the first is the reference;
        :func:`qpe.verify.comparison.comparison_pairs`).
    """

    scores: ScoreConfig = field(default_factory=ScoreConfig)
    estimate: EstimateConfig = field(default_factory=EstimateConfig)
    chunk_times: int = 8
    common_mask: bool = True
    n_resamples: int = 1000
    confidence: float = 0.95
    bootstrap_seed: int = 0
    bootstrap_unit: str = "day"
    memory_budget_mb: float = 1024.0
    compare_to: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_times < 1:
            raise InputError(f"chunk_times must be at least 1, got {self.chunk_times}")
        if self.n_resamples < 0:
            raise InputError(f"n_resamples must be 0 (no intervals) or more, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise InputError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.bootstrap_unit not in UNITS:
            raise InputError(f"bootstrap_unit must be {' or '.join(UNITS)}, got {self.bootstrap_unit!r}")

    @property
    def statistics_resolution(self) -> str:
        """What the accumulators keep their statistics per: the bootstrap unit (day or time)."""
        return self.bootstrap_unit

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["scores"] = self.scores.to_dict()
        return out
