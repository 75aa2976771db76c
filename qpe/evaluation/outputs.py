"""The files of an evaluation: ``scores.nc``, ``scores.csv``, ``scorecard.csv`` (two models or more),
``figures/*.png``, ``report.html``, ``evaluation.yaml`` and, for later studies, ``statistics/<model>.nc``
(each written whole or not at all)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import xarray as xr
import yaml

from qpe import __version__
from qpe.evaluation.summary import MODEL_COORDS, score_table, scorecard_of, split_scores
from qpe.files import atomic_write
from qpe.settings import plain
from qpe.verify import ScoreAccumulator
from qpe.verify.comparison import scorecard_frame


@dataclass(frozen=True)
class EvaluationOutputs:
    """Paths written by :func:`write_outputs`."""

    folder: Path
    scores_nc: Path
    scores_csv: Path
    report: Path
    settings: Path
    figures: dict[str, Path]
    statistics: dict[str, Path]
    scorecard: Path | None = None


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def write_outputs(
    scores: xr.Dataset,
    folder: str | os.PathLike,
    *,
    accumulators: dict[str, ScoreAccumulator] | None = None,
) -> EvaluationOutputs:
    """Write ``scores.nc``, ``scores.csv``, ``scorecard.csv``, ``figures/*.png``, ``report.html`` and
    ``evaluation.yaml``.

    Parameters
    ----------
    scores : xarray.Dataset
        Output of :func:`evaluate_period`.
    folder : path-like
        Output folder (created).
    accumulators : dict, optional
        The per-day statistics of each model, written to ``statistics/<model>.nc`` so that a later
        study can merge or re-bootstrap them (:meth:`ScoreAccumulator.from_dataset`).

    Returns
    -------
    EvaluationOutputs
    """
    from qpe.evaluation.figures import write_figures
    from qpe.evaluation.report import write_report

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values, ci = split_scores(scores)
    table = score_table(scores)
    scores_nc = atomic_write(folder / "scores.nc", lambda p: scores.to_netcdf(p, engine="netcdf4"))
    scores_csv = atomic_write(folder / "scores.csv", lambda p: table.to_csv(p, index=False, float_format="%.10g"))
    settings = {
        "evaluation": json.loads(scores.attrs.get("qpe_evaluation_config", "{}")),
        "data": scores.attrs.get("data", ""),
        "period": [scores.attrs.get("period_start", ""), scores.attrs.get("period_end", "")],
        "models": {
            str(m): {k: plain(scores[k].values[i]) for k in (*MODEL_COORDS, "path") if k in scores.coords}
            for i, m in enumerate(scores["model"].values)
        },
        "qpe_version": scores.attrs.get("qpe_version", __version__),
        "created": scores.attrs.get("created", ""),
    }
    settings_path = atomic_write(
        folder / "evaluation.yaml", lambda p: p.write_text(yaml.safe_dump(settings, sort_keys=False))
    )
    card = scorecard_of(scores)
    scorecard_csv = None if card is None else atomic_write(
        folder / "scorecard.csv", lambda p: scorecard_frame(card).to_csv(p, index=False, float_format="%.10g")
    )
    figures = write_figures(values, folder / "figures")
    report = write_report(values, table, figures, folder / "report.html", ci=ci)
    statistics = {}
    if accumulators:
        (folder / "statistics").mkdir(exist_ok=True)
        for name, acc in accumulators.items():
            path = folder / "statistics" / f"{_safe_name(name)}.nc"
            statistics[name] = atomic_write(
                path, lambda p, acc=acc: acc.to_dataset().to_netcdf(p, engine="netcdf4")
            )
    return EvaluationOutputs(folder, scores_nc, scores_csv, report, settings_path, figures, statistics,
                             scorecard_csv)
