"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against a real ``panel serve``.

The server runs ``panel serve dashboard/app.py`` on a free port with a small dataset and tiny
checkpoints made here (see tests/dashboard_testing.py) and its own estimate cache. The tests click
what a user clicks and check what a user sees; the numbers in the score table and the CSV are
compared with :func:`qpe.verify.verify` run here on estimates computed here. Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import numpy as np
import pandas as pd
import pytest
from browser_testing import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    require_chromium,
    served_dashboard,
)
from dashboard_testing import make_checkpoints, make_dataset
from PIL import Image

from dashboard.ensemble import stamp_layout
from dashboard.scores import TEXT_COLUMNS
from qpe.data.paired import open_paired
from qpe.inference.engine import EstimateConfig, estimate
from qpe.models import load
from qpe.verify import scores_to_frame, verify

pytestmark = pytest.mark.browser

MODELS = ("ddpm", "flow_residual")
TIME = "2021-06-01T23:45"


@dataclass(frozen=True)
class Served:
    url: str
    data: Path
    models: Path
    log: Path



@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``panel serve dashboard/app.py`` on a small dataset and tiny checkpoints."""
    require_chromium()
    root = tmp_path_factory.mktemp("served")
    data = make_dataset(root / "data.zarr")
    models = make_checkpoints(root / "models", data)
    with served_dashboard(root, data, models) as (url, log):
        yield Served(url, data, models, log)


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("dashboard_*"):  # screenshots of this run only
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# -- helpers ------------------------------------------------------------------------------------------------
def link(served: Served, **query) -> str:
    parts = [f"{k}={quote(v if isinstance(v, str) else json.dumps(v))}" for k, v in query.items()]
    return served.url + ("?" + "&".join(parts) if parts else "")


def open_page(browser, url: str, wait: bool = True):
    context = browser.new_context(viewport={"width": 1600, "height": 1300}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="commit" if not wait else "load")
    if wait:
        page.wait_for_selector("canvas")
    return page


def href(page) -> str:
    return page.evaluate("window.location.href")


def query_of(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(href(page)).query).items()}


_DEEP_TEXT = """el => {
    const skip = new Set(["STYLE", "SCRIPT", "LINK"]);
    const walk = n => skip.has(n.nodeName) ? "" : (n.shadowRoot ? walk(n.shadowRoot) : "") + Array.from(
        n.childNodes).map(c => c.nodeType === Node.TEXT_NODE ? c.textContent : walk(c)).join("");
    return walk(el);
}"""


def deep_text(locator) -> str:
    """The text of an element including its shadow DOM (where Bokeh renders widgets and panes)."""
    return " ".join(locator.evaluate(_DEEP_TEXT).split())


def wait_for_text(page, selector: str | None, text: str) -> str:
    """Wait until an element (matching ``selector``, or any) shows ``text``; returns its whole text."""
    locator = (page.get_by_text(text) if selector is None else page.locator(selector, has_text=text)).first
    try:
        locator.wait_for()
    except Exception:  # keep what the page showed instead, for the report
        page.screenshot(path=ARTIFACTS / f"dashboard_failed_waiting_{re.sub(r'[^a-z0-9]+', '_', text.lower())}.png")
        raise
    return deep_text(locator)


def choose(page, label: str, option: str) -> None:
    """Add ``option`` to the multiple choice labelled ``label`` the way a user does: open it, click."""
    group = page.locator(".bk-input-group", has_text=label)
    group.locator("input[type=search]").click()
    group.locator(".choices__list--dropdown .choices__item--choice", has_text=option).first.click()
    page.keyboard.press("Escape")


def wait_for_maps(page, *headings: str) -> None:
    """Wait until the map grid shows these headings (its status line) and has redrawn."""
    for heading in headings:
        wait_for_text(page, ".qpe-map-status", heading)
    page.wait_for_timeout(800)


def map_images(page) -> list[np.ndarray]:
    """The pixels of each map of the grid (one canvas per figure, in grid order)."""
    boxes, images = [], []
    for canvas in page.locator(".qpe-maps canvas").all():
        box = canvas.bounding_box()
        key = (round(box["x"]), round(box["y"]))
        if key in boxes or box["width"] < 100:
            continue
        boxes.append(key)
        images.append(np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")))
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    return [images[i] for i in order]


def wait_for_images(page, count: int) -> list[np.ndarray]:
    """The map images once ``count`` maps are drawn (a grid built anew renders after its status line)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        images = map_images(page)
        if len(images) >= count or time.monotonic() > deadline:
            assert len(images) == count, f"{len(images)} maps drawn, expected {count}"
            page.wait_for_timeout(500)
            return map_images(page)
        page.wait_for_timeout(300)


