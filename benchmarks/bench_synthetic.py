"""Throughput of the synthetic benchmark generator: frames per second, all seven SEVIRI channels.

Run: ``python benchmarks/bench_synthetic.py [--repeat N]``. Prints, for 128² and 256² grids:

- ``generate_paired``: steady-state frames/s of the full generator (rain, clouds, IR forward model,
  parallax, noise), from the difference between a 6 h and a 12 h run (setup excluded), and the
  end-to-end rate of a 6 h run (setup included);
- ``simulate_rain``: frames/s of the rain model alone;
- ``ir_from_rain``: frames/s of the semi-synthetic IR for a given rain sequence.
"""

from __future__ import annotations

import argparse
import os
import time

from qpe.data.synthetic import SynthConfig, generate_paired, ir_from_rain, simulate_rain


def _best(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement, the best is kept")
    args = parser.parse_args()
    generate_paired(SynthConfig(hours=0.5, size=32))  # warm-up (imports, FFT plans)
    print(f"synthetic generator, 7 channels, {os.cpu_count()} CPU cores, best of {args.repeat}")
    for size in (128, 256):
        six = _best(lambda: generate_paired(SynthConfig(hours=6, size=size, seed=1)), args.repeat)
        twelve = _best(lambda: generate_paired(SynthConfig(hours=12, size=size, seed=1)), args.repeat)
        rain_only = _best(lambda: simulate_rain(SynthConfig(hours=6, size=size, seed=1)), args.repeat)
        rain = simulate_rain(SynthConfig(hours=3, size=size, seed=1))
        semi = _best(lambda: ir_from_rain(rain), args.repeat)
        print(
            f"{size:4d}²  generate_paired {24 / (twelve - six):6.1f} frames/s steady "
            f"({24 / six:5.1f} end to end, 6 h)   simulate_rain {24 / rain_only:6.1f} frames/s   "
            f"ir_from_rain {rain.sizes['time'] / semi:6.1f} frames/s"
        )


if __name__ == "__main__":
    main()
