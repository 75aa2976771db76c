"""Rain labelled mm/h but in another unit (m/s, mm/s, mm per 5 min): warned with the evidence, no false alarm
on the real OPERA composites or the synthetic benchmark."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from qpe.cli import main
from qpe.data.paired import make_paired_dataset, save_paired, validate_paired
from qpe.data.rain_statistics import RainUnitWarning, rain_unit_problem
from qpe.data.readers import read_radar
from qpe.data.synthetic import SynthConfig, generate_paired


def opera_like_mm_h(n: int = 20_000, seed: int = 0) -> np.ndarray:
    """Positive rain rates shaped like OPERA over France: median 0.05, p99 about 3 mm/h."""
    return np.random.default_rng(seed).lognormal(np.log(0.05), 1.9, n)


def rain_dataset(grid, rain_mm_h_or_other: np.ndarray):
    """4 times on ``grid`` whose pixels take the given positive values (and 0 elsewhere)."""
    field = np.zeros((4, *grid.shape))
    flat = field.reshape(-1)
    flat[: rain_mm_h_or_other.size] = rain_mm_h_or_other[: flat.size]
    times = pd.date_range("2021-06-01T12:00", periods=4, freq="15min")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RainUnitWarning)
        return make_paired_dataset(grid, times, rain=field)


@pytest.mark.parametrize(
    "factor, unit",
    [(3.6e6, "m s-1"), (3600.0, "mm s-1 (kg m-2 s-1)"), (12.0, "mm per 5 min")],
)
def test_values_in_another_unit_are_named_with_the_numbers(factor, unit):
    values = opera_like_mm_h() / factor
    median, p99 = np.quantile(values, [0.5, 0.99])
    problem = rain_unit_problem(values)
    assert problem is not None and f"looks like {unit}:" in problem
    assert f"median {median:.3g} and 99th percentile {p99:.3g} mm/h" in problem
    assert f"read as {unit} the median would be {median * factor:.3g} mm/h" in problem
    assert "\n" not in problem


@pytest.mark.parametrize("seed", range(5))
def test_plausible_rain_rates_are_not_flagged(seed):
    assert rain_unit_problem(opera_like_mm_h(seed=seed)) is None


def test_too_few_wet_pixels_are_not_judged():
    assert rain_unit_problem(opera_like_mm_h(999) / 3.6e6) is None


def test_validator_warns_once_with_the_evidence(small_grid):
    ds = rain_dataset(small_grid, opera_like_mm_h(6000) / 3.6e6)
    message = r"rain is labelled mm/h but looks like m s-1: .* median would be"
    with pytest.warns(RainUnitWarning, match=message):
        validate_paired(ds)


def test_info_prints_the_problem_line_and_no_warning(tmp_path, small_grid, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RainUnitWarning)
        path = save_paired(rain_dataset(small_grid, opera_like_mm_h(6000) / 3.6e6), tmp_path / "ms.zarr")
    assert main(["data", "info", str(path)]) == 0
    captured = capsys.readouterr()
    problems = [line for line in captured.out.splitlines() if line.startswith("  problem ")]
    assert len(problems) == 1 and "looks like m s-1" in problems[0]
    assert captured.err == ""


def test_data_commands_print_the_warning_as_one_line(tmp_path, small_grid, capsys):
    """``qpe data pair`` validates the rain it reads: the warning is one ``qpe: warning:`` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RainUnitWarning)
        rain = save_paired(rain_dataset(small_grid, opera_like_mm_h(6000) / 3.6e6), tmp_path / "ms.zarr")
    times = pd.date_range("2021-06-01T12:00", periods=4, freq="15min")
    ir = 250.0 + np.random.default_rng(0).random((4, 1, *small_grid.shape))
    ir = make_paired_dataset(small_grid, times, ir=ir, channels=["IR_108"])
    ir_path = save_paired(ir, tmp_path / "ir.zarr")
    out = tmp_path / "p.zarr"
    assert main(["data", "pair", "--ir", str(ir_path), "--rain", str(rain), "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("qpe: warning: rain is labelled mm/h but looks like m s-1")


# -- no false alarms ---------------------------------------------------------------------------------
def test_synthetic_benchmark_is_not_flagged():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RainUnitWarning)
        ds = generate_paired(SynthConfig(hours=6, size=128))
    rain = ds["rain"].values
    assert rain_unit_problem(rain[rain > 0]) is None


@pytest.mark.shared_data
@pytest.mark.parametrize("region, pixel_km", [("france", 2.0), ("france", 4.0), ("europe", 2.0)])
def test_opera_composites_are_not_flagged(opera_files, region, pixel_km):
    # every composite of the evening on the France grid; every third (45 min apart, all of the evening's
    # regimes) on the coarser grid and on the much larger Europe grid
    files = opera_files if (region, pixel_km) == ("france", 2.0) else opera_files[::3]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RainUnitWarning)
        ds = read_radar(files, region=region, pixel_km=pixel_km)
    rain = ds["rain"].values
    assert rain_unit_problem(rain[rain > 0]) is None


@pytest.mark.shared_data
def test_opera_in_m_per_s_is_flagged(opera_files):
    rain = read_radar(opera_files[:4], region="france")["rain"].values
    problem = rain_unit_problem(rain[rain > 0] / 3.6e6)
    assert problem is not None and "looks like m s-1" in problem