def stamp_images(page, count: int) -> list[np.ndarray]:
    """The postage stamps of the Ensemble tab once ``count`` are drawn, in reading order (one canvas each)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        stamps = {}  # one canvas per figure, by its place on the page
        for canvas in page.locator(".qpe-stamps canvas").all():
            box = canvas.bounding_box()
            if box is not None and box["width"] >= 100:
                stamps.setdefault((round(box["y"]), round(box["x"])), canvas)
        if len(stamps) >= count or time.monotonic() > deadline:
            assert len(stamps) == count, f"{len(stamps)} postage stamps drawn, expected {count}"
            break
        page.wait_for_timeout(300)
    page.wait_for_timeout(500)
    rows, columns = stamp_layout(count)
    assert len({y for y, _ in stamps}) == rows and len({x for _, x in stamps}) == columns, "rows and columns"
    return [np.asarray(Image.open(io.BytesIO(stamps[key].screenshot())).convert("RGB")) for key in sorted(stamps)]


def coloured_pixels(image: np.ndarray) -> int:
    """Pixels that are neither white, nor grey/black (axes, text, no-data): the colours of a field."""
    rgb = image.astype(int)
    saturation = rgb.max(axis=2) - rgb.min(axis=2)
    return int((saturation > 40).sum())


def read_table(page) -> dict[tuple[str, str], float]:
    """The score table's numbers as {(row label, model or radar): value}; blank cells are NaN (the unit,
    better and definition columns are left out; 61,600 reads 61600)."""
    table = page.locator("table.panel-df").first
    table.wait_for()
    rows = table.evaluate(
        "t => Array.from(t.querySelectorAll('tr')).map(r => Array.from(r.children).map(c => c.innerText.trim()))")
    header = next(r for r in rows if len(r) > 1 and r[0] == "")
    out = {}
    for row in rows:
        if row is header or len(row) != len(header) or row[0] in ("", "score"):
            continue
        for column, cell in zip(header[1:], row[1:]):
            if column not in TEXT_COLUMNS:
                out[(row[0], column)] = float(cell.replace(",", "")) if cell else np.nan
    return out


@functools.cache
def library_estimate(models: Path, data: Path, model: str, time_: str):
    """(member, y, x) estimate computed here with the library (no cache, no dashboard)."""
    out = estimate(load(models / model), open_paired(data), [time_], EstimateConfig(members=4), progress=False)
    return out["rain"].isel(time=0)


def wait_for_table(page, ready) -> dict[tuple[str, str], float]:
    """Read the score table until ``ready(table)`` (its cells update after the header)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        table = read_table(page)
        if ready(table) or time.monotonic() > deadline:
            return table
        page.wait_for_timeout(300)


def expected_scores(served: Served, time_: str, thresholds=(0.1, 1.0, 5.0, 10.0), region=None) -> pd.DataFrame:
    """What qpe.verify says for the case, on estimates computed here."""
    radar = open_paired(served.data)["rain"].sel(time=pd.Timestamp(time_))
    frames = []
    for model in MODELS:
        rain = library_estimate(served.models, served.data, model, time_)
        scores = verify(rain, radar, thresholds=list(thresholds), region=region, model=model)
        frames.append(scores_to_frame(scores))
    return pd.concat(frames, ignore_index=True)


def lookup(frame: pd.DataFrame, model: str, metric: str, threshold: float | None = None) -> float:
    rows = frame[(frame.model == model) & (frame.metric == metric)]
    rows = rows[rows.threshold.isna()] if threshold is None else rows[rows.threshold == threshold]
    return float(rows.value.iloc[0])


def assert_table_matches(table: dict, frame: pd.DataFrame, thresholds) -> int:
    """Every model cell of the table equals qpe.verify to the 4 digits shown; returns the cells checked."""
    labels = {"POD": "POD", "FAR": "FAR", "CSI": "CSI", "ETS": "ETS", "HSS": "HSS", "BIAS": "BIAS"}
    checked = 0
    for model in MODELS:
        for metric, label in labels.items():
            for threshold in thresholds:
                cell = table.get((f"{label} ≥ {threshold:g} mm/h", model))
                if cell is None:  # the row is left out when no model has a value
                    assert np.isnan(lookup(frame, model, metric, threshold)), (metric, threshold)
                    continue
                np.testing.assert_allclose(cell, lookup(frame, model, metric, threshold), rtol=6e-4, atol=1e-9,
                                           equal_nan=True, err_msg=f"{model} {metric} {threshold}")
                checked += 1
        for metric in ("ME", "RMSE", "CORR", "CRPS", "n_valid"):
            np.testing.assert_allclose(table[(metric, model)], lookup(frame, model, metric), rtol=6e-4,
                                       err_msg=f"{model} {metric}")
            checked += 1
    return checked


