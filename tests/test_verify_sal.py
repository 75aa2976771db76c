"""SAL against pysteps.verification.salscores.sal (needs scikit-image, pysteps' object detection)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from qpe.errors import InputError
from qpe.verify.testing import random_rain_fields

HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
needs_skimage = pytest.mark.skipif(
    not HAS_SKIMAGE, reason="scikit-image (pysteps' SAL object detection) is not installed"
)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@needs_skimage
@pytest.mark.parametrize("seed", [0, 1])
def test_single_field_agrees_with_pysteps(seed):
    from pysteps.verification.salscores import sal as pysteps_sal

    from qpe.verify.sal import sal

    est, rad = random_rain_fields((96, 112), times=1, seed=seed, wet_fraction=0.2)
    ours = sal(est, rad)
    ref = pysteps_sal(est.values[0], rad.values[0])
    for name, value in zip(("SAL_S", "SAL_A", "SAL_L"), ref, strict=True):
        np.testing.assert_allclose(float(ours[name]), value, rtol=1e-6, err_msg=name)


@needs_skimage
def test_gaps_are_nan_in_both_fields_and_means_over_fields():
    from pysteps.verification.salscores import sal as pysteps_sal

    from qpe.verify.sal import sal

    est, rad = random_rain_fields((80, 80), times=2, seed=2, wet_fraction=0.2)
    holed = rad.copy()
    holed.values[:, 10:30, 50:70] = np.nan
    ours = sal(est, holed)
    refs = []
    for t in range(2):
        gap = ~np.isfinite(holed.values[t])
        refs.append(pysteps_sal(np.where(gap, np.nan, est.values[t]), holed.values[t]))
    for i, name in enumerate(("SAL_S", "SAL_A", "SAL_L")):
        np.testing.assert_allclose(float(ours[name]), np.mean([r[i] for r in refs]), rtol=1e-6, err_msg=name)


@needs_skimage
def test_ensemble_members_share_the_radar_objects():
    from pysteps.verification.salscores import sal as pysteps_sal

    from qpe.verify.sal import sal

    est, rad = random_rain_fields((64, 64), times=1, members=2, seed=3, wet_fraction=0.25)
    ours = sal(est, rad)
    assert ours["SAL_S"].dims == ("member",)
    for m in range(2):
        ref = pysteps_sal(est.values[m, 0], rad.values[0])
        np.testing.assert_allclose([float(ours[n][m]) for n in ("SAL_S", "SAL_A", "SAL_L")], ref, rtol=1e-6)


@pytest.mark.skipif(HAS_SKIMAGE, reason="checks the message shown when scikit-image is absent")
def test_missing_scikit_image_is_a_clear_error():
    from qpe.verify.sal import sal

    est, rad = random_rain_fields((16, 16), times=1, seed=4)
    with pytest.raises(InputError, match="scikit-image"):
        sal(est, rad)
