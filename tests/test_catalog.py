"""The dataset catalog: named datasets rebuilt deterministically from committed settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from qpe.cli import main
from qpe.data.catalog import default_catalog_path, ensure_dataset, get_entry, read_catalog, resolve_data
from qpe.data.paired import open_paired
from qpe.data.synthetic import SynthConfig, generate_paired
from qpe.errors import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "catalog.yaml"
    path.write_text(
        "format: qpe-data-catalog\nversion: 1\ndatasets:\n"
        "  tiny:\n    description: a tiny one\n    path: data/built/tiny.zarr\n"
        "    synth: {hours: 1, size: 32, seed: 3}\n"
    )
    return path


def test_project_catalog_names_the_demo_training_and_holdout_data():
    entries = read_catalog(default_catalog_path())
    assert {"demo", "train", "holdout", "opera-semisynthetic"} <= set(entries)
    demo, train, holdout = (entries[name].synth_config() for name in ("demo", "train", "holdout"))
    assert len({demo.seed, train.seed, holdout.seed}) == 3  # the held-out storms are never trained on
    assert demo.size == 256 and demo.frames == 192 and demo.scenarios == 1  # the committed demo models' data
    # The study's training set: 16 independent days (each its own winds), 15 min left out between them.
    assert train.size == 128 and train.scenarios == 16 and train.frames == 16 * (96 - 1)
    # The held-out benchmark: 6 other days (enough to resample days), >= 96 times at the study's stride.
    assert holdout.size == 128 and holdout.scenarios == 6 and holdout.frames == 6 * (96 - 1)


def test_project_study_benchmark_has_many_held_out_times():
    """studies/*.yaml score the synthetic benchmark at >= 96 times of several independent days."""
    from qpe.data.samples import target_indices
    from qpe.settings import read_yaml_mapping

    holdout = read_catalog(default_catalog_path())["holdout"].synth_config()
    usable = target_indices(holdout.times.values, 4)
    for study in ("demo", "gpu", "ablation", "realrain"):
        spec = next(b for b in read_yaml_mapping(REPO / "studies" / f"{study}.yaml", "study")["benchmarks"]
                    if b["name"] == "synthetic")
        times = usable[:: spec.get("stride", 1)]
        assert min(times.size, spec.get("max_times") or times.size) >= 96, study
        assert len(set(holdout.times[times].normalize())) == 6, study


def test_ensure_builds_once_and_equals_the_generator(catalog):
    path = ensure_dataset("tiny", catalog=catalog)
    assert path == catalog.parent / "built" / "tiny.zarr" and path.is_dir()
    ds = open_paired(path)
    expected = generate_paired(SynthConfig(hours=1, size=32, seed=3))
    np.testing.assert_array_equal(ds["ir"].values, expected["ir"].values)
    xr.testing.assert_equal(ds["rain"].load().reset_coords(drop=True), expected["rain"].reset_coords(drop=True))
    mtime = path.stat().st_mtime_ns
    assert ensure_dataset("tiny", catalog=catalog) == path and path.stat().st_mtime_ns == mtime


def test_a_catalog_entry_of_independent_scenarios_builds(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "catalog.yaml"
    path.write_text("format: qpe-data-catalog\nversion: 1\ndatasets:\n  days:\n    path: data/days.zarr\n"
                    "    synth: {hours: 2, scenario_hours: 1, size: 32, seed: 3}\n")
    ds = open_paired(ensure_dataset("days", catalog=path))
    expected = generate_paired(SynthConfig(hours=2, scenario_hours=1, size=32, seed=3))
    np.testing.assert_array_equal(ds["ir"].values, expected["ir"].values)
    np.testing.assert_array_equal(ds["time"].values, expected["time"].values)
    assert ds.sizes["time"] == 6 and ds.attrs["synthetic_scenarios"] == expected.attrs["synthetic_scenarios"]


def test_unknown_name_lists_the_known_ones(catalog):
    with pytest.raises(InputError, match=r"no dataset 'nope' in the catalog \(known: tiny\)"):
        get_entry("nope", catalog)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\n", "is not a qpe data catalog"),
        ("format: qpe-data-catalog\ndatasets:\n  x: {description: no path}\n", "needs a 'path'"),
        ("format: qpe-data-catalog\ndatasets:\n  x: {path: a.zarr, colour: red}\n", "unknown field"),
    ],
)
def test_malformed_catalogs_are_refused(tmp_path, text, message):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_catalog(path)


def test_resolve_data_takes_paths_or_names(tmp_path, catalog, monkeypatch):
    monkeypatch.setenv("QPE_CATALOG", str(catalog))
    assert resolve_data("tiny") == catalog.parent / "built" / "tiny.zarr"
    with pytest.raises(InputError, match="not found"):
        resolve_data(tmp_path / "missing.zarr")


def test_cli_lists_and_builds(catalog, capsys):
    assert main(["data", "list", "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "not built" in out
    assert main(["data", "build", "tiny", "--catalog", str(catalog)]) == 0
    assert "built tiny" in capsys.readouterr().out
    assert main(["data", "list", "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "not built" not in out
    assert main(["data", "build", "nope", "--catalog", str(catalog)]) == 2


def test_a_dataset_built_from_other_settings_is_rebuilt(catalog, capsys):
    path = ensure_dataset("tiny", catalog=catalog)
    first = open_paired(path)["time"].size
    text = catalog.read_text()
    catalog.write_text(text.replace("hours: 1,", "hours: 2,"))  # the entry changes after the build
    assert "hours: 2," in catalog.read_text()
    ensure_dataset("tiny", catalog=catalog)
    assert "rebuilding tiny" in capsys.readouterr().err
    assert open_paired(path)["time"].size == first + 4
    ensure_dataset("tiny", catalog=catalog)  # current now: not rebuilt again
    assert "rebuilding" not in capsys.readouterr().err