# -- tests ----------------------------------------------------------------------------------------------------
def test_load_pick_a_date_and_two_models(served, browser):
    page = open_page(browser, served.url)
    assert "qpe" in page.title()
    wait_for_maps(page, "radar ")
    page.screenshot(path=ARTIFACTS / "dashboard_01_loaded.png")
    # the calendar: open it and pick 1 June (the data span 1 and 2 June)
    page.locator(".bk-input-group", has_text="Date (UTC)").locator("input:not([type=hidden])").first.click()
    page.locator('.flatpickr-day[aria-label="June 1, 2021"]').first.click()
    page.locator(".bk-input-group", has_text="Time (UTC)").locator("select").select_option("23:45")
    for model in MODELS:
        choose(page, "Models", model)
    wait_for_maps(page, f"radar {TIME}", "ddpm mean of 4", "flow_residual mean of 4")
    images = map_images(page)
    assert len(images) == 4  # IR, radar, two models
    assert len(np.unique(images[0].reshape(-1, 3), axis=0)) > 40, "the IR map is blank"
    for name, image in zip(("radar", "ddpm", "flow_residual"), images[1:]):
        assert coloured_pixels(image) > 100, f"the {name} map shows no rain"
    query = query_of(page)
    assert query["time"] == TIME and json.loads(query["models"].replace("'", '"')) in (list(MODELS),
                                                                                      list(MODELS)[::-1])
    page.screenshot(path=ARTIFACTS / "dashboard_02_two_models.png")
    page.context.close()


def test_scores_thresholds_region_and_exports(served, browser):
    """The score table equals qpe.verify; more thresholds; a box drawn on a map, then none; CSV and PNG."""
    page = open_page(browser, link(served, time=TIME, models=list(MODELS), tab="scores"))
    wait_for_text(page, None, f"Scores at {TIME} UTC — region: whole grid")
    table = wait_for_table(page, lambda t: all(("POD ≥ 0.1 mm/h", m) in t for m in MODELS))  # both estimated
    whole = expected_scores(served, TIME)
    assert assert_table_matches(table, whole, (0.1, 1.0, 5.0, 10.0)) >= 20
    page.screenshot(path=ARTIFACTS / "dashboard_03_scores.png")
    # a threshold more: 2 mm/h
    choose(page, "Score thresholds", "2 mm/h")
    table = wait_for_table(page, lambda t: ("POD ≥ 2 mm/h", "ddpm") in t)
    frame = expected_scores(served, TIME, thresholds=(0.1, 1.0, 2.0, 5.0, 10.0))
    assert assert_table_matches(table, frame, (2.0,)) >= 2
    assert json.loads(query_of(page)["thresholds"]) == [0.1, 1.0, 5.0, 10.0, 2.0]
    # a box drawn with the box-select tool on the radar map
    page.locator(".bk-tab", has_text="Maps").click()
    wait_for_maps(page, "ddpm mean of 4", "flow_residual mean of 4")
    page.locator(".qpe-maps .bk-tool-icon-box-select").nth(1).click()  # the radar map's own toolbar
    radar = by_title(map_figures(page, 4), "radar")
    x0, y0, x1, y1 = radar["frame"]
    box = {"x": radar["left"] + x0, "y": radar["top"] + y0, "width": x1 - x0, "height": y1 - y0}
    page.mouse.move(box["x"] + 0.03 * box["width"], box["y"] + 0.2 * box["height"])  # over the western rain
    page.mouse.down()
    page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.7 * box["height"], steps=8)
    page.mouse.up()
    page.wait_for_function("() => /region=%5B[-0-9]/.test(window.location.href)")
    region = None
    while region != (region := json.loads(query_of(page)["region"])):  # until the last drag event is in
        page.wait_for_timeout(700)
    region = [float(v) for v in region]
    assert region[0] < region[2] and region[1] < region[3]
    page.wait_for_timeout(800)
    page.screenshot(path=ARTIFACTS / "dashboard_04_region_box.png")
    page.locator(".bk-tab", has_text="Scores").click()
    wait_for_text(page, None, "region: x ")
    table = wait_for_table(page, lambda t: t[("n_valid", "ddpm")] < lookup(whole, "ddpm", "n_valid"))
    inside = expected_scores(served, TIME, thresholds=(0.1, 1.0, 2.0, 5.0, 10.0), region=tuple(region))
    assert assert_table_matches(table, inside, (0.1, 1.0, 2.0)) >= 10
    assert table[("n_valid", "ddpm")] < lookup(whole, "ddpm", "n_valid")
    page.screenshot(path=ARTIFACTS / "dashboard_05_region_scores.png")
    # the CSV holds the region's scores at full precision
    with page.expect_download() as info:
        page.locator(".bk-btn", has_text="Scores CSV").click()
    path = ARTIFACTS / "dashboard_scores.csv"
    info.value.save_as(path)
    csv = pd.read_csv(path)
    assert (csv.time == TIME).all() and set(csv.model) == {*MODELS, "radar"}
    assert [float(v) for v in csv.region.iloc[0].split()] == pytest.approx(region, abs=1)
    merged = csv.merge(inside, on=["model", "metric", "threshold", "scale"], suffixes=("", "_verify"))
    assert len(merged) == len(inside)
    np.testing.assert_allclose(merged.value, merged.value_verify, rtol=1e-4, atol=1e-9, equal_nan=True)
    # the PNG of the map grid
    with page.expect_download() as info:
        page.locator(".bk-btn", has_text="Maps PNG").click()
    path = ARTIFACTS / "dashboard_maps_export.png"
    info.value.save_as(path)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 300 and coloured_pixels(image) > 1000
    # no region again
    page.get_by_role("button", name="Score the whole grid").click()
    wait_for_text(page, None, "region: whole grid")
    page.wait_for_function("() => /region=%5B%5D/.test(window.location.href)")
    table = wait_for_table(page, lambda t: t[("n_valid", "ddpm")] == lookup(whole, "ddpm", "n_valid"))
    assert table[("n_valid", "ddpm")] == lookup(whole, "ddpm", "n_valid")
    page.context.close()


