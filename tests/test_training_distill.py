"""Distilled students (qpe.training.distill): a few-step flow that reproduces its teacher's endpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import safetensors.torch
import torch
from test_cli_bad_inputs import assert_one_clean_error
from test_training import tiny_config

from qpe.data.paired import open_paired, save_paired
from qpe.data.samples import PairedSamples, SampleConfig, target_indices
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.errors import CheckpointError, InputError
from qpe.models import load
from qpe.training import TrainConfig, state_dir, train
from qpe.training.distill import PAIRS_FILE, pair_keys, teacher_endpoints

QUIET = {"progress": False, "log": lambda _: None}
#: Validation and checkpoints at the end only (they are not what these tests check).
AT_END = {"validation": {"every": 1000, "samples": 1, "members": 1}, "checkpoint_every": 1000}
STUDENT = {"sampling": {"sampler": "euler", "steps": 1}, "optim": {"lr": 1e-3, "warmup_steps": 5, "ema_decay": None},
           **AT_END}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """4 hours of 32 x 32 synthetic data, 2 channels."""
    ds = generate_paired(SynthConfig(hours=4, size=32, seed=5, channels=("WV_062", "IR_108")))
    return save_paired(ds, tmp_path_factory.mktemp("data") / "tiny.zarr")


@pytest.fixture(scope="module")
def teacher(tiny_data, tmp_path_factory) -> Path:
    """A tiny Gaussian flow trained 40 steps: its midpoint K = 8 map from noise to rain is curved enough that
    one Euler step of it misses the endpoint by about a fifth of the way travelled."""
    out = tmp_path_factory.mktemp("models") / "teacher"
    return train(tiny_config("flow_gaussian", steps=40, sampling={"sampler": "midpoint", "steps": 8}, **AT_END),
                 data=tiny_data, out=out, **QUIET)


def student_config(teacher: Path, steps: int = 100, **distill) -> TrainConfig:
    return tiny_config("flow_gaussian", steps=steps, name="student", **STUDENT,
                       distill={"teacher": str(teacher), "pairs": 32, **distill})


def endpoints(path: Path, ir: torch.Tensor, z: torch.Tensor, **request) -> torch.Tensor:
    """A flow checkpoint's endpoints ``x_1`` (its state space) from source samples ``z``, by its card's sampler
    unless asked otherwise."""
    model = load(path)
    settings = model.card.sampling_settings(**request)
    with torch.no_grad():
        return teacher_endpoints(model.model, ir, z, settings)


def test_student_reproduces_the_teachers_endpoints_in_one_evaluation(tmp_path, tiny_data, teacher):
    out, config = tmp_path / "student", student_config(teacher)
    # interrupted after 60 steps: the teacher pairs are cached with the run state, and read back on resuming
    train(config.replace(optim=dataclasses.replace(config.optim, steps=60)), data=tiny_data, out=out, **QUIET)
    cache = state_dir(out) / PAIRS_FILE
    pairs = safetensors.torch.load_file(str(cache))
    assert pairs["source"].shape == pairs["endpoint"].shape == (32, 1, 16, 16)
    drawn = cache.stat().st_mtime_ns
    train(config, data=tiny_data, out=out, resume=True, **QUIET)
    assert cache.stat().st_mtime_ns == drawn

    student = load(out)
    assert student.card.training.steps == 100
    record = student.card.distilled_from
    assert (record.name, record.sha256, record.sampler, record.steps) == ("flow_gaussian", load(teacher).sha256,
                                                                          "midpoint", 8)
    assert record.path == "../teacher" or (out / record.path).resolve() == teacher.resolve()
    assert student.card.sampling.sampler == "euler" and student.card.sampling.steps == 1
    assert student.model.network_evaluations(student.card.sampling_settings()) == 1

    ds = open_paired(tiny_data, require=("ir", "rain"))
    samples = PairedSamples(ds, SampleConfig(2, 16, ("WV_062", "IR_108"), random_crop=False),
                            targets=target_indices(ds["time"].values, 2)[-4:],
                            normalization=student.card.normalization, seed=0)
    ir = torch.stack([samples[i]["ir"] for i in range(len(samples))])  # crops and noise the pairs never had
    z = torch.randn((ir.shape[0], 1, 16, 16), generator=torch.Generator().manual_seed(1))
    reference = endpoints(teacher, ir, z)  # midpoint, K = 8: 16 evaluations
    error = (endpoints(out, ir, z) - reference).abs().mean()
    undistilled = (endpoints(teacher, ir, z, sampler="euler", steps=1) - reference).abs().mean()
    travelled = (reference - z).abs().mean()
    assert error < 0.1 * travelled and error < 0.5 * undistilled, (float(error), float(undistilled), float(travelled))
    # the same noise through the model contract: the student's draw is its endpoint, decoded to mm/h
    with torch.no_grad():
        rain = student.model.sample(ir, student.card.sampling_settings(members=2), torch.Generator().manual_seed(1))
    assert rain.shape == (4, 2, 16, 16) and bool((rain >= 0).all())


def test_pair_crops_spread_over_the_training_samples():
    assert pair_keys(10, 5).tolist() == [[0, 0], [0, 2], [0, 4], [0, 6], [0, 8]]
    assert pair_keys(3, 5).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"family": "unet", "flow": None, "sampling": None}, "distill trains a flow student, not a unet model"),
        ({"sampling": {"sampler": "midpoint", "steps": 1}}, "a distilled student samples with sampling: {sampler: euler"),
        ({"sampling": {"sampler": "euler", "steps": 8}}, "steps: 1 to 4}.*got euler with 8 steps"),
        ({"optim": {"augment": ["flip_x"]}}, "no optim.augment"),
    ],
)
def test_bad_student_configs_give_one_clear_error(changes, message):
    spec = {**student_config(Path("teacher")).to_dict(), **changes}
    with pytest.raises(InputError, match=message.replace("{", r"\{")):
        TrainConfig.from_dict({k: v for k, v in spec.items() if v is not None or k not in ("flow", "sampling")})


def test_a_missing_teacher_or_one_that_is_not_a_flow_is_one_clear_line(tmp_path, tiny_data):
    unet = train(tiny_config("unet", steps=1), data=tiny_data, out=tmp_path / "unet", **QUIET)
    for teacher, message in ((tmp_path / "nowhere", "distill teacher .*nowhere"),
                             (unet, "distill teacher .*unet is a unet model, not a flow")):
        config = tmp_path / "student.yaml"
        config.write_text(student_config(teacher, steps=1).to_yaml())
        with pytest.raises(CheckpointError, match=message):
            train(TrainConfig.from_yaml(config), data=tiny_data, out=tmp_path / "student", **QUIET)
        assert_one_clean_error(["train", str(config), "--data", str(tiny_data), "--out", str(tmp_path / "student")],
                               expect=message)
