"""Scores of a period read back or kept for a view: a ``qpe evaluate --out`` folder, the scorecard
against any reference model, the headline table with intervals and the per-case series of one score.

::

    period = open_evaluation("eval/")                  # scores.nc, statistics/<model>.nc, the settings
    card = period.against("unet").scorecard            # every other model minus unet
    table = period.headline_table()                    # scores.csv rows of the scorecard's scores
    series = period.series(period.cards[0])            # (model, case): that score on each day (or time)

A :class:`PeriodScores` holds what :func:`~qpe.evaluation.summarize_scores` made (the ``scores.nc``
layout) and, when kept, the merged per-case statistics it was made from. A scorecard against another
reference than the one computed is made by :func:`~qpe.evaluation.summarize_scores` again, with
``compare_to`` set: the numbers of ``qpe evaluate --compare-to REFERENCE`` on the same statistics.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe.errors import DatasetError, InputError
from qpe.evaluation.config import EvaluationConfig
from qpe.evaluation.summary import MODEL_COORDS, open_scores, score_table, scorecard_of, summarize_scores
from qpe.inference.engine import EstimateConfig
from qpe.netcdf import NETCDF_LOCK
from qpe.verify import ScoreAccumulator, ScoreConfig
from qpe.verify.comparison import CardScore, card_scores, case_scores

#: Attributes of an evaluation that describe its period and data (kept when the scorecard is remade).
PERIOD_ATTRS = ("data", "period_start", "period_end", "n_times", "n_skipped_times")


def evaluation_config(values: dict) -> EvaluationConfig:
    """The :class:`EvaluationConfig` of :meth:`EvaluationConfig.to_dict` (as saved in ``scores.nc`` and
    ``evaluation.yaml``).

    Raises
    ------
    DatasetError
        The mapping is not an evaluation's settings.
    """
    try:
        values = dict(values)
        scores = ScoreConfig.from_dict(values.pop("scores", {}))
        estimate = EstimateConfig(**values.pop("estimate", {}))
        return EvaluationConfig(scores=scores, estimate=estimate, **values)
    except (TypeError, ValueError, InputError) as err:
        raise DatasetError(f"not the settings of a qpe evaluation ({err})") from None


def card_score(scores: xr.Dataset, card: CardScore) -> xr.DataArray:
    """The score of a scorecard column itself (not its distance to a target), members averaged, at the
    card's threshold and scale; the other dims of ``scores`` kept (NaN where ``scores`` lacks it)."""
    if card.metric not in scores.data_vars:
        return xr.DataArray(np.nan)
    da = scores[card.metric]
    if "member" in da.dims:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN members: an undefined score
            da = da.mean("member", skipna=True)
    where = {k: v for k, v in (("threshold", card.threshold), ("scale", card.scale)) if v is not None}
    da = da.sel(where) if where else da
    return da.drop_vars([c for c in da.coords if c not in da.dims])


