"""benchmarks/bench_gpu.py --quick on the CPU: the command docs/performance.md quotes prints a table with a
row per family and setting, every number positive, and the command that made it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("unet", "ddpm", "flow_gaussian", "flow_residual")


def _table(lines: list[str], header_start: str) -> list[dict[str, str]]:
    """The markdown table whose header row starts with ``header_start``, as dicts by column name."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    names = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(names, (c.strip() for c in line.strip("|").split("|")))))
    return rows


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--quick", "--device", "cpu"],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_quick_inference_table_has_a_row_per_family_and_setting(quick_run):
    assert quick_run.returncode == 0, quick_run.stderr[-2000:]
    lines = quick_run.stdout.splitlines()
    rows = _table(lines, "| grid | family |")
    assert not [r for r in rows if r["fields/s"].startswith("skipped")]
    single = {(r["family"], r["setting"]): r for r in rows if r["grid"] == "32x32"}
    assert set(single) == {(f, s) for f in FAMILIES for s in ("fp32", "bf16")}
    # The tiled grid (72 x 64 px in 32-px tiles overlapping by 8: 3 x 3 tiles) for the U-Net and the flow.
    tiled = {(r["family"], r["setting"]) for r in rows if r["grid"] == "72x64 (9 tiles)"}
    assert tiled == {(f, s) for f in ("unet", "flow_residual") for s in ("fp32", "bf16")}
    for r in rows:
        for column in ("fields/s", "s/time", "first call s", "peak MiB", "GFLOP/time", "TFLOP/s"):
            assert float(r[column]) > 0, (r, column)
        # fields/s is the members of one time over its latency
        assert float(r["fields/s"]) == pytest.approx(int(r["members"]) / float(r["s/time"]), rel=0.01)
    flow = next(r for r in rows if r["family"] == "flow_residual" and r["grid"] == "32x32"
                and r["setting"] == "fp32" and r["members"] == "2")
    assert (flow["sampler"], flow["K"], flow["NFE"]) == ("midpoint", "1", "3")  # two evaluations + its U-Net
    # GFLOP grow with the tiles: the tiled U-Net computes 9 tiles of the single tile's work
    unet = {r["grid"]: float(r["GFLOP/time"]) for r in rows if r["family"] == "unet" and r["setting"] == "fp32"}
    assert unet["72x64 (9 tiles)"] == pytest.approx(9 * unet["32x32"], rel=0.01)
    assert "python benchmarks/bench_gpu.py --quick --device cpu" in quick_run.stdout


def test_quick_training_table_has_both_architectures(quick_run):
    assert quick_run.returncode == 0, quick_run.stderr[-2000:]
    rows = _table(quick_run.stdout.splitlines(), "| architecture | family |")
    assert {(r["architecture"], r["family"]) for r in rows} == {(a, f) for a in ("demo", "gpu study") for f in FAMILIES}
    for r in rows:
        for column in ("steps/s", "ms/step", "GFLOP/step", "TFLOP/s"):
            assert r["precision"] == "fp32"  # the loop autocasts on a GPU only
            assert float(r[column]) > 0, (r, column)
