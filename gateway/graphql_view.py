"""The GraphQL endpoint: strawberry's ASGI view, building each request's context."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.base import BaseSchema
from strawberry.types import ExecutionResult

from core.errors import ErrorCode
from core.roles import ANONYMOUS, Caller
from gateway.config import GraphiQLConfig
from gateway.graphiql import page_html, page_response
from gateway.persisted import DocumentRefused, TrustedDocuments
from gateway.refusals import refuse
from resolvers.loaders import Loaders
from schema.context import RequestContext

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# GraphQL over HTTP: the media type of a GraphQL response, and the one before it, which
# every client understands and which stays the answer unless a client asks for the new one.
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# A JSON escape of a UTF-16 surrogate (\ud800): orjson refuses a lone one, JSON allows it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


# graphql-transport-ws: seconds to send connection_init, and subscriptions per connection.
WS_INIT_WAIT_S = 10
MAX_SUBSCRIPTIONS = 10


class _NotExecuted(ExecutionResult):
    """A result whose operation never ran, answered without a data entry (400)."""


class _CallerRequestAdapter(StarletteRequestAdapter):
    """Strawberry's view of a request, with the caller the authentication middleware found."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.caller: Caller = request.scope.get("state", {}).get("caller", ANONYMOUS)


class _TextWebSocketAdapter(ASGIWebSocketAdapter):
    """graphql-transport-ws sends text frames: our JSON is bytes (encode_json), sent as text."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        """Called by strawberry for every protocol message of a subscription."""
        encoded = self.view.encode_json(message)
        text = encoded.decode("utf-8") if isinstance(encoded, bytes) else encoded
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view with our context (one Loaders per request) and our GraphiQL page."""

    # parse_http_body decides by role which requests may name a document rather than send one.
    request_adapter_class = _CallerRequestAdapter
    websocket_adapter_class = _TextWebSocketAdapter

    def __init__(
        self,
        schema: BaseSchema,
        *,
        graphiql: GraphiQLConfig,
        documents: TrustedDocuments | None = None,
    ) -> None:
        # Without an IDE strawberry answers a browser's GET /graphql with 404.
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql.enabled else None,
            # WebSockets pass no rate limit or load shedding (HTTP middleware): a connection
            # must say who it is soon, and holds a few subscriptions, each polling the store.
            connection_init_wait_timeout=timedelta(seconds=WS_INIT_WAIT_S),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
        )
        self._ide_html = page_html(graphiql.example_uscc)
        self._documents = documents or TrustedDocuments()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Called by Starlette for /graphql; a request strawberry refuses gets a GraphQL error."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as exc:
            # Strawberry answers these in plain text; ours carry a code like every refusal.
            code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.INVALID_ARGUMENT
            allow = [(b"allow", b"GET, POST")] if exc.status_code == 405 else []
            await refuse(send, exc.status_code, code, exc.reason, allow)
            return
        except DocumentRefused as exc:
            await refuse(send, exc.status, exc.code, exc.message)
            return
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Called by strawberry for a GET: the IDE only when it names no operation at all."""
        # Strawberry looks for `query` alone; a GET naming a registered document (documentId,
        # or Apollo's persistedQuery in `extensions`) is an operation for curl's */* too.
        params = request.query_params
        named = params.get("documentId") is not None or params.get("extensions") is not None
        return not named and super().should_render_graphql_ide(request)

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

    def decode_json(self, data: str | bytes) -> object:
        """Every JSON the client sends (a POST body, GET variables); raises JSONDecodeError."""
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        try:
            # Strict where it matters: UTF-8 only, at most 1024 levels deep, no integer
            # beyond 64 bits (a 5,000-digit one would cost the int parser dearly), no NaN.
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # Said plainly: orjson's words for a GBK body speak of surrogates.
                message = "the text is not UTF-8, which GraphQL over HTTP requires"
                raise json.JSONDecodeError(message, "", exc.start) from exc
            if not _SURROGATE_ESCAPE.search(raw):
                raise
        # Only for a lone surrogate escape, which JSON's grammar allows: the standard library
        # reads it (encode_json escapes it back in the answer), stopped where orjson stops.
        try:
            return json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:
            # Too deep for the stack, NaN, or an integer of more than 4300 digits.
            raise json.JSONDecodeError(f"value refused: {exc}"[:120], "", 0) from exc

    def parse_json(self, data: str | bytes) -> Any:
        """Called by strawberry and parse_http_body for JSON text: a 400 when it is not JSON."""
        try:
            return self.decode_json(data)
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"the request is not valid JSON ({exc.msg})") from exc

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Called by strawberry once per request: the one place a request is read and checked."""
        transport = self._get_stream_transport_from_headers(request.headers)
        protocol: GraphQLRequestProtocol = transport.protocol if transport else "http"
        if request.method == "GET":
            data: object = self._query_params(request.query_params)
        else:
            media_type = (request.content_type or "").partition(";")[0].strip().lower()
            if media_type != JSON:
                message = "send the request as JSON, with Content-Type: application/json"
                raise HTTPException(415, message)
            data = self.parse_json(await request.get_body())
        caller = request.caller if isinstance(request, _CallerRequestAdapter) else ANONYMOUS
        return _request_data(data, protocol, self._documents, caller)

    def _query_params(self, params: Mapping[str, str | list[str] | None]) -> dict[str, object]:
        values: dict[str, object] = dict(params)
        for name in ("variables", "extensions"):
            text = values.get(name)
            # An empty parameter (variables=) is taken as absent, as a form would send it.
            values[name] = self.parse_json(text) if isinstance(text, str) and text else None
        return values

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """Called by strawberry once per request: the answer's media type, from Accept."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Called by strawberry for the operation; a request error is a 400 in the new type."""
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        if sub_response.media_type != GRAPHQL_RESPONSE_JSON or not _never_ran(result):
            # application/json: 200 with "data": null, as before; clients that accept only
            # it may read nothing but a 200 body.
            return result
        sub_response.status_code = 400
        return _NotExecuted(data=None, errors=result.errors, extensions=result.extensions)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Called by strawberry for the response body; a request error has no data entry."""
        response = await super().process_result(request, result)
        if isinstance(result, _NotExecuted):
            del response["data"]
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Called by strawberry with the body: sent in the media type get_sub_response chose."""
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = sub_response.media_type or JSON
        return response

    async def on_ws_connect(self, context: RequestContext) -> None:
        """graphql-transport-ws: the API key in connection_init's payload (contract §9)."""
        params = context.connection_params or {}
        sent = params.get("Authorization", params.get("authorization"))
        runtime: Runtime = context.request.app.state.runtime
        caller = runtime.authenticator.caller(sent if isinstance(sent, str) else None)
        if caller is None or (sent is not None and not isinstance(sent, str)):
            # An unknown key closes the connection (4403), as 401 answers it over HTTP.
            raise ConnectionRejectionError()
        context.caller = caller

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


