"""Wiring only: the Starlette app, its routes, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from core.clock import Clock
from core.masking import install_log_masking
from gateway.access_log import AccessLogMiddleware
from gateway.auth import AuthMiddleware
from gateway.body_limit import BodyLimitMiddleware, bulk_body_bytes
from gateway.bulk_export import export_bulk_check
from gateway.config import GatewayConfig
from gateway.graphiql import ASSETS_PATH, AssetFiles, redirect_to_ide
from gateway.graphql_view import GatewayGraphQL
from gateway.last_resort import LastResortMiddleware
from gateway.load_shedding import LoadSheddingMiddleware
from gateway.metrics import metrics_page
from gateway.persisted import load_trusted_documents
from gateway.rate_limit import RateLimitMiddleware
from gateway.readiness import readyz
from gateway.runtime import Runtime
from schema import build_schema


def create_app(config: GatewayConfig, clock: Clock | None = None) -> Starlette:
    """The gateway as an ASGI app; used by `serve`, `demo` and the tests."""
    install_log_masking()
    runtime = Runtime(config, clock or Clock.from_env())

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    limits = config.limits
    schema = build_schema(
        limits.document,
        introspection_roles=config.http.introspection_roles,
        extensions=runtime.schema_extensions(),
    )
    # Read once here, so `serve` stops (exit 2) on a bad [persisted] file before it listens.
    documents = load_trusted_documents(config.persisted)
    graphql = GatewayGraphQL(schema, graphiql=config.graphiql, documents=documents)
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        # contract §9: subjectChanges over graphql-transport-ws, on the same path.
        WebSocketRoute("/graphql", graphql),
        Route("/exports/bulk-checks/{check_id}.csv", export_bulk_check, methods=["GET"]),
    ]
    if runtime.metrics is not None:
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    if config.graphiql.enabled:
        # GraphiQL's own assets (no CDN in closed networks), and / as its address.
        routes += [
            Mount(ASSETS_PATH, AssetFiles()),
            Route("/", redirect_to_ide, methods=["GET"]),
        ]
    app = Starlette(
        routes=routes,
        # Outermost first. Each refusal costs less than the next step: an unknown key is 401
        # before any rate is counted, and only a complete body takes a place in flight. The
        # access log sees every answer, the last resort's 500 included.
        middleware=[
            Middleware(AccessLogMiddleware, metrics=runtime.metrics),
            # Outside everything that answers, so a browser can read every answer: 401, 429,
            # 413 and the last resort's 500 carry the CORS headers too, and a preflight is
            # answered here, before authentication and rate limits (it carries no key).
            *_cors(config.http.cors_allow_origins),
            # Compresses every answer the layers below give, GraphiQL's assets included; it
            # only reads responses, so the request limits below count what the client sent.
            *_gzip(config.http.gzip_min_bytes),
            Middleware(LastResortMiddleware),
            Middleware(AuthMiddleware, authenticator=runtime.authenticator),
            Middleware(RateLimitMiddleware, limits=limits, shared=runtime.client_rates),
            Middleware(
                BodyLimitMiddleware,
                limits=limits,
                keyed_max_bytes=bulk_body_bytes(config.background.max_bulk_codes),
            ),
            Middleware(LoadSheddingMiddleware, max_in_flight=limits.max_in_flight),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def _cors(origins: tuple[str, ...]) -> list[Middleware]:
    """[http] cors_allow_origins: browser pages of these origins may call the gateway."""
    if not origins:
        return []  # no browser page of another origin may read an answer
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            # Accept (application/graphql-response+json) and Content-Type (application/json)
            # are named although Starlette always allows them: they are what GraphQL over
            # HTTP sends. API keys travel in Authorization, never in cookies: no credentials.
            allow_headers=["Authorization", "Content-Type", "Accept"],
            # 429 and 503 say when to come back; a page's script may read it.
            expose_headers=["Retry-After"],
            max_age=600,
        )
    ]


def _gzip(min_bytes: int) -> list[Middleware]:
    """[http] gzip_min_bytes: answers at least this large are gzipped; 0 switches it off."""
    if min_bytes == 0:
        return []
    # Level 6, zlib's default: within 1% of Starlette's 9 in size, for less than half the
    # CPU (GraphiQL's 3.5 MB script: 92 ms instead of 212 ms).
    return [Middleware(GZipMiddleware, minimum_size=min_bytes, compresslevel=6)]


async def healthz(_: Request) -> JSONResponse:
    """Liveness: the process answers; department health is the `sources` query."""
    return JSONResponse({"status": "ok"})
