"""Inference engine: estimates on chosen times, tiling, seeds, the on-disk cache and bad inputs."""

from __future__ import annotations

import re
import threading

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from models_testing import VARIANTS, fit_unet, synthetic_batch, tiny_card, variant_card

from qpe.cli import main
from qpe.data.paired import save_paired
from qpe.errors import CheckpointError, DatasetError, InputError
from qpe.inference.cache import CacheWarning, EstimateCache
from qpe.inference.engine import EstimateConfig, estimate
from qpe.models import build_model, load, save_checkpoint


def _checkpoint(tmp_path, variant: str, **kw):
    card = variant_card(variant, **kw)
    directory = tmp_path / "models" / variant
    if card.needs_base:
        unet_dir = _checkpoint(tmp_path, "unet", **kw)
        import dataclasses

        from qpe.models import FileReference

        base = load(unet_dir)
        card = dataclasses.replace(card, base_checkpoint=FileReference("../unet", base.sha256))
        model = build_model(card, base=base.model)
    else:
        model = build_model(card)
    save_checkpoint(model, card, directory)
    return directory


@pytest.fixture
def unet_dir(tmp_path):
    return _checkpoint(tmp_path, "unet")


@pytest.fixture
def flow_dir(tmp_path):
    return _checkpoint(tmp_path, "flow_gaussian")


@pytest.mark.parametrize("variant", [v[0] for v in VARIANTS])
def test_estimate_layout_for_every_family(tmp_path, small_paired, variant):
    directory = _checkpoint(tmp_path, variant)
    times = small_paired["time"].values[1:3]
    out = estimate(directory, small_paired, times, EstimateConfig(members=3, steps=2), progress=False)
    rain = out["rain"]
    members = 1 if variant == "unet" else 3
    assert rain.dims == ("member", "time", "y", "x") and rain.shape == (members, 2, 32, 48)
    assert rain.attrs["units"] == "mm/h"
    assert np.isfinite(rain.values).all() and (rain.values >= 0).all()
    np.testing.assert_array_equal(out["time"].values, times)
    np.testing.assert_array_equal(out["x"].values, small_paired["x"].values)
    assert out.attrs["checkpoint_sha256"] == load(directory).sha256
    assert out.attrs["members"] == members


def test_same_seed_same_estimate_other_seed_differs(small_paired, flow_dir):
    t = small_paired["time"].values[2:3]
    a = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2, seed=5), progress=False)
    b = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2, seed=5), progress=False)
    c = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2, seed=6), progress=False)
    np.testing.assert_array_equal(a["rain"].values, b["rain"].values)
    assert not np.allclose(a["rain"].values, c["rain"].values)
    assert not np.allclose(a["rain"].values[0], a["rain"].values[1]), "members must differ"


def test_tiled_estimate_agrees_with_whole_field(tmp_path, small_paired):
    # a U-Net trained a little on the toy problem, so that its output varies in space
    save_checkpoint(fit_unet(synthetic_batch(size=32), steps=30), tiny_card("unet"), tmp_path / "trained")
    unet_dir = tmp_path / "trained"
    t = small_paired["time"].values[1:2]
    whole = estimate(unet_dir, small_paired, t, EstimateConfig(tile=64, overlap=0), progress=False)["rain"].values
    tiled = estimate(unet_dir, small_paired, t, EstimateConfig(tile=24, overlap=8), progress=False)["rain"].values
    assert tiled.shape == whole.shape and np.isfinite(tiled).all() and whole.std() > 0.05
    # GroupNorm statistics differ per tile, so agreement is close, not exact
    assert np.corrcoef(whole.ravel(), tiled.ravel())[0, 1] > 0.9


def test_missing_ir_gives_nan_estimate(small_paired, unet_dir):
    ds = small_paired.copy(deep=True)
    ds["ir"].values[:, :, 10, 20] = np.nan
    out = estimate(unet_dir, ds, ds["time"].values[1:2], progress=False)["rain"].values
    assert np.isnan(out[0, 0, 10, 20]) and np.isfinite(out).sum() == out.size - 1


