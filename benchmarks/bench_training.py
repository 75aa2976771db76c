"""Warm-up benchmark of a study: training steps/s of each family here, and the study's projected wall time.

Run::

    python benchmarks/bench_training.py studies/gpu.yaml                       # ~60 s of timing (GPU)
    python benchmarks/bench_training.py studies/gpu.yaml --quick --seconds 2   # tiny, on the CPU (tests)

For each family of the study, at its largest T and with the study's architecture, crop, batch and
settings (its training config, as ``qpe study`` builds it), it times the training loop's own steps
(:func:`qpe.training.loop.measure_training`: data, loss, backward, AdamW, EMA; no validation or
checkpoint) in two ways:

- ``plain``: the study's settings with ``data_on_device`` and ``compile`` off (the data-loader path),
  one family after another in this process: the baseline;
- ``study``: the study's own settings. When the study trains ``jobs`` models at once (its ``jobs`` key),
  ``jobs`` families are timed at once, each in its own process on the same device, as the study runs
  them: the rate each model gets while sharing the device. Their first steps (compilation) are not
  timed but reported (``setup``), and a later ``torch.compile`` of the same graph finds it in inductor's
  on-disk cache.

``--seconds`` is the timed wall time in all (a third for the plain rows, two thirds for the study rows);
the setup (reading the data, moving it to the device, compiling) comes on top and is reported.

Then it projects the wall time of the study: **training** (every run of the plan: its setup, its steps
at the measured rate of its family, its validations, ``jobs`` at a time, each after the U-Net it needs)
and **scoring** (the network evaluations of every model, sampler and K on every benchmark time, members
in one call, at the measured time of one call; the scores themselves run on the CPU in parallel and are
covered by ``--rest-min`` with the baseline fit and the pages). It prints steps/s, ms/step, GFLOP per
step and the achieved TFLOP/s of each family, both projections and the speed-up over the plain baseline,
and exits with status 1 and one line when this benchmark's own wall time plus the projections exceeds
``--budget-min`` (default 9).

The T of the timed rows is the study's largest; a run at a smaller T is projected at its family's rate
(only the first convolution is smaller). The residual flow is timed on a U-Net trained for one step.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from qpe.data.catalog import resolve_data
from qpe.data.paired import open_paired
from qpe.errors import MissingInputError, QpeError
from qpe.inference.device import autocast, resolve_device
from qpe.models.sampling import SAMPLERS
from qpe.models.unet import UNet, UNetConfig
from qpe.study.config import StudyConfig, load_study
from qpe.study.plan import TrainingRun, training_runs
from qpe.study.run import benchmark_times, open_benchmark
from qpe.training import TrainConfig, train
from qpe.training.loop import TrainingSpeed, measure_training

#: Most fields in one network call of the estimate engine (``EstimateConfig.batch_fields``).
BATCH_FIELDS = 16


@dataclass(frozen=True)
class FamilyTiming:
    """The two timings of one family, and what one of its steps computes."""

    run: TrainingRun
    plain: TrainingSpeed
    study: TrainingSpeed
    gflop_per_step: float


# -- what is timed ----------------------------------------------------------------------------------------
def plain_settings(config: TrainConfig) -> TrainConfig:
    """``config`` with the data-loader path and no compilation (the baseline)."""
    return config.replace(optim=dataclasses.replace(config.optim, data_on_device=False, compile=False))


def timed_runs(study: StudyConfig, models_dir: Path) -> list[TrainingRun]:
    """One run per family of the study, at its largest T (the plan's configs)."""
    frames = max(study.frames)
    return [run for run in training_runs(study, models_dir) if run.frames == frames and run.scored]


def train_bases(timed: list[TrainingRun], runs: list[TrainingRun], log) -> None:
    """Give the timed runs that read a U-Net (residual flows) one: the study's U-Net config (among ``runs``)
    trained for one step."""
    by_out = {str(run.out): run for run in runs}
    for run in timed:
        base = run.config.base_checkpoint
        if base is None or Path(base, "card.yaml").is_file():
            continue
        config = plain_settings(by_out[base].config)
        config = config.replace(optim=dataclasses.replace(config.optim, steps=1, warmup_steps=0))
        log(f"  (training {config.name} for one step: the U-Net of {run.config.name})")
        train(config, out=base, progress=False, log=lambda line: None)


def channels_of(config: TrainConfig) -> int:
    """IR channels the config reads (its list, else all of its data's)."""
    if config.input.channels:
        return len(config.input.channels)
    return open_paired(resolve_data(config.data), require=("ir",)).sizes["channel"]


def forward_flops(architecture: UNetConfig, in_channels: int, time_embedding: bool, size: int) -> float:
    """FLOP of one network forward on one ``size`` x ``size`` field (convolutions, matrix products and
    attention, as :class:`torch.utils.flop_counter.FlopCounterMode` counts them; norms and activations
    are not counted)."""
    net = UNet(architecture, in_channels, 1, time_embedding=time_embedding)
    x = torch.zeros(1, in_channels, size, size)
    t = torch.zeros(1) if time_embedding else None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x, t)
    return float(counter.get_total_flops())


