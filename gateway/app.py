"""Wiring only: the Starlette app, its routes, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from core.clock import Clock
from core.masking import install_log_masking
from gateway.access_log import AccessLogMiddleware
from gateway.auth import AuthMiddleware
from gateway.body_limit import BodyLimitMiddleware
from gateway.config import GatewayConfig
from gateway.graphiql import ASSETS_PATH, AssetFiles, redirect_to_ide
from gateway.graphql_view import GatewayGraphQL
from gateway.last_resort import LastResortMiddleware
from gateway.load_shedding import LoadSheddingMiddleware
from gateway.rate_limit import RateLimitMiddleware
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
    graphql = GatewayGraphQL(build_schema(limits.document), graphiql=config.graphiql)
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
    ]
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
            Middleware(AccessLogMiddleware),
            Middleware(LastResortMiddleware),
            Middleware(AuthMiddleware, authenticator=runtime.authenticator),
            Middleware(RateLimitMiddleware, limits=limits),
            Middleware(BodyLimitMiddleware, limits=limits),
            Middleware(LoadSheddingMiddleware, max_in_flight=limits.max_in_flight),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


async def healthz(_: Request) -> JSONResponse:
    """Liveness: the process answers; department health is the `sources` query."""
    return JSONResponse({"status": "ok"})
