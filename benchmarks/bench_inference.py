"""Inference cost through the engine, as a user runs it: milliseconds per field per model family and K.

Run::

    python benchmarks/bench_inference.py                  # 256 x 256 (demo grid) + the full OPERA grid
    python benchmarks/bench_inference.py --skip-opera     # 256 x 256 only (about 2 minutes on 2 cores)
    python benchmarks/bench_inference.py --only-opera --only unet   # one row on the full OPERA grid
    python benchmarks/bench_inference.py --device cuda    # on a GPU (bf16 autocast)
    python benchmarks/bench_inference.py --engine-options # CPU engine options, one dashboard estimate

Every row runs ``CheckpointEstimator(path).estimate(ds, times, EstimateConfig(...))`` — the public path of
``qpe estimate`` / ``qpe evaluate``: IR stacking, normalisation, tiling with overlap, batching of tiles and
members, blending — with the estimate cache off. Models are the trained checkpoints of ``models/demo`` when
they exist, otherwise freshly initialised cards of the demo architecture (``configs/train/demo_*.yaml``;
timing does not depend on the weights' values); the ``weights`` column says which. Each row runs in its
own process so that its peak resident memory (``peak RSS``, whole process: Python, torch, the dataset,
the model, the estimate) is its own.

256 x 256: the demo dataset's first times (one tile per field); ``ms/field`` is the median over
``--repeats`` calls after a warm-up, divided by the fields (times x members) of a call. OPERA grid:
2200 x 1900 pixels of 2 km (the full ODIM composite), T = 4 frames of 7 channels of synthetic IR,
one time, one member, one call (no warm-up: it is long enough), 256-pixel tiles overlapping by 32.

``--engine-options``: the options of the engine on a CPU, timed on one dashboard estimate (one time of
the demo data, 256 x 256, ``--members`` (default 4) members of ``--only`` (default ``flow_residual``) at
its card's sampler and K unless ``--steps``), every variant in this one process, in interleaved rounds
(a warm-up call each, then ``--repeats`` rounds over all variants, each round starting at the next
variant, so that a shared machine's load falls on all alike): the engine's default (main's), 1 and 2 intra-op threads, the weights in channels-last layout (as
the activations are), bf16 autocast (``precision="bfloat16"``, where the CPU has bf16 units), the
members drawn one per network call (``batch_fields=1``) and ``torch.compile`` of the networks (its first
call, with the compilation, reported apart). Each row gives seconds per estimate, the ratio against
main's (> 1: faster) and the largest difference of its rain from main's. Then the network alone at
batches of 1..8 fields (ms per field): what batching more fields, members or several times, per
forward would gain.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ("WV_062", "WV_073", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134")

#: (model, sampler, K) rows at 256 x 256.
SMALL_CASES = [
    ("unet", None, None),
    ("ddpm", "ddim", 10),
    ("ddpm", "ddim", 50),
    *[("flow_gaussian", s, k) for s in ("euler", "heun") for k in (1, 4, 8, 16)],
    *[("flow_residual", s, k) for s, k in (("euler", 4), ("heun", 4), ("heun", 8), ("midpoint", 8))],
    ("flow_residual_student", "euler", 2),  # distilled from flow_residual midpoint K = 8
]
#: Rows on the full OPERA grid.
OPERA_CASES = [("unet", None, None), ("flow_residual", "heun", 4), ("flow_residual_student", "euler", 2)]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _fresh_checkpoint(name: str, folder: Path, mean, std) -> Path:
    """A freshly initialised checkpoint of the demo architecture (configs/train/demo_<name>.yaml)."""
    import dataclasses

    import torch

    from qpe.data.normalization import IRNormalization
    from qpe.models import InputSpec, ModelCard, base_reference, build_model, load, save_checkpoint
    from qpe.training.config import TrainConfig

    config = TrainConfig.from_yaml(REPO / "configs" / "train" / f"demo_{name}.yaml")
    card = ModelCard(
        name=config.name, family=config.family, input=InputSpec(list(CHANNELS), config.input.frames),
        normalization=IRNormalization(CHANNELS, tuple(mean), tuple(std)), architecture=config.architecture,
        rain_transform=config.rain_transform, diffusion=config.diffusion, flow=config.flow,
        sampling=config.sampling, description="benchmark: freshly initialised demo architecture",
    )
    torch.manual_seed(0)
    base = None
    if card.needs_base:
        base = load(_fresh_checkpoint("unet", folder, mean, std))
        card = dataclasses.replace(card, base_checkpoint=base_reference(base, folder / name))
    save_checkpoint(build_model(card, base.model if base is not None else None), card, folder / name)
    return folder / name


def _estimator(name: str, folder: Path, mean, std):
    """(estimator, 'demo checkpoint' | 'fresh demo architecture')."""
    from qpe.errors import QpeError
    from qpe.inference.estimators import CheckpointEstimator

    demo = REPO / "models" / "demo" / name
    if (demo / "card.yaml").is_file():
        try:
            est = CheckpointEstimator(demo)
            est.model  # noqa: B018 - loads and verifies the weights now
            return est, "models/demo"
        except QpeError as err:
            print(f"  ({demo}: {err}; using a fresh card)")
    return CheckpointEstimator(_fresh_checkpoint(name, folder, mean, std)), "fresh (demo arch)"


def _opera_dataset(frames: int):
    """Synthetic IR (frames x 7 channels) on the 2200 x 1900 OPERA grid, one valid time at the end."""
    import numpy as np
    import pandas as pd

    from qpe.data.grid import get_region
    from qpe.data.paired import make_paired_dataset

    grid = get_region("europe").grid(2000.0)
    rng = np.random.default_rng(0)
    coarse = rng.normal(0.0, 1.0, (frames, len(CHANNELS), grid.ny // 20 + 1, grid.nx // 20 + 1)).astype("float32")
    coarse = np.repeat(coarse, 20, axis=2)[:, :, : grid.ny]
    ir = np.repeat(coarse, 20, axis=3)[:, :, :, : grid.nx]  # blocky, 40 km structures: timing only
    ir *= 15.0
    ir += np.array([232, 248, 271, 265, 271, 269, 249], dtype="float32")[None, :, None, None]
    del coarse
    times = pd.date_range("2021-06-01T12:00", periods=frames, freq="15min")
    return make_paired_dataset(grid, times, ir=ir, channels=list(CHANNELS))


def _demo_dataset(frames: int, extra: int):
    from qpe.data.catalog import resolve_data
    from qpe.data.paired import open_paired

    ds = open_paired(resolve_data("demo"), require=("ir",))
    return ds.isel(time=slice(0, frames - 1 + extra)).load()


def run_case(case: tuple, args: argparse.Namespace, grid: str, queue: mp.Queue) -> None:
    """Time one (model, sampler, K) on one grid; put a result row on ``queue``."""
    import torch

    from qpe.inference.engine import EstimateConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    name, sampler, steps = case
    with tempfile.TemporaryDirectory() as tmp:
        frames = 4
        ds = _opera_dataset(frames) if grid == "opera" else _demo_dataset(frames, args.times)
        mean = [float(ds["ir"].sel(channel=c).isel(time=0).mean()) for c in CHANNELS]
        std = [float(ds["ir"].sel(channel=c).isel(time=0).std()) for c in CHANNELS]
        est, weights = _estimator(name, Path(tmp), mean, std)
        times = ds["time"].values[frames - 1 :]
        config = EstimateConfig(members=args.members, steps=steps, sampler=sampler, device=args.device,
                                precision=args.precision)
        rss_before = _peak_rss_mib()
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        walls = []
        repeats = 1 if grid == "opera" else args.repeats + 1  # the first small-grid call warms up
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            out = est.estimate(ds, times, config, cache=None, progress=False)
            sync()
            walls.append(time.perf_counter() - t0)
        walls = walls if grid == "opera" else walls[1:]
        wall = statistics.median(walls)
        fields = len(times) * out["rain"].sizes["member"]
        nfe = int(out.attrs["network_evaluations"])
        queue.put((name, weights, out.attrs["sampler"], steps or "-", nfe, wall * 1000 / fields,
                   wall * 1000 / fields / nfe, wall, rss_before, _peak_rss_mib(), fields))


#: Engine variants of ``--engine-options``: (label, torch threads (0: keep), EstimateConfig options, what is
#: done to the loaded model first: None, "channels_last" (its weights' layout) or "compile").
ENGINE_VARIANTS = [
    ("main (the default)", 0, {}, None),
    ("1 thread", 1, {}, None),
    ("2 threads", 2, {}, None),
    ("channels-last weights", 0, {}, "channels_last"),
    ("bf16 autocast (precision=bfloat16)", 0, {"precision": "bfloat16"}, None),
    ("members one per call (batch_fields=1)", 0, {"batch_fields": 1}, None),
    ("torch.compile of the networks", 0, {}, "compile"),
]


def cpu_bf16_units() -> list[str]:
    """The CPU's bf16 instruction sets (``avx512_bf16``, ``amx_bf16``) from /proc/cpuinfo (Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in ("avx512_bf16", "amx_bf16") if f in flags]


