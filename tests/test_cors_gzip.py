"""[http] for browsers and partners' clients, over real HTTP: the CORS allow-list and gzip."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from core.clock import Clock
from gateway.app import create_app
from gateway.config_operations import HttpConfig
from gateway.graphiql import STATIC_DIR
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer

DASHBOARD = "https://dash.example"
STRANGER = "https://evil.example"
PARTNER = {"Authorization": f"Bearer {KEYS['partner']}"}
# Every measure with its texts: several kilobytes, the same on every call.
LARGE = "{ measures { code name kind content legalBasis implementingUnits scenarios } }"
SMALL = "{ __typename }"
GZIP = {"Accept-Encoding": "gzip"}
GRAPHIQL_JS = "graphiql-3.8.3/graphiql.min.js"
PREFLIGHT = {
    "Origin": DASHBOARD,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def _gateway(sandbox: SandboxThread, http: HttpConfig, **limits: Any) -> GatewayServer:
    config = replace(gateway_config(sandbox.urls, limits=limits), http=http)
    return GatewayServer(create_app(config, Clock(TODAY))).start()


@pytest.fixture(scope="module")
def browser_facing(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """CORS for one dashboard, gzip from 1 KiB; anonymous callers get two requests, ever."""
    server = _gateway(
        sandbox,
        HttpConfig(cors_allow_origins=(DASHBOARD,), gzip_min_bytes=1024),
        public={"rate_per_s": 0.001, "burst": 2},
        max_body_bytes=4096,
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def no_gzip(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """`gzip_min_bytes = 0`."""
    server = _gateway(sandbox, HttpConfig(gzip_min_bytes=0))
    yield server
    server.stop()


def _post(server: GatewayServer, query: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/graphql", json={"query": query}, headers=headers, timeout=30)


def _raw(server: GatewayServer, path: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """A GET's response and its body as sent, before httpx undoes any Content-Encoding."""
    with httpx.stream("GET", f"{server.url}{path}", headers=headers, timeout=30) as response:
        return response, b"".join(response.iter_raw())


# --- CORS ---------------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(
    browser_facing: GatewayServer,
) -> None:
    # Several in a row: preflights are answered before authentication and rate limits.
    for _ in range(5):
        response = httpx.options(f"{browser_facing.url}/graphql", headers=PREFLIGHT, timeout=30)
        assert response.status_code == 200
        headers = response.headers
        assert headers["access-control-allow-origin"] == DASHBOARD
        allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "accept"} <= allowed
        assert {"GET", "POST"} <= set(headers["access-control-allow-methods"].split(", "))
        assert headers["access-control-max-age"] == "600"
        assert "access-control-allow-credentials" not in headers


def test_an_allowed_origin_reads_answers_and_refusals(browser_facing: GatewayServer) -> None:
    origin = {"Origin": DASHBOARD, "Accept": "application/graphql-response+json"}
    answer = _post(browser_facing, SMALL, {**origin, **PARTNER})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == DASHBOARD
    assert answer.headers["content-type"] == "application/graphql-response+json"
    assert "Origin" in answer.headers["vary"]
    # Refusals of the middleware below CORS carry the headers too: 401 and 413.
    unknown = _post(browser_facing, SMALL, {**origin, "Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    assert unknown.headers["access-control-allow-origin"] == DASHBOARD
    # Past a key's body limit (one that fits the largest bulk check, contract §8).
    too_large = _post(browser_facing, "{ __typename }" + " " * 1_400_000, {**origin, **PARTNER})
    assert too_large.status_code == 413
    assert too_large.headers["access-control-allow-origin"] == DASHBOARD


def test_a_rate_limited_browser_may_read_retry_after(browser_facing: GatewayServer) -> None:
    # The only anonymous requests of this module: the preflights above were never counted.
    origin = {"Origin": DASHBOARD}
    assert [_post(browser_facing, SMALL, origin).status_code for _ in range(2)] == [200, 200]
    refused = _post(browser_facing, SMALL, origin)
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == DASHBOARD
    assert refused.headers["access-control-expose-headers"] == "Retry-After"
    assert "retry-after" in refused.headers


def test_other_origins_get_no_cors_headers(browser_facing: GatewayServer) -> None:
    preflight = httpx.options(
        f"{browser_facing.url}/graphql", headers={**PREFLIGHT, "Origin": STRANGER}, timeout=30
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    # The gateway answers (a browser would withhold it from the page): no CORS headers.
    answer = _post(browser_facing, SMALL, {"Origin": STRANGER, **PARTNER})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


def test_without_allowed_origins_no_origin_is_answered(gateway: GatewayServer) -> None:
    answer = _post(gateway, SMALL, {"Origin": DASHBOARD, **PARTNER})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(f"{gateway.url}/graphql", headers=PREFLIGHT, timeout=30)
    assert "access-control-allow-origin" not in preflight.headers


# --- gzip ---------------------------------------------------------------------------------


def test_a_large_answer_is_gzipped_for_clients_that_accept_it(
    browser_facing: GatewayServer,
) -> None:
    plain = _post(browser_facing, LARGE, {**PARTNER, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > 4 * 1024 and "errors" not in plain.json()
    body = {"query": LARGE}
    headers = {**PARTNER, **GZIP, "Origin": DASHBOARD}
    with httpx.stream(
        "POST", f"{browser_facing.url}/graphql", json=body, headers=headers, timeout=30
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert {"Accept-Encoding", "Origin"} <= {v.strip() for v in response.headers["vary"].split(",")}
    assert response.headers["content-length"] == str(len(raw))
    assert len(raw) < len(plain.content) / 2
    assert gzip.decompress(raw) == plain.content
    assert response.headers["content-type"] == plain.headers["content-type"]


def test_a_small_answer_is_sent_as_it_is(browser_facing: GatewayServer) -> None:
    with httpx.stream(
        "POST",
        f"{browser_facing.url}/graphql",
        json={"query": SMALL},
        headers={**PARTNER, **GZIP},
        timeout=30,
    ) as response:
        raw = b"".join(response.iter_raw())
    assert "content-encoding" not in response.headers
    assert raw == b'{"data":{"__typename":"Query"}}'


def test_graphiqls_assets_are_gzipped_and_intact(browser_facing: GatewayServer) -> None:
    # With a key: this module's anonymous callers are out of requests (the rate test).
    response, raw = _raw(browser_facing, f"/graphiql/{GRAPHIQL_JS}", {**PARTNER, **GZIP})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    original = (STATIC_DIR / GRAPHIQL_JS).read_bytes()
    assert len(raw) < len(original) / 3
    assert gzip.decompress(raw) == original
    # The page itself: what a browser opens at /graphql.
    page, raw_page = _raw(browser_facing, "/graphql", {"Accept": "text/html", **PARTNER, **GZIP})
    assert page.headers["content-encoding"] == "gzip"
    assert b"graphiql-settings" in gzip.decompress(raw_page)


def test_gzip_min_bytes_zero_switches_it_off(no_gzip: GatewayServer) -> None:
    response, raw = _raw(no_gzip, f"/graphiql/{GRAPHIQL_JS}", GZIP)
    assert "content-encoding" not in response.headers
    assert raw == (STATIC_DIR / GRAPHIQL_JS).read_bytes()
    answer = _post(no_gzip, LARGE, {**PARTNER, **GZIP})
    assert "content-encoding" not in answer.headers and "errors" not in answer.json()
