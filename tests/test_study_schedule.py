"""Training a study's models concurrently (``jobs``): the order their needs allow, the same checkpoints as
one after another, one clear line when a run fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch
import yaml

from qpe.cli import build_parser
from qpe.data.paired import save_paired
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.errors import InputError, MissingInputError
from qpe.study.config import _parse, load_study
from qpe.study.plan import training_runs
from qpe.study.schedule import ready_runs, train_runs, training_needs, training_waves

#: The demo study's runs at T = 1 and 4, and a cross-fitted flow with its two fold U-Nets.
NEEDS = {
    "unet_t1": (), "ddpm_t1": (), "flow_residual_t1": ("unet_t1",),
    "unet_t4": (), "unet_fold0of2_t4": (), "unet_fold1of2_t4": (),
    "flow_cf_t4": ("unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4"),
}


# -- the order (pure) -----------------------------------------------------------------------------------
def test_waves_put_every_run_after_the_runs_it_needs():
    assert training_waves(NEEDS) == [["unet_t1", "ddpm_t1", "unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4"],
                                     ["flow_residual_t1", "flow_cf_t4"]]
    assert training_waves({"a": ["b"], "b": ["c"], "c": []}) == [["c"], ["b"], ["a"]]
    assert training_waves({}) == []


@pytest.mark.parametrize("finished, started, ready", [
    ((), (), ["unet_t1", "ddpm_t1", "unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4"]),
    ((), ("unet_t1", "ddpm_t1"), ["unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4"]),
    (("unet_t1",), ("unet_t1", "ddpm_t1"), ["flow_residual_t1", "unet_t4", "unet_fold0of2_t4",
                                            "unet_fold1of2_t4"]),
    (("unet_t4", "unet_fold0of2_t4"), ("unet_t1", "ddpm_t1", "unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4"),
     []),  # a cross-fitted flow waits for every fold
    (("unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4"), ("unet_t1", "ddpm_t1", "unet_t4", "unet_fold0of2_t4",
                                                            "unet_fold1of2_t4"), ["flow_cf_t4"]),
])
def test_ready_runs_are_those_not_started_whose_needs_have_finished(finished, started, ready):
    assert ready_runs(NEEDS, finished, started) == ready


@pytest.mark.parametrize("needs, message", [
    ({"flow_t1": ["unet_t1"]}, r"flow_t1 needs unet_t1, which is not a run of the study"),
    ({"a": ["b"], "b": ["a"], "c": []}, r"runs need each other \(a -> b -> a\)"),
    ({"u": [], "a": ["u", "c"], "b": ["a"], "c": ["b"]}, r"runs need each other \(a -> c -> b -> a\)"),
    ({"a": ["a"]}, r"runs need each other \(a -> a\)"),
])
def test_unknown_needs_and_cycles_are_one_clear_error(needs, message):
    with pytest.raises(InputError, match=message):
        training_waves(needs)


def test_a_run_needs_its_base_and_its_cross_fit_folds(tmp_path):
    from test_study_plan import STUDY

    needs = training_needs(training_runs(_parse(dict(STUDY)), tmp_path))
    assert needs == {"unet_t4": (), "flow_residual_t4": ("unet_t4",), "unet_fold0of2_t4": (),
                     "unet_fold1of2_t4": (), "flow_cf_t4": ("unet_t4", "unet_fold0of2_t4", "unet_fold1of2_t4")}


# -- the setting ----------------------------------------------------------------------------------------
def study_file(folder: Path, data: Path, models: dict, **settings) -> Path:
    """A tiny study at T = 1 (4 x 4 steps of 8-channel networks on 16 x 16 crops in its quick profile)."""
    study = {
        "name": "tiny", "train_data": str(data), "frames": [1],
        "training": {
            "architecture": {"base_channels": 8, "channel_mults": [1, 2], "groups": 4},
            "optim": {"steps": 400, "batch_size": 4, "crop": 16, "lr": 3e-3, "warmup_steps": 2},
            "validation": {"fraction": 0.25, "every": 400, "samples": 2, "crop": 32, "members": 2},
            "checkpoint_every": 400, "seed": 3,
        },
        "models": models,
        "benchmarks": [{"name": "b", "data": str(data)}],
        "quick": {"training": {"optim": {"steps": 4}, "validation": {"every": 4}, "checkpoint_every": 4}},
        **settings,
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


UNET = {"family": "unet"}
FLOW = {"family": "flow", "flow": {"source": "gaussian"}, "sampler": "euler", "steps": [2]}
RESIDUAL = {"family": "flow", "flow": {"source": "residual"}, "base": "unet", "sampler": "euler", "steps": [2]}


def test_jobs_is_read_strictly_from_the_file_its_quick_profile_and_the_command_line(tmp_path):
    path = study_file(tmp_path, tmp_path / "d.zarr", {"unet": UNET}, quick={"jobs": 2})
    assert load_study(path).jobs == 1 and load_study(path, quick=True).jobs == 2
    for bad in (0, -1, "2", 1.5, True):
        with pytest.raises(InputError, match=f"jobs .*must be a whole number of at least 1, got {bad!r}"):
            load_study(study_file(tmp_path, tmp_path / "d.zarr", {"unet": UNET}, jobs=bad))
    parser = build_parser()
    assert parser.parse_args(["study", str(path), "--out", "o", "--jobs", "3"]).jobs == 3
    assert parser.parse_args(["study", str(path), "--out", "o"]).jobs is None  # the file decides
    with pytest.raises(SystemExit):
        parser.parse_args(["study", str(path), "--out", "o", "--jobs", "0"])


# -- training -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """4 hours of 32 x 32 synthetic data, 2 channels (16 times)."""
    ds = generate_paired(SynthConfig(hours=4, size=32, seed=5, channels=("WV_062", "IR_108")))
    return save_paired(ds, tmp_path_factory.mktemp("data") / "tiny.zarr")


@pytest.fixture
def one_thread(monkeypatch):
    """One torch thread here and in the workers, so that both sum in the same order (equal weights)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(folder / "weights.safetensors"))


