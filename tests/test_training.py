"""The training loop: loss goes down, checkpoints are complete, runs resume exactly, DDP agrees."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
import yaml

from qpe.cli import main
from qpe.data.paired import open_paired, save_paired
from qpe.data.provenance import dataset_sha256
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.errors import InputError
from qpe.models import load
from qpe.training import TrainConfig, TrainingState, learning_rate, state_dir, train
from qpe.training.batches import StepBatches

TINY = {"base_channels": 8, "channel_mults": [1, 2], "groups": 4}
FAMILY_SECTIONS = {
    "unet": {"family": "unet"},
    "ddpm": {"family": "ddpm", "diffusion": {"timesteps": 100}, "sampling": {"sampler": "ddim", "steps": 4}},
    "flow_gaussian": {"family": "flow", "flow": {"source": "gaussian"}, "sampling": {"sampler": "euler", "steps": 2}},
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """4 hours of 32 x 32 synthetic data, 2 channels (16 times)."""
    ds = generate_paired(SynthConfig(hours=4, size=32, seed=5, channels=("WV_062", "IR_108")))
    return save_paired(ds, tmp_path_factory.mktemp("data") / "tiny.zarr")


def tiny_config(kind: str = "unet", steps: int = 6, **changes) -> TrainConfig:
    """A tiny run of ``kind`` (a key of FAMILY_SECTIONS); ``changes`` update sections or set fields."""
    spec = {
        "name": kind, **FAMILY_SECTIONS[kind], "input": {"frames": 2}, "architecture": TINY,
        "optim": {"steps": steps, "batch_size": 4, "crop": 16, "lr": 3e-3, "warmup_steps": 2},
        "validation": {"fraction": 0.25, "every": 3, "samples": 2, "crop": 32, "members": 2},
        "checkpoint_every": 2, "seed": 3,
    }
    for key, value in changes.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) and key in spec else value
    return TrainConfig.from_dict(spec)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(folder / "weights.safetensors"))


def assert_same_weights(a: Path, b: Path, atol: float = 0.0) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=atol, rtol=0 if atol == 0 else 1e-5, msg=k)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- config ---------------------------------------------------------------------------------------------
def test_config_round_trips_through_yaml(tmp_path):
    config = tiny_config("ddpm")
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert TrainConfig.from_yaml(path) == config


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "family": "unet", "optim": {"stepz": 3}}, "unknown optim setting"),
        ({"name": "x", "family": "gan"}, "unknown model family 'gan'"),
        ({"name": "x", "family": "flow", "flow": {"source": "residual"}}, "needs 'base_checkpoint'"),
        ({"name": "x", "family": "unet", "base_checkpoint": "m"}, "only a residual flow"),
        ({"name": "x", "family": "unet", "optim": {"ema_decay": 1.5}}, "ema_decay"),
    ],
)
def test_bad_configs_give_one_clear_error(tmp_path, spec, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(InputError, match=message):
        TrainConfig.from_yaml(path)


def test_committed_demo_configs_parse():
    configs = sorted(Path(__file__).parents[1].glob("configs/train/demo_*.yaml"))
    names = {TrainConfig.from_yaml(p).name for p in configs}
    assert names == {"unet", "ddpm", "flow_gaussian", "flow_residual", "flow_residual_student"}


def test_learning_rate_warms_up_then_decays_to_its_floor():
    config = tiny_config(steps=100, optim={"warmup_steps": 10, "lr": 1e-3, "min_lr_ratio": 0.1})
    lrs = np.array([learning_rate(config, s) for s in range(100)])
    np.testing.assert_allclose(lrs[:10], 1e-3 * np.arange(1, 11) / 10)
    assert np.all(np.diff(lrs[10:]) <= 0) and lrs[-1] == pytest.approx(1e-4, rel=0.01)


# -- batches ----------------------------------------------------------------------------------------------
def test_each_epoch_visits_every_sample_once_and_processes_split_each_batch():
    one = StepBatches(10, 4, seed=1, start=0, stop=4)
    assert one.per_epoch == 2
    epoch0 = [i for step in (0, 1) for _, i in one.batch(step)]
    assert len(set(epoch0)) == 8 and {e for step in (2, 3) for e, _ in one.batch(step)} == {1}
    halves = [StepBatches(10, 4, 1, 0, 4, rank=r, world=2) for r in (0, 1)]
    for step in range(4):
        assert sorted(halves[0].batch(step) + halves[1].batch(step)) == sorted(one.batch(step))
    assert list(StepBatches(10, 4, 1, start=3, stop=4)) == [one.batch(3)]


# -- training -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAMILY_SECTIONS))
def test_training_reduces_the_loss(tmp_path, tiny_data, name):
    """The training loss falls for every family; the held-out loss too for the generative ones (the tiny
    U-Net fits the 10 training times fast, and its loss on 4 later crops then stays flat)."""
    config = tiny_config(name, steps=40, validation={"every": 4, "members": 1, "samples": 4},
                         checkpoint_every=40, optim={"batch_size": 8, "crop": 32})
    out = train(config, data=tiny_data, out=tmp_path / name, progress=False, log=lambda _: None)
    history = TrainingState.load(state_dir(out)).history
    assert [h["step"] for h in history] == list(range(4, 41, 4))
    for key in ("train_loss",) + (("loss",) if name != "unet" else ()):
        first, last = (np.mean([h[key] for h in part]) for part in (history[:3], history[-3:]))
        assert last < 0.7 * first, (key, first, last)


def test_checkpoint_card_traces_data_steps_scores_and_settings(tmp_path, tiny_data):
    config = tiny_config("ddpm", steps=4)
    out = train(config, data=tiny_data, out=tmp_path / "ddpm", progress=False, log=lambda _: None)
    model = load(out)
    card = model.card
    assert card.family == "ddpm" and card.input.frames == 2 and card.input.channels == ["WV_062", "IR_108"]
    assert card.data.sha256 == dataset_sha256(open_paired(tiny_data))
    assert card.training.steps == 4 and card.training.settings["optim"]["steps"] == 4
    assert card.training.settings["device"] == "cpu" and card.training.settings["processes"] == 1
    assert set(card.validation) >= {"step", "loss", "csi_1mm", "wet_fraction", "wet_p99", "crps"}
    assert card.validation["step"] == 4 and card.code_revision
    history = (state_dir(out) / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,train_loss,loss,csi_1mm") and len(history) == 1 + 2  # steps 3 and 4


def test_generative_checkpoints_hold_the_ema_weights(tmp_path, tiny_data):
    out = train(tiny_config("flow_gaussian", steps=4), data=tiny_data, out=tmp_path / "f",
                progress=False, log=lambda _: None)
    state = TrainingState.load(state_dir(out))
    saved = weights(out)
    ema = {k: v for k, v in state.ema.items() if k != "__updates__"}
    assert ema.keys() == saved.keys() and int(state.ema["__updates__"]) == 4
    for k in saved:
        torch.testing.assert_close(saved[k], ema[k], rtol=0, atol=0)
    assert any(not torch.equal(saved[k], state.model[k]) for k in saved)  # EMA lags the raw weights


def test_residual_flow_trains_on_its_unet_and_names_it_by_hash(tmp_path, tiny_data):
    unet = train(tiny_config("unet", steps=4), data=tiny_data, out=tmp_path / "unet", progress=False,
                 log=lambda _: None)
    config = tiny_config("flow_gaussian", steps=4, name="flow_residual", flow={"source": "residual"},
                         base_checkpoint=str(unet))
    out = train(config, data=tiny_data, out=tmp_path / "flow_residual", progress=False, log=lambda _: None)
    flow = load(out)
    assert flow.card.needs_base and flow.card.base_checkpoint.sha256 == load(unet).sha256
    assert flow.card.base_checkpoint.path == "../unet"
    assert flow.card.normalization == load(unet).card.normalization


def test_a_residual_flow_moved_with_its_unet_resumes_and_refuses_another_unet(tmp_path, tiny_data):
    """A study copied to another folder: the flow's config names its U-Net by a new path, but the same
    weights, so the run resumes; a different U-Net at that path is a different run."""
    quiet = {"data": tiny_data, "progress": False, "log": lambda _: None}

    def flow(base: Path, steps: int) -> TrainConfig:
        return tiny_config("flow_gaussian", steps=steps, name="flow_residual", flow={"source": "residual"},
                           base_checkpoint=str(base))

    unet = train(tiny_config("unet", steps=2), out=tmp_path / "a" / "unet", **quiet)
    train(flow(unet, 2), out=tmp_path / "a" / "flow", **quiet)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = train(flow(tmp_path / "b" / "unet", 4), out=tmp_path / "b" / "flow", resume=True, **quiet)
    assert load(moved).card.training.steps == 4
    assert load(moved).card.base_checkpoint == load(tmp_path / "a" / "flow").card.base_checkpoint
    # a state saved before checkpoints were named by hash carries the digest of the config's paths: it
    # resumes where it was, and moved with its U-Net (the path its card recorded, the same weights)
    for folder in ("a", "c"):
        if folder == "c":
            shutil.copytree(tmp_path / "a", tmp_path / "c")
        state = TrainingState.load(state_dir(tmp_path / folder / "flow"))
        legacy = dataclasses.replace(state, config_digest=flow(unet, 2).digest())  # the path of a/unet
        legacy.save(state_dir(tmp_path / folder / "flow"))
        old = train(flow(tmp_path / folder / "unet", 6), out=tmp_path / folder / "flow", resume=True, **quiet)
        assert load(old).card.training.steps == 6

    other = train(tiny_config("unet", steps=2, seed=5), out=tmp_path / "d" / "unet", **quiet)
    with pytest.raises(InputError, match="the config differs"):
        train(flow(other, 6), out=tmp_path / "b" / "flow", resume=True, **quiet)
    legacy.save(state_dir(tmp_path / "c" / "flow"))  # an old state beside another U-Net: refused as well
    with pytest.raises(InputError, match="the config differs"):
        train(flow(other, 8), out=tmp_path / "c" / "flow", resume=True, **quiet)


# -- resuming -------------------------------------------------------------------------------------------
class Interrupt(KeyboardInterrupt):
    pass


def interrupt_at(step: int):
    """A ``log`` that stops the run (like Ctrl-C) when the validation of ``step`` is reported."""

    def log(line: str) -> None:
        if f" step {step}:" in line:
            raise Interrupt(line)

    return log


@pytest.mark.parametrize("name", ["unet", "ddpm"])
def test_resumed_run_reaches_the_weights_of_an_uninterrupted_one(tmp_path, tiny_data, name):
    config = tiny_config(name, steps=6, validation={"every": 1})
    straight = train(config, data=tiny_data, out=tmp_path / "straight", progress=False, log=lambda _: None)
    with pytest.raises(Interrupt):  # stopped at step 5, before its checkpoint: the last one is step 4
        train(config, data=tiny_data, out=tmp_path / "resumed", progress=False, log=interrupt_at(5))
    assert TrainingState.load(state_dir(tmp_path / "resumed")).step == 4
    lines = []
    resumed = train(config, data=tiny_data, out=tmp_path / "resumed", resume=True, progress=False,
                    log=lines.append)
    assert lines[0].startswith(f"resuming {name} at step 4")
    assert_same_weights(straight, resumed)
    a, b = (TrainingState.load(state_dir(p)) for p in (straight, resumed))
    assert a.step == b.step == 6
    assert pd.DataFrame(a.history).equals(pd.DataFrame(b.history))  # NaN (no wet pixel) equals NaN
    for k in a.optimizer["state"]:
        torch.testing.assert_close(a.optimizer["state"][k]["exp_avg"], b.optimizer["state"][k]["exp_avg"],
                                   rtol=0, atol=0)


def test_a_run_killed_with_sigkill_resumes_at_its_last_checkpoint(tmp_path, tiny_data):
    """``kill -9`` in the middle of a run: ``--resume`` continues from the last complete state."""
    config = tiny_config("unet", steps=40, checkpoint_every=2, validation={"every": 100})
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "qpe", "train", str(path), "--data", str(tiny_data), "--device", "cpu"]
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = state_dir(tmp_path / "killed") / "state.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and TrainingState.load(state.parent).step >= 6:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = TrainingState.load(state.parent).step
    assert 6 <= killed_at < 40, "the run finished before it could be killed"
    done = subprocess.run([*cmd, "--out", str(tmp_path / "killed"), "--resume"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming unet at step {killed_at}" in done.stdout + done.stderr
    straight = subprocess.run([*cmd, "--out", str(tmp_path / "straight")], env=env, capture_output=True,
                              text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert_same_weights(tmp_path / "straight", tmp_path / "killed")


def test_refuses_to_overwrite_a_run_or_resume_a_different_one(tmp_path, tiny_data, capsys):
    quiet = {"progress": False, "log": lambda _: None}
    out = train(tiny_config("unet", steps=2), data=tiny_data, out=tmp_path / "u", **quiet)
    with pytest.raises(InputError, match="already has a training run"):
        train(tiny_config("unet", steps=2), data=tiny_data, out=out, **quiet)
    with pytest.raises(InputError, match="the config differs"):
        train(tiny_config("unet", steps=4, optim={"lr": 1e-2}), data=tiny_data, out=out, resume=True, **quiet)
    with pytest.raises(InputError, match="nothing to resume"):
        train(tiny_config("unet", steps=2), data=tiny_data, out=tmp_path / "new", resume=True, **quiet)
    (state_dir(out) / "state.pt").write_bytes(b"\x80\x04 not a state")
    path = tmp_path / "c.yaml"
    path.write_text(tiny_config("unet", steps=4).to_yaml())
    assert main(["train", str(path), "--data", str(tiny_data), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("qpe: error: ") and "is not a readable training state" in err[-1]


def test_a_trained_run_is_found_trained_without_reading_its_data(tmp_path, tiny_data):
    lines = []
    out = train(tiny_config("unet", steps=2), data=tiny_data, out=tmp_path / "u", progress=False, log=print)
    weights = (out / "weights.safetensors").read_bytes()
    # no data at all: a run already at its steps returns before opening data or building the model
    again = train(tiny_config("unet", steps=2), data=tmp_path / "absent.zarr", out=out, resume=True,
                  progress=False, log=lines.append)
    assert again == out and lines == ["unet: already trained for 2 steps"]
    assert (out / "weights.safetensors").read_bytes() == weights
    with pytest.raises(InputError, match="the config differs"):  # still checked first
        train(tiny_config("unet", steps=2, optim={"lr": 1e-2}), data=tmp_path / "absent.zarr", out=out,
              resume=True, progress=False, log=lines.append)


def test_cli_trains_and_reports_the_validation(tmp_path, tiny_data, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(tiny_config("unet", steps=3).to_yaml())
    assert main(["train", str(path), "--data", str(tiny_data), "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "3 steps" in out and "csi_1mm" in out
    assert main(["train", str(path), "--data", str(tiny_data), "--out", str(tmp_path / "m"),
                 "--resume", "--steps", "5"]) == 0
    assert load(tmp_path / "m").card.training.steps == 5


# -- data parallel --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_gloo_processes_train_like_one(tmp_path, tiny_data):
    """``torchrun --nproc_per_node 2``: each process takes half of every batch; the averaged gradients
    equal one process's on the whole batch, so the weights agree to rounding."""
    config = tiny_config("unet", steps=4, validation={"every": 100})
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["train", str(path), "--data", str(tiny_data), "--device", "cpu"]
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "qpe", *common, "--out",
                          str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "qpe", *common, "--out", str(tmp_path / "single")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    assert load(tmp_path / "ddp").card.training.settings["processes"] == 2
    assert_same_weights(tmp_path / "ddp", tmp_path / "single", atol=1e-5)
    assert two.stdout.count("wrote") == 1  # only the main process reports


def test_config_digest_ignores_what_may_change_on_resume():
    config = tiny_config("unet", steps=4)
    longer = config.replace(optim=dataclasses.replace(config.optim, steps=40), checkpoint_every=9)
    assert longer.digest() == config.digest()
    assert config.replace(seed=4).digest() != config.digest()


def test_training_never_replaces_what_is_not_a_checkpoint(tmp_path, tiny_data):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="is a file: a checkpoint is a folder"):
        train(tiny_config("unet"), data=tiny_data, out=tmp_path / "notes.txt", progress=False, log=lambda _: None)
    dataset = tmp_path / "other.zarr"
    shutil.copytree(tiny_data, dataset)
    with pytest.raises(InputError, match="holds files but no model card"):
        train(tiny_config("unet"), data=tiny_data, out=dataset, progress=False, log=lambda _: None)
    assert (tmp_path / "notes.txt").read_text() == "keep me" and (dataset / ".zgroup").exists()


@pytest.mark.parametrize("frames", ["abc", 0, 9, 2.5, True])
def test_bad_input_frames_are_one_clear_error(frames):
    with pytest.raises(InputError, match="input frames .T. must be an integer from 1 to 8"):
        tiny_config("unet", input={"frames": frames})
