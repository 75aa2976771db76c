"""Exceptions raised by qpe.

Every error a user can cause (a bad file, a wrong unit, a date that is not in the data) is a
:class:`QpeError` whose message is one self-contained line. The command line prints that line and
exits with status 2; the dashboard shows it in place of the view that failed.
"""

from __future__ import annotations


class QpeError(Exception):
    """Base class of the errors a user can cause and fix."""


class DatasetError(QpeError, ValueError):
    """A dataset does not follow the paired IR/radar layout (units, ranges, grid, time order)."""


class InputError(QpeError, ValueError):
    """An input file or argument cannot be used (missing, unreadable, foreign format)."""


class MissingInputError(InputError):
    """Input files are absent: a path that does not exist, a pattern that matches nothing (e.g. the
    real radar files of a benchmark on a machine that has none). Nothing else is this error."""


class CheckpointError(QpeError, ValueError):
    """A checkpoint is unsafe, corrupt, foreign or does not match its model card."""


class TrainingError(QpeError, RuntimeError):
    """A study's model failed to train in its worker process for a reason that is none of the errors
    above (a bug, the machine's memory): the line names the run; its traceback is in the log above it."""


class EstimateCancelled(QpeError):
    """An estimate was stopped by its user (the dashboard's Cancel) between two network evaluations; nothing
    of it was kept or cached."""