def test_a_model_gone_non_finite_is_an_error_and_nothing_is_cached(tmp_path, small_paired, unet_dir):
    model = load(unet_dir)
    with torch.no_grad():
        model.model.backbone.stem.weight[0, 0, 0, 0] = float("nan")  # what a corrupted model in memory does
    cache = EstimateCache(tmp_path / "cache")
    with pytest.raises(CheckpointError, match=r"model 'unet' gave non-finite rain where its IR input is complete"):
        estimate(model, small_paired, small_paired["time"].values[1:2], cache=cache, progress=False)
    assert not list((tmp_path / "cache").rglob("*.nc"))


def test_cache_reuses_and_keys_on_settings(tmp_path, small_paired, flow_dir):
    cache = EstimateCache(tmp_path / "cache")
    t = small_paired["time"].values[1:3]
    first = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2), cache=cache, progress=False)
    files = sorted(cache.root.rglob("*.nc"))
    assert len(files) == 2  # one per time
    again = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2), cache=cache, progress=False)
    np.testing.assert_array_equal(first["rain"].values, again["rain"].values)
    assert sorted(cache.root.rglob("*.nc")) == files
    estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=3), cache=cache, progress=False)
    assert len(list(cache.root.rglob("*.nc"))) == 4  # other steps, other entries
    changed = small_paired.copy(deep=True)
    changed["ir"].values[2] += 1.0
    estimate(flow_dir, changed, t[1:], EstimateConfig(members=2, steps=2), cache=cache, progress=False)
    assert len(list(cache.root.rglob("*.nc"))) == 5  # other input values, another entry


def test_a_truncated_cache_entry_is_recomputed_with_a_warning(tmp_path, small_paired, flow_dir):
    cache = EstimateCache(tmp_path / "cache")
    t = small_paired["time"].values[1:2]
    first = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2), cache=cache, progress=False)
    (path,) = cache.root.rglob("*.nc")
    with open(path, "r+b") as f:
        f.truncate(48)  # as an older qpe killed while writing left it
    with pytest.warns(CacheWarning, match="discarding the unreadable cached estimate"):
        again = estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2), cache=cache,
                         progress=False)
    np.testing.assert_array_equal(again["rain"].values, first["rain"].values)
    assert xr.open_dataset(path)["rain"].shape == (2, 32, 48)  # written again, whole


def test_concurrent_writers_leave_complete_files(tmp_path, small_paired, unet_dir):
    cache = EstimateCache(tmp_path / "cache")
    t = small_paired["time"].values[1:2]
    results, errors = [], []

    def run():
        try:
            results.append(estimate(unet_dir, small_paired, t, cache=cache, progress=False)["rain"].values)
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert all(np.array_equal(results[0], r) for r in results)
    assert not list(cache.root.rglob("*.tmp"))
    (path,) = cache.root.rglob("*.nc")
    np.testing.assert_array_equal(cache.get(path.stem)["rain"].values, results[0][:, 0])


_CONCURRENT_READERS = """
import sys, threading
import numpy as np, xarray as xr
from qpe.inference.cache import EstimateCache
cache = EstimateCache(sys.argv[1])
field = np.random.default_rng(0).gamma(0.3, 2.0, (4, 64, 64)).astype("float32")
keys = [f"{k:032x}" for k in range(16)]
for k in keys:
    cache.put(k, xr.Dataset({"rain": (("member", "y", "x"), field + int(k, 16))}))
errors = []
def read(offset):
    try:
        for i in range(60):
            k = keys[(i + offset) % len(keys)]
            assert float(cache.get(k)["rain"][0, 0, 0]) == float(field[0, 0, 0] + int(k, 16))
            if i % 10 == 0:
                cache.put(k, xr.Dataset({"rain": (("member", "y", "x"), field + int(k, 16))}))
    except Exception as err:
        errors.append(repr(err))
threads = [threading.Thread(target=read, args=(n,)) for n in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
print("errors", errors)
sys.exit(1 if errors else 0)
"""


