"""The per-request context every resolver receives, and the GraphQL view that builds it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gateway.auth import ANONYMOUS, Caller
from gateway.config import Role
from resolvers.loaders import Loaders

if TYPE_CHECKING:
    from gateway.runtime import Runtime


@dataclass(slots=True)
class RequestContext:
    """Caller, fresh loaders and one fixed 'today' for the whole request."""

    request: Request | WebSocket
    response: Response | WebSocket
    runtime: Runtime
    caller: Caller
    loaders: Loaders
    today: date
    now: datetime

    @property
    def is_regulator(self) -> bool:
        """True for the regulator role (full ID numbers, inactive and repaired records)."""
        return self.caller.role is Role.REGULATOR


class GatewayGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view with our context: one Loaders per request."""

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
            runtime=runtime,
            caller=caller,
            loaders=Loaders(runtime.adapters),
            today=now.date(),
            now=now,
        )
