"""The semi-synthetic training set of real KNMI, MeteoSwiss and FMI rain (catalog radar-semisynthetic-train):
its catalog entry, its build (times, boxes, samples) and the OPERA test day it never contains."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from qpe.data.catalog import build_dataset, default_catalog_path, read_catalog
from qpe.data.grid import Grid
from qpe.data.paired import open_paired
from qpe.data.radar_days import RainPart, radar_days_paired
from qpe.data.samples import PairedSamples, SampleConfig, target_indices
from qpe.data.synthetic import SynthConfig
from qpe.errors import InputError

NAME = "radar-semisynthetic-train"
TEST_DAY = "2018-08-24"


@pytest.fixture(scope="module")
def entry():
    return read_catalog(default_catalog_path())[NAME]


def test_the_entry_names_three_networks_and_no_opera(entry):
    assert [p.source for p in entry.rain_parts] == ["knmi", "mch", "fmi"] and entry.box == 192
    assert all("opera" not in p.files.lower() and "20180824" not in p.files for p in entry.rain_parts)
    assert entry.rain_from is None
    benchmark = read_catalog(default_catalog_path())["opera-semisynthetic"]
    assert "opera/20180824" in benchmark.rain_from  # the test benchmark keeps the OPERA day


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rain_from: []\n    box: 64", "lists no radar parts"),
        ("rain_from: [{source: knmi}]\n    box: 64", "part 1 needs 'files'"),
        ("rain_from: [{files: a/*.h5, colour: red}]\n    box: 64", "part 1 has unknown field(s) colour"),
        ("rain_from: [{files: a/*.h5, zr: [200]}]\n    box: 64", "'zr' must be two numbers"),
        ("rain_from: [{files: a/*.h5, step_rule: sum}]\n    box: 64", "'step_rule' must be instant or mean"),
        ("rain_from: [{files: a/*.h5}]\n    box: 4", "'box' must be a whole number of pixels >= 8"),
        ("rain_from: [{files: a/*.h5}]", "'box' must be a whole number of pixels >= 8, got None"),
        ("rain_from: a/*.hdf\n    box: 64", "'box' goes with a list of radar parts"),
    ],
)
def test_malformed_radar_parts_are_one_line(tmp_path, spec, message):
    catalog = tmp_path / "data" / "catalog.yaml"
    catalog.parent.mkdir()
    catalog.write_text(f"format: qpe-data-catalog\ndatasets:\n  x:\n    path: data/x.zarr\n    {spec}\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        read_catalog(catalog)


# -- built from the real files -------------------------------------------------------------------------
#: (network, first, last, steps) of each day, in time order.
DAYS = [
    ("knmi", "2010-08-26T00:00", "2010-08-26T07:30", 31),
    ("mch", "2015-05-15T15:45", "2015-05-15T19:00", 14),
    ("mch", "2016-07-11T20:45", "2016-07-12T00:00", 14),
    ("fmi", "2016-09-28T14:45", "2016-09-28T18:00", 14),
    ("mch", "2017-01-31T09:45", "2017-01-31T13:00", 14),
    ("fmi", "2017-05-09T10:45", "2017-05-09T14:00", 14),
]


@pytest.fixture(scope="module")
def built(entry, knmi_dir, mch_dir, fmi_dir, tmp_path_factory):
    """The entry built as `qpe data build` builds it, in a temporary path."""
    path = build_dataset(dataclasses.replace(entry, path=tmp_path_factory.mktemp("days") / "train.zarr"))
    return open_paired(path, require=("ir", "rain")).load()


@pytest.mark.shared_data
def test_the_set_has_the_expected_times_and_never_the_test_day(built):
    times = pd.DatetimeIndex(built["time"].values)
    expected = [t for _, first, last, _ in DAYS for t in pd.date_range(first, last, freq="15min")]
    assert list(times) == expected and times.size == 101
    assert TEST_DAY not in set(times.strftime("%Y-%m-%d"))
    for source, first, last, steps in DAYS:
        day = (times >= pd.Timestamp(first)) & (times <= pd.Timestamp(last))
        assert day.sum() == steps and set(built["rain_source"].values[day]) == {source}
    assert len(built.attrs["days"].splitlines()) == 6 and built.attrs["catalog_name"] == NAME


@pytest.mark.shared_data
def test_every_day_is_a_192_box_with_radar_and_rain(built):
    assert built.sizes["y"] == built.sizes["x"] == 192 and Grid.from_dataset(built).dx == 2000.0
    rain = built["rain"].values
    coverage = np.isfinite(rain).mean(axis=(1, 2))
    assert coverage.min() > 0.75  # KNMI's two radars cover 84 % of their box; the others 97-100 %
    with np.errstate(invalid="ignore"):
        assert np.nanmean(rain > 0.1) > 0.3
    offsets = {(s, x, y) for s, x, y in zip(built["rain_source"].values, built["x_offset"].values,
                                            built["y_offset"].values, strict=True)}
    assert ("knmi", 0.0, 0.0) in offsets and len(offsets) == 6  # each day's box in its own place


@pytest.mark.shared_data
def test_windows_never_span_two_days_and_crops_have_radar(built):
    targets = target_indices(built["time"].values, 4)
    assert targets.size == sum(n - 3 for *_, n in DAYS) == 83
    samples = PairedSamples(built, SampleConfig(frames=4, crop=64), seed=0)
    masks = [samples[(epoch, i)]["mask"].float().mean().item()
             for epoch in range(3) for i in range(len(samples))]
    assert min(masks) >= 0.5  # every random 64-pixel crop has radar over at least half of it


@pytest.mark.shared_data
def test_the_opera_test_day_is_refused(opera_files):
    with pytest.raises(InputError, match=f"{TEST_DAY}, a day of a test benchmark"):
        radar_days_paired([RainPart(str(opera_files[0]), "opera"), RainPart(str(opera_files[1]))],
                          SynthConfig(seed=0), box=64)
