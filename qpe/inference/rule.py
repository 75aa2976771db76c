"""The IR probability-matching rule (:mod:`qpe.models.ir_rule`) as an estimator, scored like a model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from qpe import __version__
from qpe.data.grid import GRID_MAPPING_NAME
from qpe.data.paired import rain_attrs
from qpe.errors import DatasetError
from qpe.inference.cache import EstimateCache
from qpe.inference.engine import EstimateConfig, find_times
from qpe.models.checkpoint import sha256_file
from qpe.models.ir_rule import IRRainRule


class IRRuleEstimator:
    """An :class:`~qpe.models.ir_rule.IRRainRule` file as an estimator (one member, no network).

    Parameters
    ----------
    path : path-like
        The rule's YAML file (written by :meth:`IRRainRule.write`).
    name : str
        Model name in scores and figures.
    """

    family = "ir_rule"
    frames = 1
    is_ensemble = False

    def __init__(self, path: str | os.PathLike, name: str = "ir_rule") -> None:
        self.path = Path(path)
        self.rule = IRRainRule.read(self.path)
        self.name = name
        self.sha256 = sha256_file(self.path)

    def __repr__(self) -> str:
        return f"IRRuleEstimator({self.name!r}, path={str(self.path)!r})"

    @property
    def source(self) -> str:
        return str(self.path)

    def check(
        self, ds: xr.Dataset, times: Sequence | pd.DatetimeIndex = (), config: EstimateConfig | None = None
    ) -> None:
        """Raise when the data lack a channel the rule reads."""
        have = {str(c) for c in ds["channel"].values}
        missing = [c for c in self.rule.channels if c not in have]
        if missing:
            raise DatasetError(f"{self.name} needs IR channel(s) {', '.join(missing)}, which the data lack")

    def estimate(
        self,
        ds: xr.Dataset,
        times: Sequence | pd.DatetimeIndex,
        config: EstimateConfig = EstimateConfig(),
        *,
        cache: EstimateCache | None = None,
        progress: bool = True,
    ) -> xr.Dataset:
        """Rain (member=1, time, y, x), mm/h, from the IR of each time (``config`` and ``cache`` unused:
        the rule costs less than reading a cached field)."""
        self.check(ds)
        positions = find_times(ds, times)
        ir = ds["ir"].isel(time=positions).sel(channel=self.rule.channels)
        rain = self.rule.apply(ir).values[None].astype("float32")
        out = xr.Dataset(
            {"rain": (("member", "time", "y", "x"), rain,
                      {**rain_attrs(), "long_name": f"rain rate of the IR rule {self.name}"})},
            coords={"member": np.arange(1), "time": ds["time"].values[positions], "y": ds["y"],
                    "x": ds["x"], GRID_MAPPING_NAME: ds[GRID_MAPPING_NAME]},
        )
        out.attrs.update({
            "model": self.name, "family": self.family, "checkpoint_sha256": self.sha256, "members": 1,
            "steps": -1, "sampler": "none", "seed": config.seed, "device": "cpu", "network_evaluations": 0,
            "qpe_version": __version__,
        })
        return out
