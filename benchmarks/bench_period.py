"""The dashboard's Period tab: time to score one day of the demo models from cached estimates, and a second open.

    python benchmarks/bench_period.py                       # one UTC day of the four demo models
    python benchmarks/bench_period.py --hours 3             # a shorter period (a quick look)
    python benchmarks/bench_period.py --cache-dir /tmp/c    # another estimate cache
    python benchmarks/bench_period.py --steps 2             # fill the cache cheaply: sampler K = 2
    python benchmarks/bench_period.py --show unet ddpm      # only these models of the folder

The tab's time with cached estimates does not depend on the sampler steps K: each estimate is read from
the cache (one field per model and time, whatever K made it), so a small ``--steps`` fills the cache
cheaply and gives the same first-open and kept times as the cards' K would.

1. **Warm-up** — the period's estimates are made once (or read, when the estimate cache holds them
   already) through the tab's own computation (:func:`dashboard.period.compute_period`:
   ``accumulate_period`` and ``summarize_scores``, as ``qpe evaluate``); its time is printed but is not
   the tab's time.
2. **First open, cached models** — a session of the app's Period tab (:class:`dashboard.period.PeriodPanel`)
   scores the shown models over the period on the period thread (:func:`dashboard.period.period_job`),
   every estimate read from the on-disk cache, and shows it (table with intervals, score-card, series):
   the time a user waits after pressing "Score the period" when the maps were already estimated.
3. **Second open** — the same request again (another session, or the same one later): the kept result
   is shown. Printed: both times and their ratio.
4. **An evaluate folder** — the same scores written by :func:`qpe.evaluation.write_outputs` and opened
   in the tab (``scores.nc`` and ``statistics/``), for comparison.

Settings: the dashboard's defaults (4 members, each card's sampler steps unless ``--steps``, seed 0,
thresholds 0.1 1 5 10 mm/h, 1000 bootstrap resamples of days).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="demo", help="paired dataset or catalog name (default demo)")
    parser.add_argument("--models", default=str(REPO / "models" / "demo"), help="checkpoint folder")
    parser.add_argument("--day", default="2021-06-02", help="UTC day of the period (default 2021-06-02: all 96 times "
                        "have the past IR frames the models read; the data start on 2021-06-01)")
    parser.add_argument("--hours", type=float, default=24.0, help="hours of the period from 00:00 (default 24)")
    parser.add_argument("--cache-dir", default=None, help="estimate cache (default $QPE_CACHE_DIR or ~/.cache/qpe)")
    parser.add_argument("--show", nargs="+", default=None, metavar="MODEL",
                        help="models shown (keys under --models; default every one there)")
    parser.add_argument("--steps", type=int, default=0,
                        help="sampler steps K of the generative models (default 0: each card's); the tab's time "
                             "with cached estimates does not depend on it")
    args = parser.parse_args(argv)

    import holoviews as hv
    import torch

    from dashboard import period as tab
    from dashboard.session import DashboardSession, DashboardSettings
    from qpe.evaluation import write_outputs

    hv.extension("bokeh", logo=False)
    session = DashboardSession(DashboardSettings(args.data, Path(args.models),
                                                 Path(args.cache_dir) if args.cache_dir else None))
    session.state.models = args.show or session.registry.keys
    session.state.steps = args.steps
    day = pd.Timestamp(args.day)
    panel = tab.PeriodPanel(session, start=day.date(), end=day.date())
    end = day + pd.Timedelta(hours=args.hours) - pd.Timedelta(minutes=1)
    request = dataclasses.replace(panel.request(), end=f"{end:%Y-%m-%dT%H:%M}")
    cache = session.estimates.cache
    print(f"period tab: {', '.join(session.state.models)} on {session.data_path}, {request.start} .. {request.end} "
          f"UTC; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.get_num_threads()} "
          f"threads; estimate cache {cache.root if cache is not None else 'none'}")
    steps = args.steps or "each card's"
    print(f"sampling: {session.state.members} members, K = {steps}; the tab's times with cached "
          "estimates (2-4) do not depend on K: each estimate is read from the cache whatever K made it")

    start = time.perf_counter()
    warm = tab.compute_period(request, cache)
    print(f"1. warm-up (estimates made or read from the cache): {time.perf_counter() - start:.1f} s, "
          f"{warm.scores.attrs['n_times']} times x {len(session.state.models)} models")

    tab._RESULTS.clear()  # the tab has kept nothing yet: the first open computes from cached estimates
    start = time.perf_counter()
    job = tab.period_job(request, cache)
    first = job.future.result()
    panel.show(first)
    first_s = time.perf_counter() - start
    print(f"2. first open, cached estimates: {first_s:.2f} s ({job.progress.total} estimates read)")

    start = time.perf_counter()
    again = tab.period_job(request, cache).future.result()
    panel.show(again)
    second_s = time.perf_counter() - start
    assert again is first
    print(f"3. second open (kept result): {second_s:.3f} s — {first_s / second_s:.0f}x faster than the first")

    with tempfile.TemporaryDirectory() as folder:
        write_outputs(first.scores, folder, accumulators=first.accumulators)
        start = time.perf_counter()
        panel.folder = folder
        panel.open_folder()
        print(f"4. an evaluate folder of the same scores opened and shown: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
