"""The demo checkpoints give the same numbers as when the reference was written: a refactoring of the
models, samplers or inference engine must not change one bit of an estimate.

The reference (``tests/data/demo_estimates_reference.npz``, written by
``tests/data/make_demo_estimates_reference.py``) holds a fixed 48 x 48 synthetic case (T = 4 frames,
7 channels) and the estimates of every demo checkpoint on it: U-Net; both flows with Euler K = 2, 2 members,
seed 0; DDPM with DDIM K = 4, 2 members, seed 0. Bit-identity is a promise of one torch build on one CPU
instruction set of one CPU model (floating-point sums are ordered by the kernels it picks; an Intel Xeon and
an AMD EPYC, both "AVX512" to torch, differ by 1e-6 mm/h): elsewhere, the estimates must still agree to
float32 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from models_testing import cpu_model

from qpe.inference.engine import EstimateConfig, estimate
from qpe.models import load

REPO = Path(__file__).resolve().parents[1]
#: (checkpoint, members, sampler, steps): as in tests/data/make_demo_estimates_reference.py.
CASES = (("unet", 1, None, None), ("flow_gaussian", 2, "euler", 2), ("flow_residual", 2, "euler", 2),
         ("ddpm", 2, "ddim", 4))


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as when the reference was written
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name, members, sampler, steps", CASES, ids=[c[0] for c in CASES])
def test_demo_checkpoint_estimates_are_unchanged(demo_reference, one_thread, name, members, sampler, steps):
    ds, ref = demo_reference
    config = EstimateConfig(members=members, steps=steps, sampler=sampler, seed=0, device="cpu")
    rain = estimate(load(REPO / "models" / "demo" / name), ds, [ds["time"].values[-1]], config,
                    progress=False)["rain"].values[:, 0]
    expected = ref[f"rain_{name}"]
    assert rain.shape == expected.shape == (members, 48, 48)
    assert np.nanmax(expected) > 0.5  # the case rains: the comparison means something
    same_kernels = (str(ref["cpu_capability"]) == torch.backends.cpu.get_cpu_capability()
                    and str(ref["torch_version"]) == torch.__version__
                    and str(ref["cpu_model"]) == cpu_model())
    if same_kernels:
        np.testing.assert_array_equal(rain, expected)
    else:
        np.testing.assert_allclose(rain, expected, rtol=1e-4, atol=1e-5)