def _extra_channels(config: TrainConfig) -> int:
    """Channels the family adds to the IR stack: the state x (generative), and the U-Net mean (residual)."""
    if config.family == "unet":
        return 0
    return 1 + int(config.base_checkpoint is not None)


def step_gflop(config: TrainConfig, channels: int) -> float:
    """GFLOP of one training step: 3 forwards' worth (forward + backward) per sample of the batch, plus
    the frozen U-Net's forward of a residual flow."""
    crop, batch = config.optim.crop, config.optim.batch_size
    in_channels = config.input.frames * channels
    own = forward_flops(config.architecture, in_channels + _extra_channels(config), config.family != "unet", crop)
    base = forward_flops(config.architecture, in_channels, False, crop) if config.base_checkpoint else 0.0
    return (3 * own + base) * batch / 1e9


def _measure(config: TrainConfig, device: str, seconds: float) -> TrainingSpeed:
    return measure_training(config, device=device, seconds=seconds)


def _measure_in_process(config: TrainConfig, device: str, seconds: float, barrier, results,
                        spawned_at: float) -> None:
    """A worker: set up and warm up ``config``, wait for the others at ``barrier``, then time it. Its setup
    includes the start of the process (interpreter, torch and qpe imports), as a study's job pays it."""
    launch = time.time() - spawned_at
    try:
        speed = measure_training(config, device=device, seconds=seconds, ready=lambda: barrier.wait(BARRIER_S))
        speed = dataclasses.replace(speed, setup_seconds=speed.setup_seconds + launch)
        results.put((config.name, speed, None))
    except Exception as err:  # noqa: BLE001 -- reported to the parent as one line
        barrier.abort()  # the others stop waiting
        results.put((config.name, None, f"{type(err).__name__}: {err}"))


#: Longest wait, s, for the other processes to finish their setup (compiling) before timing together.
BARRIER_S = 900


def measure_together(configs: list[TrainConfig], device: str, seconds: float) -> dict[str, TrainingSpeed]:
    """Time ``configs`` at once, each in its own spawned process (as ``qpe study`` with ``jobs``).

    Every process sets up and takes its untimed steps (compiles), waits for the others, then all time
    their steps for ``seconds`` together: the rates are those of models sharing the device.
    """
    context = multiprocessing.get_context("spawn")
    results, barrier = context.Queue(), context.Barrier(len(configs))
    processes = [context.Process(target=_measure_in_process,
                                 args=(c, device, seconds, barrier, results, time.time())) for c in configs]
    for process in processes:
        process.start()
    speeds, errors = {}, []
    for _ in processes:
        name, speed, error = results.get()
        if error is not None:
            errors.append(f"{name}: {error}")
        else:
            speeds[name] = speed
    for process in processes:
        process.join()
    errors = [e for e in errors if "BrokenBarrierError" not in e] or errors  # the cause, not its echoes
    if errors:
        raise RuntimeError("; ".join(errors))
    return speeds


# -- projections ------------------------------------------------------------------------------------------
def schedule_seconds(durations: dict[str, float], needs: dict[str, tuple[str, ...]], jobs: int) -> float:
    """Wall time of runs of the given durations, at most ``jobs`` at once, each started as soon as the
    runs it needs have finished, in the order of ``durations`` (the study's order)."""
    clock, running, finished = 0.0, {}, set()
    while len(finished) < len(durations):
        for name, duration in durations.items():
            if len(running) >= jobs:
                break
            if name not in finished and name not in running and set(needs[name]) <= finished:
                running[name] = clock + duration
        name = min(running, key=running.get)
        clock = running.pop(name)
        finished.add(name)
    return clock


