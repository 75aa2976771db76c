"""Hostile links, model cards and host names against the served dashboard, in Debian's Chromium.

``qpe dashboard`` serves a small dataset and three untrained tiny checkpoints: ``unet``, ``carded``
(its card's description is an HTML payload) and one whose *folder name* is a payload. Each payload
sets ``window.__pwned`` if the page ever parses it as HTML; the tests open the payload links of issue
12, pick the checkpoints, and check that the payloads are shown as text and never run. The last check
of that test inserts the payload as HTML on purpose, to show it does run in this browser.

The DNS-rebinding test maps ``evil.example`` to 127.0.0.1 in Chromium (``--host-resolver-rules``), as an
attacker's DNS would after the victim opened the attacker's page, and runs the attacker's script in
that origin. A separate ``panel serve`` with short session lifetimes checks that closing a tab during
an estimate leaves no traceback in the server log.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from browser_testing import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    free_port,
    require_chromium,
    start_server,
)
from dashboard_testing import make_dataset
from models_testing import tiny_card

from qpe.data.normalization import read_ir_normalization
from qpe.data.paired import open_paired
from qpe.models import DiffusionConfig, build_model, save_checkpoint

pytestmark = pytest.mark.browser

TIME = "2021-06-01T23:45"
PAYLOAD = '<img src=x onerror="window.__pwned=1">'
FOLDER_PAYLOAD = '<img src=x onerror="window.__pwned=3">'  # a checkpoint folder's name
EVIL, TEAM = "evil.example", "team.example"


@dataclass(frozen=True)
class Server:
    port: int
    url: str
    log: Path
    cache: Path



def make_models(root: Path, data: Path) -> Path:
    """Untrained tiny checkpoints: ``unet``, ``carded`` (payload description), a payload-named folder, ``ddpm``."""
    norm = read_ir_normalization(open_paired(data)).select(("WV_062", "IR_108"))
    unet = replace(tiny_card("unet", name="unet"), normalization=norm)
    save_checkpoint(build_model(unet), unet, root / "unet")
    for folder, description in (("carded", PAYLOAD), (FOLDER_PAYLOAD, "a checkpoint named with markup")):
        save_checkpoint(build_model(unet), unet, root / folder)
        card = yaml.safe_load((root / folder / "card.yaml").read_text())
        card["description"] = description  # edited by hand, as anyone may
        (root / folder / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    ddpm = replace(tiny_card("ddpm", name="ddpm", diffusion=DiffusionConfig(timesteps=1000, prediction="v")),
                   normalization=norm)
    save_checkpoint(build_model(ddpm), ddpm, root / "ddpm")
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("security")
    data = make_dataset(root / "data.zarr")
    return root, data, make_models(root / "models", data)


@pytest.fixture(scope="module")
def dashboard(files):
    """``qpe dashboard`` with its defaults, plus the name team.example (what a team's proxy would send)."""
    root, data, models = files
    port = free_port()
    cache = root / "cache_dashboard"
    command = [sys.executable, "-m", "qpe", "dashboard", "--data", str(data), "--models", str(models),
               "--cache-dir", str(cache), "--no-browser", "--port", str(port),
               "--allow-websocket-origin", f"{TEAM}:{port}"]
    log = root / "dashboard.log"
    process = start_server(command, f"http://localhost:{port}/", log)
    yield Server(port, f"http://localhost:{port}/", log, cache)
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(files):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("security_*"):
        old.unlink()
    with sync_playwright() as playwright:
        # evil.example and team.example resolve to this machine, as DNS rebinding makes them do
        rules = f"--host-resolver-rules=MAP {EVIL} 127.0.0.1, MAP {TEAM} 127.0.0.1"
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
        yield browser
        browser.close()


# -- helpers ------------------------------------------------------------------------------------------------
def open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1500, "height": 1200}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    return page


def link(server: Server, **query) -> str:
    return server.url + "?" + "&".join(f"{k}={quote(v if isinstance(v, str) else json.dumps(v))}"
                                      for k, v in query.items())


_PARSED_PAYLOADS = """() => {
    const found = [];
    const walk = root => root.querySelectorAll("*").forEach(el => {
        if (el.tagName === "IMG" && el.getAttribute("src") === "x") found.push(el.outerHTML);
        if (el.shadowRoot) walk(el.shadowRoot);
    });
    walk(document);
    return found;
}"""


def assert_not_run(page, where: str) -> None:
    """No payload ran, and none is in the page as an element (the page, shadow roots included)."""
    page.wait_for_timeout(700)  # an <img src=x> fails to load, then runs its onerror
    assert page.evaluate("typeof window.__pwned") == "undefined", f"a payload ran: {where}"
    assert page.evaluate(_PARSED_PAYLOADS) == [], f"a payload was parsed as HTML: {where}"


def wait_for_text(page, selector: str | None, text: str) -> None:
    """Wait until ``text`` is shown, as text (in an element matching ``selector``, or anywhere)."""
    locator = page.get_by_text(text) if selector is None else page.locator(selector, has_text=text)
    try:
        locator.first.wait_for()
    except Exception:
        page.screenshot(path=ARTIFACTS / f"security_failed_{re.sub(r'[^a-z0-9]+', '_', text.lower())[:40]}.png")
        raise


def choose(page, option: str) -> None:
    """Add ``option`` to the Models multiple choice as a user does: open it, click the option."""
    group = page.locator(".bk-input-group", has_text="Models")
    group.locator("input[type=search]").click()
    group.locator(".choices__list--dropdown .choices__item--choice", has_text=option).first.click()
    page.keyboard.press("Escape")


