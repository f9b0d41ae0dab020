"""The GraphQL endpoint: strawberry's ASGI view, building each request's context."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema.base import BaseSchema

from core.roles import ANONYMOUS, Caller
from gateway.config import GraphiQLConfig
from gateway.graphiql import page_html, page_response
from resolvers.loaders import Loaders
from schema.context import RequestContext

if TYPE_CHECKING:
    from gateway.runtime import Runtime


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view with our context (one Loaders per request) and our GraphiQL page."""

    def __init__(self, schema: BaseSchema, *, graphiql: GraphiQLConfig) -> None:
        # Without an IDE strawberry answers a browser's GET /graphql with 404.
        super().__init__(schema, graphql_ide="graphiql" if graphiql.enabled else None)
        self._ide_html = page_html(graphiql.example_uscc)

    @property
    def graphql_ide_html(self) -> str:
        """Our offline page in place of strawberry's, which loads its assets from a CDN."""
        return self._ide_html

    async def render_graphql_ide(self, request: Request) -> Response:
        """Called by strawberry for a browser's GET /graphql while `[graphiql] enabled`."""
        return page_response(self._ide_html)

    def encode_json(self, data: object) -> bytes:
        """Every JSON answer: UTF-8 as it is, so curl shows 名称 rather than \\uXXXX escapes."""
        try:
            return orjson.dumps(data)
        except (orjson.JSONEncodeError, TypeError):
            # Text UTF-8 cannot carry (a lone surrogate echoed from a variable) is escaped
            # instead: an odd input is answered, never a 500.
            return json.dumps(data, separators=(",", ":")).encode("ascii")

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> RequestContext:
        """Called by strawberry once per request."""
        runtime: Runtime = request.app.state.runtime
        caller: Caller = request.scope.get("state", {}).get("caller", ANONYMOUS)
        now = runtime.clock.now()
        return RequestContext(
            request=request,
            response=response,
            services=runtime.services,
            caller=caller,
            loaders=Loaders(runtime.services.adapters),
            today=now.date(),
            now=now,
        )
