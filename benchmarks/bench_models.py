"""Sampling cost of each model family: milliseconds per 256 x 256 sample, parameters and peak memory.

Run::

    python benchmarks/bench_models.py                 # CPU, demo architecture, T=4 x C=7
    python benchmarks/bench_models.py --device cuda   # on a GPU (peak memory from the CUDA allocator)

Each family runs in its own process (randomly initialised weights: the cost does not depend on their
values) so that its peak memory is its own: on the CPU, the growth of the resident set since the model
was built (a running peak over that family's rows); on a GPU, ``torch.cuda.max_memory_allocated`` per
row. Times are the median over repeats after one warm-up. ``params`` counts the checkpoint's tensors;
the residual flow also runs its U-Net (the ``unet`` row's parameters), which the NFE column includes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time

CHANNELS = ["WV_062", "WV_073", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134"]

#: (label, family, section, [(sampler, K), ...])
CASES = [
    ("unet", "unet", {}, [(None, None)]),
    ("ddpm (v, cosine)", "ddpm", {}, [("ddim", 1), ("ddim", 4), ("ddim", 16), ("ddim", 50)]),
    (
        "flow gaussian",
        "flow",
        {"source": "gaussian"},
        [("euler", 1), ("euler", 4), ("euler", 16), ("heun", 1), ("heun", 4), ("heun", 16)],
    ),
    (
        "flow residual",
        "flow",
        {"source": "residual"},
        [("euler", 1), ("euler", 4), ("euler", 16), ("heun", 1), ("heun", 4), ("heun", 16)],
    ),
]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _card(family: str, section: dict):
    from qpe.data.normalization import IRNormalization
    from qpe.models import DiffusionConfig, FlowConfig, InputSpec, ModelCard, UNetConfig

    norm = IRNormalization(tuple(CHANNELS), (240.0,) * 7, (20.0,) * 7)
    extra = {"flow": {"flow": FlowConfig(**section)}, "ddpm": {"diffusion": DiffusionConfig()}}.get(
        family, {}
    )
    return ModelCard(family, family, InputSpec(list(CHANNELS), 4), norm, architecture=UNetConfig(), **extra)


def run_family(case: tuple, args: argparse.Namespace, queue: mp.Queue) -> None:
    """Time every (sampler, K) of one family; put a list of result rows on ``queue``."""
    import torch

    from qpe.models import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    label, family, section, runs = case
    device = torch.device(args.device)
    torch.manual_seed(0)
    card = _card(family, section)
    base = build_model(_card("unet", {})) if card.needs_base else None
    model = build_model(card, base).to(device).eval()
    params = sum(p.numel() for p in model.checkpoint_state().values())
    ir = torch.randn(args.batch, 4, 7, args.size, args.size, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = []
    rss0 = _rss_mb()
    for sampler, steps in runs:
        settings = card.sampling_settings(members=1, steps=steps, sampler=sampler)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            model.sample(ir, settings, generator)  # warm-up
            times = []
            while len(times) < args.repeats or (sum(times) < args.min_seconds and len(times) < 20):
                sync()
                t0 = time.perf_counter()
                model.sample(ir, settings, generator)
                sync()
                times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else _peak_rss_mb() - rss0
        ms = statistics.median(times) * 1000 / args.batch
        nfe = model.network_evaluations(settings)
        rows.append(
            (
                label,
                sampler or "-",
                steps or "-",
                nfe,
                ms,
                ms / nfe,
                params,
                params * 4 / 2**20,
                peak,
                len(times),
            )
        )
    queue.put(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--size", type=int, default=256, help="field side, pixels")
    parser.add_argument("--batch", type=int, default=1, help="fields per call (time is per field)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (at least)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="keep repeating until this much time")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--only", nargs="*", help="family labels to run (e.g. unet 'flow residual')")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but no CUDA GPU is available here")
    where = (
        torch.cuda.get_device_name(0)
        if args.device.startswith("cuda")
        else (f"CPU, {args.threads or torch.get_num_threads()} threads")
    )
    print(
        f"qpe model sampling cost: {args.size}x{args.size} fields, T=4 x C=7 inputs, demo architecture, "
        f"batch {args.batch}, {where}, torch {torch.__version__}"
    )
    memory = "peak MiB (CUDA alloc)" if args.device.startswith("cuda") else "peak RSS +MiB"
    header = (
        f"{'family':<18} {'sampler':<7} {'K':>3} {'NFE':>4} {'ms/sample':>10} {'ms/NFE':>8} "
        f"{'params':>9} {'weights MiB':>11} {memory:>21} {'runs':>4}"
    )
    print(header)
    print("-" * len(header))
    ctx = mp.get_context("spawn")
    for case in CASES:
        if args.only and case[0] not in args.only:
            continue
        queue = ctx.Queue()
        proc = ctx.Process(target=run_family, args=(case, args, queue))
        proc.start()
        rows = queue.get()
        proc.join()
        for label, sampler, k, nfe, ms, ms_nfe, params, mib, peak, runs in rows:
            print(
                f"{label:<18} {sampler:<7} {k!s:>3} {nfe:>4} {ms:>10.1f} {ms_nfe:>8.1f} {params:>9,d} "
                f"{mib:>11.2f} {peak:>21.0f} {runs:>4}",
                flush=True,
            )


if __name__ == "__main__":
    main()