def run_needs(runs: list[TrainingRun]) -> dict[str, tuple[str, ...]]:
    """The runs each run reads the checkpoints of (its base and cross-fit U-Nets)."""
    by_out = {str(run.out): run.config.name for run in runs}
    return {run.config.name: tuple(by_out[p] for p in (run.config.base_checkpoint, *run.config.cross_fit)
                                   if p is not None and p in by_out) for run in runs}


class CallTimer:
    """Milliseconds of one network call (a U-Net of the study's architecture, bf16 on a GPU), by shape."""

    def __init__(self, architecture: UNetConfig, device: torch.device, seconds: float = 0.5) -> None:
        self.architecture, self.device, self.seconds = architecture, device, seconds
        self._ms: dict[tuple, float] = {}

    @torch.no_grad()
    def ms(self, in_channels: int, time_embedding: bool, fields: int, height: int, width: int) -> float:
        key = (in_channels, time_embedding, fields, height, width)
        if key not in self._ms:
            net = UNet(self.architecture, in_channels, 1, time_embedding=time_embedding).to(self.device).eval()
            x = torch.randn(fields, in_channels, height, width, device=self.device)
            t = torch.rand(fields, device=self.device) if time_embedding else None
            with autocast(self.device):
                for _ in range(3):
                    net(x, t)
                _drain(self.device)
                calls, start = 0, time.perf_counter()
                while calls < 3 or time.perf_counter() - start < self.seconds:
                    net(x, t)
                    calls += 1
                _drain(self.device)
            self._ms[key] = 1000 * (time.perf_counter() - start) / calls
        return self._ms[key]


