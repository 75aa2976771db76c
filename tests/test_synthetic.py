"""The synthetic benchmark: determinism, layout, CLI, and the physics of the rain and IR models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpe.cli import main
from qpe.data.grid import get_region
from qpe.data.paired import SEVIRI_CHANNELS, open_paired, validate_paired
from qpe.data.synthetic import (
    RainConfig,
    SynthConfig,
    generate_paired,
    ir_from_rain,
    simulate_rain,
    synthetic_grid,
)
from qpe.data.synthetic.clouds import CloudLayers
from qpe.data.synthetic.ir import Atmosphere, ForwardModel
from qpe.data.synthetic.semisynthetic import estimate_motion
from qpe.errors import InputError

SMALL = SynthConfig(hours=1.5, size=64, seed=3)


@pytest.fixture(scope="module")
def small() -> xr.Dataset:
    return generate_paired(SMALL)


@pytest.fixture(scope="module")
def default() -> xr.Dataset:
    """2 h on 256 x 256 pixels with the calibrated defaults."""
    return generate_paired(SynthConfig(hours=2, size=256, seed=2))


@pytest.fixture(scope="module")
def convective() -> xr.Dataset:
    """3 h on 128 x 128 pixels with plenty of convective cells: the IR-rain relations to test."""
    return generate_paired(SynthConfig(hours=3, size=128, seed=2, rain=RainConfig(cell_rate=1.0)))


def _with_ir(config: SynthConfig, **changes) -> SynthConfig:
    return config.replace(ir=dataclasses.replace(config.ir, **changes))


# -- determinism and layout -----------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_data(small):
    again = generate_paired(SMALL)
    np.testing.assert_array_equal(again["ir"].values, small["ir"].values)
    np.testing.assert_array_equal(again["rain"].values, small["rain"].values)  # NaN compare equal here


def test_different_seeds_differ(small):
    other = generate_paired(SMALL.replace(seed=4))
    assert not np.allclose(other["ir"].values, small["ir"].values)
    assert not np.array_equal(np.nan_to_num(other["rain"].values), np.nan_to_num(small["rain"].values))


def test_rain_only_simulation_is_the_datasets_rain(small):
    np.testing.assert_array_equal(simulate_rain(SMALL).values, small["rain"].values)


def test_layout_is_valid_and_complete(small):
    validate_paired(small, require=("ir", "rain"))
    assert small["ir"].dtype == np.float32 and small["rain"].dtype == np.float32
    assert list(small["channel"].values) == list(SEVIRI_CHANNELS)
    assert small.sizes["time"] == 6
    np.testing.assert_array_equal(np.diff(small["time"].values), np.timedelta64(15, "m"))
    assert pd.Timestamp(small["time"].values[0]) == pd.Timestamp("2021-06-01T00:00")
    assert not np.isnan(small["ir"].values).any()


@pytest.mark.parametrize("size, pixel_km", [(8, 2.0), (65, 2.0), (40, 4.0)])
def test_any_size_and_pixel_size(size, pixel_km):
    ds = generate_paired(SynthConfig(hours=0.5, size=size, pixel_km=pixel_km, seed=1))
    assert ds["ir"].shape == (2, 7, size, size)
    np.testing.assert_allclose(np.diff(ds["x"].values), pixel_km * 1000.0)
    assert 190.0 < float(ds["ir"].min()) and float(ds["ir"].max()) < 310.0


def test_grid_is_centred_on_france_at_2_km(small):
    grid = synthetic_grid(SMALL)
    xmin, ymin, xmax, ymax = get_region("france").bounds
    np.testing.assert_allclose([grid.dx, grid.dy], [2000.0, 2000.0])
    np.testing.assert_allclose(
        [small["x"].values.mean(), small["y"].values.mean()], [(xmin + xmax) / 2, (ymin + ymax) / 2], atol=1.0
    )


def test_rain_has_a_fixed_area_beyond_radar_range(small):
    missing = np.isnan(small["rain"].values)
    np.testing.assert_allclose(missing.mean(), SMALL.no_radar_fraction, atol=0.01)
    assert (missing == missing[0]).all(), "the uncovered area moves"
    assert missing[:, -1, -1].all() and not missing[:, 0, 0].any(), "uncovered area not in the south-east"


@pytest.mark.parametrize(
    "channel, low, high",
    [
        ("WV_062", 225.0, 248.0),
        ("WV_073", 242.0, 265.0),
        ("IR_087", 270.0, 300.0),
        ("IR_097", 255.0, 285.0),
        ("IR_108", 275.0, 302.0),
        ("IR_120", 274.0, 300.0),
        ("IR_134", 245.0, 268.0),
    ],
)
def test_clear_sky_brightness_temperatures_are_realistic(convective, channel, low, high):
    # The warmest tenth of each channel's pixels: mostly clear sky at night (00-03 UTC).
    bt = convective["ir"].sel(channel=channel).values
    assert low <= np.percentile(bt, 90) <= high


def test_deep_convective_tops_are_200_to_220_k(convective):
    coldest = np.percentile(convective["ir"].sel(channel="IR_108").values, 0.1)
    assert 195.0 <= coldest <= 220.0


def test_config_yaml_round_trip(tmp_path):
    config = SynthConfig(hours=2, size=96, seed=7, channels=("WV_062", "IR_108"))
    path = tmp_path / "synth.yaml"
    config.to_yaml(path)
    assert SynthConfig.from_yaml(path) == config


@pytest.mark.parametrize(
    "text, message",
    [
        ("size: 0\n", "size must be an integer of at least 8"),
        ("hours: 0\n", "hours must be at least 0.25"),
        ("rain: {wet_fraction: 0.1}\n", "unknown rain setting"),
        ("channels: [IR_039, IR_108]\n", "unknown channel(s) IR_039"),
        ("- not a mapping\n", "must hold a mapping"),
    ],
)
def test_config_errors_are_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        SynthConfig.from_yaml(path)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- command line ---------------------------------------------------------------------------------------
def test_cli_synth_then_info(tmp_path, capsys):
    out = tmp_path / "x.zarr"
    assert main(["data", "synth", "--out", str(out), "--hours", "1", "--size", "48", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "4 frames" in printed and "48 x 48 pixels" in printed
    ds = open_paired(out, require=("ir", "rain"))
    assert ds.sizes["time"] == 4 and ds.sizes["channel"] == 7
    assert main(["data", "info", str(out)]) == 0
    assert "valid paired dataset" in capsys.readouterr().out


def test_cli_options_override_the_config_file(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    SynthConfig(hours=2, size=40, seed=9).to_yaml(config)
    out = tmp_path / "y.nc"
    args = ["data", "synth", "--out", str(out), "--config", str(config), "--hours", "0.5",
            "--channels", "IR_108", "IR_120"]
    assert main(args) == 0
    ds = open_paired(out)
    assert ds.sizes["time"] == 2 and ds.sizes["x"] == 40
    assert list(ds["channel"].values) == ["IR_108", "IR_120"]
    assert "seed: 9" in ds.attrs["synthetic_config"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "0"], "size must be an integer"),
        (["--hours", "0"], "hours must be at least 0.25"),
        (["--channels", "IR_108", "VIS_006"], "unknown channel(s) VIS_006"),
        (["--config", "absent.yaml"], "cannot read synthetic config"),
        (["--rain-from", "x.hdf", "--size", "64"], "--size cannot be combined with --rain-from"),
    ],
)
def test_cli_bad_inputs_give_one_error_line(tmp_path, capsys, args, message):
    assert main(["data", "synth", "--out", str(tmp_path / "z.zarr"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qpe: error: ") and message in err and "\n" not in err


@pytest.mark.parametrize("out", ["afile/z.zarr", "z.txt"])
def test_cli_unwritable_output_gives_one_error_line(tmp_path, capsys, out):
    (tmp_path / "afile").write_text("a file, not a directory")
    assert main(["data", "synth", "--out", str(tmp_path / out), "--hours", "0.25", "--size", "16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qpe: error: ") and "\n" not in err
    assert not (tmp_path / out).exists()


# -- the physics ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["default", "convective"])
def test_cold_non_raining_anvils_exist(request, dataset):
    ds = request.getfixturevalue(dataset)
    rain, ir108 = ds["rain"].values, ds["ir"].sel(channel="IR_108").values
    valid = np.isfinite(rain)
    cold_dry = valid & (ir108 < 235.0) & (rain < 0.1)
    assert cold_dry.sum() / valid.sum() > 0.03
    assert cold_dry.sum() / (valid & (ir108 < 235.0)).sum() > 0.3  # cold does not mean rain


def test_warm_rain_exists(default):
    rain, ir108 = default["rain"].values, default["ir"].sel(channel="IR_108").values
    raining = rain > 1.0
    assert (raining & (ir108 > 260.0)).sum() / raining.sum() > 0.02


@pytest.mark.parametrize("dataset", ["default", "convective"])
def test_cold_tops_mean_more_rain(request, dataset):
    ds = request.getfixturevalue(dataset)
    rain, ir108 = ds["rain"].values, ds["ir"].sel(channel="IR_108").values
    valid = np.isfinite(rain)
    assert np.mean(rain[valid & (ir108 < 230)] > 0.1) > 3 * np.mean(rain[valid & (ir108 > 270)] > 0.1)


def test_cloud_top_cooling_precedes_the_rain(convective):
    rain = np.log1p(np.nan_to_num(convective["rain"].values))
    ir108 = convective["ir"].sel(channel="IR_108").values
    cooling = ir108[:-2] - ir108[1:-1]  # from t-1 to t, for t = 1 .. T-2
    future, past = rain[2:], rain[:-2]  # t+1 and t-1
    rainy = np.maximum(future, past) > np.log1p(0.1)
    with_future = np.corrcoef(cooling[rainy], future[rainy])[0, 1]
    with_past = np.corrcoef(cooling[rainy], past[rainy])[0, 1]
    assert with_future > 0.05 and with_past < 0.0 and with_future - with_past > 0.1


def _single_layer_bt(tau: float, top_km: float) -> float:
    """IR_108 - IR_120 of an ice cloud of optical depth ``tau`` at ``top_km`` over warm ground."""
    shape = (1, 1)
    zero = np.zeros(shape, dtype="float32")
    top, depth = np.full(shape, top_km, "float32"), np.full(shape, tau, "float32")
    layers = CloudLayers(zero, zero, zero, zero, top, depth)
    atmosphere = Atmosphere(np.full(shape, 295.0, "float32"), np.full(shape, 290.0, "float32"),
                            np.ones(shape, "float32"), 12.0, 6.5)
    bt = ForwardModel(("IR_108", "IR_120"), np.full(shape, 0.6, "float32"))(layers, atmosphere)
    return float(bt[0, 0, 0] - bt[1, 0, 0])


@pytest.mark.parametrize("thin_tau", [0.5, 1.0, 2.0])
def test_split_window_difference_is_larger_over_thin_cirrus(thin_tau):
    thin, thick = _single_layer_bt(thin_tau, 10.0), _single_layer_bt(60.0, 10.0)
    clear = _single_layer_bt(0.0, 0.0)
    assert thin > thick + 2.0 and thin > clear + 1.0
    np.testing.assert_allclose(thick, 0.0, atol=0.5)


def test_sensor_noise_has_the_configured_level():
    config = SynthConfig(hours=1, size=48, seed=5)
    noisy = generate_paired(config)
    quiet = generate_paired(_with_ir(config, noise_k={c: 0.0 for c in config.channels}))
    measured = (noisy["ir"] - quiet["ir"]).std(dim=("time", "y", "x")).values
    np.testing.assert_allclose(measured, [config.ir.noise_k[c] for c in config.channels], rtol=0.05)


def _best_southward_shift(cold: np.ndarray, reference: np.ndarray, max_shift: int = 12) -> int:
    """Rows by which ``cold`` must move south to correlate best with ``reference``."""
    scores = []
    for s in range(0, max_shift + 1):
        a, b = (cold[:, : cold.shape[1] - s], reference[:, s:]) if s else (cold, reference)
        scores.append(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    return int(np.argmax(scores))


def _warming_north_of_rain_peaks(ds: xr.Dataset, rows: int = 7) -> float:
    """Mean IR_108 ``rows`` pixels north of rain peaks (> 5 mm/h) minus over the peaks, K."""
    rain, ir108 = np.nan_to_num(ds["rain"].values), ds["ir"].sel(channel="IR_108").values
    peaks = rain > 5.0
    return float(ir108[:, :-rows, :][peaks[:, rows:, :]].mean() - ir108[peaks].mean())


@pytest.fixture(scope="module")
def convective_without_parallax(convective) -> xr.Dataset:
    config = SynthConfig(hours=3, size=128, seed=2, rain=RainConfig(cell_rate=1.0))
    return generate_paired(_with_ir(config, parallax=False))


def test_parallax_leaves_the_rest_of_the_scene(convective, convective_without_parallax):
    np.testing.assert_array_equal(convective_without_parallax["rain"].values, convective["rain"].values)


def test_parallax_displaces_cold_tops_northward(convective, convective_without_parallax):
    def coldness(ds):
        return np.maximum(240.0 - ds["ir"].sel(channel="IR_108").values, 0.0)

    # Tops of ~8-12 km seen at a zenith angle of ~53°: 11-17 km north, i.e. 5-8 pixels of 2 km.
    assert 4 <= _best_southward_shift(coldness(convective), coldness(convective_without_parallax)) <= 9


def test_cold_tops_sit_north_of_the_rain_peaks(convective, convective_without_parallax):
    # Without parallax the IR north of a rain core is much warmer than over it; with it, the cold top
    # has moved there.
    with_parallax = _warming_north_of_rain_peaks(convective)
    assert with_parallax < _warming_north_of_rain_peaks(convective_without_parallax) - 4.0


# -- semi-synthetic mode ---------------------------------------------------------------------------------
def test_motion_estimate_recovers_a_known_shift():
    rain = simulate_rain(SynthConfig(hours=0.25, size=96, seed=1)).values[0]
    rain = np.nan_to_num(rain)
    frames = np.stack([np.roll(rain, (2 * k, -3 * k), axis=(0, 1)) for k in range(4)])
    assert estimate_motion(frames) == (2.0, -3.0)


@pytest.fixture(scope="module")
def semi() -> xr.Dataset:
    rain = simulate_rain(SynthConfig(hours=2, size=96, seed=6, rain=RainConfig(cell_rate=1.0)))
    return rain.to_dataset().assign(ir=ir_from_rain(rain, SynthConfig(seed=1)))


def test_ir_from_rain_gives_a_valid_paired_dataset(semi):
    validate_paired(semi, require=("ir", "rain"))
    assert semi["ir"].dims == ("time", "channel", "y", "x") and semi.sizes["channel"] == 7
    assert not np.isnan(semi["ir"].values).any()


def test_ir_from_rain_is_colder_over_heavy_rain(semi):
    rain, ir108 = semi["rain"].values, semi["ir"].sel(channel="IR_108").values
    assert np.median(ir108[rain > 3.0]) < np.median(ir108[np.isfinite(rain) & (rain < 0.1)]) - 20.0


@pytest.mark.shared_data
def test_cli_semi_synthetic_from_opera_files(tmp_path, capsys, opera_files):
    out = tmp_path / "semi.zarr"
    args = ["data", "synth", "--out", str(out), "--rain-from", *map(str, opera_files[:3]), "--seed", "2"]
    assert main(args) == 0
    ds = open_paired(out, require=("ir", "rain"))
    assert ds.sizes["time"] == 3 and ds.sizes["channel"] == 7
    assert (ds.sizes["y"], ds.sizes["x"]) == (600, 624)
    assert "semi-synthetic" in ds.attrs["source"]
    assert "wrote" in capsys.readouterr().out