def test_two_jobs_train_the_runs_of_one_job_to_the_same_weights(tmp_path, tiny_data, one_thread):
    study = load_study(study_file(tmp_path, tiny_data, {"unet": UNET, "flow_gaussian": FLOW,
                                                        "flow_residual": RESIDUAL}), quick=True)
    lines: dict[int, list[str]] = {1: [], 2: []}
    for jobs in (1, 2):
        seconds = train_runs(training_runs(study, tmp_path / f"jobs{jobs}"), jobs=jobs, progress=False,
                             log=lines[jobs].append)
        assert sorted(seconds) == ["flow_gaussian_t1", "flow_residual_t1", "unet_t1"]
    names = sorted(p.name for p in (tmp_path / "jobs1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "jobs2").iterdir())
    for name in ("unet_t1", "flow_gaussian_t1", "flow_residual_t1"):
        one, two = weights(tmp_path / "jobs1" / name), weights(tmp_path / "jobs2" / name)
        assert one.keys() == two.keys()
        for key in one:  # one thread in both processes: the same sums in the same order, bit for bit
            torch.testing.assert_close(two[key], one[key], rtol=0, atol=0, msg=f"{name} {key}")
    log = lines[2]
    assert any(line.startswith("[flow_residual_t1] flow_residual_t1 step 4:") for line in log)
    unet_done = log.index(next(line for line in log if line.startswith("[study] unet_t1 done in")))
    residual_starts = log.index("[study] training 3/3: flow_residual_t1 (4 steps)")
    assert unet_done < residual_starts  # the residual flow waited for its U-Net
    assert log[:2] == ["[study] training 1/3: unet_t1 (4 steps)", "[study] training 2/3: flow_gaussian_t1 (4 steps)"]
    assert lines[1][0] == "[study] training 1/3: unet_t1 (4 steps)"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failed_run_stops_the_study_keeps_its_sibling_and_skips_its_dependants(tmp_path, tiny_data, jobs):
    absent = tmp_path / "absent.zarr"
    study = load_study(study_file(tmp_path, tiny_data, {
        "unet": UNET, "broken": {"family": "unet", "data": str(absent)},
        "flow_residual": {**RESIDUAL, "base": "broken"},
    }), quick=True)
    lines: list[str] = []
    with pytest.raises(MissingInputError) as err:
        train_runs(training_runs(study, tmp_path / "models"), jobs=jobs, progress=False, log=lines.append)
    assert str(err.value) == f"training broken_t1 failed: dataset {absent} not found (not trained: flow_residual_t1)"
    assert weights(tmp_path / "models" / "unet_t1")  # the sibling finished and is kept
    assert not (tmp_path / "models" / "flow_residual_t1").exists()
    assert not any("flow_residual_t1" in line for line in lines if line.startswith("[study] training"))