@dataclass
class PeriodScores:
    """The scores of several models over a period, and what they were computed from.

    Attributes
    ----------
    scores : xarray.Dataset
        :func:`~qpe.evaluation.summarize_scores` output (the ``scores.nc`` layout), scorecard included
        with two models or more.
    config : EvaluationConfig
        The settings it was computed with (``compare_to``: the scorecard's reference, or None for
        every pair).
    accumulators : dict or None
        Model -> merged per-case :class:`~qpe.verify.ScoreAccumulator`; None when not kept (a folder
        written without ``statistics/``): no series, and no scorecard against another reference.
    source : str
        Where it comes from (a folder, or a description of the computation).
    """

    scores: xr.Dataset
    config: EvaluationConfig
    accumulators: dict[str, ScoreAccumulator] | None = None
    source: str = ""
    _by_case: dict[str, xr.Dataset] = field(default_factory=dict, repr=False)
    _remade: dict[str, PeriodScores] = field(default_factory=dict, repr=False)

    @property
    def models(self) -> list[str]:
        return [str(m) for m in self.scores["model"].values]

    @property
    def cards(self) -> list[CardScore]:
        """The scorecard's scores that the evaluation has (the headline scores)."""
        scores = self.config.scores
        return [c for c in card_scores(scores.thresholds, scores.scales_km) if c.metric in self.scores.data_vars]

    @property
    def reference(self) -> str | None:
        """The model every other model is compared with (None: every pair, or fewer than two models)."""
        if len(self.models) < 2:
            return None
        card = scorecard_of(self.scores)
        if card is None:
            return None
        references = set(card["reference"].values.tolist())
        return self.config.compare_to or (references.pop() if len(references) == 1 else None)

    @property
    def scorecard(self) -> xr.Dataset | None:
        """The scorecard (:func:`qpe.verify.comparison.scorecard` layout), or None with one model."""
        return scorecard_of(self.scores)

    def scorecard_against(self, reference: str) -> xr.Dataset | None:
        """The pairs (model, ``reference``) of the scorecard held, in model order; None unless every
        other model is compared with ``reference`` there."""
        card = self.scorecard
        if card is None:
            return None
        pairs = {(str(m), str(r)): i for i, (m, r) in enumerate(zip(card["model"].values, card["reference"].values))}
        wanted = [pairs.get((m, reference)) for m in self.models if m != reference]
        if not wanted or any(i is None for i in wanted):
            return None
        return card.isel(pair=wanted)

    def against(self, reference: str) -> PeriodScores:
        """These scores with the scorecard of every other model against ``reference``.

        Itself when its scorecard already holds those pairs; otherwise :func:`summarize_scores` again
        with ``compare_to=reference`` (remembered), as ``qpe evaluate --compare-to`` computes it.

        Raises
        ------
        InputError
            ``reference`` is not a model of the evaluation, or the statistics to compare it are not kept.
        """
        if reference not in self.models:
            raise InputError(f"the reference model {reference!r} is not among the models {', '.join(self.models)}")
        if self.scorecard_against(reference) is not None:
            return self
        if reference not in self._remade:
            if self.accumulators is None:
                raise InputError(f"{self.source or 'this evaluation'} keeps no statistics/ folder: its scorecard "
                                 f"compares with {self.reference or 'other models'} only")
            config = dataclasses.replace(self.config, compare_to=reference)
            models = {m: {k: self.scores[k].values[i].item() for k in (*MODEL_COORDS, "path")
                          if k in self.scores.coords} for i, m in enumerate(self.models)}
            scores = summarize_scores(self.accumulators, {"models": models}, config)
            scores.attrs.update({k: self.scores.attrs[k] for k in PERIOD_ATTRS if k in self.scores.attrs})
            self._remade[reference] = PeriodScores(scores, config, self.accumulators, self.source, self._by_case)
        return self._remade[reference]

    def headline_table(self) -> pd.DataFrame:
        """The ``scores.csv`` rows (value, ``ci_low``, ``ci_high``) of the scorecard's scores, in card order.

        Columns ``score`` (the card's label) and those of :func:`~qpe.evaluation.score_table`.
        """
        table = score_table(self.scores)
        rows = []
        for card in self.cards:
            at = table["metric"] == card.metric
            for column, level in (("threshold", card.threshold), ("scale", card.scale)):
                at &= table[column].isna() if level is None else np.isclose(table[column], level)
            rows.append(table[at].assign(score=card.label))
        columns = ["score", *table.columns]
        return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)

    @property
    def case_unit(self) -> str:
        """What a case of the series is: ``day`` or ``time`` (the statistics' resolution)."""
        return self.config.statistics_resolution

    def series(self, card: CardScore) -> xr.DataArray:
        """(model, case) the score of ``card`` on each case alone (each UTC day, or each time), members
        averaged: the series whose differences the scorecard's Diebold-Mariano test compares.

        Raises
        ------
        InputError
            The per-case statistics are not kept.
        """
        if self.accumulators is None:
            raise InputError(f"{self.source or 'this evaluation'} keeps no statistics/ folder: no series per "
                             f"{self.case_unit}")
        metrics = [c.metric for c in self.cards]
        parts = []
        for name, acc in self.accumulators.items():
            if name not in self._by_case:
                self._by_case[name] = case_scores(acc, lambda s: s[[m for m in metrics if m in s.data_vars]])
            value = card_score(self._by_case[name], card)
            if "case" not in value.dims:  # a score the model lacks: NaN on each case
                value = xr.DataArray(np.full(acc.cases.size, np.nan), dims="case", coords={"case": acc.cases})
            parts.append(value.expand_dims(model=[name]))
        return xr.concat(parts, "model").assign_attrs(score=card.label, case_unit=self.case_unit)


def open_evaluation(folder: str | os.PathLike) -> PeriodScores:
    """Read a ``qpe evaluate --out`` folder: ``scores.nc``, and ``statistics/<model>.nc`` when present.

    Raises
    ------
    InputError
        ``folder`` is not a folder, or holds no ``scores.nc``.
    DatasetError
        A file is not what an evaluation writes (unreadable, no settings, statistics of other models).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"no evaluation folder at {folder}")
    if not (folder / "scores.nc").is_file():
        raise InputError(f"{folder} is not a qpe evaluate --out folder (no scores.nc)")
    try:
        with NETCDF_LOCK:
            scores = open_scores(folder / "scores.nc")
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read {folder / 'scores.nc'} ({err})") from None
    if "model" not in scores.dims or "qpe_evaluation_config" not in scores.attrs:
        raise DatasetError(f"{folder / 'scores.nc'} is not the scores of a qpe evaluation")
    config = evaluation_config(json.loads(scores.attrs["qpe_evaluation_config"]))
    accumulators = _read_statistics(folder / "statistics", [str(m) for m in scores["model"].values])
    return PeriodScores(scores, config, accumulators, str(folder))


def _read_statistics(folder: Path, models: list[str]) -> dict[str, ScoreAccumulator] | None:
    """The accumulators of ``statistics/*.nc`` by model, in ``models`` order; None without the folder."""
    if not folder.is_dir():
        return None
    found = {}
    for path in sorted(folder.glob("*.nc")):
        try:
            with NETCDF_LOCK, xr.open_dataset(path) as ds:
                acc = ScoreAccumulator.from_dataset(ds.load())
        except (OSError, ValueError) as err:
            raise DatasetError(f"cannot read {path} ({err})") from None
        found[acc.model or path.stem] = acc
    missing = [m for m in models if m not in found]
    if missing:
        raise DatasetError(f"{folder} holds no statistics of {', '.join(missing)}")
    return {m: found[m] for m in models}