def test_cache_survives_many_threads_reading_and_writing(tmp_path):
    # netCDF-C/HDF5 is not thread-safe: unguarded, concurrent reads crash the process (seen in
    # `qpe study` on a warm cache), so this runs in a child process and checks its exit status
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _CONCURRENT_READERS, str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])


@pytest.mark.parametrize(
    "times, message",
    [
        (["2021-06-01T12:10"], "time 2021-06-01T12:10 is not in the data"),
        (["2021-06-02T12:00"], "nearest 2021-06-01T12:45"),
        (["2021-06-01T12:00"], "needs 2 IR frames but only 1 precede"),
        ([], "the period is empty"),
    ],
)
def test_bad_times(small_paired, unet_dir, times, message):
    with pytest.raises(DatasetError, match=message):
        estimate(unet_dir, small_paired, times, progress=False)


def test_checkpoint_channels_must_be_in_data(tmp_path, small_paired):
    card = tiny_card("unet", channels=("WV_073", "IR_108"))
    save_checkpoint(build_model(card), card, tmp_path / "m")
    with pytest.raises(DatasetError, match="needs IR channel\\(s\\) WV_073, which the data lack"):
        estimate(tmp_path / "m", small_paired, small_paired["time"].values[1:2], progress=False)


def test_cli_estimate_writes_netcdf(tmp_path, small_paired, flow_dir, capsys, monkeypatch):
    monkeypatch.setenv("QPE_CACHE_DIR", str(tmp_path / "cache"))
    data = save_paired(small_paired, tmp_path / "d.zarr")
    out = tmp_path / "est.nc"
    code = main(["estimate", "--checkpoint", str(flow_dir), "--data", str(data), "--time", "2021-06-01T12:30",
                 "--time", "2021-06-01T12:45", "--members", "2", "--steps", "2", "--out", str(out)])
    assert code == 0
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert ds["rain"].shape == (2, 2, 32, 48)
        assert list(pd.DatetimeIndex(ds["time"].values).strftime("%H:%M")) == ["12:30", "12:45"]
    assert "wrote" in capsys.readouterr().out
    code = main(["estimate", "--checkpoint", str(flow_dir), "--data", str(data), "--time", "2021-06-01T13:00",
                 "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("qpe: error: time 2021-06-01T13:00 is not in the data")


def test_cli_estimate_takes_the_precision(tmp_path, small_paired, flow_dir):
    data = save_paired(small_paired, tmp_path / "d.zarr")
    common = ["estimate", "--checkpoint", str(flow_dir), "--data", str(data), "--time", "2021-06-01T12:30",
              "--members", "2", "--steps", "2", "--no-cache", "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "auto.nc")]) == 0
    assert main([*common, "--precision", "bfloat16", "--out", str(tmp_path / "bf16.nc")]) == 0
    with xr.open_dataset(tmp_path / "auto.nc") as auto, xr.open_dataset(tmp_path / "bf16.nc") as bf16:
        # auto is float32 on a CPU; that bf16 changes the numbers is tested on a trained model
        # (test_engine_options.py): this untrained one's zero output layer gives the same field either way
        assert (auto.attrs["precision"], bf16.attrs["precision"]) == ("float32", "bfloat16")


def test_members_beyond_a_call_are_drawn_in_turns(small_paired, flow_dir):
    t = small_paired["time"].values[1:2]
    rain = estimate(flow_dir, small_paired, t, EstimateConfig(members=5, steps=2, batch_fields=2),
                    progress=False)["rain"].values[:, 0]
    assert rain.shape == (5, 32, 48) and np.isfinite(rain).all()
    assert len({rain[m].tobytes() for m in range(5)}) == 5  # five different members
    whole = estimate(flow_dir, small_paired, t, EstimateConfig(members=5, steps=2), progress=False)
    np.testing.assert_allclose(rain.mean(), whole["rain"].values.mean(), rtol=0.5)  # same model, same scale


def test_a_deterministic_estimate_does_not_depend_on_the_seed(tmp_path, small_paired, unet_dir, flow_dir):
    cache = EstimateCache(tmp_path / "cache")
    t = small_paired["time"].values[1:2]
    for seed in (0, 1):
        estimate(unet_dir, small_paired, t, EstimateConfig(seed=seed), cache=cache, progress=False)
    assert len(list(cache.root.rglob("*.nc"))) == 1  # one U-Net field, whatever the seed
    for seed in (0, 1):
        estimate(flow_dir, small_paired, t, EstimateConfig(members=2, steps=2, seed=seed), cache=cache,
                 progress=False)
    assert len(list(cache.root.rglob("*.nc"))) == 3


@pytest.mark.parametrize(
    "options, message",
    [
        (["--members", "1000000"], "members must be at most 256, got 1000000: ensemble scores settle"),
        (["--steps", "1000000"], "sampler steps must be at most 1000 .more do not change a sample"),
        (["--sampler", "ddim"], "a flow model samples with heun or euler or midpoint, not 'ddim'"),
    ],
)
def test_cli_estimate_bounds_members_and_steps(tmp_path, small_paired, flow_dir, capsys, options, message):
    data = save_paired(small_paired, tmp_path / "d.zarr")
    out = tmp_path / "est.nc"
    code = main(["estimate", "--checkpoint", str(flow_dir), "--data", str(data), "--time", "2021-06-01T12:30",
                 "--no-cache", "--out", str(out), *options])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and re.search(message, err), err
    assert not out.exists()


def test_cli_estimate_says_when_a_unet_ignores_members(tmp_path, small_paired, unet_dir, capsys):
    data = save_paired(small_paired, tmp_path / "d.zarr")
    out = tmp_path / "est.nc"
    code = main(["estimate", "--checkpoint", str(unet_dir), "--data", str(data), "--time", "2021-06-01T12:30",
                 "--members", "8", "--no-cache", "--out", str(out)])
    assert code == 0
    assert "note: unet is deterministic (one field per time): --members 8 ignored" in capsys.readouterr().out
    assert xr.open_dataset(out)["rain"].sizes["member"] == 1


def test_all_nan_ir_is_a_clear_error_and_nothing_is_written(tmp_path, small_paired, unet_dir, capsys):
    data = tmp_path / "nan.zarr"  # written as another tool would, without qpe's validation
    small_paired.assign(ir=small_paired["ir"] * np.nan).to_zarr(data, zarr_format=2)
    out = tmp_path / "est.nc"
    code = main(["estimate", "--checkpoint", str(unet_dir), "--data", str(data), "--time", "2021-06-01T12:30",
                 "--no-cache", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "entirely NaN" in err, err
    assert not out.exists()


def test_a_tile_too_small_for_its_overlap_says_what_to_use():
    with pytest.raises(InputError, match="a tile of 40 pixels is too small for the overlap of 32 pixels.*at least 66"):
        EstimateConfig(tile=40)


def test_an_estimate_cache_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "afile.txt").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        EstimateCache(tmp_path / "afile.txt")


def test_evaluation_checks_the_sampling_request_before_any_estimate(tmp_path, small_paired, flow_dir, unet_dir):
    from qpe.evaluation import EvaluationConfig, evaluate_period
    from qpe.inference.estimators import find_estimators

    config = EvaluationConfig(estimate=EstimateConfig(members=4, steps=5000))
    with pytest.raises(InputError, match="sampler steps must be at most 1000"):
        evaluate_period(small_paired, find_estimators([flow_dir, unet_dir]), config=config, progress=False)
