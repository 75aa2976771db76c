"""Bad values on the command line end in one clear line and exit status 2, never a traceback, and nothing
is written where the output would go.

The named cases are tracebacks users met (issue 12); the property-based tests throw generated bad numbers,
times and paths at ``qpe data info/synth/radar/pair``, ``qpe estimate``, ``qpe evaluate`` and ``qpe train``.
"""

from __future__ import annotations

import contextlib
import io
import re
import string
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qpe.cli import main
from qpe.data.grid import OPERA_CRS, Grid
from qpe.data.paired import SEVIRI_CHANNELS, make_paired_dataset, open_paired, save_paired

REPO = Path(__file__).resolve().parents[1]
UNET = REPO / "models" / "demo" / "unet"
TIMES = pd.date_range("2021-06-01T00:00", periods=8, freq="15min")

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- running the command line ------------------------------------------------------------------------
def run_cli(argv: list[str]) -> tuple[int, list[str]]:
    """Exit status and the non-empty stderr lines (progress-bar redraws left out) of ``qpe argv``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse
            status = exit_.code
    text = err.getvalue()
    assert "Traceback" not in text, text
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip() and not re.search(r"\d+%\|", line)]
    return status, lines


def assert_one_clean_error(argv: list[str], out: Path | None = None, expect: str | None = None) -> str:
    """Status 2, exactly one error line (``qpe: error:`` alone, or argparse's usage then its error line),
    ``expect`` (a regular expression) in it, and nothing at ``out`` nor a temporary beside it."""
    status, lines = run_cli(argv)
    assert status == 2, (argv, lines)
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], (argv, lines)
    if errors[0].startswith("qpe: error: "):
        assert len(lines) == 1, (argv, lines)
    else:
        assert lines[0].startswith("usage: ") and re.match(r"^qpe[\w -]*: error: ", errors[0]), lines
    if expect is not None:
        assert re.search(expect, errors[0], re.IGNORECASE), (argv, errors[0])
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), out
    return errors[0]


# -- inputs --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, Path]:
    """Tiny datasets and wrong-kind paths: ``paired``, ``ir``, ``rain`` (Zarr, 16 x 16 px, 8 times), a text
    file, an empty folder, a missing path, a folder for outputs, a training config."""
    root = tmp_path_factory.mktemp("bad_inputs")
    grid = Grid(OPERA_CRS, 1_201_000.0, -2_901_000.0, 2000.0, 2000.0, 16, 16)
    rng = np.random.default_rng(0)
    channels = list(SEVIRI_CHANNELS)  # what the demo U-Net reads
    ir = 230 + 40 * rng.random((8, len(channels), 16, 16))
    rain = rng.gamma(0.5, 2.0, (8, 16, 16))
    paths = {
        "paired": save_paired(make_paired_dataset(grid, TIMES, ir=ir, channels=channels, rain=rain),
                              root / "paired.zarr"),
        "ir": save_paired(make_paired_dataset(grid, TIMES, ir=ir, channels=channels), root / "ir.zarr"),
        "rain": save_paired(make_paired_dataset(grid, TIMES, rain=rain), root / "rain.zarr"),
        "text": root / "notes.txt",
        "folder": root / "folder",
        "missing": root / "missing" / "nothing.zarr",
        "outputs": root / "outputs",
        "config": root / "tiny.yaml",
    }
    paths["text"].write_text("not a dataset\n")
    paths["folder"].mkdir()
    paths["outputs"].mkdir()
    paths["config"].write_text(
        f"name: tiny\nfamily: unet\ndata: {paths['paired']}\ninput: {{frames: 2}}\n"
        "architecture: {base_channels: 8, channel_mults: [1, 2]}\n"
        "optim: {steps: 2, batch_size: 2, crop: 8, warmup_steps: 1, ema_decay: null}\n"
        "validation: {fraction: 0.3, every: 2, samples: 2, crop: 8, members: 1}\ncheckpoint_every: 2\n"
    )
    return paths


def fresh(place: dict[str, Path], suffix: str) -> Path:
    """A new output path in the outputs folder."""
    return place["outputs"] / f"{uuid.uuid4().hex[:12]}{suffix}"


# -- generated bad values ------------------------------------------------------------------------------
def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_time(text: str) -> bool:
    try:
        return not pd.isna(pd.Timestamp(text))
    except (ValueError, TypeError, OverflowError):
        return False


WORDS = st.text(alphabet=string.ascii_letters + "-_:/,", min_size=1, max_size=10)
NOT_A_NUMBER = WORDS.filter(lambda t: not _is_float(t) and not t.startswith("-"))
NOT_AN_INT = st.one_of(NOT_A_NUMBER, st.floats(0.1, 1e6).filter(lambda f: f != int(f)).map(repr))
NON_FINITE = st.sampled_from(["nan", "inf", "-inf", "NaN", "1e999"])
NOT_A_TIME = st.one_of(
    st.sampled_from(["yesterday", "2021-13-01T00:00", "2021-06-31", "2021-06-01T25:00", "99999-01-01",
                     "nan", "NaT", "", "tomorrow 3pm", "1e30"]),
    WORDS.filter(lambda t: not _is_time(t) and not t.startswith("-")),
)


def below(limit: float) -> st.SearchStrategy[str]:
    """Numbers (as text) under ``limit``, including negative and huge negative ones."""
    floats = st.floats(max_value=limit, exclude_max=True, allow_nan=False, allow_infinity=False)
    return floats.filter(lambda f: f < limit).map(repr)  # -0.0 is not below 0


def above(limit: float) -> st.SearchStrategy[str]:
    floats = st.floats(min_value=limit, exclude_min=True, allow_nan=False, allow_infinity=False)
    return floats.filter(lambda f: f > limit).map(repr)


def bad_float(low: float, high: float | None = None) -> st.SearchStrategy[str]:
    """Numbers outside ``[low, high]``, non-finite numbers and words."""
    outside = [below(low)] + ([above(high)] if high is not None else [])
    return st.one_of(*outside, NON_FINITE, NOT_A_NUMBER)


def bad_int(low: int, high: int | None = None) -> st.SearchStrategy[str]:
    outside = [st.integers(max_value=low - 1).map(str)]
    if high is not None:
        outside.append(st.integers(min_value=high + 1).map(str))
    return st.one_of(*outside, NOT_AN_INT)


def option_values(options: dict[str, tuple[st.SearchStrategy[str], str]]) -> st.SearchStrategy:
    """``(option, bad value, expected words)`` for one of ``options``."""
    return st.sampled_from(sorted(options)).flatmap(
        lambda name: options[name][0].map(lambda value: (name, value, options[name][1]))
    )


# -- the tracebacks of the issue, by name -------------------------------------------------------------
def test_estimate_time_yesterday_is_one_line(place):
    out = fresh(place, ".nc")
    line = assert_one_clean_error(["estimate", "--checkpoint", str(UNET), "--data", str(place["paired"]),
                                   "--time", "yesterday", "--out", str(out)], out)
    assert line.startswith("qpe: error: --time 'yesterday' is not an ISO 8601 time (e.g. 2021-06-01T12:00)")


@pytest.mark.parametrize(
    "text, message",
    [
        ("format: qpe-data-catalog\ndatasets: [\n",
         "is not valid YAML: expected the node content, but found '<stream end>' (line 3, column 1)"),
        ("format: qpe-data-catalog\ndatasets:\n  - demo\n",
         "'datasets' must be a mapping of names to entries"),
        ("format: qpe-data-catalog\ndatasets:\n  x: {path: [1]}\n", "catalog entry 'x' in "),
        ("- just\n- a list\n", "must hold a mapping of data catalog settings"),
    ],
)
def test_malformed_catalog_is_one_line(tmp_path, monkeypatch, place, text, message):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(text)
    assert message in assert_one_clean_error(["data", "list", "--catalog", str(catalog)])
    monkeypatch.setenv("QPE_CATALOG", str(catalog))  # what every --data NAME reads
    out = fresh(place, ".nc")
    assert message in assert_one_clean_error(["estimate", "--checkpoint", str(UNET), "--data", "demo",
                                              "--time", "2021-06-01T01:00", "--out", str(out)], out)


@pytest.mark.parametrize(
    "synth, expect",
    [
        ("{centre_xy: [1]}", "centre_xy must be two finite numbers (x, y in m), got [1]"),
        ("{centre_xy: [a, b]}", "centre_xy must be two finite numbers (x, y in m), got ['a', 'b']"),
        ("{size: big}", "size must be an integer of at least 8 and at most 4096 pixels, got 'big'"),
        ("{hours: .nan}", "hours must be at least 0.25"),
        ("{start: yesterday}", "start 'yesterday' is not an ISO 8601 time"),
        ("3", "catalog entry 'x' in "),
    ],
)
def test_malformed_synthetic_settings_in_the_catalog_are_one_line(tmp_path, synth, expect):
    catalog = tmp_path / "data" / "catalog.yaml"
    catalog.parent.mkdir()
    catalog.write_text(f"format: qpe-data-catalog\ndatasets:\n  x: {{path: data/x.zarr, synth: {synth}}}\n")
    assert expect in assert_one_clean_error(["data", "build", "x", "--catalog", str(catalog)],
                                            tmp_path / "data" / "x.zarr")


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["data", "synth", "--hours", "inf", "--size", "16"], "hours must be at least 0.25"),
        (["data", "synth", "--hours", "1e12", "--size", "16"], "at most 8784"),
        (["data", "synth", "--hours", "1", "--size", "1000000"], "at most 4096 pixels"),
        (["data", "synth", "--hours", "1", "--size", "16", "--pixel-km", "1e-300"], "pixel size"),
        (["data", "pair", "--tolerance-min", "nan"], "time tolerance must be 0 to 1440 minutes, got nan"),
        (["data", "pair", "--tolerance-min", "1e300"], "time tolerance must be 0 to 1440 minutes"),
    ],
)
def test_numbers_that_raised_tracebacks_are_one_line(place, argv, expect):
    out = fresh(place, ".zarr")
    if argv[1] == "pair":
        argv = [*argv, "--ir", str(place["ir"]), "--rain", str(place["rain"])]
    assert expect in assert_one_clean_error([*argv, "--out", str(out)], out)


def test_radar_output_under_a_file_is_one_line(place):
    out = place["text"] / "r.zarr"
    assert_one_clean_error(["data", "radar", "--in", str(place["text"]), "--out", str(out)], out,
                           "is not a writable directory")


def test_data_info_on_a_text_file_is_one_line(place):
    assert_one_clean_error(["data", "info", str(place["text"])], None,
                           "is not a readable Zarr/NetCDF dataset")


# -- property-based: generated bad values ---------------------------------------------------------------
BAD_PATH_KINDS = ("missing", "folder", "text")


@FUZZ
@given(kind=st.sampled_from(BAD_PATH_KINDS + ("glob", "empty")), json=st.booleans())
def test_data_info_bad_paths(place, kind, json):
    special = {"glob": str(place["folder"] / "*.zarr"), "empty": ""}
    path = special[kind] if kind in special else str(place[kind])
    assert_one_clean_error(["data", "info", path, *(["--json"] if json else [])], None, r"dataset")


SYNTH_OPTIONS = {
    "--hours": (bad_float(0.25, 8784), "hours"),
    "--size": (bad_int(8, 4096), "size"),
    "--seed": (st.one_of(st.integers(max_value=-1).map(str), NOT_AN_INT), "seed"),
    "--pixel-km": (bad_float(0.1, 100), "pixel"),
    "--start": (NOT_A_TIME, "start|time"),
    "--channels": (st.sampled_from(["VIS_006", "HRV", "IR_039", "ir_108", "WV_062"]), "channel"),
}


@FUZZ
@given(bad=option_values(SYNTH_OPTIONS))
def test_data_synth_bad_numbers_and_times(place, bad):
    option, value, expect = bad
    out = fresh(place, ".zarr")
    given_ = {"--hours": "1", "--size": "16", option: value}
    argv = ["data", "synth", "--out", str(out)] + [f"{k}={v}" for k, v in given_.items()]
    assert_one_clean_error(argv, out, expect)


@FUZZ
@given(kind=st.sampled_from(
    ("wrong suffix", "under a file", "foreign folder", "missing config", "folder config")))
def test_data_synth_bad_paths(place, kind):
    out = fresh(place, ".zarr")
    argv = ["data", "synth", "--hours", "1", "--size", "16"]
    if kind == "wrong suffix":
        out = fresh(place, ".h5")
    elif kind == "under a file":
        out = place["text"] / "x.zarr"
    elif kind == "foreign folder":
        out = place["folder"].with_suffix(".zarr")
        out.mkdir(exist_ok=True)
        (out / "keep.txt").write_text("mine")
    elif kind == "missing config":
        argv += ["--config", str(place["missing"])]
    else:
        argv += ["--config", str(place["folder"])]
    status, lines = run_cli([*argv, "--out", str(out)])
    assert status == 2 and len(lines) == 1 and lines[0].startswith("qpe: error: "), lines
    if kind == "foreign folder":
        assert (out / "keep.txt").read_text() == "mine"
    elif kind != "under a file":
        assert not out.exists()


RADAR_OPTIONS = {
    "--max-rate": (bad_float(0, 500), "max.rate"),
    "--min-quality": (bad_float(0, 1), "min.quality"),
    "--pixel-km": (st.one_of(bad_float(0), st.sampled_from(["0.01", "1e-300", "5e-324", "20000", "1e300"])),
                   "pixel"),
    "--outliers": (st.sampled_from(["drop", "MASK", "none", ""]), "outliers"),
    "--region": (st.sampled_from(["atlantis", "", "europe/", "france "]), "region"),
}


@FUZZ
@given(bad=option_values(RADAR_OPTIONS))
def test_data_radar_bad_settings(place, bad):
    """The settings are checked before any file is read (so a text file stands in for the OPERA files)."""
    option, value, expect = bad
    out = fresh(place, ".zarr")
    assert_one_clean_error(["data", "radar", "--in", str(place["text"]), f"{option}={value}",
                            "--out", str(out)], out, expect)


@FUZZ
@given(kind=st.sampled_from(BAD_PATH_KINDS + ("glob",)), grid_like=st.booleans())
def test_data_radar_bad_inputs(place, kind, grid_like):
    out = fresh(place, ".zarr")
    source = str(place["folder"] / "*.hdf") if kind == "glob" else str(place[kind])
    argv = ["data", "radar", "--in", source, "--out", str(out)]
    if grid_like:  # a good file list is not needed: the first bad path stops the command
        argv = ["data", "radar", "--in", str(place["text"]), "--grid-like", source, "--out", str(out)]
    assert_one_clean_error(argv, out)


PAIR_OPTIONS = {
    "--tolerance-min": (bad_float(0, 1440), "tolerance"),
    "--pixel-km": (st.sampled_from(["0", "-2", "nan", "inf", "0.01", "5e-324", "1e300", "two"]), "pixel"),
}


@FUZZ
@given(bad=option_values(PAIR_OPTIONS))
def test_data_pair_bad_numbers(place, bad):
    option, value, expect = bad
    out = fresh(place, ".zarr")
    argv = ["data", "pair", "--ir", str(place["ir"]), "--rain", str(place["rain"]), f"{option}={value}"]
    if option == "--pixel-km":
        argv += ["--region", "france"]
    assert_one_clean_error([*argv, "--out", str(out)], out, expect)


@FUZZ
@given(role=st.sampled_from(("--ir", "--rain", "--grid-like")),
       kind=st.sampled_from(BAD_PATH_KINDS + ("input",)),
       spelling=st.sampled_from(("plain", "dot-dot", "double-slash")))
def test_data_pair_bad_paths_and_outputs_over_inputs(place, role, kind, spelling):
    """A bad input path, or ``--out`` spelled as one of the inputs: refused; the inputs keep their 8 times."""
    argv = {"--ir": str(place["ir"]), "--rain": str(place["rain"])}
    out = fresh(place, ".zarr")
    if kind == "input":
        target = place["ir"] if role == "--ir" else place["rain"]
        out = {"plain": target, "dot-dot": target.parent / "outputs" / ".." / target.name,
               "double-slash": Path(str(target.parent) + "//" + target.name)}[spelling]
        if role == "--grid-like":
            argv["--grid-like"] = str(place["rain"])
    else:
        argv[role] = str(place[kind])
    args = [x for kv in argv.items() for x in kv]
    assert_one_clean_error(["data", "pair", *args, "--out", str(out)], None if kind == "input" else out)
    assert open_paired(place["ir"]).sizes["time"] == 8 and open_paired(place["rain"]).sizes["time"] == 8


ESTIMATE_OPTIONS = {
    "--time": (NOT_A_TIME, "time"),
    "--members": (bad_int(1, 1024), "members"),
    "--tile": (bad_int(8), "tile"),
    "--seed": (NOT_AN_INT, "seed"),
}


@FUZZ
@given(bad=option_values(ESTIMATE_OPTIONS))
def test_estimate_bad_values(place, bad):
    option, value, expect = bad
    out = fresh(place, ".nc")
    values = {"--time": "2021-06-01T01:00", option: value}
    argv = ["estimate", "--checkpoint", str(UNET), "--data", str(place["paired"]), "--no-cache",
            "--device", "cpu", "--out", str(out)] + [f"{k}={v}" for k, v in values.items()]
    assert_one_clean_error(argv, out, expect)


@FUZZ
@given(kind=st.sampled_from(("out folder", "out under a file", "out is the data", "data missing", "data text",
                             "data folder", "cache is a file")))
def test_estimate_bad_paths(place, kind):
    out = fresh(place, ".nc")
    data, extra = place["paired"], []
    if kind == "out folder":
        out = place["folder"]
    elif kind == "out under a file":
        out = place["text"] / "e.nc"
    elif kind == "out is the data":
        out = data
    elif kind.startswith("data "):
        data = place[kind.split()[1]]
    else:
        extra = ["--cache-dir", str(place["text"])]
    argv = ["estimate", "--checkpoint", str(UNET), "--data", str(data), "--time", "2021-06-01T01:00",
            "--device", "cpu", "--out", str(out), *extra]
    checks_out_first = kind in ("out folder", "out under a file", "out is the data")
    assert_one_clean_error(argv, None if checks_out_first else out)
    assert sorted(p.name for p in place["folder"].iterdir()) == []


EVALUATE_OPTIONS = {
    "--start": (NOT_A_TIME, "start|time"),
    "--end": (NOT_A_TIME, "end|time"),
    "--bootstrap": (st.one_of(st.integers(max_value=-1).map(str), NOT_AN_INT), "n_resamples|bootstrap"),
    "--chunk-times": (bad_int(1), "chunk"),
}


@FUZZ
@given(bad=option_values(EVALUATE_OPTIONS))
def test_evaluate_bad_values(place, bad):
    option, value, expect = bad
    out = fresh(place, "")
    argv = ["evaluate", "--data", str(place["paired"]), "--checkpoints", str(UNET), "--no-cache",
            "--device", "cpu", f"{option}={value}", "--out", str(out)]
    assert_one_clean_error(argv, out, expect)


@FUZZ
@given(kind=st.sampled_from(
    ("out is a file", "out under a file", "out is the data", "data missing", "data text")))
def test_evaluate_bad_paths(place, kind):
    out, data = fresh(place, ""), place["paired"]
    if kind == "out is a file":
        out = place["text"]
    elif kind == "out under a file":
        out = place["text"] / "eval"
    elif kind == "out is the data":
        out = data
    else:
        data = place[kind.split()[1]]
    argv = ["evaluate", "--data", str(data), "--checkpoints", str(UNET), "--no-cache", "--out", str(out)]
    assert_one_clean_error(argv, out if kind.startswith("data") else None)
    assert place["text"].read_text() == "not a dataset\n"


TRAIN_OPTIONS = {
    "--steps": (bad_int(1), "steps"),
    "--device": (st.sampled_from(["tpu", "gpu", "cuda:x", "", "cpu0"]), "device"),
}


@FUZZ
@given(bad=option_values(TRAIN_OPTIONS))
def test_train_bad_values(place, bad):
    option, value, expect = bad
    out = fresh(place, "")
    argv = ["train", str(place["config"]), f"{option}={value}", "--out", str(out)]
    assert_one_clean_error(argv, out, expect)


@FUZZ
@given(kind=st.sampled_from(("config missing", "config folder", "config text", "data missing", "data text",
                             "data folder")))
def test_train_bad_paths(place, kind):
    out = fresh(place, "")
    what, which = kind.split()
    config = place[which] if what == "config" else place["config"]
    argv = ["train", str(config), "--out", str(out), "--device", "cpu"]
    if what == "data":
        argv += ["--data", str(place[which])]
    assert_one_clean_error(argv, out)
