"""Write tests/data/demo_estimates_reference.npz: the demo checkpoints' estimates on a fixed case.

The case is a 48 x 48 crop of the synthetic benchmark (seed 10, T = 4 frames, 7 channels), stored with
the reference so that the test does not depend on the generator. Estimates: U-Net; both flows with
Euler K = 2, 2 members, seed 0; DDPM with DDIM K = 4, 2 members, seed 0 (``tests/test_models_demo_numbers.py``).
Run from the repository root: ``python tests/data/make_demo_estimates_reference.py``. Rerun it only when
the demo checkpoints are retrained on purpose.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.inference.engine import EstimateConfig, estimate
from qpe.models import load

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from models_testing import cpu_model  # noqa: E402

OUT = REPO / "tests" / "data" / "demo_estimates_reference.npz"
#: (checkpoint, members, sampler, steps) of every reference estimate.
CASES = (("unet", 1, None, None), ("flow_gaussian", 2, "euler", 2), ("flow_residual", 2, "euler", 2),
         ("ddpm", 2, "ddim", 4))


def main() -> None:
    torch.set_num_threads(1)
    ds = generate_paired(SynthConfig(hours=2.0, size=48, seed=10), progress=False)
    ds = ds.isel(time=slice(-4, None))
    when = ds["time"].values[-1]
    fields = {}
    for name, members, sampler, steps in CASES:
        config = EstimateConfig(members=members, steps=steps, sampler=sampler, seed=0, device="cpu")
        fields[name] = estimate(load(REPO / "models" / "demo" / name), ds, [when], config,
                                progress=False)["rain"].values[:, 0]
    np.savez_compressed(
        OUT, ir=ds["ir"].values, channels=ds["channel"].values.astype(str), x=ds["x"].values,
        y=ds["y"].values, time=ds["time"].values.astype("datetime64[ns]").astype("int64"),
        cpu_capability=torch.backends.cpu.get_cpu_capability(), torch_version=torch.__version__,
        cpu_model=cpu_model(),
        **{f"rain_{name}": field for name, field in fields.items()},
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): " + ", ".join(
        f"{n} {f.shape} max {np.nanmax(f):.3f}" for n, f in fields.items()))


if __name__ == "__main__":
    main()