def test_reload_from_the_shared_url_restores_the_case(served, browser):
    page = open_page(browser, link(served, time=TIME, models=list(MODELS)))
    wait_for_maps(page, "ddpm mean of 4")
    page.locator(".bk-btn", has_text="probability").click()
    page.locator(".bk-input-group", has_text="Exceedance / FSS threshold").locator("select").select_option(
        label="0.5 mm/h")
    page.locator(".bk-input-group", has_text="IR channel").locator("select").select_option("WV_062")
    wait_for_maps(page, "ddpm P(≥ 0.5 mm/h)", f"WV_062 {TIME}")
    # zoom in on the radar map's western rain with the mouse wheel: the extent goes into the link
    radar = by_title(map_figures(page, 4), "radar")
    x0, y0, x1, y1 = radar["frame"]
    page.mouse.move(radar["left"] + 0.8 * x0 + 0.2 * x1, radar["top"] + 0.55 * y0 + 0.45 * y1)
    page.mouse.wheel(0, -200)
    page.wait_for_function("() => /zoom=%5B[-0-9]/.test(window.location.href)")
    zoom = None
    while zoom != (zoom := json.loads(query_of(page)["zoom"])):  # until the last wheel event is in
        page.wait_for_timeout(700)
    zoomed = by_title(map_figures(page, 4), "radar")
    assert zoomed["x"] == pytest.approx([zoom[0], zoom[2]], abs=1) and zoomed["y"] == pytest.approx([zoom[1], zoom[3]], abs=1)
    assert zoom[2] - zoom[0] < 0.9 * (radar["x"][1] - radar["x"][0]), "the wheel zoomed in"
    shared = href(page)
    status = deep_text(page.locator(".qpe-map-status").first)
    page.context.close()

    again = open_page(browser, shared)
    wait_for_maps(again, "ddpm P(≥ 0.5 mm/h)", "flow_residual P(≥ 0.5 mm/h)")
    assert deep_text(again.locator(".qpe-map-status").first) == status and "P(≥ 0.5 mm/h)" in status
    assert query_of(again) == {k: v[0] for k, v in parse_qs(urlparse(shared).query).items()}
    assert again.locator(".bk-input-group", has_text="Date (UTC)").locator("input[type=hidden]").first.input_value() \
        == "2021-06-01"
    assert again.locator(".bk-input-group", has_text="Time (UTC)").locator("select").input_value() == "23:45"
    assert again.locator(".bk-input-group", has_text="IR channel").locator("select").input_value() == "WV_062"
    chips = again.locator(".bk-input-group", has_text="Models").locator(".choices__list--multiple .choices__item")
    assert sorted(c.get_attribute("data-value") for c in chips.all()) == sorted(MODELS)
    images = map_images(again)
    assert coloured_pixels(images[2]) > 100, "the probability map is blank"
    for restored in map_figures(again, 4):  # every map opens at the link's zoom (linked axes)
        assert restored["x"] == pytest.approx([zoom[0], zoom[2]], abs=1), restored["title"]
        assert restored["y"] == pytest.approx([zoom[1], zoom[3]], abs=1), restored["title"]
    again.screenshot(path=ARTIFACTS / "dashboard_06_restored_from_link.png")
    # the ensemble browser of the restored case: step through the members next to radar and spread
    again.locator(".bk-tab", has_text="Ensemble").click()
    wait_for_maps(again, "ddpm member 0 of 4", "ddpm spread (std of 4)")
    first = wait_for_images(again, 3)
    again.get_by_role("button", name="member ▶").click()
    wait_for_maps(again, "ddpm member 1 of 4")
    second = wait_for_images(again, 3)
    assert query_of(again)["member"] == "1"
    assert coloured_pixels(second[1]) > 100 and coloured_pixels(second[2]) > 100, "member or spread map blank"
    assert not np.array_equal(first[1], second[1]), "the member map must change with the member"
    assert coloured_pixels(second[0]) > 100, "the radar map beside the members is blank"
    again.screenshot(path=ARTIFACTS / "dashboard_07_ensemble.png")
    # the postage stamps below: radar, the mean and the 4 members, each drawn (3 columns x 2 rows)
    wait_for_text(again, ".qpe-stamp-status", "member 3")
    stamps = stamp_images(again, 6)
    assert all(coloured_pixels(image) > 100 for image in stamps), "a postage stamp is blank"
    assert not np.array_equal(stamps[2], stamps[3]), "member 0 and member 1 look the same"
    again.locator(".qpe-stamps").first.screenshot(path=ARTIFACTS / "dashboard_08_postage_stamps.png")
    again.context.close()


