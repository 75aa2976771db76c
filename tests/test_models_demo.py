"""The committed demo checkpoints on the demo data: they load safely, and the residual flow's
ensemble stays anchored to the U-Net's placement (its ensemble mean is closer to the U-Net field than
the Gaussian flow's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qpe.data.catalog import ensure_dataset
from qpe.data.paired import open_paired
from qpe.inference.engine import EstimateConfig, estimate
from qpe.models import find_checkpoints, load

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo"
NAMES = ("unet", "ddpm", "flow_gaussian", "flow_residual", "flow_residual_student")


def _demo(name: str) -> Path:
    path = DEMO / name
    if not (path / "card.yaml").is_file():  # pragma: no cover - the checkpoints are committed
        pytest.fail(f"demo checkpoint {path} is missing: train it with qpe train configs/train/demo_{name}.yaml")
    return path


def test_every_demo_checkpoint_loads_and_was_trained_by_qpe_train():
    found = {c.name: c for c in find_checkpoints(DEMO)}
    assert set(found) == set(NAMES) and all(c.error is None for c in found.values())
    for name in NAMES:
        model = load(_demo(name))
        card = model.card
        assert card.training.steps == card.training.settings["optim"]["steps"] >= 1000
        assert card.input.frames == 4 and len(card.input.channels) == 7
        assert card.data.path == "data/demo/train.zarr" and {"csi_1mm", "loss"} <= set(card.validation)
        assert (DEMO / name / "weights.safetensors").stat().st_size < 5_000_000


@pytest.fixture(scope="module")
def demo_case():
    ds = open_paired(ensure_dataset("demo"))
    times = ds["time"].values[[170, 185]]  # the demo data: never seen in training (the checkpoints train on `train`)
    return ds.isel(y=slice(64, 192), x=slice(64, 192)), times


def test_residual_flow_ensemble_mean_stays_closer_to_the_unet_than_the_gaussian_flow(demo_case):
    ds, times = demo_case
    config = EstimateConfig(members=6, steps=4, sampler="euler", seed=0, device="cpu")
    fields = {name: estimate(load(_demo(name)), ds, times, config, progress=False)["rain"].values
              for name in ("unet", "flow_residual", "flow_gaussian")}
    y = {name: np.log1p(f) for name, f in fields.items()}  # compare in the models' (log) space
    unet = y["unet"][0]

    def distance(name: str) -> float:
        return float(np.sqrt(np.nanmean((y[name].mean(axis=0) - unet) ** 2)))

    residual, gaussian = distance("flow_residual"), distance("flow_gaussian")
    assert residual < 0.7 * gaussian, (residual, gaussian)
    # and the residual flow is an ensemble, not a copy of the U-Net: where its mean is wet (> 0.1 mm/h)
    # its members spread about as much as the Gaussian flow's (measured: 0.14 and 0.14 in log1p space)
    def wet_spread(name: str) -> float:
        wet = np.expm1(y[name].mean(axis=0)) > 0.1
        return float(y[name].std(axis=0)[wet].mean())

    assert wet_spread("flow_residual") > max(0.05, 0.5 * wet_spread("flow_gaussian"))
    assert float(np.abs(fields["flow_residual"][0] - fields["flow_residual"][1]).max()) > 1.0  # mm/h
