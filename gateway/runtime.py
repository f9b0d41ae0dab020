"""The gateway's long-lived parts, opened and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from adapters.base import Adapter
from adapters.registry import build_adapter
from core.clock import Clock
from gateway.audit_store import AuditLog, load_audit_key
from gateway.auth import Authenticator
from gateway.config import GatewayConfig
from gateway.gc_tuning import settle_heap
from resolvers.catalogue import Catalogue, load_catalogue
from schema.context import Services

log = logging.getLogger(__name__)


class Runtime:
    """Config, clock and one adapter per department, each with its own HTTP session."""

    def __init__(self, config: GatewayConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.authenticator = Authenticator(config.clients)
        # Read once, here: a missing, unreadable or short key stops the gateway (ConfigError).
        key_file = config.audit.key_file
        key = load_audit_key(key_file) if key_file is not None else None
        self.audit = AuditLog(config.audit.url, config.audit.timeout_s, key)
        # Checked at start: a bad catalogue entry stops the gateway before it serves.
        self.catalogue: Catalogue = load_catalogue()
        self.adapters: list[Adapter] = []
        self._sessions: list[aiohttp.ClientSession] = []
        # The adapters list is filled in place at start, so the services see it then.
        self._services = Services(
            adapters=self.adapters,
            catalogue=self.catalogue,
            audit=self.audit,
            max_batch=config.limits.max_batch,
            search_page_max=config.limits.search_page_max,
            spot_check_ratios=config.supervision.ratios,
        )

    async def start(self) -> None:
        """Open the sessions and start the adapters (file sources take their first snapshot)."""
        for source in self.config.sources.values():
            # One session per source: its own connection pool, closed with the gateway.
            session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=source.timeout_s),
                connector=aiohttp.TCPConnector(limit=max(source.max_concurrency, 1) * 4),
            )
            self._sessions.append(session)
            self.adapters.append(build_adapter(source, session, self.clock))
        if self.audit.key is None:
            # contract §5: without a key, a chain rewritten and recomputed, or cut short,
            # still verifies; operators must know they run without that protection.
            log.warning(
                "the audit chain of %s is unkeyed: set [audit] key_file so that a rewritten "
                "or shortened chain is detected (docs/privacy.md)",
                self.audit.path,
            )
        await asyncio.gather(self.audit.start(), *(adapter.start() for adapter in self.adapters))
        settle_heap()
        log.info("gateway started with %d sources", len(self.adapters))

    async def close(self) -> None:
        """Stop the adapters' background work, then close their sessions."""
        await asyncio.gather(
            self.audit.close(), *(a.close() for a in self.adapters), return_exceptions=True
        )
        await asyncio.gather(*(s.close() for s in self._sessions), return_exceptions=True)
        self.adapters.clear()
        self._sessions.clear()

    @property
    def services(self) -> Services:
        """What resolvers use: the adapters (filled at start), catalogue, audit and limits."""
        return self._services
