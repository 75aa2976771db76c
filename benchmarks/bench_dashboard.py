"""Dashboard speed: a date switch with cached estimates, fresh estimates, bytes sent for the full OPERA grid.

    python benchmarks/bench_dashboard.py                  # all three parts (a few minutes on 2 cores)
    python benchmarks/bench_dashboard.py --skip-browser   # without the bytes-on-the-wire part

1. **Fresh estimates** — each demo checkpoint of ``models/demo`` estimates two cases of the demo data
   (two dates) from empty caches (memory and disk), with the dashboard's defaults (4 members, the card's
   sampler steps), through the dashboard's estimate service (``qpe.inference.engine.estimate``).
2. **Date switch, cached estimates** — a session of the app (``dashboard.app.build_app``) is rendered
   into a Bokeh document exactly as ``panel serve`` does, showing those models (and model − radar). The
   shown time then jumps between the two cases and the server-side time of each switch is measured:
   every callback (map products, datashader regridding of every map, Bokeh model updates; on the
   Scores tab ``qpe.verify`` of each model and the figures). Printed: median and worst of 8 switches.
3. **Bytes sent to the browser for the full OPERA grid** — a paired dataset on the full OPERA domain
   (2200 x 1900 pixels of 2 km, random rain with a power-law spectrum) and a small U-Net are served by a
   real ``panel serve``; Debian's Chromium (Playwright) opens the map grid (IR, radar, model, model −
   radar) and the bytes of every HTTP response and WebSocket frame are counted: the first view, a time
   step, and a zoom. For scale: one map at full resolution as float32 is 16.7 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def _demo_models() -> tuple[Path, list[str]]:
    from dashboard.checkpoints import CheckpointRegistry

    root = REPO / "models" / "demo"
    registry = CheckpointRegistry(root)
    usable = []
    for key in registry.keys:
        try:
            registry.load(key)
            usable.append(key)
        except Exception as err:  # noqa: BLE001 - reported and left out of the benchmark
            print(f"  {key}: does not load ({err}); left out")
    return root, usable


# -- 1. fresh estimates, 2. date switches between the cached cases ------------------------------------------
CASES = (pd.Timestamp("2021-06-01T12:00"), pd.Timestamp("2021-06-02T12:00"))


def bench_fresh_then_switch(cache_dir: Path, models_root: Path, models: list[str], switches: int = 8) -> None:
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from dashboard.app import build_app
    from dashboard.estimates import MEMORY
    from dashboard.session import DashboardSettings

    app = build_app(DashboardSettings("demo", models_root, cache_dir))
    session = app.session
    print("1. fresh estimate of the demo models (empty memory and disk cache, 4 members, card steps)")
    if not models:
        print("  skipped: models/demo holds no checkpoint yet")
    for when in CASES:
        total = 0.0
        for model in models:
            MEMORY.clear()
            start = time.perf_counter()
            field = session.estimates.field(model, when, session.estimate_settings())
            seconds = time.perf_counter() - start
            total += seconds
            nfe = session.registry.load(model).network_evaluations()
            print(f"  {when:%Y-%m-%d %H:%M} {model:14s} {session.registry[model].card.family:5s} "
                  f"{field.sizes['member']} member(s) x {nfe:3d} network evaluations on "
                  f"{field.sizes['y']} x {field.sizes['x']}: {seconds:6.2f} s")
        if models:
            print(f"  {when:%Y-%m-%d %H:%M} all {len(models)} model(s): {total:.2f} s")
    for when in CASES:  # back in memory, as after the user's first visit of each case
        for model in models:
            session.estimates.field(model, when, session.estimate_settings())
    print("2. date switch with cached estimates (server time, session rendered as panel serve does)")
    session.state.param.update(models=list(models), time=CASES[0].strftime("%Y-%m-%dT%H:%M"), difference=True)
    doc = Document()
    app.server_doc(doc)
    maps = 2 + 2 * len(models)
    for tab in ("maps", "scores"):
        session.state.tab = tab
        seconds = []
        for i in range(switches + 1):
            t0 = time.perf_counter()
            with set_curdoc(doc):  # as in a server callback
                session.state.time = CASES[(i + 1) % 2].strftime("%Y-%m-%dT%H:%M")
            if i:  # the first switch on a tab also builds it
                seconds.append(time.perf_counter() - t0)
        what = f"{maps} maps" if tab == "maps" else f"table + figures of {len(models)} model(s)"
        print(f"  {tab:6s} tab ({what}): date switch median {statistics.median(seconds) * 1000:5.0f} ms, "
              f"worst {max(seconds) * 1000:5.0f} ms ({switches} switches)")


# -- 3. bytes for the full OPERA grid -----------------------------------------------------------------------
def full_opera_dataset(path: Path) -> Path:
    """Random rain (power-law spectrum) and IR consistent with it on the full OPERA grid, 3 times."""
    from qpe.data.grid import REGIONS
    from qpe.data.paired import make_paired_dataset, save_paired
    from qpe.verify.testing import random_rain_fields

    grid = REGIONS["europe"].grid()
    _, rain = random_rain_fields(shape=grid.shape, times=3, seed=1, dtype="float32")
    rain = rain.values
    rng = np.random.default_rng(2)
    cold = np.log1p(rain)
    ir108 = 285.0 - 25.0 * cold + rng.normal(0, 1.0, rain.shape)
    wv062 = 238.0 - 6.0 * cold + rng.normal(0, 0.5, rain.shape)
    ir = np.stack([wv062, ir108], axis=1).astype("float32")
    yy, xx = np.mgrid[0:grid.ny, 0:grid.nx]
    rain[:, (yy - grid.ny) ** 2 + xx**2 < (0.4 * grid.ny) ** 2] = np.nan  # no radar in the south-west
    times = pd.date_range("2021-06-01T12:00", periods=3, freq="15min")
    ds = make_paired_dataset(grid, times, ir=ir, channels=["WV_062", "IR_108"], rain=rain)
    return save_paired(ds, path)


def small_unet(directory: Path) -> Path:
    """An untrained small U-Net on (WV_062, IR_108) x 2 frames (its weights do not matter for bytes)."""
    import torch

    from qpe.data.normalization import IRNormalization
    from qpe.models import InputSpec, ModelCard, UNetConfig, build_model, save_checkpoint

    torch.manual_seed(0)
    card = ModelCard("unet", "unet", InputSpec(["WV_062", "IR_108"], 2),
                     IRNormalization(("WV_062", "IR_108"), (236.0, 280.0), (5.0, 20.0)),
                     architecture=UNetConfig(base_channels=8, channel_mults=(1, 2), groups=4))
    return save_checkpoint(build_model(card), card, directory / "unet")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def panel_server(data: Path, models: Path, cache: Path):
    port = _free_port()
    env = {**os.environ, "QPE_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    log = open(cache.parent / "panel.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "dashboard/app.py", "--port", str(port), "--address",
         "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}", "--args", "--data", str(data),
         "--models", str(models), "--cache-dir", str(cache)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/app"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(url, timeout=10):
                    break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def bench_bytes(workdir: Path) -> None:
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    data = full_opera_dataset(workdir / "opera_full.zarr")
    models = workdir / "models"
    small_unet(models)
    print(f"  full OPERA grid dataset (2200 x 1900, 2 channels, 3 times) written in "
          f"{time.perf_counter() - start:.0f} s")
    counts = {"http": 0, "ws": 0}
    with panel_server(data, models, workdir / "cache") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.set_default_timeout(600_000)

        def on_response(response) -> None:
            with contextlib.suppress(Exception):
                counts["http"] += len(response.body())

        def on_websocket(ws) -> None:
            ws.on("framereceived", lambda payload: counts.__setitem__(
                "ws", counts["ws"] + len(payload if isinstance(payload, (bytes, str)) else b"")))

        page.on("response", on_response)
        page.on("websocket", on_websocket)

        def settle(text: str) -> float:
            t0 = time.perf_counter()
            page.locator(".qpe-map-status", has_text=text).first.wait_for()
            last = -1
            while last != counts["ws"]:  # until nothing more arrives for 2 s
                last = counts["ws"]
                page.wait_for_timeout(2000)
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        page.goto(url + '?time=2021-06-01T12:15&models=["unet"]&diff=true')
        settle("unet − radar")
        first_http, first_ws = counts["http"], counts["ws"]
        print(f"  first view, 4 maps (IR, radar, unet, unet − radar; estimate included) in "
              f"{time.perf_counter() - t0:.0f} s: HTTP {first_http / 1e6:.2f} MB (page, JS and CSS bundles), "
              f"WebSocket {first_ws / 1e6:.2f} MB (document and the 4 rasterised maps)")
        page.get_by_role("button", name="15 min ▶").click()
        settle("radar 2021-06-01T12:30")
        step_ws = counts["ws"] - first_ws
        print(f"  time step (new estimate included): WebSocket {step_ws / 1e6:.2f} MB for 4 maps "
              f"({step_ws / 4 / 1e3:.0f} kB per map)")
        canvas = [c for c in page.locator(".qpe-maps canvas").all() if c.bounding_box()["width"] > 100][2]
        box = canvas.bounding_box()
        before = counts["ws"]
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(5):
            page.mouse.wheel(0, -300)
            page.wait_for_timeout(300)
        page.wait_for_timeout(4000)
        print(f"  zoom in (5 wheel steps, all maps follow): WebSocket {(counts['ws'] - before) / 1e6:.2f} MB")
        raw = 2200 * 1900 * 4
        print(f"  for scale: one full-resolution float32 map is {raw / 1e6:.1f} MB, 4 maps "
              f"{4 * raw / 1e6:.1f} MB")
        (REPO / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=REPO / "test-artifacts" / "bench_dashboard_full_opera_grid.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-browser", action="store_true", help="leave out the bytes-on-the-wire part")
    args = parser.parse_args()
    import torch

    print(f"qpe dashboard benchmark — {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory(prefix="bench_dashboard_") as tmp:
        workdir = Path(tmp)
        models_root, models = _demo_models()
        missing = sorted({"unet", "ddpm", "flow_gaussian", "flow_residual"} - set(models))
        note = f" (not there yet: {', '.join(missing)})" if missing else ""
        print(f"demo checkpoints: {', '.join(models) or 'none'}{note}")
        bench_fresh_then_switch(workdir / "cache", models_root, models)
        print("3. bytes sent to the browser for the full OPERA grid view")
        if args.skip_browser:
            print("  skipped (--skip-browser)")
        elif not CHROMIUM.exists():
            print(f"  skipped: Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
        else:
            bench_bytes(workdir)


if __name__ == "__main__":
    main()