def compile_networks(model):
    """``model`` (a :class:`qpe.models.LoadedModel`) with its networks (a residual flow's U-Net too) compiled
    in place by ``torch.compile``; returns it."""
    from qpe.models.unet import UNet

    for module in model.model.modules():
        if isinstance(module, UNet):
            module.compile()
    return model


def engine_options(args: argparse.Namespace) -> None:
    """Time the CPU engine's options on one dashboard estimate (see the module notes) and print a table."""
    import dataclasses

    import numpy as np
    import torch

    from qpe.inference.engine import EstimateConfig

    name = (args.only or ["flow_residual"])[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    default_threads = torch.get_num_threads()
    units = cpu_bf16_units()
    variants = [v for v in ENGINE_VARIANTS if v[2].get("precision") != "bfloat16" or units]
    variants = [v for v in variants if v[1] != default_threads]  # the default rows already run at that count
    with tempfile.TemporaryDirectory() as tmp:
        ds = _demo_dataset(4, 1)
        times = ds["time"].values[-1:]
        mean = [float(ds["ir"].sel(channel=c).isel(time=0).mean()) for c in CHANNELS]
        std = [float(ds["ir"].sel(channel=c).isel(time=0).std()) for c in CHANNELS]
        base = EstimateConfig(members=args.members, steps=args.steps, device="cpu")
        runs = []
        for label, threads, options, prepare in variants:
            est, weights = _estimator(name, Path(tmp), mean, std)
            if prepare == "compile":
                compile_networks(est.model)
            elif prepare == "channels_last":
                est.model.model.to(memory_format=torch.channels_last)  # 4-D weights only; same values
            runs.append({"label": label, "threads": threads or default_threads,
                         "est": est, "weights": weights,
                         "config": dataclasses.replace(base, **options), "walls": [], "rain": None})

        def call(run):
            torch.set_num_threads(run["threads"])
            t0 = time.perf_counter()
            out = run["est"].estimate(ds, times, run["config"], cache=None, progress=False)
            wall = time.perf_counter() - t0
            torch.set_num_threads(default_threads)
            return out, wall

        for run in runs:  # warm-up (and compilation)
            out, run["first"] = call(run)
            run["rain"], run["attrs"] = out["rain"].values, out.attrs
        for round_ in range(args.repeats):  # each round starts at another variant: a drifting load falls on all
            for run in runs[round_ % len(runs) :] + runs[: round_ % len(runs)]:
                run["walls"].append(call(run)[1])

    first = runs[0]
    main_wall = statistics.median(first["walls"])
    attrs = first["attrs"]
    print(f"engine options on the CPU: {name} ({first['weights']}), {attrs['members']} members of 256 x 256, "
          f"{attrs['sampler']} K={attrs['steps']} ({attrs['network_evaluations']} network evaluations per member), "
          f"one time; torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, bf16 units: "
          f"{', '.join(units) or 'none'}; {default_threads} threads unless the row says; median of {args.repeats} "
          f"interleaved rounds")
    print("| variant | threads | s per estimate | ratio vs main | first call s | max abs diff vs main, mm/h "
          "| mean rain, mm/h |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        wall = statistics.median(run["walls"])
        diff = float(np.nanmax(np.abs(run["rain"] - first["rain"])))
        print(f"| {run['label']} | {run['threads']} | {wall:.2f} | {main_wall / wall:.2f} | {run['first']:.1f} | "
              f"{diff:.3g} | {np.nanmean(run['rain']):.4f} |", flush=True)
    _network_batches(first["est"], default_threads)


def _network_batches(est, threads: int) -> None:
    """ms per field of one network evaluation at batches of 1, 2, 4 and 8 fields of 256 x 256."""
    import torch

    net = est.model.model.backbone
    print(f"\nthe network alone ({est.model.card.name}'s, {threads} threads), 256 x 256:")
    print("| fields per forward | ms per field | ratio vs 4 per forward |")
    print("|---:|---:|---:|")
    rows = {}
    with torch.no_grad():
        for fields in (1, 2, 4, 8):
            x = torch.randn(fields, net.in_channels, 256, 256)
            t = torch.rand(fields) if net.time_embedding else None
            net(x, t)
            walls = []
            for _ in range(3):
                t0 = time.perf_counter()
                net(x, t)
                walls.append(time.perf_counter() - t0)
            rows[fields] = statistics.median(walls) * 1000 / fields
    for fields, ms in rows.items():
        print(f"| {fields} | {ms:.0f} | {rows[4] / ms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--times", type=int, default=2, help="valid times per call at 256 x 256 (default 2)")
    parser.add_argument("--members", type=int, default=None,
                        help="members per time of stochastic models (default 1; 4 with --engine-options)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per 256 x 256 row (default 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--precision", default="auto", help="EstimateConfig.precision: auto (default), float32, "
                        "bfloat16 (bf16 autocast on a CPU too)")
    parser.add_argument("--skip-opera", action="store_true", help="leave out the full OPERA grid rows")
    parser.add_argument("--only-opera", action="store_true", help="only the full OPERA grid rows")
    parser.add_argument("--only", nargs="*",
                        help="model names to run (unet ddpm flow_gaussian flow_residual flow_residual_student)")
    parser.add_argument("--engine-options", action="store_true",
                        help="time the CPU engine's options on one dashboard estimate (module notes)")
    parser.add_argument("--steps", type=int, default=None, help="sampler K with --engine-options (default: the card's)")
    args = parser.parse_args()
    if args.engine_options:
        args.members = args.members or 4
        engine_options(args)
        return
    args.members = args.members or 1

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but no CUDA GPU is available here")
    where = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
             else f"CPU, {args.threads or torch.get_num_threads()} torch threads")
    print(f"qpe inference through the engine (CheckpointEstimator.estimate), T=4 x C=7 IR, {where}, "
          f"torch {torch.__version__}; members per time: {args.members} (U-Net: 1); precision {args.precision}; "
          "cache off")
    header = (f"{'grid':<11} {'model':<21} {'weights':<18} {'sampler':<8} {'K':>3} {'NFE':>4} "
              f"{'ms/field':>10} {'ms/NFE':>8} {'wall s':>7} {'RSS before':>10} {'peak RSS MiB':>12}")
    print(header)
    print("-" * len(header))
    ctx = mp.get_context("spawn")
    grids = ([] if args.only_opera else [("256x256", SMALL_CASES)]) + (
        [] if args.skip_opera else [("opera", OPERA_CASES)]
    )
    for grid, cases in grids:
        for case in cases:
            if args.only and case[0] not in args.only:
                continue
            queue = ctx.Queue()
            proc = ctx.Process(target=run_case, args=(case, args, grid, queue))
            proc.start()
            row = queue.get()
            proc.join()
            name, weights, sampler, k, nfe, ms, ms_nfe, wall, before, peak, _ = row
            label = "2200x1900" if grid == "opera" else grid
            print(f"{label:<11} {name:<21} {weights:<18} {sampler:<8} {k!s:>3} {nfe:>4} {ms:>10.1f} "
                  f"{ms_nfe:>8.1f} {wall:>7.2f} {before:>10.0f} {peak:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
