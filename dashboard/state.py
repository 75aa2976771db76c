"""The case a dashboard session shows, as one ``param`` object that the URL mirrors.

Every component reads and writes this :class:`CaseState` and nothing else about the case, so that
:mod:`dashboard.sharing` can put all of it in the address bar and a link reopens the same view.
"""

from __future__ import annotations

import pandas as pd
import param

from dashboard.page_layout import LAYOUTS
from qpe.data.paired import SEVIRI_CHANNELS
from qpe.inference.precision import PRECISIONS
from qpe.inference.products import PRODUCTS
from qpe.verify import DEFAULT_THRESHOLDS

#: Thresholds offered for scores and exceedance maps, mm/h.
THRESHOLD_CHOICES: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
#: Tabs of the main area.
TABS = ("maps", "scores", "ensemble", "frames", "period")
#: The state parameters that, with model and time, determine an estimate (views re-estimate when they change).
ESTIMATE_PARAMETERS = ("members", "steps", "seed", "precision")
#: Colours of rain maps: a continuous log scale, or pysteps' discrete levels (``plot_precip_field``).
RAIN_SCALES = ("log", "levels")
#: How a time is written in the URL and the widgets (UTC, to the minute).
TIME_FORMAT = "%Y-%m-%dT%H:%M"


def format_time(time) -> str:
    """``2021-06-01T12:15`` for any datetime-like (UTC)."""
    return pd.Timestamp(time).strftime(TIME_FORMAT)


class CaseState(param.Parameterized):
    """What is shown: case (valid time), models, how they are sampled, and the view.

    Parameters are plain strings, numbers and lists so that they travel in a URL.
    """

    time = param.String(default="", doc="Valid time shown, UTC, YYYY-MM-DDTHH:MM.")
    models = param.List(default=[], item_type=str, doc="Checkpoint keys shown (paths under the models folder).")
    members = param.Integer(default=4, bounds=(1, 64), doc="Ensemble members per estimate.")
    steps = param.Integer(default=0, bounds=(0, 1000), doc="Sampler steps K; 0 = each card's default.")
    seed = param.Integer(default=0, bounds=(0, 2**32 - 1), doc="Seed of the sampling noise (32 bits).")
    precision = param.Selector(default="auto", objects=list(PRECISIONS),
                               doc="Numerics of the networks: auto (float32 on a CPU, bf16 on a GPU), float32 "
                                   "or bfloat16 (about 2x faster on a CPU with bf16 units, other numbers).")
    view = param.Selector(default="mean", objects=list(PRODUCTS), doc="Map of each model: member, mean, probability.")
    member = param.Integer(default=0, bounds=(0, 63), doc="Member shown by the 'member' view and the ensemble browser.")
    threshold = param.Selector(default=1.0, objects=list(THRESHOLD_CHOICES),
                               doc="Threshold of the exceedance maps and the FSS plot, mm/h.")
    thresholds = param.ListSelector(default=list(DEFAULT_THRESHOLDS), objects=list(THRESHOLD_CHOICES),
                                    doc="Thresholds of the scores, mm/h.")
    channel = param.Selector(default="IR_108", objects=list(SEVIRI_CHANNELS), doc="IR channel on the map.")
    difference = param.Boolean(default=False, doc="Also show each model minus radar.")
    region = param.List(default=[], item_type=float, doc="Score region (xmin, ymin, xmax, ymax), m; empty: all.")
    ensemble_model = param.String(default="", doc="Model of the ensemble browser.")
    frames_model = param.String(default="", doc="Model of the input-frames view.")
    tab = param.Selector(default="maps", objects=list(TABS), doc="Tab of the main area.")
    rain_scale = param.Selector(default="log", objects=list(RAIN_SCALES),
                                doc="Rain colours: continuous log scale, or pysteps' discrete levels.")
    zoom = param.List(default=[], item_type=float, doc="Extent the maps show (xmin, ymin, xmax, ymax), m; "
                                                       "empty: the whole grid.")
    focus = param.String(default="", doc="Map shown enlarged (its slot: ir, radar, <model>, <model>-radar); "
                                         "empty: all maps.")
    layout = param.Selector(default="normal", objects=list(LAYOUTS),
                            doc="Page layout (see dashboard.page_layout); read when the page is opened.")

    @property
    def timestamp(self) -> pd.Timestamp | None:
        """The shown time, or None when unset."""
        return pd.Timestamp(self.time) if self.time else None

    @property
    def region_box(self) -> tuple[float, float, float, float] | None:
        """The score region as a box in m, or None for the whole grid."""
        return tuple(self.region) if len(self.region) == 4 else None

    @property
    def zoom_box(self) -> tuple[float, float, float, float] | None:
        """The extent the maps show, m, or None for the whole grid."""
        return tuple(self.zoom) if len(self.zoom) == 4 else None

    def estimate_settings(self) -> dict:
        """Members, steps (None: the card's), seed and precision: what determines an estimate besides model
        and time (:data:`ESTIMATE_PARAMETERS`)."""
        return {"members": self.members, "steps": self.steps or None, "seed": self.seed,
                "precision": self.precision}
