"""The gateway's long-lived parts, opened and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

import aiohttp
from strawberry.extensions import SchemaExtension

from adapters.base import Adapter
from adapters.registry import ADAPTER_TYPES, build_adapter
from adapters.shared import SharedState
from core.clock import Clock
from gateway.audit_store import load_audit_key, open_audit_log
from gateway.auth import Authenticator
from gateway.background import BackgroundScheduler
from gateway.config import GatewayConfig
from gateway.gc_tuning import settle_heap
from gateway.metrics import WEBHOOK, Metrics
from gateway.observer import GatewayObserver
from gateway.readiness import (
    Check,
    Readiness,
    audit_check,
    cache_check,
    snapshot_check,
    store_check,
)
from gateway.redis_budget import RedisPace, RedisRates
from gateway.redis_cache import FALLBACK_KINDS, RedisAnswers, RedisBackend
from gateway.request_record import ObserveOperation, OperationNames
from gateway.tracing import Tracing
from gateway.webhooks import WebhookSender
from resolvers.bulk import BulkChecks, BulkSettings
from resolvers.catalogue import Catalogue, load_catalogue
from resolvers.watchlists import Watchlists, WatchSettings
from schema.context import Services
from store.bulk import BulkStore
from store.changes import ChangeStore
from store.database import open_database
from store.migrate import migrate
from store.watch import WatchStore
from store.webhooks import WebhookStore

log = logging.getLogger(__name__)


class Runtime:
    """Config, clock and one adapter per department, each with its own HTTP session."""

    def __init__(self, config: GatewayConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.authenticator = Authenticator(config.clients)
        # This runtime's own registry (never the process-wide one), or None: /metrics is off.
        departments = [ADAPTER_TYPES[name].department for name in config.sources]
        self.metrics = Metrics(departments) if config.metrics.enabled else None
        # None unless [tracing] otlp_endpoint is set; a ConfigError here, before anything
        # is served, when it is set and OpenTelemetry is not installed.
        self.tracing = Tracing.from_config(config.tracing)
        self.observer = GatewayObserver(self.metrics, self.tracing)
        # contract §11: with [cache] url, answers, single flight, the departments' paces and
        # the clients' rates are shared by every replica through Redis.
        self.cache: RedisBackend | None = None
        self.shared: SharedState | None = None
        self.client_rates: RedisRates | None = None
        if config.cache is not None:
            self.cache = RedisBackend(config.cache)
            self.shared = SharedState(RedisPace(self.cache), RedisAnswers(self.cache))
            self.client_rates = RedisRates(self.cache)
            if self.metrics is not None:
                backend = self.cache
                self.metrics.watch_cache(lambda: backend.up, FALLBACK_KINDS)
                self.cache.on_fallback = self.metrics.cache_fell_back
        self.operation_names = OperationNames()
        # Read once, here: a missing, unreadable or short key stops the gateway (ConfigError).
        key_file = config.audit.key_file
        key = load_audit_key(key_file) if key_file is not None else None
        on_write = self.metrics.audit_written if self.metrics is not None else None
        self.audit = open_audit_log(config.audit.url, config.audit.timeout_s, key, on_write)
        if self.metrics is not None:
            self.metrics.watch_audit_queue(lambda: self.audit.waiting)
        self.readiness = Readiness(self._readiness_checks)
        # Checked at start: a bad catalogue entry stops the gateway before it serves.
        self.catalogue: Catalogue = load_catalogue()
        self.adapters: list[Adapter] = []
        self._sessions: list[aiohttp.ClientSession] = []
        # The adapters list is filled in place at start, so the services see it then.
        services = Services(
            adapters=self.adapters,
            catalogue=self.catalogue,
            audit=self.audit,
            max_batch=config.limits.max_batch,
            search_page_max=config.limits.search_page_max,
            spot_check_ratios=config.supervision.ratios,
        )
        # The gateway's own state (contract §7): connected and migrated at start.
        self.state = open_database(config.store_url)
        bulk_store = BulkStore(self.state)
        watch_store = WatchStore(self.state)
        changes = ChangeStore(self.state)
        # Webhook deliveries of watchlist changes (contract §9), at least once.
        metrics = self.metrics
        self.webhooks = WebhookSender(
            WebhookStore(self.state),
            config.webhooks,
            clock,
            (lambda outcome: metrics.background_finished(WEBHOOK, outcome))
            if metrics is not None
            else None,
        )
        self.background = BackgroundScheduler(
            bulk_store,
            config.background,
            services,
            clock,
            self.metrics,
            watch=watch_store,
            changed=lambda _count: self.webhooks.wake(),
        )
        settings = BulkSettings(max_codes=config.background.max_bulk_codes)
        watch_settings = WatchSettings(
            max_size=config.background.max_watchlist_size,
            allows_webhook=config.webhooks.allows,
        )
        self._services = replace(
            services,
            bulk=BulkChecks(bulk_store, settings, clock, self.background.wake),
            watchlists=Watchlists(
                watch_store, changes, watch_settings, clock, self.background.wake
            ),
            change_feed=changes,
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
            self.adapters.append(
                build_adapter(source, session, self.clock, self.observer, self.shared)
            )
        if self.audit.key is None:
            # contract §5: without a key, a chain rewritten and recomputed, or cut short,
            # still verifies; operators must know they run without that protection.
            log.warning(
                "the audit chain of %s is unkeyed: set [audit] key_file so that a rewritten "
                "or shortened chain is detected (docs/privacy.md)",
                self.audit.path,
            )
        applied = await migrate(self.state)
        if applied:
            log.info("state store migrated to version %d", applied[-1])
        await asyncio.gather(self.audit.start(), *(adapter.start() for adapter in self.adapters))
        # After the adapters: a check that was running when the gateway stopped goes on.
        await self.background.start()
        await self.webhooks.start()
        settle_heap()
        log.info("gateway started with %d sources", len(self.adapters))

    async def close(self) -> None:
        """Stop the adapters' background work, then close their sessions."""
        await self.background.close()
        await self.webhooks.close()
        await asyncio.gather(
            self.audit.close(), *(a.close() for a in self.adapters), return_exceptions=True
        )
        await asyncio.gather(*(s.close() for s in self._sessions), return_exceptions=True)
        await self.state.close()
        if self.cache is not None:
            await self.cache.close()
        self.adapters.clear()
        self._sessions.clear()
        if self.tracing is not None:
            await self.tracing.close()

    def schema_extensions(self) -> list[Callable[[], SchemaExtension]]:
        """Used by the app to build the schema: the operation's label, outcome and span."""
        names, tracing = self.operation_names, self.tracing
        return [lambda: ObserveOperation(names, tracing)]

    def _readiness_checks(self) -> list[tuple[str, Check]]:
        # What this replica cannot serve without, one line each, and the shared cache's
        # state (never unready: it falls back). Departments are not asked.
        return [
            ("audit", audit_check(self.audit)),
            ("store", store_check(self.state)),
            *((("cache", cache_check(self.cache)),) if self.cache is not None else ()),
            *(
                (adapter.department.value.lower(), snapshot_check(adapter))
                for adapter in self.adapters
                if adapter.answers_from_snapshot
            ),
        ]

    @property
    def services(self) -> Services:
        """What resolvers use: the adapters (filled at start), catalogue, audit and limits."""
        return self._services
