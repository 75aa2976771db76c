"""``qpe study studies/demo.yaml --quick``, end to end as a user runs it (trains 8 tiny models, scores
49 models, samplers and K on the held-out benchmark, and on the semi-synthetic one when the OPERA files
exist)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from qpe.models import load

REPO = Path(__file__).resolve().parents[1]
#: The real radar files of the optional semi-synthetic benchmark (data/catalog.yaml: opera-semisynthetic).
OPERA = REPO.parent / "shared" / "data" / "opera" / "20180824"
MODELS = [f"{m}_t{t}" for t in (1, 4) for m in ("unet", "ddpm", "flow_gaussian", "flow_residual")]


def run_quick(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qpe", "study", "studies/demo.yaml", "--quick", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "quick"
    done = run_quick(out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.mark.slow
def test_trains_every_family_for_every_t_and_the_baseline(quick):
    out, _ = quick
    for name in MODELS:
        card = load(out / "models" / name).card
        assert card.name == name and card.input.frames == int(name[-1]) and card.training.steps == 30
    assert load(out / "models" / "flow_residual_t4").card.base_checkpoint.path == "../unet_t4"
    assert (out / "models" / "ir_rule.yaml").is_file()


@pytest.mark.slow
def test_scores_every_model_and_k_and_writes_the_page(quick):
    out, done = quick
    table = pd.read_csv(out / "synthetic" / "scores.csv")
    expected = {"ir_rule"} | {f"unet_t{t}" for t in (1, 4)} | {
        f"{m}_t{t}_k{k}" for t in (1, 4) for m, ks in (("ddpm", (10, 50)), ("flow_gaussian", (1, 2, 8)),
                                                       ("flow_residual", (1, 2, 8))) for k in ks} | {
        f"flow_residual_t{t}_euler_k{k}" for t in (1, 4) for k in (1, 2, 8)} | {
        "flow_residual_student_t4_k2"}  # a checkpoint trained outside the study (studies/demo.yaml: checkpoints)
    assert set(table["model"]) - {"radar"} == expected
    nfe = xr.open_dataset(out / "synthetic" / "scores.nc")["network_evaluations"].to_series()
    assert nfe["flow_residual_t4_k8"] == 17 and nfe["flow_residual_t4_euler_k8"] == 9  # midpoint 2K (+ U-Net)
    assert nfe["flow_residual_student_t4_k2"] == 3  # Euler K = 2 + its U-Net
    md = (out / "study.md").read_text()
    assert "Also scored, trained outside the study" in md and "`models/demo/flow_residual_student`" in md
    assert md.count("### Hypotheses") == len(re.findall(r"^## Benchmark", md, re.M)) >= 1
    for number in (1, 2, 3, 4):
        assert re.search(rf"\*\*H{number} — (holds|does not hold|not tested)\.\*\*", md)
    headline = md.split("### Headline")[1].split("### Hypotheses")[0]
    assert headline.count("\n| ") == 1 + 9  # header + IR rule + 4 families x 2 T
    assert "| flow_residual_t4_k8 |" in headline and "| ddpm_t4_k50 |" in headline
    html = (out / "study.html").read_text()
    for figure in ("cost", "headline", "spectra", "exceedance"):
        assert (out / "figures" / f"synthetic_{figure}.png").stat().st_size > 10_000
        assert f"figures/synthetic_{figure}.png" in html
    assert "synthetic: H1" in done.stdout
    semi = out / "semisynthetic" / "scores.csv"
    if OPERA.is_dir():  # the optional benchmark runs wherever its files are
        assert semi.is_file() and "semisynthetic: skipped" not in done.stdout
    else:
        assert "semisynthetic: skipped (no OPERA" in done.stdout and not semi.exists()


@pytest.mark.slow
def test_a_second_run_reuses_the_checkpoints_and_the_estimates(quick):
    out, _ = quick
    weights = {name: (out / "models" / name / "weights.safetensors").stat().st_mtime_ns for name in MODELS}
    cached = sorted(p.name for p in (out / "cache").rglob("*.nc"))
    again = run_quick(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already trained for 30 steps" in again.stdout + again.stderr
    assert weights == {name: (out / "models" / name / "weights.safetensors").stat().st_mtime_ns for name in MODELS}
    assert sorted(p.name for p in (out / "cache").rglob("*.nc")) == cached


def test_only_absent_files_make_an_optional_benchmark_a_skip(tmp_path, monkeypatch):
    from qpe.data.paired import save_paired
    from qpe.data.synthetic import SynthConfig, generate_paired
    from qpe.errors import DatasetError, MissingInputError
    from qpe.study.config import BenchmarkSpec
    from qpe.study.run import open_benchmark

    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingInputError, match="not found"):
        open_benchmark(BenchmarkSpec("real", str(tmp_path / "absent.zarr"), optional=True), progress=False)
    data = save_paired(generate_paired(SynthConfig(hours=1.0, size=32, seed=1)), tmp_path / "b.zarr")
    assert open_benchmark(BenchmarkSpec("b", str(data), box=None), progress=False).sizes["x"] == 32
    with pytest.raises(DatasetError, match="leaves 0 x 0 pixels") as err:  # an error, optional or not
        open_benchmark(BenchmarkSpec("b", str(data), box=(0.0, 0.0, 1.0, 1.0), optional=True), progress=False)
    assert not isinstance(err.value, MissingInputError)


def test_a_study_never_writes_into_a_file_or_a_dataset(tmp_path):
    from qpe.errors import InputError
    from qpe.study import load_study, run_study

    study = load_study(REPO / "studies" / "demo.yaml", quick=True)
    (tmp_path / "keep.txt").write_text("keep me")
    with pytest.raises(InputError, match="is a file: give a folder"):
        run_study(study, tmp_path / "keep.txt", progress=False, log=lambda _: None)
    (tmp_path / "data.zarr").mkdir()
    (tmp_path / "data.zarr" / ".zgroup").write_text("{}")
    with pytest.raises(InputError, match="is a dataset or a checkpoint"):
        run_study(study, tmp_path / "data.zarr", progress=False, log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "data.zarr").iterdir()) == [".zgroup"]
