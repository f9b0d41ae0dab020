"""The tables of the gateway's own state (contract §7–§11): [store], [background], [webhooks]
and [cache]."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from store.database_url import SQLITE_PREFIX, sqlite_path

POSTGRES_PREFIXES = ("postgresql://", "postgres://")
STATE_FILE = "state.db"


class StateConfigError(ValueError):
    """A bad entry in [store] or [background]; gateway.config turns it into a ConfigError."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """[store]: where bulk checks (and later watchlists) live; SQLite file or PostgreSQL."""

    url: str

    @property
    def postgres(self) -> bool:
        """True for a PostgreSQL URL (libpq form), which several replicas can share."""
        return self.url.startswith(POSTGRES_PREFIXES)


@dataclass(frozen=True, slots=True)
class BackgroundConfig:
    """[background]: how much of the departments background work may take, and its bounds."""

    # contract §7: never more than this share of a department's rate or concurrency.
    share: float = 0.7
    # A claimed piece of work is another process's to take over after this long unrenewed.
    lease_s: float = 30.0
    # contract §8: codes a startBulkCheck accepts.
    max_bulk_codes: int = 50_000
    # contract §8: how long a department failing for a code is asked again before the
    # result is final (INCOMPLETE).
    retry_window_s: float = 600.0
    # contract §9: members of one watchlist, and how often each is checked again.
    max_watchlist_size: int = 100_000
    refresh_interval_s: float = 86_400.0


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """[webhooks]: URL prefixes watchlists may send changes to (contract §9); none by default."""

    allow: tuple[str, ...] = ()

    def allows(self, url: str) -> bool:
        """Used by createWatchlist: the URL starts with one of the operator's prefixes."""
        return any(url.startswith(prefix) for prefix in self.allow)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """[cache] (contract §11): the Redis several replicas share; absent: all in-process."""

    url: str
    # Replicas of the deployment: while Redis cannot be reached, each keeps rate / replicas
    # of the departments' paces and of the clients' rate limits.
    replicas: int = 2
    # The longest one Redis operation may take before the replica falls back (a lookup
    # makes one to three; the departments answer in 20-300 ms). Not shorter: a replica
    # that falls back paces the courts on its own share while the others keep the shared
    # pace, so a spurious timeout under load (50 ms was measured to be one on two busy
    # cores) lets the deployment past the courts' 50/s for that moment.
    timeout_s: float = 0.5
    # Put before every key: several deployments (staging, production) can share one Redis.
    key_prefix: str = "cg:"


REDIS_SCHEMES = ("redis", "rediss", "unix")
STATE_TABLES = ("store", "background", "webhooks", "cache")


def store_config(table: Mapping[str, Any], audit_url: str) -> StoreConfig:
    """[store]; without a url, the file state.db beside a SQLite audit store."""
    _known(table, "store", {"url"})
    url = table.get("url")
    if url is None:
        return StoreConfig(default_store_url(audit_url))
    if not isinstance(url, str):
        raise StateConfigError("[store] url must be a string")
    if url.startswith(POSTGRES_PREFIXES):
        return StoreConfig(url)
    if not url.startswith(SQLITE_PREFIX):
        raise StateConfigError("[store] url must be sqlite:///<path> or postgresql://…")
    try:
        sqlite_path(url)
    except ValueError as exc:
        raise StateConfigError(f"[store] url {exc}") from None
    return StoreConfig(url)


def default_store_url(audit_url: str) -> str:
    """The embedded default: state.db in the audit store's directory (one place to back up)."""
    if audit_url.startswith(SQLITE_PREFIX):
        folder = PurePosixPath(str(sqlite_path(audit_url))).parent
        return f"{SQLITE_PREFIX}{folder / STATE_FILE}"
    # An audit store on PostgreSQL (several replicas) and no [store]: the same database.
    return audit_url


def background_config(table: Mapping[str, Any]) -> BackgroundConfig:
    """[background]."""
    _known(
        table,
        "background",
        {
            "share",
            "lease_s",
            "max_bulk_codes",
            "retry_window_s",
            "max_watchlist_size",
            "refresh_interval_s",
        },
    )
    defaults = BackgroundConfig()
    share = _number(table, "share", defaults.share)
    if not 0 < share <= 1:
        raise StateConfigError("[background] share must be above 0 and at most 1")
    lease_s = _number(table, "lease_s", defaults.lease_s)
    if not 5 <= lease_s <= 3600:
        raise StateConfigError("[background] lease_s must be between 5 and 3600")
    codes = table.get("max_bulk_codes", defaults.max_bulk_codes)
    if isinstance(codes, bool) or not isinstance(codes, int) or not 1 <= codes <= 1_000_000:
        raise StateConfigError("[background] max_bulk_codes must be a whole number 1-1000000")
    window = _number(table, "retry_window_s", defaults.retry_window_s)
    if not 0 <= window <= 86_400:
        raise StateConfigError("[background] retry_window_s must be between 0 and 86400")
    size = table.get("max_watchlist_size", defaults.max_watchlist_size)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1_000_000:
        raise StateConfigError("[background] max_watchlist_size must be a whole number 1-1000000")
    interval = _number(table, "refresh_interval_s", defaults.refresh_interval_s)
    if not 60 <= interval <= 30 * 86_400:
        raise StateConfigError("[background] refresh_interval_s must be between 60 and 2592000")
    return BackgroundConfig(share, lease_s, codes, window, size, interval)


def webhooks_config(table: Mapping[str, Any]) -> WebhooksConfig:
    """[webhooks]: allow, a list of http(s) URL prefixes each naming at least a host."""
    _known(table, "webhooks", {"allow"})
    allow = table.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        raise StateConfigError("[webhooks] allow must be a list of URL prefixes")
    for prefix in allow:
        parts = urlsplit(prefix)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StateConfigError(f"[webhooks] allow: {prefix!r} is not an http(s) URL prefix")
        if parts.path in ("",) and not prefix.endswith("/"):
            # "https://bank.example" would let "https://bank.example.evil.com/" through.
            raise StateConfigError(
                f"[webhooks] allow: {prefix!r} must end with / after the host, e.g. {prefix}/"
            )
    return WebhooksConfig(tuple(allow))


def cache_config(table: Mapping[str, Any]) -> CacheConfig | None:
    """[cache]; None when the table is absent (everything in-process)."""
    if not table:
        return None
    _known(table, "cache", {"url", "replicas", "timeout_s", "key_prefix"})
    url = table.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in REDIS_SCHEMES:
        raise StateConfigError(
            "[cache] url must be a Redis URL: redis://host:6379/0, rediss://… or unix://…"
        )
    defaults = CacheConfig(url)
    replicas = table.get("replicas", defaults.replicas)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 1000:
        raise StateConfigError("[cache] replicas must be a whole number 1-1000")
    timeout_s = table.get("timeout_s", defaults.timeout_s)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
        raise StateConfigError("[cache] timeout_s must be a number")
    if not 0.001 <= timeout_s <= 5:
        raise StateConfigError("[cache] timeout_s must be between 0.001 and 5")
    prefix = table.get("key_prefix", defaults.key_prefix)
    if not isinstance(prefix, str) or not prefix or len(prefix) > 64 or not prefix.isprintable():
        raise StateConfigError("[cache] key_prefix must be 1-64 printable characters")
    return CacheConfig(url, replicas, float(timeout_s), prefix)


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateConfigError(f"[background] {key} must be a number")
    return float(value)


def _known(table: Mapping[str, Any], where: str, keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise StateConfigError(f"[{where}] has unknown key(s): {', '.join(unknown)}")
