"""Verification of rain-rate estimates against radar, on pysteps' definitions, vectorised.

Top-level API::

    scores = verify(estimate, radar)                      # every score, one labelled Dataset
    acc = ScoreAccumulator(ScoreConfig(), model="unet")   # many cases, constant memory
    acc.accum(estimate, radar); acc.merge(other)          # per UTC day; merge Dask workers' results
    ci = bootstrap_ci(acc, n_resamples=1000, seed=0)      # percentile CIs, days resampled
    table = scores_to_frame(acc.compute(), ci)            # model,metric,threshold,scale,value,ci_low,ci_high
    figure_data(scores)                                   # what each standard figure draws

Families (one module each, pysteps-style ``*_init / *_accum / *_merge / *_compute`` on mergeable
statistics, and one function per score): :mod:`~qpe.verify.categorical`, :mod:`~qpe.verify.matched`
(CSI at matched wet fraction), :mod:`~qpe.verify.continuous`, :mod:`~qpe.verify.fss`,
:mod:`~qpe.verify.spectra`, :mod:`~qpe.verify.distribution`, :mod:`~qpe.verify.ensemble`,
:mod:`~qpe.verify.ensemble_fss` (ensemble and ensemble-mean FSS), :mod:`~qpe.verify.extremes` (exceedance
scores with counts, twCRPS), :mod:`~qpe.verify.multivariate` (energy and variogram scores),
:mod:`~qpe.verify.coherence` (spectral coherence, effective resolution), :mod:`~qpe.verify.sal`,
:mod:`~qpe.verify.displacement` (optical-flow displacement from estimate to radar, error before and after
warping), :mod:`~qpe.verify.regimes` (the pixel-wise scores split by cloud-top temperature, daylight, rain
type and radar quality; the masks come with each case).

Comparing models: :mod:`~qpe.verify.comparison` (is A better than B? paired differences on paired
day-block bootstrap replicates, the Diebold-Mariano test, the scorecard); which way each score is better:
:data:`qpe.verify.tables.ORIENTATION`.

Inputs: ``radar`` (y, x) or (time, y, x), mm/h, NaN = no radar; ``estimate`` (y, x), (time, y, x)
or (member, [time,] y, x), mm/h, on the same x/y coordinates. A pixel where the radar or any member
is NaN — or that lies outside ``region`` — is excluded from every score (see :mod:`qpe.verify.pairs`).
"""

from qpe.verify.aggregate import DEFAULT_FAMILIES, FAMILIES, ScoreAccumulator, ScoreConfig, verify
from qpe.verify.bootstrap import bootstrap_ci
from qpe.verify.pairs import DEFAULT_SCALES_KM, DEFAULT_THRESHOLDS, FieldPair, pair_fields, window_sizes
from qpe.verify.tables import figure_data, scores_to_frame

__all__ = [
    "DEFAULT_FAMILIES",
    "DEFAULT_SCALES_KM",
    "DEFAULT_THRESHOLDS",
    "FAMILIES",
    "FieldPair",
    "ScoreAccumulator",
    "ScoreConfig",
    "bootstrap_ci",
    "figure_data",
    "pair_fields",
    "scores_to_frame",
    "verify",
    "window_sizes",
]
