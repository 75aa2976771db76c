"""Inference and training speed on one device, as markdown tables for docs/performance.md.

Run::

    python benchmarks/bench_gpu.py            # on a GPU: one prepared command, <= 8 min on one H200
    python benchmarks/bench_gpu.py --plan     # the rows, their GFLOP and the projected time; runs nothing
    python benchmarks/bench_gpu.py --quick    # tiny sizes, on a CPU in < 60 s (tests/test_bench_gpu.py)

**Inference**, through the engine as ``qpe estimate`` runs it (:func:`qpe.inference.engine.estimate`:
normalisation, tiling with overlap (:mod:`qpe.inference.tiling`), members batched in one forward pass,
blending; cache off), with the demo checkpoints of ``models/demo`` on synthetic IR (T = 4 frames of 7
channels; timing does not depend on the values), for each family and K:

- on a 256 x 256 field (the dashboard's), ``members`` members of one time in one network call;
- on the full OPERA grid (2200 x 1900 pixels of 2 km, 90 tiles of 256 overlapping by 32, batched
  ``batch_tiles`` tiles x members per call): the U-Net, and the residual flow (K = 4, 8 members);

in each *setting*: ``fp32`` (no autocast), ``bf16`` (bf16 autocast) and, for the three target rows only
(a compilation costs about a minute per network and shape), ``bf16+compile`` (the networks compiled in
place by ``torch.compile``; its first call, with the compilation, is the ``first call s`` column).
``fields/s`` counts member fields of one time (a full OPERA field is one field); ``s/time`` is the latency
of one estimate (one time, all members), the median of ``repeats`` calls after a warm-up call;
``peak MiB``: ``torch.cuda.max_memory_allocated`` over the row's calls on a GPU, the process's peak
resident set (VmHWM, reset before the row) on a CPU; ``TFLOP/s``: what the row achieves of the network
FLOP it computes (:func:`bench_training.forward_flops`).

**Training** steps per second (:func:`qpe.training.loop.measure_training`: data, loss, backward, AdamW,
EMA) of every family with the demo architecture (``configs/train/demo_*.yaml``) and with the GPU study's
(``studies/gpu.yaml``, its settings but ``compile`` off: ``benchmarks/bench_training.py`` times the
compiled study settings), on a synthetic training set made here (no catalog data needed).

**Time budget.** ``--plan`` prints each row's GFLOP and a projected time at an assumed achieved rate
(``--assume-tflops``, default 10 TFLOP/s in bf16 and half of it in fp32/TF32: the demo U-Net has 16 to
64 channels, which keeps a GPU memory-bound far below its peak) plus ``--assume-compile-s`` (default 60 s)
for each first compiled call. The rows run in order of importance (the issue's targets first, compiled
rows last); before each row the projected time of that row, at the rate measured so far in its setting,
is checked against ``--budget-s`` (default 450 s, less the training rows' allowance; the rest of the 8 minutes is
start-up and data), and rows that would overrun are listed as skipped instead of run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inference import CHANNELS, compile_networks
from bench_training import forward_flops

FAMILIES = ("unet", "ddpm", "flow_gaussian", "flow_residual")
#: Training rows (the families, with two architectures), and the seconds kept for each beyond its timed
#: seconds (set-up: the model, the data on the device, warm-up steps), s.
TRAINING_ROWS = 2 * len(FAMILIES)
TRAINING_ALLOWANCE_S = 12.0


@dataclass(frozen=True)
class Setting:
    """How the networks run: ``precision`` of :data:`qpe.inference.precision.PRECISIONS`, and compiled or not."""

    name: str
    precision: str
    compile: bool


#: The settings every row is timed in (``--settings`` picks among them).
SETTINGS = {s.name: s for s in (Setting("fp32", "float32", False), Setting("bf16", "bfloat16", False),
                                Setting("bf16+compile", "bfloat16", True))}


@dataclass(frozen=True)
class Profile:
    """Sizes of a run: the full one (a GPU) or ``--quick`` (a CPU, for tests)."""

    small: int                      # side of the single-tile field, px
    large: tuple[int, int]          # (ny, nx) of the tiled field, px
    tile: int
    overlap: int
    members: int                    # members of the single-tile rows
    dashboard_members: int          # members of the dashboard's estimate (residual flow, card's K)
    large_members: int              # members of the residual flow on the tiled field
    large_steps: int                # its K
    steps: dict[str, tuple]         # family -> K of the single-tile rows (None: deterministic)
    batch_tiles: int
    batch_fields: int
    repeats: int                    # timed calls per single-tile row (one on the tiled field)
    settings: tuple[str, ...]
    train_seconds: float            # timed training seconds per row
    train_warmup: int
    train_data: tuple[float, int]   # (hours, size px) of the synthetic training set
    train_small: bool               # shrink the training batches and crops (quick)


PROFILES = {
    "full": Profile(small=256, large=(2200, 1900), tile=256, overlap=32, members=8, dashboard_members=4, large_members=8,
                    large_steps=4, steps={"unet": (None,), "ddpm": (10, 50), "flow_gaussian": (1, 4, 8),
                                          "flow_residual": (1, 4, 8)},
                    batch_tiles=16, batch_fields=64, repeats=3, settings=tuple(SETTINGS),
                    train_seconds=3.0, train_warmup=3, train_data=(12.0, 128), train_small=False),
    "quick": Profile(small=32, large=(72, 64), tile=32, overlap=8, members=2, dashboard_members=1, large_members=2,
                     large_steps=1,
                     steps={"unet": (None,), "ddpm": (1,), "flow_gaussian": (1,), "flow_residual": (1,)},
                     batch_tiles=4, batch_fields=16, repeats=1, settings=("fp32", "bf16"),
                     train_seconds=0.0, train_warmup=1, train_data=(4.0, 48), train_small=True),
}


# -- what is timed -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InferenceCase:
    """One inference row to time: a family at a K on a grid, in a setting."""

    family: str
    steps: int | None
    grid: str                   # "small" or "large"
    members: int
    setting: Setting


@dataclass(frozen=True)
class InferenceRow:
    """A timed :class:`InferenceCase` (or a skipped one: ``skipped`` says why and the numbers are NaN)."""

    case: InferenceCase
    shape: tuple[int, int]
    sampler: str
    k: int | None               # the sampler's K (the card's when the case says None)
    nfe: int                    # network evaluations per member (a residual flow's U-Net included)
    tiles: int
    gflop: float                # network GFLOP of one estimate (one time, all members)
    seconds: float              # median latency of one estimate, s
    first_seconds: float        # the warm-up call (with a compilation), s
    peak_mib: float
    skipped: str = ""

    @property
    def fields_per_second(self) -> float:
        return self.case.members / self.seconds

    @property
    def tflops(self) -> float:
        return self.gflop / self.seconds / 1000


@dataclass(frozen=True)
class TrainingRow:
    """Training steps/s of a family with an architecture."""

    architecture: str           # "demo" or "gpu study"
    family: str
    batch: int
    crop: int
    amp: bool                   # bf16 autocast (the loop's: on a GPU only)
    steps_per_second: float
    setup_seconds: float
    gflop_per_step: float
    skipped: str = ""


def inference_cases(profile: Profile) -> list[InferenceCase]:
    """Every inference row of ``profile``, most important first: the issue's targets (the U-Net and the
    residual flow on the tiled grid, the dashboard's estimate: the residual flow at its card's K), then
    every family and K on one tile, then the targets in the other eager settings, then the targets compiled."""
    settings = [SETTINGS[name] for name in profile.settings]
    eager = [s for s in settings if not s.compile]
    compiled = [s for s in settings if s.compile]
    first = eager[-1] if eager else settings[0]  # bf16 when timed: the GPU's setting
    targets = [InferenceCase("unet", None, "large", 1, first),
               InferenceCase("flow_residual", profile.large_steps, "large", profile.large_members, first),
               InferenceCase("flow_residual", None, "small", profile.dashboard_members, first)]
    small = [InferenceCase(f, k, "small", 1 if f == "unet" else profile.members, s)
             for s in eager for f in FAMILIES for k in profile.steps[f]]
    large = [dataclasses.replace(c, setting=s) for s in eager for c in targets if s != first]
    # Compiling costs about a minute per network and shape: the targets only.
    late = [dataclasses.replace(c, setting=s) for s in compiled for c in targets]
    return targets + small + large + late


def _model_gflop(model, shape: tuple[int, int]) -> tuple[float, float]:
    """GFLOP of one forward of the model's network, and of its base U-Net (0 without), on ``shape``."""
    card = model.card
    channels = card.input.frames * len(card.input.channels)
    net = model.model.backbone
    side = math.sqrt(shape[0] * shape[1])
    own = forward_flops(card.architecture, net.in_channels, net.time_embedding, 64) * (side / 64) ** 2
    base = getattr(model.model, "base", None)
    base_flops = 0.0
    if base is not None:
        base_flops = forward_flops(base.backbone.config, channels, False, 64) * (side / 64) ** 2
    return own / 1e9, base_flops / 1e9


