"""The synthetic benchmark: paired IR/radar datasets from rain and infrared forward models.

``generate_paired(SynthConfig(...))`` builds a fully synthetic dataset; ``ir_from_rain(rain)`` builds
the IR for a given (e.g. real radar) rain sequence, the semi-synthetic mode.
"""

from qpe.data.synthetic.config import CloudConfig, IRConfig, RainConfig, SynthConfig
from qpe.data.synthetic.generator import generate_paired, simulate_rain, synthetic_grid
from qpe.data.synthetic.semisynthetic import ir_from_rain, semisynthetic_paired

__all__ = [
    "CloudConfig",
    "IRConfig",
    "RainConfig",
    "SynthConfig",
    "generate_paired",
    "ir_from_rain",
    "semisynthetic_paired",
    "simulate_rain",
    "synthetic_grid",
]
