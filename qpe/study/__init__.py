"""The model comparison study: does flow matching keep U-Net placement and DDPM realism?

    result = run_study(load_study("studies/demo.yaml", quick=False), "results/demo")

:mod:`~qpe.study.config` (settings and the quick profile), :mod:`~qpe.study.plan` (what is trained and
scored), :mod:`~qpe.study.metrics` (headline numbers and their bootstrap replicates),
:mod:`~qpe.study.intervals` (an interval, what was resampled), :mod:`~qpe.study.hypotheses` (the
decision rules and verdicts), :mod:`~qpe.study.page` (study.md / study.html) and :mod:`~qpe.study.run`
(the whole run).
"""

from qpe.study.config import BenchmarkSpec, CheckpointSpec, ModelSpec, StudyConfig, load_study
from qpe.study.hypotheses import Verdict, judge
from qpe.study.metrics import Headline, headline_metrics, measure_headline
from qpe.study.run import StudyResult, run_study

__all__ = [
    "BenchmarkSpec",
    "CheckpointSpec",
    "Headline",
    "ModelSpec",
    "StudyConfig",
    "StudyResult",
    "Verdict",
    "headline_metrics",
    "judge",
    "load_study",
    "measure_headline",
    "run_study",
]
