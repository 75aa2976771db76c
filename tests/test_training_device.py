"""Training settings for a GPU: samples cut on the device, torch.compile, and the warm-up benchmark.

On the CPU (no GPU here): the device path must give the data-loader's batches value for value and the
same weights; a compiled run must save the plain module's weights, loadable in a fresh process.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml

from qpe.data.paired import open_paired, save_paired
from qpe.data.samples import DIHEDRAL, PairedSamples, SampleConfig
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.errors import InputError
from qpe.models import load
from qpe.training import TrainConfig, train
from qpe.training.batches import StepBatches
from qpe.training.device_samples import DeviceSamples
from qpe.training.loop import collate

ROOT = Path(__file__).resolve().parents[1]
TINY = {"base_channels": 8, "channel_mults": [1, 2], "groups": 4}
SECTIONS = {
    "unet": {"family": "unet"},
    "ddpm": {"family": "ddpm", "diffusion": {"timesteps": 100}, "sampling": {"sampler": "ddim", "steps": 2}},
    "flow_gaussian": {"family": "flow", "flow": {"source": "gaussian"}, "sampling": {"sampler": "euler", "steps": 2}},
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """4 hours of 32 x 32 synthetic data, 2 channels (16 times), radar missing in one corner."""
    ds = generate_paired(SynthConfig(hours=4, size=32, seed=5, channels=("WV_062", "IR_108")))
    ds["rain"][:, :6, :6] = np.nan
    return save_paired(ds, tmp_path_factory.mktemp("data") / "tiny.zarr")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(kind: str = "unet", steps: int = 3, **optim) -> TrainConfig:
    return TrainConfig.from_dict({
        "name": kind, **SECTIONS[kind], "input": {"frames": 2}, "architecture": TINY,
        "optim": {"steps": steps, "batch_size": 4, "crop": 16, "lr": 3e-3, "warmup_steps": 1, **optim},
        "validation": {"fraction": 0.25, "every": steps, "samples": 2, "crop": 32, "members": 2},
        "checkpoint_every": steps, "seed": 3,
    })


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(folder / "weights.safetensors"))


# -- optim.data_on_device ---------------------------------------------------------------------------------
@pytest.mark.parametrize("augment", [(), ("flip_x",), DIHEDRAL], ids=["none", "flip_x", "dihedral"])
@pytest.mark.parametrize("crop", [16, None], ids=["crop16", "whole"])
def test_device_batches_are_the_data_loader_batches(tiny_data, augment, crop):
    samples = PairedSamples(open_paired(tiny_data), SampleConfig(frames=3, crop=crop, augment=augment), seed=11)
    on_device = DeviceSamples(samples, "cpu")
    batches = StepBatches(len(samples), 4, seed=2, start=0, stop=3 * len(samples) // 4)  # three epochs
    for keys in batches:
        expected = collate([samples[key] for key in keys])
        got = on_device.batch(keys)
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
            assert torch.equal(got[name], value), name


def test_device_samples_hold_each_frame_once(tiny_data):
    samples = PairedSamples(open_paired(tiny_data), SampleConfig(frames=3, crop=16), seed=0)
    on_device = DeviceSamples(samples, "cpu")
    frames_read = np.unique(samples.targets[:, None] + np.arange(-2, 1))
    assert on_device.ir.shape == (frames_read.size, 2, 32, 32)
    assert on_device.rain.shape == (len(samples), 32, 32)


@pytest.mark.parametrize("kind", ["unet", "flow_gaussian"])
def test_data_on_device_trains_to_the_same_weights(tmp_path, tiny_data, kind):
    plain = train(tiny_config(kind), data=tiny_data, out=tmp_path / "plain", progress=False, log=lambda s: None)
    device = train(tiny_config(kind, data_on_device=True), data=tiny_data, out=tmp_path / "device",
                   progress=False, log=lambda s: None)
    a, b = weights(plain), weights(device)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = [yaml.safe_load((path / "card.yaml").read_text())["validation"] for path in (plain, device)]
    assert history[0] == history[1]


# -- settings -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("optim", "message"), [
    ({"data_on_device": "yes"}, "optim data_on_device must be true or false, got 'yes'"),
    ({"compile": 1}, "optim compile must be true or false, got 1"),
    ({"amp": None}, "optim amp must be true or false, got None"),
    ({"workers": -1}, "optim workers must be a whole number >= 0, got -1"),
    ({"complie": True}, "unknown optim settings complie"),
])
def test_bad_device_settings_are_one_clear_error(optim, message):
    with pytest.raises(InputError, match=message):
        tiny_config(**optim)


def test_device_settings_round_trip_and_stay_out_of_the_digest(tmp_path):
    config = tiny_config(data_on_device=True, compile=True)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    again = TrainConfig.from_yaml(path)
    assert again == config and again.optim.data_on_device and again.optim.compile
    # how the steps are computed is no part of what the run is: a run may resume with other values
    plain = config.replace(optim=dataclasses.replace(config.optim, data_on_device=False, compile=False))
    assert plain.digest() == config.digest()
    assert config.replace(seed=4).digest() != config.digest()


# -- optim.compile ---------------------------------------------------------------------------------------------
LOAD_AND_RUN = """
import sys, torch
from qpe.models import load
torch.manual_seed(0)
model = load(sys.argv[1]).model
ir = torch.randn(2, model.frames, model.channels, 16, 16)
torch.save(model.mean(ir), sys.argv[2])
"""


@pytest.mark.slow
def test_a_compiled_run_saves_the_plain_module(tmp_path, tiny_data):
    """A real inductor compile of a tiny U-Net (about 50 s on a busy 2-core CPU the first time, seconds
    once inductor's on-disk cache holds it)."""
    pytest.importorskip("torch._inductor")
    config = tiny_config("unet", steps=2, compile=True, data_on_device=True)
    out = train(config, data=tiny_data, out=tmp_path / "compiled", progress=False, log=lambda s: None)
    keys = set(weights(out))
    assert not any("_orig_mod" in key for key in keys)
    assert keys == set(load(out).model.state_dict())
    card = yaml.safe_load((out / "card.yaml").read_text())
    assert card["training"]["settings"]["optim"]["compile"] is True
    # compiled training follows the eager one (fused kernels round differently: not bit for bit)
    eager = train(tiny_config("unet", steps=2, data_on_device=True), data=tiny_data, out=tmp_path / "eager",
                  progress=False, log=lambda s: None)
    for key, value in weights(eager).items():
        torch.testing.assert_close(weights(out)[key], value, atol=1e-4, rtol=1e-3, msg=key)
    # the checkpoint loads in a fresh process (no compiled module needed) and computes what it does here
    subprocess.run([sys.executable, "-c", LOAD_AND_RUN, str(out), str(tmp_path / "mean.pt")], check=True,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, cwd=ROOT, timeout=120)
    torch.manual_seed(0)
    model = load(out).model
    ir = torch.randn(2, model.frames, model.channels, 16, 16)
    with torch.no_grad():
        here = model.mean(ir)
    assert torch.equal(torch.load(tmp_path / "mean.pt"), here)


# -- the warm-up benchmark --------------------------------------------------------------------------------
def tiny_study(tmp_path: Path, data: Path, jobs: int) -> Path:
    """A study of the four families at T = 1 and 2 on tiny data, with the device settings on."""
    study = {
        "name": "tiny", "train_data": str(data), "frames": [1, 2], "jobs": jobs,
        "training": {"architecture": TINY,
                     "optim": {"steps": 20, "batch_size": 4, "crop": 16, "warmup_steps": 2, "data_on_device": True},
                     "validation": {"fraction": 0.25, "every": 10, "samples": 2, "crop": 32, "members": 2},
                     "checkpoint_every": 10},
        "models": {
            "unet": {"family": "unet"},
            "ddpm": {"family": "ddpm", "diffusion": {"timesteps": 100}, "sampler": "ddim", "steps": [2, 4]},
            "flow_gaussian": {"family": "flow", "flow": {"source": "gaussian"}, "sampler": "midpoint",
                              "steps": [1, 2]},
            "flow_residual": {"family": "flow", "flow": {"source": "residual"}, "base": "unet",
                              "sampler": "midpoint", "also_samplers": ["euler"], "steps": [1, 2]},
        },
        "benchmarks": [{"name": "tiny", "data": str(data), "max_times": 3}],
        "members": 2,
        "quick": {"training": {"optim": {"steps": 10}}},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_training.py"), *args],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_the_benchmark_prints_rates_and_projections(tmp_path, tiny_data):
    done = run_bench(str(tiny_study(tmp_path, tiny_data, jobs=2)), "--quick", "--seconds", "2",
                     "--device", "cpu", "--budget-min", "60", "--rest-min", "0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for family in ("unet", "ddpm", "flow_gaussian", "flow_residual"):
        row = next(line for line in lines if line.startswith(family)).split()
        numbers = [float(v) for v in row[1:] if v != "|"]
        assert len(numbers) == 11 and all(v > 0 for v in numbers[:10]), row  # batch ... TFLOP/s, ratio
    assert any(line.startswith("projected training: plain") and "2 at once" in line for line in lines)
    assert any(line.startswith("  scoring tiny: 3 times x 18 variants") for line in lines)
    assert any(line.startswith("projected total:") and "(budget 60 min)" in line for line in lines)


@pytest.mark.slow
def test_the_benchmark_stops_a_study_over_its_budget(tmp_path, tiny_data):
    done = run_bench(str(tiny_study(tmp_path, tiny_data, jobs=1)), "--quick", "--seconds", "1",
                     "--device", "cpu", "--budget-min", "0.01")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        next(line for line in done.stderr.splitlines() if "exceeds the budget of 0.01 min" in line)]