# -- script injection ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "query", "message"), [
    ("members", {"members": PAYLOAD}, f"The link's members={PAYLOAD} could not be used"),
    ("time", {"time": PAYLOAD}, f"'{PAYLOAD}' is not a date and time"),
    ("models", {"models": [PAYLOAD]}, f"Checkpoint(s) {PAYLOAD} of the link are not under"),
])
def test_a_payload_in_a_link_is_shown_as_text(dashboard, browser, name, query, message):
    page = open_page(browser, link(dashboard, **query))
    wait_for_text(page, ".qpe-message", message)
    page.wait_for_selector("canvas")  # the page is up: maps drawn, messages shown
    assert_not_run(page, f"link {name}=")
    page.screenshot(path=ARTIFACTS / f"security_link_{name}.png")
    page.context.close()


def test_payloads_in_checkpoint_cards_and_folder_names_are_shown_as_text(dashboard, browser):
    page = open_page(browser, link(dashboard, time=TIME))
    page.wait_for_selector("canvas")
    assert_not_run(page, "page with the checkpoint list")
    choose(page, "carded")  # the dropdown lists every checkpoint, the payload-named one included
    wait_for_text(page, None, PAYLOAD)
    assert_not_run(page, "the card of 'carded' (payload description)")
    choose(page, FOLDER_PAYLOAD)
    wait_for_text(page, None, "a checkpoint named with markup")  # its card, headed by its folder name
    done = re.compile(re.escape(f"· {FOLDER_PAYLOAD}") + r"\s*$")  # the map's heading, once estimated
    page.locator(".qpe-map-status", has_text=done).first.wait_for()
    assert_not_run(page, "the payload-named checkpoint picked, estimated and drawn")
    page.locator(".bk-tab", has_text="Scores").click()
    table = page.locator("table.panel-df").first
    table.wait_for()
    assert FOLDER_PAYLOAD in table.inner_text()  # the score table's column header, as text
    assert_not_run(page, "the score table")
    page.screenshot(path=ARTIFACTS / "security_checkpoint_payloads.png", full_page=True)
    # the same payload inserted as HTML does run here: the checks above could fail
    page.evaluate("payload => document.body.insertAdjacentHTML('beforeend', payload)", PAYLOAD)
    page.wait_for_function("() => window.__pwned === 1")
    page.context.close()


# -- DNS rebinding ------------------------------------------------------------------------------------------
_ATTACKER = """async () => {
    // what a rebinding page's script does once its host name resolves to the victim's machine
    const page = await fetch("/").then(r => r.status, () => "network error");
    const socket = await new Promise(done => {
        const ws = new WebSocket(`ws://${location.host}/ws`);
        ws.onopen = () => { done("open"); ws.close(); };
        ws.onclose = event => done(`closed ${event.code}`);
    });
    return {page, socket};
}"""


def test_a_rebound_host_name_gets_nothing(dashboard, browser):
    page = browser.new_context().new_page()
    response = page.goto(f"http://{EVIL}:{dashboard.port}/")
    assert response.status == 403 and "not served under this host name" in page.inner_text("body")
    assert page.evaluate(_ATTACKER) == {"page": 403, "socket": "closed 1006"}
    page.screenshot(path=ARTIFACTS / "security_rebinding_403.png")
    page.context.close()
    # the same script under a name the server answers: the page and its websocket open
    for host in ("localhost", TEAM):
        page = open_page(browser, f"http://{host}:{dashboard.port}/")
        page.wait_for_selector("canvas")  # the app ran: its own websocket connected
        assert page.evaluate(_ATTACKER) == {"page": 200, "socket": "open"}, host
        page.context.close()
    assert f"refused a request for Host '{EVIL}:{dashboard.port}'" in dashboard.log.read_text()


# -- a closed tab -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_sessions(files):
    """``panel serve`` discarding a session half a second after its tab closed (debug log: says when)."""
    root, data, models = files
    port = free_port()
    cache = root / "cache_short"
    command = [sys.executable, "-m", "panel", "serve", "dashboard/app.py", "--port", str(port),
               "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
               "--unused-session-lifetime", "500", "--check-unused-sessions", "500", "--log-level", "debug",
               "--args", "--data", str(data), "--models", str(models), "--cache-dir", str(cache)]
    log = root / "short_sessions.log"
    process = start_server(command, f"http://127.0.0.1:{port}/app", log)
    yield Server(port, f"http://127.0.0.1:{port}/app", log, cache)
    process.terminate()
    process.wait(timeout=30)


def test_closing_the_tab_during_an_estimate_leaves_no_traceback(short_sessions, browser):
    server = short_sessions
    # 8 members x 150 DDIM steps of the untrained DDPM: several seconds on one thread
    page = open_page(browser, link(server, time=TIME, models=["ddpm"], members=8, steps=150, seed=7))
    wait_for_text(page, None, "estimating ddpm")
    page.context.close()
    deadline = time.monotonic() + 180
    discarded = cached = None
    while time.monotonic() < deadline and cached is None:
        if discarded is None and "Discarding session" in server.log.read_text():
            discarded = time.monotonic()
        if any(server.cache.rglob("*.nc")):
            cached = time.monotonic()
        time.sleep(0.2)
    assert cached is not None, "the estimate did not finish"
    assert discarded is not None and discarded < cached, \
        "the session must be discarded while its estimate runs (make the estimate slower)"
    time.sleep(2)  # the estimate's coroutine resumes on the server's loop
    log = server.log.read_text()
    assert "Traceback" not in log and "_roots" not in log and "Error running application handler" not in log, \
        log[-3000:]