def test_problems_are_shown_and_the_rest_keeps_working(served, browser):
    page = open_page(browser, link(served, time="2021-07-01T00:00", models=["ddpm", "broken", "needs_ir134"]))
    messages = ".qpe-message"
    assert "No data on 2021-07-01" in wait_for_text(page, messages, "No data on")
    assert "SHA-256" in wait_for_text(page, messages, "Checkpoint broken failed to load")
    text = wait_for_text(page, messages, "Estimate of needs_ir134")
    assert "needs IR channel(s) IR_134" in text
    assert "not a qpe model card" in wait_for_text(page, None, "not a qpe model card")
    wait_for_maps(page, "ddpm mean of 4", "broken — failed")
    assert coloured_pixels(map_images(page)[2]) > 100, "the working model must still be drawn"
    page.screenshot(path=ARTIFACTS / "dashboard_08_messages.png")
    page.context.close()


def test_input_frames_tab_shows_the_change_maps_and_the_library_scores(served, browser):
    """Input frames: press the button; the change map is drawn and the table holds qpe.inference.frames' scores."""
    from qpe.inference.frames import frame_contributions, frame_score_table

    page = open_page(browser, link(served, time=TIME, models=["flow_residual"], tab="frames"))
    page.get_by_role("button", name="Replace past frames").click()
    wait_for_text(page, None, f"flow_residual at {TIME}: T = 2, 4 member(s)")
    wait_for_maps(page, "change: frame 1 (t − 15 min) → frame 2")
    table = read_table(page)
    expected = frame_score_table(frame_contributions(load(served.models / "flow_residual"), open_paired(served.data),
                                                     [TIME], EstimateConfig(members=4)))
    for variant in ("full", "frame_1", "all_past"):
        for column in ("RMSE (mm/h)", "CSI ≥ 1 mm/h", "ΔFSS"):
            assert table[(variant, column)] == pytest.approx(expected.loc[variant, column], rel=1e-3, abs=1e-4)
    images = wait_for_images(page, 4)  # radar, full input, frame 1 replaced, all past frames replaced
    assert coloured_pixels(images[1]) > 100, "the full-input estimate must be drawn"
    page.screenshot(path=ARTIFACTS / "dashboard_10_input_frames.png")
    page.context.close()

def test_five_sessions_at_once(served, browser):
    times = ["2021-06-01T23:00", "2021-06-01T23:15", "2021-06-01T23:30", "2021-06-02T00:15", "2021-06-02T00:30"]
    pages = [open_page(browser, link(served, time=t, models=["ddpm"]), wait=False) for t in times]
    for i, (page, time_) in enumerate(zip(pages, times)):
        page.wait_for_selector("canvas")
        wait_for_maps(page, f"radar {time_}", "ddpm mean of 4")
        images = map_images(page)
        assert len(images) == 3 and coloured_pixels(images[2]) > 100, f"session {i} shows no estimate"
        assert query_of(page)["time"] == time_
        page.screenshot(path=ARTIFACTS / f"dashboard_09_session_{i + 1}.png")
    for page in pages:
        page.context.close()
    log = served.log.read_text()
    assert not re.search(r"^(?!.*WebSocket).*Error running application handler", log, re.MULTILINE), log[-3000:]


# -- the scores tab for review meetings ---------------------------------------------------------------------
#: Each score figure of the page: its title, plot frame and legend boxes (canvas px), the colour of each
#: legend entry, and the figure's place on the page (client px). Bokeh draws in shadow roots: the boxes
#: come from its views (Bokeh.index), the page places from the plots' elements.
_SCORE_FIGURES = """() => {
    const kind = m => m.type ?? m.constructor.__qualified__ ?? m.constructor.__name__;
    const box = b => [b.x0 ?? b.left, b.y0 ?? b.top, b.x1 ?? b.right, b.y1 ?? b.bottom];
    const out = [];
    for (const view of Bokeh.index.all_views()) {
        if (kind(view.model) !== "Legend" || !view.model.items.length) continue;
        const plot = view.parent, page = plot.el.getBoundingClientRect();
        const colours = {};
        for (const item of view.model.items) {
            const glyph = item.renderers[0].glyph;
            const colour = glyph.fill_color ?? glyph.line_color;
            colours[item.label.value] = typeof colour === "string" ? colour : colour?.value;
        }
        out.push({title: plot.model.title?.text ?? "", frame: box(plot.frame.bbox), legend: box(view.bbox),
                  colours, left: page.left, right: page.right, top: page.top});
    }
    return out;
}"""


