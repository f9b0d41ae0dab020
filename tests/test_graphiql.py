"""GraphiQL without the internet, over real HTTP: the page, its assets, / and `enabled = false`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import graphql
import httpx
import pytest

from core.clock import Clock
from gateway.app import create_app
from gateway.config import GraphiQLConfig
from gateway.graphiql import ASSET_CACHE_CONTROL, EXAMPLE_QUERY, PACKAGE_DIR, STATIC_DIR
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import GatewayServer, GraphQLClient

HTML = {"Accept": "text/html"}
SCHEMA_SDL = Path(__file__).parents[1] / "schema" / "schema.graphql"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
ASSET_TYPES = {".js": "javascript", ".css": "text/css"}


@pytest.fixture(scope="module")
def example_uscc(dataset: Dataset) -> str:
    """A subject every department knows, so the example shows something in each state."""
    return dataset.examples["stitched.all_departments"]


def _gateway(sandbox: SandboxThread, graphiql: GraphiQLConfig) -> GatewayServer:
    config = replace(gateway_config(sandbox.urls), graphiql=graphiql)
    return GatewayServer(create_app(config, Clock(TODAY))).start()


@pytest.fixture(scope="module")
def ide(sandbox: SandboxThread, example_uscc: str) -> Iterator[GatewayServer]:
    """A gateway with `[graphiql] example_uscc` set to the dataset's stitched subject."""
    server = _gateway(sandbox, GraphiQLConfig(example_uscc=example_uscc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def no_ide(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """A gateway with `[graphiql] enabled = false`."""
    server = _gateway(sandbox, GraphiQLConfig(enabled=False))
    yield server
    server.stop()


class _Assets(HTMLParser):
    """Collects what the page makes a browser load: script src and link href."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.settings = ""
        self._in_settings = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and named.get("src"):
            self.urls.append(named["src"] or "")
        if tag == "link" and named.get("href"):
            self.urls.append(named["href"] or "")
        self._in_settings = tag == "script" and named.get("id") == "graphiql-settings"

    def handle_data(self, data: str) -> None:
        if self._in_settings:
            self.settings += data

    def handle_endtag(self, tag: str) -> None:
        self._in_settings = False


def _page(base_url: str) -> tuple[httpx.Response, _Assets]:
    response = httpx.get(f"{base_url}/graphql", headers=HTML)
    parser = _Assets()
    parser.feed(response.text)
    return response, parser


def test_graphql_get_in_a_browser_is_our_page(ide: GatewayServer, example_uscc: str) -> None:
    response, page = _page(ide.url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Strawberry" not in response.text
    # The example's "<key>" is escaped: nothing in the data can end its <script> element.
    assert "<" not in page.settings and "\\u003ckey\\u003e" in page.settings
    settings = json.loads(page.settings)
    assert settings["query"] == EXAMPLE_QUERY
    assert json.loads(settings["variables"]) == {"uscc": example_uscc}


def test_page_loads_only_same_origin_assets(ide: GatewayServer) -> None:
    response, page = _page(ide.url)
    assert len(page.urls) == 5, page.urls  # the icon, one stylesheet, three scripts
    for url in page.urls:
        if url.startswith("data:"):
            continue
        # Relative, so the page works under a root_path or behind a proxy's prefix.
        assert not urlsplit(url).scheme and not url.startswith("/"), url
        asset = httpx.get(urljoin(str(response.url), url))
        assert asset.status_code == 200, url
        assert ASSET_TYPES[Path(url).suffix] in asset.headers["content-type"], url
        assert asset.headers["cache-control"] == ASSET_CACHE_CONTROL, url
    absolute = re.findall(r"https?://[^\s\"'<>)]+", response.text)
    assert [u for u in absolute if urlsplit(u).hostname not in LOOPBACK] == []


def test_page_policy_allows_only_this_origin(ide: GatewayServer) -> None:
    response, _ = _page(ide.url)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    for directive in ("script-src", "style-src"):
        sources = policy[directive].split()
        assert sources[0] == "'self'"
        # Only hashes of the page's own inline code beside 'self': no 'unsafe-inline'.
        assert all(s.startswith("'sha256-") for s in sources[1:]), sources
        assert len(sources) == 2, sources
    assert "http" not in response.headers["content-security-policy"]


def test_example_query_answers_for_the_example_subject(
    ide: GatewayServer, example_uscc: str
) -> None:
    sdl = graphql.build_schema(SCHEMA_SDL.read_text(encoding="utf-8"))
    assert graphql.validate(sdl, graphql.parse(EXAMPLE_QUERY)) == []
    body = GraphQLClient(ide.url).query(EXAMPLE_QUERY, {"uscc": example_uscc})
    assert "errors" not in body, body["errors"]
    assert body["data"]["subject"]["uscc"] == example_uscc


def test_root_redirects_to_graphiql(ide: GatewayServer) -> None:
    response = httpx.get(f"{ide.url}/", headers=HTML)
    assert response.status_code == 307
    assert response.headers["location"] == "/graphql"
    assert httpx.get(f"{ide.url}/healthz").json() == {"status": "ok"}


async def test_page_and_assets_under_a_root_path(sandbox: SandboxThread) -> None:
    # A proxy serving the gateway at /credit/ (uvicorn --root-path /credit).
    config = replace(gateway_config(sandbox.urls), graphiql=GraphiQLConfig())
    transport = httpx.ASGITransport(app=create_app(config, Clock(TODAY)), root_path="/credit")
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        redirect = await client.get("/credit/", headers=HTML)
        assert redirect.headers["location"] == "/credit/graphql"
        page = await client.get("/credit/graphql", headers=HTML)
        assets = _Assets()
        assets.feed(page.text)
        for url in (u for u in assets.urls if not u.startswith("data:")):
            asset = await client.get(urljoin(str(page.url), url))
            assert asset.status_code == 200, (url, asset.url)
            assert asset.url.path.startswith("/credit/graphiql/")


def test_disabled_graphiql_is_not_served(no_ide: GatewayServer) -> None:
    assert httpx.get(f"{no_ide.url}/graphql", headers=HTML).status_code == 404
    assert httpx.get(f"{no_ide.url}/", headers=HTML).status_code == 404
    asset = "graphiql/graphiql-3.8.3/graphiql.min.css"
    assert (STATIC_DIR / asset.removeprefix("graphiql/")).is_file()
    assert httpx.get(f"{no_ide.url}/{asset}").status_code == 404
    # GraphQL itself still answers.
    body = GraphQLClient(no_ide.url).query("{ measures { code } }")
    assert body["data"]["measures"]


def test_vendored_files_are_those_the_readme_lists() -> None:
    readme = (PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
    listed = dict(
        re.findall(r"^\| [\w@/.-]+ \| [\d.]+ \| `([^`]+)` \| `([0-9a-f]{64})` \|$", readme, re.M)
    )
    present = {str(p.relative_to(STATIC_DIR)) for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert set(listed) == present
    for name, sha256 in listed.items():
        data = (STATIC_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, name
        # A sourceMappingURL would make developer tools ask for a map nobody serves.
        assert b"sourceMappingURL" not in data, name
