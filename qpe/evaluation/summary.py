"""The scores of a period as one Dataset: every model's scores and bootstrap bounds along ``model``.

The variables of :meth:`~qpe.verify.ScoreAccumulator.compute` along a ``model`` dimension (a
deterministic model has member 0 only, its other members NaN), the confidence bounds of each score as
``<name>__ci`` with a leading ``bound`` dimension (``ci_low``, ``ci_high``), model metadata as
coordinates along ``model`` (family, checkpoint hash, members, steps, sampler), and the settings in
``attrs``. :func:`split_scores` separates scores and bounds again, :func:`score_table` makes the tidy
``scores.csv`` table.

With two models or more the Dataset also holds the **scorecard** (:mod:`qpe.verify.comparison`): each
pair's paired difference in the scorecard's scores with its bootstrap interval (the same replicates as
the scores' intervals, so the same drawn days for both models) and its Diebold-Mariano test on the
per-case series, as variables ``scorecard_<name> (pair, card)``; :func:`scorecard_of` reads it back.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe import __version__
from qpe.errors import InputError
from qpe.evaluation.config import EvaluationConfig
from qpe.verify import ScoreAccumulator, bootstrap_ci, scores_to_frame
from qpe.verify.bootstrap import UNIT_NAMES, bootstrap_replicates, case_weights, n_units
from qpe.verify.comparison import (
    card_scores,
    card_values,
    case_scores,
    check_same_cases,
    comparison_pairs,
    scorecard,
)

#: Suffix of the confidence-bound variables in the scores Dataset.
CI_SUFFIX = "__ci"
#: Fewest resampling units (days, or the times of days with two or more for a bootstrap of times) for
#: an interval; with fewer, none.
MIN_CI_DAYS = 2
#: Model metadata kept as coordinates along ``model`` (from the estimates' attributes).
MODEL_COORDS = ("family", "checkpoint_sha256", "members", "steps", "sampler", "network_evaluations")


def _pad_members(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Give deterministic scores member 0 where ensemble scores have a member dim (NaN-padded by concat)."""
    with_member = {name for p in parts for name, v in p.data_vars.items() if "member" in v.dims}
    out = []
    for part in parts:
        if "member" not in part.dims:
            part = part.assign(
                {name: part[name].expand_dims(member=[0]) for name in with_member if name in part.data_vars}
            )
        out.append(part)
    return out


def _concat_models(parts: list[xr.Dataset]) -> xr.Dataset:
    return xr.concat(
        _pad_members(parts),
        dim="model",
        join="outer",
        fill_value=np.nan,
        coords="minimal",
        compat="override",
        combine_attrs="override",
    )