def score_figures_shown(page, models: int) -> list[dict]:
    """The score figures once each lists ``models`` models (and their legends are laid out)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        figures = [f for f in page.evaluate(_SCORE_FIGURES) if f["title"].startswith(("performance", "FSS", "quantile",
                                                                                       "exceedance", "histogram",
                                                                                       "power", "rank", "reliability"))]
        counts = [len([m for m in f["colours"] if m not in ("radar", "radar (1:1)", "perfect")]) for f in figures]
        if (figures and min(counts) >= models) or time.monotonic() > deadline:
            return figures
        page.wait_for_timeout(300)


def test_scores_tab_for_meetings_colours_legends_layout(served, browser):
    """Figures before the table and within the window at 1280x800 and 1920x1080; each legend beside its plot
    frame, not over the data; a model keeps its colour (qpe.colours) with two models and with three; counts
    as whole numbers."""
    from qpe.colours import RADAR_COLOUR, model_colour

    page = open_page(browser, link(served, time=TIME, models=list(MODELS), tab="scores", thresholds=[0.1, 1.0, 5.0]))
    colours_seen = []
    for width, height in ((1280, 800), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        wait_for_text(page, None, f"Scores at {TIME} UTC")
        figures = score_figures_shown(page, len(MODELS))
        page.wait_for_timeout(500)
        figures = score_figures_shown(page, len(MODELS))
        titles = [f["title"] for f in figures]
        assert {"FSS, rain ≥ 0.1 mm/h (dashed: useful)", "FSS, rain ≥ 1 mm/h (dashed: useful)",
                "FSS, rain ≥ 5 mm/h (dashed: useful)", "quantile-quantile, wet pixels"} <= set(titles), titles
        assert any(t.startswith("rank histogram") for t in titles) and any(t.startswith("reliability") for t in titles)
        for f in figures:
            fx0, fy0, fx1, fy1 = f["frame"]
            lx0, ly0, lx1, ly1 = f["legend"]
            assert lx1 - lx0 > 20 and ly1 - ly0 > 10 and fx1 - fx0 > 100, f"boxes not laid out: {f}"
            assert lx0 >= fx1 or lx1 <= fx0 or ly0 >= fy1 or ly1 <= fy0, f"legend over the data: {f}"
            assert f["right"] <= width + 1, f"{f['title']} cut off at {width} px: right edge {f['right']}"
        table_top = page.locator("table.panel-df").first.bounding_box()["y"]
        assert min(f["top"] for f in figures) < table_top, "the figures come before the table"
        page.screenshot(path=ARTIFACTS / f"dashboard_scores_{width}x{height}.png", full_page=True)
        colours_seen.append(figures)
    for figures in colours_seen:
        for f in figures:
            for name, colour in f["colours"].items():
                expected = RADAR_COLOUR if name.startswith("radar") else model_colour(name)
                if name != "perfect":  # the reliability diagram's diagonal
                    assert colour.lower() == expected.lower(), (f["title"], name, colour)
    n_valid = wait_for_table(page, lambda t: ("n_valid", "ddpm") in t)[("n_valid", "ddpm")]
    cell = page.locator("table.panel-df tr", has_text="n_valid").first.inner_text()
    assert f"{n_valid:,.0f}" in cell and n_valid >= 1000, cell  # 9,216 pixels, not 9.216e+03
    # a third model: the two keep their colours
    choose(page, "Models", "unet")
    figures = score_figures_shown(page, 3)
    performance = next(f for f in figures if f["title"].startswith("performance"))
    three = ("ddpm", "flow_residual", "unet")
    assert {m: performance["colours"][m].lower() for m in three} == {m: model_colour(m).lower() for m in three}
    page.screenshot(path=ARTIFACTS / "dashboard_scores_three_models.png", full_page=True)
    page.context.close()


# -- the maps for review meetings -----------------------------------------------------------------------------
#: Each map of the page (a Bokeh figure on screen with a title): title text and colour, its place on the
#: page (client px), its plot frame (canvas px) and the x/y ranges shown (m).
_MAP_FIGURES = """() => {
    const kind = m => m.type ?? m.constructor.__qualified__ ?? m.constructor.__name__;
    const out = [];
    for (const view of Bokeh.index.all_views()) {
        const m = view.model;
        if (!["Figure", "Plot"].includes(kind(m)) || !view.el || !m.title?.text) continue;
        const r = view.el.getBoundingClientRect(), f = view.frame.bbox;
        if (r.width === 0 || !view.el.closest) continue;
        out.push({title: m.title.text, colour: m.title.text_color, left: r.left, right: r.right, top: r.top,
                  bottom: r.bottom, width: r.width, frame: [f.left, f.top, f.right, f.bottom],
                  x: [m.x_range.start, m.x_range.end], y: [m.y_range.start, m.y_range.end]});
    }
    return out.filter(f => /(radar|IR_|WV_|ddpm|flow_residual|unet)/.test(f.title) && !/^(performance|FSS|quantile|exceedance|histogram|power|rank|reliability|spectral)/.test(f.title));
}"""


def map_figures(page, count: int) -> list[dict]:
    """The maps on the page once ``count`` are laid out, in reading order."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        figures = sorted(page.evaluate(_MAP_FIGURES), key=lambda f: (round(f["top"]), f["left"]))
        if len(figures) == count or time.monotonic() > deadline:
            assert len(figures) == count, [f["title"] for f in figures]
            return figures
        page.wait_for_timeout(300)


