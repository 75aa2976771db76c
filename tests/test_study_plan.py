"""What a study trains and scores: fold U-Nets for a cross-fitted residual flow, per-model training data,
checkpoints trained elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from qpe.study.config import _parse
from qpe.study.plan import checkpoint_estimators, training_runs

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


def _saved(folder: Path, variant: str, **card) -> Path:
    from models_testing import build_variant, variant_card
    from qpe.models.checkpoint import save_checkpoint

    save_checkpoint(build_variant(variant, **card), variant_card(variant, **card), folder)
    return folder


def test_checkpoints_trained_elsewhere_are_scored_at_their_cards_sampler_and_k(tmp_path):
    from qpe.models.card import SamplingDefaults

    student = _saved(tmp_path / "student", "flow_gaussian", frames=4, sampling=SamplingDefaults("euler", 2))
    unet = _saved(tmp_path / "unet", "unet", frames=1)
    study = _parse({**STUDY, "checkpoints": {
        "student": {"path": str(student)}, "other_unet": {"path": str(unet)},
        "absent": {"path": str(tmp_path / "nothing"), "optional": True}}})
    estimators, skipped = checkpoint_estimators(study)
    assert [(e.name, e.steps, e.sampler, e.frames) for e in estimators] == [
        ("student_t4_k2", 2, "euler", 4), ("other_unet_t1", None, None, 1)]
    assert list(skipped) == ["absent"] and f"no checkpoint at {tmp_path / 'nothing'}" in skipped["absent"]


def test_a_checkpoint_the_study_cannot_score_stops_it_with_one_line(tmp_path):
    from qpe.errors import CheckpointError, InputError, MissingInputError

    def study(**spec):
        return _parse({**STUDY, "checkpoints": {"student": spec}})

    with pytest.raises(MissingInputError, match=r"study checkpoint 'student': no checkpoint at .*nothing"):
        checkpoint_estimators(study(path=str(tmp_path / "nothing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="has no model card"):  # there, but not a checkpoint: no skip
        checkpoint_estimators(study(path=str(tmp_path / "empty"), optional=True))
    deep = _saved(tmp_path / "deep", "unet", frames=6)
    with pytest.raises(InputError, match=r"reads T = 6 IR frames, more than the study's largest T = 4"):
        checkpoint_estimators(study(path=str(deep)))
    with pytest.raises(InputError, match=r"checkpoints \['unet'\] have the name of a study model"):
        _parse({**STUDY, "checkpoints": {"unet": {"path": str(deep)}}})
    with pytest.raises(InputError, match="study checkpoint 'student' needs a 'path'"):
        study(optional=True)
    with pytest.raises(InputError, match="unknown checkpoint 'student' settings steps"):
        study(path=str(deep), steps=2)
