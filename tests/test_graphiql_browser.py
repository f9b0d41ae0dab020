"""GraphiQL in headless Chromium with the network closed: it renders, answers, keeps no API key.

Driver: Playwright for Python, driving Debian's /usr/bin/chromium (`playwright install` is never
run; .ci/run installs Chromium with apt). Its routing sees every request a page makes, scripts,
styles, fonts, fetches and WebSockets alike, so the test can abort and list whatever would leave
the machine. Selenium would need Debian's chromedriver plus hand-made CDP plumbing to do the same.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.clock import Clock
from gateway.app import create_app
from gateway.config import GraphiQLConfig
from gateway.graphiql import EXAMPLE_QUERY
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient

try:
    from playwright.async_api import (
        Error,
        Page,
        Request,
        Route,
        WebSocketRoute,
        async_playwright,
    )

    PLAYWRIGHT = True
except ImportError:  # the `chromium` fixture names what is missing
    PLAYWRIGHT = False

CHROMIUM = Path("/usr/bin/chromium")
# The closed network would otherwise fill the log with Chromium's own background calls.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SCREENSHOT = Path(__file__).parents[1] / "test-artifacts" / "graphiql.png"
KEY = KEYS["bank"]
TIMEOUT_MS = 30_000

# CodeMirror 5 keeps its instance on the editor's element; reading it gets the whole text,
# not just the lines on screen.
EDITOR_TEXT = "selector => document.querySelector(selector).CodeMirror.getValue()"
RESULT = ".result-window .CodeMirror"
# The Variables or the Headers editor, whichever tab is open.
TOOL = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Skips without Chromium or Playwright, except under CI=true, where the test must run."""
    missing = None
    if not PLAYWRIGHT:
        missing = "the Python package playwright is missing (pip install -e '.[dev]')"
    elif not CHROMIUM.is_file():
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}; CI must run the GraphiQL browser test")
        pytest.skip(missing)
    return CHROMIUM


@pytest.fixture(scope="module")
def example_uscc(dataset: Dataset) -> str:
    """A subject every department knows, so the example shows something in each state."""
    return dataset.examples["stitched.all_departments"]


@pytest.fixture(scope="module")
def ide(chromium: Path, sandbox: SandboxThread, example_uscc: str) -> Iterator[GatewayServer]:
    """A gateway with `[graphiql] example_uscc` set to the dataset's stitched subject."""
    config = replace(
        gateway_config(sandbox.urls), graphiql=GraphiQLConfig(example_uscc=example_uscc)
    )
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    yield server
    server.stop()


def _local(url: str) -> bool:
    return url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK


async def _run_and_read_result(page: Page) -> Any:
    """Clicks GraphiQL's execute button and waits for the answer in the result pane."""
    # Emptied first, so an earlier answer is never taken for this one.
    await page.evaluate("s => document.querySelector(s).CodeMirror.setValue('')", RESULT)
    await page.click(".graphiql-execute-button")
    await page.wait_for_function(
        f"() => ({EDITOR_TEXT})({json.dumps(RESULT)}).trim().endsWith('}}')"
    )
    return json.loads(await page.evaluate(EDITOR_TEXT, RESULT))


def _expected(subject: dict[str, Any]) -> dict[str, Any]:
    """What two answers for the same subject share; `asOf` is the time of each fetch."""
    return {
        **subject,
        "sources": [{**s, "asOf": None} for s in subject["sources"]],
    }


async def test_graphiql_offline_runs_the_example_and_keeps_no_key(
    chromium: Path, ide: GatewayServer, example_uscc: str
) -> None:
    direct = GraphQLClient(ide.url, key=KEY).query(EXAMPLE_QUERY, {"uscc": example_uscc})
    assert "errors" not in direct, direct["errors"]
    offsite: list[str] = []
    authorizations: list[str | None] = []
    problems: list[str] = []

    async def guard(route: Route, request: Request) -> None:
        if not _local(request.url):
            offsite.append(f"{request.method} {request.url}")
            await route.abort()
            return
        if request.method == "POST":
            authorizations.append(await request.header_value("authorization"))
        await route.continue_()

    async def guard_socket(socket: WebSocketRoute) -> None:
        if _local(socket.url):
            socket.connect_to_server()
        else:
            offsite.append(f"WebSocket {socket.url}")
            await socket.close()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page: Page | None = None
        try:
            context = await browser.new_context(viewport={"width": 1440, "height": 900})
            await context.route("**/*", guard)
            await context.route_web_socket("**/*", guard_socket)
            page = await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            # CSP violations and script errors are logged to the console as errors.
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

            response = await page.goto(f"{ide.url}/graphql")
            assert response is not None and response.ok
            await page.wait_for_selector(".graphiql-execute-button")
            variables = json.loads(await page.evaluate(EDITOR_TEXT, TOOL))
            assert variables == {"uscc": example_uscc}

            # The key goes in before the first run: GraphiQL's history then records it with the
            # query, as it would for anyone who starts by pasting their key.
            await page.click(".graphiql-editor-tools button[data-name=headers]")
            await page.click(TOOL)
            await page.keyboard.insert_text(json.dumps({"Authorization": f"Bearer {KEY}"}))
            headers = json.loads(await page.evaluate(EDITOR_TEXT, TOOL))
            assert headers == {"Authorization": f"Bearer {KEY}"}

            shown = await _run_and_read_result(page)
            # The first POST is GraphiQL's introspection at load, before the key was typed.
            assert authorizations[-1] == f"Bearer {KEY}", authorizations
            assert "errors" not in shown, shown["errors"]
            assert _expected(shown["data"]["subject"]) == _expected(direct["data"]["subject"])
            name = direct["data"]["subject"]["name"]
            assert await page.locator(RESULT).get_by_text(name).first.is_visible()

            kept = await page.evaluate(
                "() => JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])"
            )
            assert KEY not in kept, f"the API key is kept in the browser: {kept}"
            # The screenshot shows the example's variables beside its answer.
            await page.click(".graphiql-editor-tools button[data-name=variables]")
        finally:
            # Kept whether the test passes or not: CI stores test-artifacts/.
            if page is not None:
                SCREENSHOT.parent.mkdir(exist_ok=True)
                with contextlib.suppress(Error):
                    await page.screenshot(path=SCREENSHOT)
                    print(f"GraphiQL screenshot: {SCREENSHOT}")
            await browser.close()

    assert offsite == [], "requests that would leave the machine:\n" + "\n".join(offsite)
    assert problems == [], "\n".join(problems)