def by_title(figures: list[dict], start: str) -> dict:
    return next(f for f in figures if f["title"].startswith(start))


def assert_no_cut_off(page, figures: list[dict], label: str) -> None:
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{label}: the page scrolls sideways ({scroll} > {width} px)"
    for f in figures:
        assert f["left"] >= 0 and f["right"] <= width + 0.5, f"{label}: {f['title']!r} cut off ({f['right']} px)"
        x0, y0, x1, y1 = f["frame"]  # linked axes and datashader keep the data aspect: 1 km is 1 km both ways
        scale = ((f["x"][1] - f["x"][0]) / (x1 - x0)) / ((f["y"][1] - f["y"][0]) / (y1 - y0))
        assert scale == pytest.approx(1.0, rel=0.03), f"{label}: {f['title']!r} stretched ({scale:.3f})"


def frame_pixels(page, figure: dict) -> np.ndarray:
    """The RGB pixels of a map's plot frame (the data area), from a screenshot of the page."""
    x0, y0, x1, y1 = figure["frame"]
    clip = {"x": figure["left"] + x0 + 2, "y": figure["top"] + y0 + 2, "width": x1 - x0 - 4, "height": y1 - y0 - 4}
    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB"))


def test_maps_for_meetings_layout_titles_hover_levels_focus_presentation(served, browser):
    """At 1280x800 and 1920x1080: no horizontal cut-off, 2 (then 3) columns, each map >= 45 % of the grid's
    width in two columns, the data aspect kept; titles in the model colour (the same in a second case,
    the presentation link); lat/lon and mm/h on hover; each model beside its difference; P = 0 white;
    pysteps levels; one map enlarged and back; the presentation layout from a link."""
    import pyproj

    from qpe.colours import model_colour
    from qpe.data.grid import Grid

    shots = Path(os.environ.get("QPE_SHOTS", ARTIFACTS))
    shots.mkdir(parents=True, exist_ok=True)
    page = open_page(browser, link(served, time=TIME, models=list(MODELS)))
    wait_for_maps(page, "ddpm mean of 4", "flow_residual mean of 4")
    colours = {}
    for (width, height), columns in zip(((1280, 800), (1920, 1080)), (2, 3)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(1500)
        figures = map_figures(page, 4)
        assert_no_cut_off(page, figures, f"{width}x{height}")
        grid = page.locator(".qpe-maps").first.bounding_box()
        assert len({round(f["left"]) for f in figures}) == columns, f"{width}x{height}: {figures}"
        assert min(f["width"] for f in figures) >= (0.45 if columns == 2 else 0.3) * grid["width"]
        for model in MODELS:
            colours[model] = by_title(figures, f"{model} mean of 4")["colour"]
        page.screenshot(path=shots / f"dashboard_maps_{width}x{height}.png", full_page=True)
    assert colours == {m: model_colour(m) for m in MODELS}
    assert "4 members, K = 2 heun" in by_title(figures, "flow_residual")["title"]
    normal_font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")

    # hover at the middle of the radar map: lat/lon of that point (degrees) and the rain rate in mm/h
    radar = by_title(figures, "radar")
    x0, y0, x1, y1 = radar["frame"]
    page.mouse.move(radar["left"] + (x0 + x1) / 2, radar["top"] + (y0 + y1) / 2)
    page.wait_for_timeout(600)
    text = deep_text(page.locator("body"))
    found = re.search(r"(-?\d+\.\d+)° N, (-?\d+\.\d+)° E", text)
    assert found and re.search(r"rain rate:? *(\d+\.\d+|NaN) mm/h", text), text[-500:]
    grid_crs = Grid.from_dataset(open_paired(served.data)).crs
    lon, lat = pyproj.Transformer.from_crs(grid_crs, "EPSG:4326", always_xy=True).transform(
        sum(radar["x"]) / 2, sum(radar["y"]) / 2)
    assert (float(found[1]), float(found[2])) == pytest.approx((lat, lon), abs=0.03)

    # differences: each model beside its "minus radar" map, in the same row
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(link(served, time=TIME, models=list(MODELS), diff=True))  # as a shared link opens it
    wait_for_maps(page, "ddpm mean − radar", "flow_residual mean − radar")
    figures = map_figures(page, 6)
    assert_no_cut_off(page, figures, "differences at 1280x800")
    for model in MODELS:
        mine, difference = by_title(figures, f"{model} mean of"), by_title(figures, f"{model} mean − radar")
        assert abs(mine["top"] - difference["top"]) < 2 and difference["left"] > mine["right"] - 1
        assert difference["colour"] == model_colour(model)
    page.screenshot(path=shots / "dashboard_maps_differences_1280x800.png", full_page=True)
    page.goto(link(served, time=TIME, models=list(MODELS)))

    # probability: P = 0 is white (the tiny models give P(>= 1 mm/h) = 0 over most of the grid)
    page.locator(".bk-btn", has_text="probability").click()
    wait_for_maps(page, "ddpm P(≥ 1 mm/h)")
    page.wait_for_timeout(1000)
    pixels = frame_pixels(page, by_title(map_figures(page, 4), "ddpm P("))
    white = (pixels.reshape(-1, 3) == 255).all(axis=1).mean()
    assert white > 0.5, f"only {white:.0%} of the probability map is white"
    page.screenshot(path=shots / "dashboard_maps_probability_1280x800.png", full_page=True)

    # pysteps' discrete rain levels on the radar map, in the link
    import matplotlib.colors as mcolors
    from pysteps.visualization.precipfields import get_colormap

    cmap, _, _, _ = get_colormap("intensity", "mm/h", "pysteps")
    levels = {tuple(round(255 * c) for c in mcolors.to_rgb(cmap(i))) for i in range(cmap.N)}
    page.locator(".bk-btn", has_text="pysteps levels").click()
    page.wait_for_function("() => /rain=levels/.test(window.location.href)")
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:  # the maps are rebuilt with the other colours
        page.wait_for_timeout(700)
        radar = by_title(map_figures(page, 4), "radar")  # in two columns at 1280 x 800
        pixels = frame_pixels(page, radar).reshape(-1, 3)
        in_levels = sum(tuple(p) in levels for p in pixels[::7].tolist())
        if in_levels > 50 or time.monotonic() > deadline:
            break
    assert in_levels > 50, "the radar map is not drawn in pysteps' levels"
    rebuilt = [f["title"].split()[0] for f in map_figures(page, 4)]  # in reading order, no empty cell
    assert rebuilt == ["IR_108", "radar", "ddpm", "flow_residual"], rebuilt
    page.screenshot(path=shots / "dashboard_maps_pysteps_levels_1280x800.png", full_page=True)

    # one map enlarged (focus), in the link, and back
    page.locator(".bk-input-group", has_text="Enlarge").locator("select").select_option(label="radar")
    page.wait_for_function("() => /focus=radar/.test(window.location.href)")
    enlarged = map_figures(page, 1)[0]
    assert enlarged["title"].startswith("radar") and enlarged["width"] > 1.4 * radar["width"]
    assert enlarged["bottom"] <= page.evaluate("window.innerHeight") + 1, "the enlarged map is not whole on screen"
    page.screenshot(path=shots / "dashboard_maps_enlarged_1280x800.png")
    page.get_by_role("button", name="◀ all maps").click()
    map_figures(page, 4)
    page.context.close()

    # the presentation layout from a link, another case: the same colour for flow_residual
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    talk = context.new_page()
    talk.set_default_timeout(WAIT_MS)
    talk.goto(link(served, time=TIME, models=["unet", "flow_residual"], layout="presentation"))
    wait_for_maps(talk, "flow_residual mean of 4", "unet")
    figures = map_figures(talk, 4)
    assert talk.locator("#sidebar").bounding_box() is None or talk.locator("#sidebar").bounding_box()["width"] < 5
    assert talk.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 1.2 * normal_font
    assert by_title(figures, "flow_residual")["colour"] == colours["flow_residual"] == model_colour("flow_residual")
    assert_no_cut_off(talk, figures, "presentation at 1920x1080")
    assert len({round(f["left"]) for f in figures}) == 3
    talk.screenshot(path=shots / "dashboard_maps_presentation_1920x1080.png", full_page=True)
    talk.set_viewport_size({"width": 1280, "height": 800})
    talk.wait_for_timeout(1500)
    figures = map_figures(talk, 4)
    assert_no_cut_off(talk, figures, "presentation at 1280x800")
    talk.screenshot(path=shots / "dashboard_maps_presentation_1280x800.png", full_page=True)
    assert "layout=normal" in talk.get_by_text("Normal layout").first.get_attribute("href")
    context.close()
