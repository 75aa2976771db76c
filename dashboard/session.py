"""What one browser session works with: settings, the dataset, the checkpoints, estimates, messages.

The dataset is opened (and validated) once per server process and shared read-only by every session;
each session has its own :class:`~dashboard.state.CaseState` and messages.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import param
import xarray as xr

from dashboard.checkpoints import CheckpointRegistry
from dashboard.estimates import Estimates, EstimateSettings
from dashboard.state import CaseState
from qpe.data.basemap import basemap_lines
from qpe.data.catalog import REPO_ROOT, resolve_data
from qpe.data.grid import Grid
from qpe.data.paired import open_paired
from qpe.errors import QpeError
from qpe.inference.cache import EstimateCache

log = logging.getLogger("dashboard")

#: Environment variables read when the app is served without ``--args`` (``panel serve dashboard/app.py``).
DATA_ENV, MODELS_ENV = "QPE_DASHBOARD_DATA", "QPE_DASHBOARD_MODELS"
DEFAULT_MODELS = REPO_ROOT / "models"


@dataclass(frozen=True)
class DashboardSettings:
    """Where the dashboard reads from.

    Parameters
    ----------
    data : str
        Paired dataset path, or a catalog name (``"demo"``, built when missing).
    models : Path
        Folder searched for checkpoints.
    cache_dir : Path or None
        Inference cache (default ``$QPE_CACHE_DIR`` or ``~/.cache/qpe/estimates``).
    """

    data: str = "demo"
    models: Path = DEFAULT_MODELS
    cache_dir: Path | None = None

    @classmethod
    def from_args(cls, argv: Sequence[str] = ()) -> DashboardSettings:
        """Settings from ``--data``, ``--models``, ``--cache-dir`` (what ``panel serve ... --args`` passes)."""
        parser = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False)
        parser.add_argument("--data", default=os.environ.get(DATA_ENV, "demo"))
        parser.add_argument("--models", default=os.environ.get(MODELS_ENV, str(DEFAULT_MODELS)))
        parser.add_argument("--cache-dir", default=None)
        args, _ = parser.parse_known_args(list(argv))
        return cls(args.data, Path(args.models), Path(args.cache_dir) if args.cache_dir else None)


_DATASETS: dict[str, tuple[Path, xr.Dataset]] = {}
_DATA_LOCK = threading.Lock()


def open_dataset(spec: str) -> tuple[Path, xr.Dataset]:
    """The dataset of ``--data`` (a path or catalog name), opened and validated once per process."""
    with _DATA_LOCK:
        if spec not in _DATASETS:
            path = resolve_data(spec, progress=True)
            _DATASETS[spec] = (Path(path).resolve(), open_paired(path, require=("ir", "rain")))
        return _DATASETS[spec]


class Messages(param.Parameterized):
    """The problems a session currently has, by topic (``case``, ``checkpoint:unet``, ...).

    Each is one line shown in the app; setting a topic again replaces its line, clearing removes it.
    """

    items = param.Dict(default={})

    def set(self, topic: str, text: str) -> None:
        if self.items.get(topic) != text:
            self.items = {**self.items, topic: text}

    def clear(self, topic: str) -> None:
        if topic in self.items:
            self.items = {k: v for k, v in self.items.items() if k != topic}

    def report(self, topic: str, err: Exception) -> None:
        """Show an error: a :class:`QpeError` by its message; anything else with its type, logged in full."""
        if isinstance(err, QpeError):
            self.set(topic, str(err))
        else:
            log.exception("%s failed", topic, exc_info=err)
            self.set(topic, f"{type(err).__name__}: {err}")


class DashboardSession(param.Parameterized):
    """Everything a session's components share.

    ``revision`` increases whenever new estimates become available, so that views redraw.
    """

    revision = param.Integer(default=0)

    def __init__(self, settings: DashboardSettings, **params) -> None:
        super().__init__(**params)
        self.settings = settings
        self.data_path, self.dataset = open_dataset(settings.data)
        self.grid = Grid.from_dataset(self.dataset)
        self.times = pd.DatetimeIndex(self.dataset["time"].values)
        self.channels = [str(c) for c in self.dataset["channel"].values] if "ir" in self.dataset else []
        self.registry = CheckpointRegistry(settings.models)
        self.estimates = Estimates(self.data_path, self.dataset, self.registry, EstimateCache(settings.cache_dir))
        self.state = CaseState()
        if self.channels:
            if self.state.channel not in self.channels:
                self.state.channel = self.channels[-1]
            self.state.param.channel.objects = self.channels  # a link cannot ask for a channel the data lack
        self.messages = Messages()
        #: (model, time) -> why its estimate failed; (model, time) being estimated now.
        self.failures: dict[tuple[str, str], str] = {}
        self.pending: set[tuple[str, str]] = set()
        #: Scores already computed in this session (see dashboard.scores.case_scores), oldest first.
        self.score_memory: OrderedDict = OrderedDict()
        self._basemap: dict | None = None
        #: Whether the browser tab is gone (set by :meth:`close`): work still running updates no view.
        self.closed = False

    def close(self) -> None:
        """Mark the session as gone (its document is destroyed when the browser tab closes)."""
        self.closed = True

    def radar(self, time) -> xr.DataArray:
        """(y, x) radar rain rate at ``time``, mm/h, NaN where there is no radar."""
        return self.dataset["rain"].sel(time=pd.Timestamp(time))

    def ir(self, time, channel: str) -> xr.DataArray:
        """(y, x) brightness temperature of ``channel`` at ``time``, K."""
        return self.dataset["ir"].sel(time=pd.Timestamp(time), channel=channel)

    def estimate_settings(self) -> EstimateSettings:
        return EstimateSettings(**self.state.estimate_settings())

    def recall(self, model: str, time=None) -> xr.DataArray | None:
        """The estimate of ``model`` at ``time`` (default: the shown one) if already computed, else None."""
        time = self.state.timestamp if time is None else time
        if time is None or not self.registry.offers(model):
            return None
        return self.estimates.recall(model, time, self.estimate_settings())

    def basemap(self) -> dict:
        """Coastlines and borders on the grid, m (computed once per session)."""
        if self._basemap is None:
            self._basemap = basemap_lines(self.grid)
        return self._basemap