def summarize_scores(
    accumulators: dict[str, ScoreAccumulator],
    info: dict | None = None,
    config: EvaluationConfig = EvaluationConfig(),
) -> xr.Dataset:
    """Scores and bootstrap bounds of every model as one Dataset (see the module notes)."""
    info = info or {}
    bounds = []
    n_days = min(acc.days.size for acc in accumulators.values())
    unit = config.bootstrap_unit
    units = min(n_units(acc.cases, unit) for acc in accumulators.values())
    with_ci = config.n_resamples > 0 and units >= MIN_CI_DAYS
    scores = [acc.compute().assign_coords(model=name) for name, acc in accumulators.items()]
    every = {name for part in scores for name in part.data_vars}
    cards = [c for c in card_scores(config.scores.thresholds, config.scores.scales_km) if c.metric in every]
    pairs = comparison_pairs(list(accumulators), config.compare_to) if cards else []
    cases = check_same_cases(accumulators) if pairs else next(iter(accumulators.values())).cases
    weights = case_weights(cases, unit, config.n_resamples, config.bootstrap_seed) if with_ci else None
    card_replicates, card_series = {}, {}
    for name, acc in accumulators.items():
        if with_ci:
            replicates = bootstrap_replicates(acc, weights)  # the same drawn days for every model: paired
            ci = bootstrap_ci(acc, config.n_resamples, config.confidence, config.bootstrap_seed, unit,
                              replicates=replicates)
            bounds.append(ci.assign_coords(model=name))
            if pairs:
                card_replicates[name] = card_values(replicates, cards)
        if pairs:
            card_series[name] = case_scores(acc, lambda scores: card_values(scores, cards))
    not_applicable = {  # e.g. ensemble scores of a deterministic model: NaN in the Dataset, no table rows
        str(part["model"].values): sorted(every - set(part.data_vars)) for part in scores
    }
    out = _concat_models(scores)
    if with_ci:
        ci = _concat_models(bounds)
        out = out.assign({f"{name}{CI_SUFFIX}": ci[name] for name in ci.data_vars})
    if pairs:
        card = scorecard(
            card_values(out, cards),
            pairs,
            cards,
            xr.concat(list(card_replicates.values()), pd.Index(list(card_replicates), name="model"))
            if with_ci else None,
            xr.concat(list(card_series.values()), pd.Index(list(card_series), name="model")),
            config.confidence,
        )
        out = out.assign(_embed_scorecard(card).data_vars)
    models = info.get("models", {})
    for key in (*MODEL_COORDS, "path"):
        values = [models.get(str(m), {}).get(key, "") for m in out["model"].values]
        if any(isinstance(v, str) for v in values):
            values = [str(v) for v in values]
        out = out.assign_coords({key: ("model", np.asarray(values))})
    times = info.get("times", pd.DatetimeIndex([]))
    skipped = info.get("skipped", pd.DatetimeIndex([]))
    out.attrs = {
        "title": "qpe evaluation: scores of rain-rate estimates against radar",
        "qpe_score_config": json.dumps(config.scores.to_dict()),
        "qpe_evaluation_config": json.dumps(config.to_dict()),
        "data": str(info.get("data", "")),
        "period_start": f"{times[0]:%Y-%m-%dT%H:%M}" if len(times) else "",
        "period_end": f"{times[-1]:%Y-%m-%dT%H:%M}" if len(times) else "",
        "n_times": len(times),
        "n_skipped_times": len(skipped),
        "n_days": int(n_days),
        "days": ", ".join(str(d) for d in next(iter(accumulators.values())).days),
        "confidence_interval": (
            f"{config.confidence:.0%} percentile bootstrap over {UNIT_NAMES[unit]} ({units} "
            f"{'days' if unit == 'day' else f'times in {n_days} days'}), "
            f"{config.n_resamples} resamples, seed {config.bootstrap_seed}"
            if with_ci
            else f"none (needs at least {MIN_CI_DAYS} {'days' if unit == 'day' else 'times in days of 2 or more'}, "
            f"the period has {units})"
        ),
        "bootstrap_unit": unit,
        "common_mask": int(config.common_mask),
        "not_applicable": json.dumps({k: v for k, v in not_applicable.items() if v}),
        "qpe_version": __version__,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return out


#: Scorecard names inside the scores Dataset (:func:`qpe.verify.comparison.scorecard` -> scores.nc).
SCORECARD_PREFIX = "scorecard_"
_CARD_COORDS = {"model": "pair_model", "reference": "pair_reference", "score": "card", "metric": "card_metric",
                "threshold": "card_threshold", "scale": "card_scale", "compared": "card_compared",
                "better": "card_better"}


def _embed_scorecard(card: xr.Dataset) -> xr.Dataset:
    out = card.rename({**{k: f"{SCORECARD_PREFIX}{k}" for k in card.data_vars}, **_CARD_COORDS})
    for name in out.data_vars:
        out[name].attrs.update(card.attrs)
    return out


def scorecard_of(scores: xr.Dataset) -> xr.Dataset | None:
    """The scorecard held in an evaluation Dataset (the layout of :func:`qpe.verify.comparison.scorecard`),
    or None (one model, or scores written before scorecards)."""
    names = [n for n in scores.data_vars if str(n).startswith(SCORECARD_PREFIX)]
    if not names:
        return None
    card = scores[names]
    card = card.drop_vars([c for c in card.coords if c not in _CARD_COORDS.values()])
    card = card.rename({**{n: n[len(SCORECARD_PREFIX):] for n in names},
                        **{v: k for k, v in _CARD_COORDS.items()}})
    card.attrs = dict(scores[names[0]].attrs)
    return card


def split_scores(scores: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset | None]:
    """(scores, bounds) from an evaluation Dataset; bounds is None when it has no intervals."""
    names = [n for n in scores.data_vars if str(n).endswith(CI_SUFFIX)]
    plain = scores.drop_vars(names)
    plain = plain.drop_vars("bound", errors="ignore")
    if not names:
        return plain, None
    ci = scores[names].rename({n: n[: -len(CI_SUFFIX)] for n in names})
    return plain, ci


def score_table(scores: xr.Dataset) -> pd.DataFrame:
    """The tidy ``scores.csv`` table of an evaluation Dataset, with its confidence bounds.

    Columns ``model, metric, threshold, scale, value, ci_low, ci_high`` (:func:`qpe.verify.scores_to_frame`);
    scores that do not apply to a model (ensemble scores of a deterministic one) have no rows.
    """
    plain, ci = split_scores(scores)
    table = scores_to_frame(plain, ci)
    skip = json.loads(scores.attrs.get("not_applicable", "{}"))
    drop = np.zeros(len(table), dtype=bool)
    for model, names in skip.items():
        drop |= (table["model"] == model).to_numpy() & table["metric"].isin(names).to_numpy()
    return table[~drop].reset_index(drop=True)


def open_scores(path: str | os.PathLike) -> xr.Dataset:
    """Read a ``scores.nc`` written by :func:`write_outputs` into memory."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no scores file at {path}")
    with xr.open_dataset(path) as ds:
        return ds.load()