def _drain(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def validation_seconds(config: TrainConfig, channels: int, timer: CallTimer) -> float:
    """Network time of one validation of ``config`` (its loss, and its samples at the card's K)."""
    v, sampling = config.validation, config.sampling
    members = v.members if config.family != "unet" else 1
    evaluations = 1 + (SAMPLERS[sampling.sampler].network_evaluations(sampling.steps) if sampling else 1)
    in_channels = config.input.frames * channels + _extra_channels(config)
    per_batch = timer.ms(in_channels, config.family != "unet", 4 * members, v.crop, v.crop) * evaluations
    return per_batch * math.ceil(v.samples / 4) / 1000


def scoring_seconds(study: StudyConfig, runs: list[TrainingRun], channels: int, timer: CallTimer,
                    log) -> float:
    """Network time of scoring every model variant on every benchmark time (members in one call)."""
    total = 0.0
    for spec in study.benchmarks:
        try:
            ds = open_benchmark(spec, progress=False)
        except MissingInputError as err:
            if not spec.optional:
                raise
            log(f"  scoring {spec.name}: skipped, as the study will ({err})")
            continue
        times = len(benchmark_times(ds, spec, max(study.frames)))
        height, width = ds.sizes["y"], ds.sizes["x"]
        seconds, variants = 0.0, 0
        for run in (r for r in runs if r.scored):
            model = run.spec
            in_channels = run.frames * channels
            base_ms = timer.ms(in_channels, False, 1, height, width) if run.config.base_checkpoint else 0.0
            for sampler in (model.sampler, *model.also_samplers):
                for steps in model.steps or (None,):
                    variants += 1
                    if sampler is None:
                        seconds += timer.ms(in_channels, False, 1, height, width) / 1000
                        continue
                    fields = min(study.members, BATCH_FIELDS)
                    calls = math.ceil(study.members / BATCH_FIELDS)
                    ms = timer.ms(in_channels + _extra_channels(run.config), True, fields, height, width)
                    seconds += (calls * SAMPLERS[sampler].network_evaluations(steps) * ms + base_ms) / 1000
        log(f"  scoring {spec.name}: {times} times x {variants} variants of {height} x {width} px, "
            f"{study.members} members: {seconds * times:.0f} s of network time")
        total += seconds * times
    return total


# -- the benchmark -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="study file, e.g. studies/gpu.yaml")
    parser.add_argument("--quick", action="store_true", help="the study's quick profile")
    parser.add_argument("--seconds", type=float, default=60.0, help="timed wall time in all (default 60)")
    parser.add_argument("--budget-min", type=float, default=9.0,
                        help="exit 1 when this benchmark plus the projected study exceeds it (default 9)")
    parser.add_argument("--rest-min", type=float, default=1.0,
                        help="allowance for the rest of the study: baseline fit, scores on the CPU, pages "
                             "(default 1)")
    parser.add_argument("--jobs", type=int, default=None, help="models at once (default: the study's jobs)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when present), cpu or cuda")
    args = parser.parse_args(argv)
    log = print

    try:
        study = load_study(args.study, quick=args.quick)
        jobs = args.jobs or getattr(study, "jobs", 1)
        device = resolve_device(args.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
            models_dir = Path(tmp) / "models"
            runs = training_runs(study, models_dir)
            timed = timed_runs(study, models_dir)
            log(f"{args.study} ({study.profile}): {len(runs)} runs, jobs {jobs}, on {device} ({name}); "
                f"timing T = {max(study.frames)}, {args.seconds:g} s in all")
            train_bases(timed, runs, log)
            channels = channels_of(timed[0].config)

            plain_each = args.seconds / 3 / len(timed)
            plain = {run.config.name: _measure(plain_settings(run.config), str(device), plain_each)
                     for run in timed}
            study_each = 2 * args.seconds / 3 / math.ceil(len(timed) / jobs)
            shared = {}
            for first in range(0, len(timed), jobs):
                group = [run.config for run in timed[first : first + jobs]]
                if jobs == 1:
                    shared[group[0].name] = _measure(group[0], str(device), study_each)
                else:
                    shared.update(measure_together(group, str(device), study_each))
            timings = [FamilyTiming(run, plain[run.config.name], shared[run.config.name],
                                    step_gflop(run.config, channels)) for run in timed]
            _print_table(timings, jobs)

            timer = CallTimer(timed[0].config.architecture, device)
            by_family = {t.run.spec.name: t for t in timings}
            needs = run_needs(runs)
            projected = {}
            for mode in ("plain", "study"):
                durations = {}
                for run in runs:
                    speed = getattr(by_family[run.spec.name], mode)
                    validations = math.ceil(run.config.optim.steps / run.config.validation.every)
                    durations[run.config.name] = (speed.setup_seconds + run.config.optim.steps / speed.steps_per_second
                                                  + validations * validation_seconds(run.config, channels, timer))
                projected[mode] = schedule_seconds(durations, needs, 1 if mode == "plain" else jobs)
            log(f"projected training: plain, one after another {projected['plain']:.0f} s; study settings, "
                f"{jobs} at once {projected['study']:.0f} s ({projected['plain'] / projected['study']:.1f}x)")
            scoring = scoring_seconds(study, runs, channels, timer, log)
    except (QpeError, RuntimeError) as err:
        print(f"bench_training: {err}", file=sys.stderr)
        return 2
    bench = time.perf_counter() - started
    total = bench + projected["study"] + scoring + 60 * args.rest_min
    log(f"projected total: this benchmark {bench:.0f} s + training {projected['study']:.0f} s + scoring "
        f"{scoring:.0f} s + rest {60 * args.rest_min:.0f} s = {total / 60:.1f} min (budget {args.budget_min:g} min)")
    if total > 60 * args.budget_min:
        print(f"bench_training: projected {total / 60:.1f} min exceeds the budget of {args.budget_min:g} min",
              file=sys.stderr)
        return 1
    return 0


def _print_table(timings: list[FamilyTiming], jobs: int) -> None:
    shared = f"{jobs} at once" if jobs > 1 else "alone"
    print(f"{'family':<16}{'batch':>6}{'crop':>5}{'GFLOP/step':>11} | {'plain steps/s':>13}{'ms/step':>9}"
          f"{'setup s':>8} | {'study steps/s':>13}{'ms/step':>9}{'setup s':>8}{'TFLOP/s':>8}{'ratio':>7}"
          f"   (study: {shared})")
    for t in timings:
        optim = t.run.config.optim
        print(f"{t.run.spec.name:<16}{optim.batch_size:>6}{optim.crop:>5}{t.gflop_per_step:>11.1f} | "
              f"{t.plain.steps_per_second:>13.2f}{t.plain.ms_per_step:>9.1f}{t.plain.setup_seconds:>8.1f} | "
              f"{t.study.steps_per_second:>13.2f}{t.study.ms_per_step:>9.1f}{t.study.setup_seconds:>8.1f}"
              f" {t.gflop_per_step * t.study.steps_per_second / 1000:>7.3g}"
              f"{t.study.steps_per_second / t.plain.steps_per_second:>7.2f}")
    together = sum(t.study.steps_per_second for t in timings[:jobs])
    print(f"{'all at once':<16}{'':>22} | {'':>30} | {together:>13.2f} steps/s together")


if __name__ == "__main__":
    sys.exit(main())
