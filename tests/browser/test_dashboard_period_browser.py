"""The Period tab in a real browser: Debian's Chromium (Playwright) against a real ``panel serve``.

One page load: the tab opened from a link, a ``qpe evaluate --out`` folder typed in and opened, the
score-card and the series checked against the folder's files, at 1280x800 and 1920x1080 (screenshots
to ``test-artifacts/`` or ``$QPE_SHOTS``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from browser_testing import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, WAIT_MS, require_chromium, served_dashboard
from evaluation_testing import evaluation_data, save_tiny_checkpoints
from test_dashboard_browser import _SCORE_FIGURES, deep_text

from qpe.cli import main
from qpe.colours import model_colours

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served_period(tmp_path_factory):
    """Three tiny checkpoints, ``qpe evaluate --out`` of them, and ``panel serve dashboard/app.py`` on the data."""
    require_chromium()
    root = tmp_path_factory.mktemp("served_period")
    data = evaluation_data(root / "data.zarr")
    models = save_tiny_checkpoints(root / "models")
    out = root / "eval"
    assert main(["evaluate", "--data", str(data), "--checkpoints", str(models), "--out", str(out), "--members", "2",
                 "--bootstrap", "50", "--compare-to", "unet", "--no-cache"]) == 0
    with served_dashboard(root, data, models) as (url, _log):
        yield url, out


def test_period_tab_opens_an_evaluate_folder_and_shows_the_scorecard_and_series(served_period):
    from playwright.sync_api import sync_playwright

    url, out = served_period
    shots = Path(os.environ.get("QPE_SHOTS", ARTIFACTS))
    shots.mkdir(parents=True, exist_ok=True)
    card = pd.read_csv(out / "scorecard.csv")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url + "?tab=period&time=2021-06-01T23%3A00")
        page.locator(".bk-input-group", has_text="qpe evaluate --out folder").locator("input").first.fill(str(out))
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Open folder").click()
        page.locator(".qpe-scorecard").first.wait_for()
        # the score-card: one column per model against unet, each cell scorecard.csv's verdict and difference
        pairs = page.locator(".qpe-scorecard thead th.pair")
        assert [deep_text(p) for p in pairs.all()] == ["ddpm_v − unet", "flow_residual − unet"]
        cells = page.locator('.qpe-scorecard td[data-model="flow_residual"]')
        expected = card[card.model == "flow_residual"].reset_index(drop=True)
        assert cells.count() == len(expected)
        for j, row in expected.iterrows():
            text = deep_text(cells.nth(j))
            if pd.isna(row.verdict):
                assert text == "–"
            else:
                assert cells.nth(j).get_attribute("data-verdict") == str(int(row.verdict))
                assert float(text.split()[1]) == pytest.approx(row.difference, rel=5e-3)
        # the series: one line per model in its colour, the legend beside the plot frame
        colours = model_colours(["ddpm_v", "flow_residual", "unet"])
        for width, height in ((1280, 800), (1920, 1080)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(1500)
            figures = [f for f in page.evaluate(_SCORE_FIGURES) if f["title"].startswith("CSI >1 per UTC day")]
            assert len(figures) == 1, [f["title"] for f in page.evaluate(_SCORE_FIGURES)]
            series = figures[0]
            assert {k: v.lower() for k, v in series["colours"].items()} == {k: v.lower() for k, v in colours.items()}
            fx0, fy0, fx1, fy1 = series["frame"]
            lx0, ly0, lx1, ly1 = series["legend"]
            assert lx0 >= fx1 or lx1 <= fx0 or ly0 >= fy1 or ly1 <= fy0, f"legend over the data: {series}"
            assert series["right"] <= width + 1, f"the series is cut off at {width} px"
            box = page.locator(".qpe-scorecard").first.bounding_box()
            assert box["x"] + box["width"] <= width + 1, f"the score-card is cut off at {width} px"
            table = deep_text(page.locator(".qpe-period-table").first)
            assert "CSI >1" in table and "[" in table  # values with their intervals
            page.screenshot(path=shots / f"dashboard_period_{width}x{height}.png", full_page=True)
        browser.close()
