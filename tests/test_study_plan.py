"""What a study trains: fold U-Nets for a cross-fitted residual flow, per-model training data."""

from __future__ import annotations

from qpe.study.config import _parse
from qpe.study.plan import training_runs

STUDY = {
    "name": "s", "train_data": "train", "frames": [4],
    "models": {
        "unet": {"family": "unet"},
        "flow_residual": {"family": "flow", "flow": {"source": "residual"}, "base": "unet", "sampler": "euler",
                          "steps": [2]},
        "flow_cf": {"family": "flow", "flow": {"source": "residual", "residual_scale": "intensity"},
                    "base": "unet", "sampler": "euler", "steps": [2], "cross_fit": 2, "data": "other"},
    },
    "benchmarks": [{"name": "b", "data": "holdout"}],
}


def test_a_cross_fitted_flow_trains_its_fold_unets_first_and_they_are_not_scored(tmp_path):
    runs = training_runs(_parse(dict(STUDY)), tmp_path)
    names = [r.config.name for r in runs]
    assert names == ["unet_t4", "flow_residual_t4", "unet_fold0of2_t4", "unet_fold1of2_t4", "flow_cf_t4"]
    folds = {r.config.name: r for r in runs if not r.scored}
    assert [r.config.fold.leave_out for r in folds.values()] == [0, 1]
    assert all(r.config.family == "unet" and r.config.fold.folds == 2 for r in folds.values())
    flow = runs[-1].config
    assert flow.cross_fit == (str(tmp_path / "unet_fold0of2_t4"), str(tmp_path / "unet_fold1of2_t4"))
    assert flow.base_checkpoint == str(tmp_path / "unet_t4") and flow.data == "other"
    assert runs[0].config.data == "train" and runs[1].config.cross_fit == ()
    assert [r.config.name for r in runs if r.scored] == ["unet_t4", "flow_residual_t4", "flow_cf_t4"]
