"""Inference cost through the engine, as a user runs it: milliseconds per field per model family and K.

Run::

    python benchmarks/bench_inference.py                  # 256 x 256 (demo grid) + the full OPERA grid
    python benchmarks/bench_inference.py --skip-opera     # 256 x 256 only (about 2 minutes on 2 cores)
    python benchmarks/bench_inference.py --only-opera --only unet   # one row on the full OPERA grid
    python benchmarks/bench_inference.py --device cuda    # on a GPU (bf16 autocast)

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
    *[("flow_residual", s, k) for s, k in (("euler", 4), ("heun", 4), ("heun", 8))],
]
#: Rows on the full OPERA grid.
OPERA_CASES = [("unet", None, None), ("flow_residual", "heun", 4)]


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
        config = EstimateConfig(members=args.members, steps=steps, sampler=sampler, device=args.device)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--times", type=int, default=2, help="valid times per call at 256 x 256 (default 2)")
    parser.add_argument("--members", type=int, default=1, help="members per time of stochastic models (default 1)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per 256 x 256 row (default 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip-opera", action="store_true", help="leave out the full OPERA grid rows")
    parser.add_argument("--only-opera", action="store_true", help="only the full OPERA grid rows")
    parser.add_argument("--only", nargs="*", help="model names to run (unet ddpm flow_gaussian flow_residual)")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but no CUDA GPU is available here")
    where = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
             else f"CPU, {args.threads or torch.get_num_threads()} torch threads")
    print(f"qpe inference through the engine (CheckpointEstimator.estimate), T=4 x C=7 IR, {where}, "
          f"torch {torch.__version__}; members per time: {args.members} (U-Net: 1); cache off")
    header = (f"{'grid':<11} {'model':<14} {'weights':<18} {'sampler':<7} {'K':>3} {'NFE':>4} {'ms/field':>10} "
              f"{'ms/NFE':>8} {'wall s':>7} {'RSS before':>10} {'peak RSS MiB':>12}")
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
            print(f"{label:<11} {name:<14} {weights:<18} {sampler:<7} {k!s:>3} {nfe:>4} {ms:>10.1f} {ms_nfe:>8.1f} "
                  f"{wall:>7.2f} {before:>10.0f} {peak:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
