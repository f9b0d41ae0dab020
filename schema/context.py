"""What every resolver receives: the caller, the request's loaders and the gateway's services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from adapters.base import Adapter
from core.audit import AuditStore
from core.roles import Caller
from resolvers.bulk import BulkChecks
from resolvers.catalogue import Catalogue
from resolvers.loaders import Loaders
from resolvers.watchlists import Watchlists
from store.changes import ChangeStore


@dataclass(frozen=True, slots=True)
class Services:
    """The long-lived parts resolvers use; built once by the gateway's runtime at start."""

    adapters: Sequence[Adapter]
    catalogue: Catalogue
    audit: AuditStore
    max_batch: int
    search_page_max: int
    spot_check_ratios: Mapping[str, float]
    # Bulk checks on the state store (contract §8); set by the runtime.
    bulk: BulkChecks | None = None
    # Watchlists and the changes found (contract §9); set by the runtime.
    watchlists: Watchlists | None = None
    change_feed: ChangeStore | None = None

    def searcher(self) -> Adapter | None:
        """The adapter that searches subjects by name, if any source can."""
        return next((a for a in self.adapters if a.supports_search), None)


@dataclass(slots=True)
class RequestContext:
    """Caller, fresh loaders and one fixed 'today' for the whole request."""

    request: Request | WebSocket
    response: Response | WebSocket | None
    services: Services
    caller: Caller
    loaders: Loaders
    today: date
    now: datetime
    # graphql-transport-ws: the connection_init payload (the API key), set by strawberry.
    connection_params: dict[str, object] | None = None

    @property
    def is_regulator(self) -> bool:
        """True for the regulator role (full ID numbers, inactive and repaired records)."""
        return self.caller.is_regulator