def response_media_type(accept: str | None) -> str:
    """The media type of a GraphQL answer to a request with this Accept header."""
    if not accept:
        return JSON  # GraphQL over HTTP: no Accept is taken as application/json
    exact: dict[str, float] = {}
    wildcard = 0.0
    for media_range in accept.split(","):
        media_type, *params = (part.strip().lower() for part in media_range.split(";"))
        quality = _quality(params)
        if media_type in (JSON, GRAPHQL_RESPONSE_JSON):
            exact[media_type] = max(quality, exact.get(media_type, 0.0))
        elif media_type in ("*/*", "application/*"):
            wildcard = max(quality, wildcard)
    # A wildcard stands for application/json: clients that send */* (curl, fetch) have
    # always been answered with it and may know no other.
    json_quality = exact.get(JSON, wildcard)
    new_quality = exact.get(GRAPHQL_RESPONSE_JSON, 0.0)
    if new_quality > 0 and new_quality >= json_quality:
        return GRAPHQL_RESPONSE_JSON
    # Also when the client accepts neither: the spec lets a server disregard Accept rather
    # than answer 406, and the body is JSON either way.
    return JSON


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def _never_ran(result: ExecutionResult) -> bool:
    # A request error (GraphQL over HTTP): the document did not parse or validate, or the
    # variables did not coerce. None of those errors points at a field of the result; an
    # error raised while fields resolved carries their path. (An internal failure before
    # execution, masked as "Internal error.", has no path either and is answered 400 too.)
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def _request_data(
    data: object, protocol: GraphQLRequestProtocol, documents: TrustedDocuments, caller: Caller
) -> GraphQLRequestData:
    """The operation a request names, once its shape is what GraphQL over HTTP allows."""
    if isinstance(data, list):
        raise HTTPException(400, "batches (a JSON array) are not supported; send one operation")
    if not isinstance(data, dict):
        raise HTTPException(400, 'the request must be a JSON object such as {"query": "{ … }"}')
    # Its own text, or the registered document its documentId (or Apollo's persistedQuery
    # extension) names; a role limited to registered documents is refused any text.
    query = documents.query_of(data, caller.role)
    if not isinstance(query, str):
        message = "`query` is missing" if query is None else "`query` must be a string"
        raise HTTPException(400, message)
    for name in ("variables", "extensions"):
        if not isinstance(data.get(name), dict | None):
            raise HTTPException(400, f"`{name}` must be an object or null")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise HTTPException(400, "`operationName` must be a string or null")
    return GraphQLRequestData(
        query=query,
        variables=data.get("variables"),
        operation_name=operation_name,
        extensions=data.get("extensions"),
        protocol=protocol,
    )


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