def case_gflop(model, case: InferenceCase, profile: Profile, settings) -> tuple[float, int]:
    """(network GFLOP of one estimate of ``case``, tiles): per tile, members x the sampler's evaluations
    of the network, and the base U-Net once (the residual flow's)."""
    from qpe.inference.tiling import plan_tiles

    shape = grid_shape(case.grid, profile)
    tiles = plan_tiles(shape, profile.tile, profile.overlap)
    size = (tiles[0].rows.stop - tiles[0].rows.start, tiles[0].cols.stop - tiles[0].cols.start)
    own, base = _model_gflop(model, size)
    evaluations = settings.network_evaluations if settings.sampler is not None else 1
    return len(tiles) * (case.members * evaluations * own + base), len(tiles)


def grid_shape(grid: str, profile: Profile) -> tuple[int, int]:
    return (profile.small, profile.small) if grid == "small" else profile.large


# -- data ----------------------------------------------------------------------------------------------------
def synthetic_ir(shape: tuple[int, int], frames: int = 4):
    """A paired dataset of ``frames`` times of blocky synthetic IR (40 km structures) on the OPERA grid's
    top-left ``shape``; the last time is the one estimated."""
    from qpe.data.grid import get_region
    from qpe.data.paired import make_paired_dataset

    grid = get_region("europe").grid(2000.0)
    ny, nx = shape
    rng = np.random.default_rng(0)
    coarse = rng.normal(0.0, 15.0, (frames, len(CHANNELS), ny // 20 + 1, nx // 20 + 1)).astype("float32")
    ir = np.repeat(np.repeat(coarse, 20, axis=2)[:, :, :ny], 20, axis=3)[:, :, :, :nx]
    ir += np.array([232, 248, 271, 265, 271, 269, 249], dtype="float32")[None, :, None, None]
    times = pd.date_range("2021-06-01T12:00", periods=frames, freq="15min")
    return make_paired_dataset(dataclasses.replace(grid, ny=ny, nx=nx), times, ir=ir, channels=list(CHANNELS))


# -- measuring -----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def memory_peak(device: torch.device) -> Iterator[list[float]]:
    """Yields a list that holds, after the block, the peak memory of the block, MiB: the CUDA allocator's
    on a GPU, the process's resident set (VmHWM, reset first where Linux allows) on a CPU."""
    out: list[float] = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    yield out
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        out.append(torch.cuda.max_memory_allocated(device) / 2**20)
    else:
        out.append(_vm_hwm_mib())


def _vm_hwm_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class InferenceBench:
    """Times :class:`InferenceCase` rows; keeps one loaded model per (family, compiled) so that a family's
    compilation is paid once."""

    def __init__(self, profile: Profile, device: torch.device, models: Path) -> None:
        self.profile, self.device, self.models = profile, device, models
        self.data = {grid: synthetic_ir(grid_shape(grid, profile)) for grid in ("small", "large")}
        self._models: dict[tuple[str, bool], object] = {}

    def model(self, family: str, compiled: bool):
        from qpe.models import load

        key = (family, compiled)
        if key not in self._models:
            model = load(self.models / family)
            self._models[key] = compile_networks(model) if compiled else model
        return self._models[key]

    def plan(self, case: InferenceCase) -> tuple[float, int, object]:
        """(GFLOP, tiles, sampling settings) of ``case``."""
        model = self.model(case.family, False)
        settings = model.sampling(case.members, case.steps, None)
        gflop, tiles = case_gflop(model, case, self.profile, settings)
        return gflop, tiles, settings

    def run(self, case: InferenceCase) -> InferenceRow:
        from qpe.inference.engine import EstimateConfig, estimate

        p = self.profile
        model = self.model(case.family, case.setting.compile)
        gflop, tiles, settings = self.plan(case)
        ds = self.data[case.grid]
        times = ds["time"].values[-1:]
        config = EstimateConfig(members=case.members, steps=case.steps, device=self.device.type, tile=p.tile,
                                overlap=p.overlap, batch_tiles=p.batch_tiles, batch_fields=p.batch_fields,
                                precision=case.setting.precision)
        walls = []
        with memory_peak(self.device) as peak:
            for _ in range(1 + (p.repeats if case.grid == "small" else 1)):
                _sync(self.device)
                start = time.perf_counter()
                estimate(model, ds, times, config, progress=False)
                _sync(self.device)
                walls.append(time.perf_counter() - start)
        return InferenceRow(case, grid_shape(case.grid, p), settings.sampler or "-", _k(settings),
                            model.network_evaluations(settings), tiles, gflop, statistics.median(walls[1:]),
                            walls[0], peak[0])


def _k(settings) -> int | None:
    return settings.steps if settings.sampler is not None else None


def projected_seconds(gflop: float, setting: Setting, tflops: dict[str, float], first_compile: bool,
                      assume_tflops: float, assume_compile_s: float, calls: int) -> float:
    """Projected wall time of a row: ``calls`` estimates at the rate measured so far in its setting (else
    the assumed one: ``assume_tflops`` in bf16, half in fp32), plus a compilation if it is the first."""
    rate = tflops.get(setting.name) or (assume_tflops if setting.precision == "bfloat16" else assume_tflops / 2)
    return calls * gflop / rate / 1000 + (assume_compile_s if first_compile else 0.0)


def run_inference(bench: InferenceBench, cases: list[InferenceCase], budget_s: float, started: float,
                  assume_tflops: float, assume_compile_s: float, log: Callable[[str], None]) -> list[InferenceRow]:
    """Time ``cases`` in order, skipping (as rows with ``skipped``) those that would overrun the budget."""
    rows, rates, compiled = [], {}, set()
    for case in cases:
        gflop, tiles, settings = bench.plan(case)
        calls = 1 + (bench.profile.repeats if case.grid == "small" else 1)
        first_compile = case.setting.compile and (case.family, case.grid) not in compiled  # a new shape too
        projected = projected_seconds(gflop, case.setting, rates, first_compile, assume_tflops, assume_compile_s,
                                      calls)
        elapsed = time.perf_counter() - started
        if elapsed + projected > budget_s:
            rows.append(InferenceRow(case, grid_shape(case.grid, bench.profile), settings.sampler or "-",
                                     _k(settings), 0, tiles, gflop, math.nan, math.nan, math.nan,
                                     skipped=f"projected {projected:.0f} s at {elapsed:.0f} s of {budget_s:.0f}"))
            log(f"  skipped {case.family} K={case.steps} {case.grid} {case.setting.name}: {rows[-1].skipped}")
            continue
        row = bench.run(case)
        if case.setting.compile:
            compiled.add((case.family, case.grid))
        rates[case.setting.name] = max(rates.get(case.setting.name, 0.0), row.tflops)  # steady state
        rows.append(row)
        log(f"  {case.family} K={case.steps} {case.grid} {case.setting.name}: {row.seconds:.3f} s/time, "
            f"{row.fields_per_second:.3g} fields/s")
    return rows


# -- training ------------------------------------------------------------------------------------------------
def training_configs(profile: Profile, data: Path, models: Path, log) -> list[tuple[str, str, object]]:
    """(architecture, family, TrainConfig) of every family: the demo configs and the GPU study's (T = 4), on
    ``data``; the study's residual flow gets a U-Net of its architecture trained for one step."""
    from qpe.study.config import load_study
    from qpe.study.plan import training_runs
    from qpe.training import TrainConfig, train

    def sized(config):
        optim = config.optim
        if profile.train_small:
            optim = dataclasses.replace(optim, batch_size=2, crop=32)
        return config.replace(data=str(data), optim=dataclasses.replace(optim, compile=False, warmup_steps=0))

    out = [("demo", f, sized(TrainConfig.from_yaml(REPO / "configs" / "train" / f"demo_{f}.yaml"))) for f in FAMILIES]
    study = load_study(REPO / "studies" / "gpu.yaml", quick=profile.train_small)
    runs = [r for r in training_runs(study, models) if r.frames == 4 and r.scored]
    by_out = {str(r.out): r for r in runs}
    for run in runs:
        config = sized(run.config)
        base = config.base_checkpoint
        if base is not None and not Path(base, "card.yaml").is_file():
            log(f"  (training the GPU study's U-Net for one step: the base of {config.name})")
            unet = sized(by_out[base].config)
            train(unet.replace(optim=dataclasses.replace(unet.optim, steps=1)), out=base, progress=False,
                  log=lambda line: None)
        out.append(("gpu study", run.spec.name, config))
    return out


def run_training(profile: Profile, device: torch.device, data: Path, models: Path, log) -> list[TrainingRow]:
    from bench_training import channels_of, step_gflop

    from qpe.training.loop import measure_training

    rows = []
    for architecture, family, config in training_configs(profile, data, models, log):
        speed = measure_training(config, device=str(device), seconds=profile.train_seconds,
                                 warmup_steps=profile.train_warmup)
        amp = bool(config.optim.amp) and device.type == "cuda"  # the loop autocasts on a GPU only
        rows.append(TrainingRow(architecture, family, config.optim.batch_size, config.optim.crop, amp,
                                speed.steps_per_second, speed.setup_seconds, step_gflop(config, channels_of(config))))
        log(f"  training {architecture} {rows[-1].family}: {speed.steps_per_second:.3g} steps/s")
    return rows


def make_training_data(profile: Profile, folder: Path) -> Path:
    """A small synthetic paired dataset (IR and radar rain) to train on, written under ``folder``."""
    from qpe.data.paired import save_paired
    from qpe.data.synthetic import SynthConfig, generate_paired

    hours, size = profile.train_data
    return save_paired(generate_paired(SynthConfig(hours=hours, size=size, seed=7)), folder / "train.zarr")


# -- tables ------------------------------------------------------------------------------------------------
def _num(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, without an exponent ("-" for NaN)."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.0f}" if abs(value) >= 10 ** digits else f"{value:.{digits}g}"


def inference_table(rows: list[InferenceRow]) -> str:
    """The inference rows as a markdown table."""
    lines = [("| grid | family | sampler | K | NFE | members | setting | fields/s | s/time | first call s "
             "| peak MiB | GFLOP/time | TFLOP/s |"),
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r.case
        grid = f"{r.shape[0]}x{r.shape[1]}" + (f" ({r.tiles} tiles)" if r.tiles > 1 else "")
        cells = ([_num(r.fields_per_second), _num(r.seconds), _num(r.first_seconds), _num(r.peak_mib),
                  _num(r.gflop, 4), _num(r.tflops)] if not r.skipped
                 else [f"skipped: {r.skipped}", "", "", "", _num(r.gflop, 4), ""])
        lines.append(f"| {grid} | {c.family} | {r.sampler} | {r.k if r.k is not None else '-'} | "
                     f"{r.nfe or '-'} | {c.members} | {c.setting.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def training_table(rows: list[TrainingRow]) -> str:
    """The training rows as a markdown table."""
    lines = ["| architecture | family | batch | crop | precision | steps/s | ms/step | setup s | GFLOP/step | TFLOP/s |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.architecture} | {r.family} | {r.batch} | {r.crop} | {'bf16' if r.amp else 'fp32'} | "
                     f"{_num(r.steps_per_second)} | {_num(1000 / r.steps_per_second)} | {_num(r.setup_seconds)} | "
                     f"{_num(r.gflop_per_step, 4)} | {_num(r.gflop_per_step * r.steps_per_second / 1000)} |")
    return "\n".join(lines)


def device_line(device: torch.device) -> str:
    """What the device is, in words."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines()
                  if line.startswith("model name")), "CPU")
    return f"{model}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


# -- the command ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU, < 60 s)")
    parser.add_argument("--plan", action="store_true", help="print the rows and the projected time; run nothing")
    parser.add_argument("--device", default="auto", help="auto (a GPU when present), cpu or cuda")
    parser.add_argument("--settings", nargs="*", choices=list(SETTINGS), help="settings to time (default: "
                        "all; --quick: fp32 and bf16, as compiling takes about a minute on a CPU)")
    parser.add_argument("--skip-training", action="store_true", help="leave the training rows out")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="wall-time budget of the whole run, s (450; the training rows' allowance, "
                             "TRAINING_ALLOWANCE_S each, is kept for them)")
    parser.add_argument("--assume-tflops", type=float, default=10.0,
                        help="achieved bf16 TFLOP/s assumed before a setting is measured (10; fp32 half)")
    parser.add_argument("--assume-compile-s", type=float, default=60.0, help="a first compiled call, s (60)")
    args = parser.parse_args(argv)

    from qpe.errors import QpeError
    from qpe.inference.device import resolve_device

    profile = PROFILES["quick" if args.quick else "full"]
    if args.settings:
        profile = dataclasses.replace(profile, settings=tuple(args.settings))
    try:
        device = resolve_device(args.device)
    except QpeError as err:
        print(f"bench_gpu: {err}", file=sys.stderr)
        return 2
    command = "python benchmarks/bench_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    log = print
    bench = InferenceBench(profile, device, REPO / "models" / "demo")
    cases = inference_cases(profile)
    if args.plan:
        total = 0.0
        compiled = set()
        for case in cases:
            gflop, tiles, _ = bench.plan(case)
            calls = 1 + (profile.repeats if case.grid == "small" else 1)
            first = case.setting.compile and (case.family, case.grid) not in compiled
            compiled |= {(case.family, case.grid)} if case.setting.compile else set()
            seconds = projected_seconds(gflop, case.setting, {}, first, args.assume_tflops, args.assume_compile_s,
                                        calls)
            total += seconds
            print(f"{case.grid:<6} {case.family:<14} K={case.steps!s:<5} M={case.members:<3} {case.setting.name:<13} "
                  f"{tiles:>3} tiles {gflop:>10.1f} GFLOP/time x {calls} calls: {seconds:6.1f} s")
        training = TRAINING_ROWS * (TRAINING_ALLOWANCE_S + profile.train_seconds)
        print(f"projected: inference {total:.0f} s ({args.assume_tflops:g} TFLOP/s bf16, {args.assume_tflops / 2:g} "
              f"fp32, {args.assume_compile_s:g} s per first compile) + training {training:.0f} s ({TRAINING_ROWS} rows "
              f"x {TRAINING_ALLOWANCE_S:g} s set-up + {profile.train_seconds:g} s timed) = {total + training:.0f} s; "
              f"rows that would end past --budget-s {args.budget_s:g} s are skipped")
        return 0

    log(f"bench_gpu ({'quick' if args.quick else 'full'}) on {device_line(device)}")
    allowance = 0.0 if args.skip_training else TRAINING_ROWS * (TRAINING_ALLOWANCE_S + profile.train_seconds)
    rows = run_inference(bench, cases, args.budget_s - allowance, started, args.assume_tflops,
                         args.assume_compile_s, log)
    training: list[TrainingRow] = []
    if not args.skip_training:
        with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
            data = make_training_data(profile, Path(tmp))
            training = run_training(profile, device, data, Path(tmp) / "models", log)
    wall = time.perf_counter() - started
    print()
    print(f"Measured on {device_line(device)}, {time.strftime('%Y-%m-%d', time.gmtime())}, by `{command.strip()}` "
          f"({wall:.0f} s in all).")
    print()
    print(inference_table(rows))
    if training:
        print()
        print(training_table(training))
    return 0


if __name__ == "__main__":
    sys.exit(main())
