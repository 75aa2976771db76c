"""Evaluation of models over a period: Dask-parallel scoring, score files, figures and an HTML report.

::

    from qpe.evaluation import EvaluationConfig, evaluate_period, write_outputs
    from qpe.inference.estimators import find_estimators

    scores = evaluate_period("data/demo/demo.zarr", find_estimators(["models/demo"]),
                             "2021-06-01T06:00", "2021-06-01T12:00", EvaluationConfig())
    write_outputs(scores, "eval/")      # scores.nc, scores.csv, figures/*.png, report.html

:mod:`~qpe.evaluation.runner` runs the models over a period (:mod:`~qpe.evaluation.period` chooses the
times and tasks, :mod:`~qpe.evaluation.tasks` runs them) and :mod:`~qpe.evaluation.summary` turns the
accumulated statistics into scores with intervals; :mod:`~qpe.evaluation.outputs` writes the files,
:mod:`~qpe.evaluation.figures` draws the standard figures for any number of models and
:mod:`~qpe.evaluation.report` writes the page.
"""

from qpe.evaluation.config import EvaluationConfig
from qpe.evaluation.outputs import EvaluationOutputs, write_outputs
from qpe.evaluation.period import select_period
from qpe.evaluation.runner import accumulate_period, evaluate_period
from qpe.evaluation.summary import open_scores, score_table, split_scores, summarize_scores

__all__ = [
    "EvaluationConfig",
    "EvaluationOutputs",
    "accumulate_period",
    "evaluate_period",
    "open_scores",
    "score_table",
    "select_period",
    "split_scores",
    "summarize_scores",
    "write_outputs",
]
