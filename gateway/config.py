"""The TOML configuration of contract §6, parsed and checked once at start."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import SourceConfig
from adapters.options import OptionError
from adapters.registry import check_source_options, default_max_concurrency
from core.identity import InvalidIdentity, normalize_uscc
from core.roles import QueryPurpose, Role
from gateway.config_operations import (
    OPERATIONS_TABLES,
    HttpConfig,
    LoggingConfig,
    MetricsConfig,
    OperationsConfigError,
    PersistedConfig,
    TracingConfig,
    http_config,
    logging_config,
    metrics_config,
    persisted_config,
    tracing_config,
)
from gateway.config_state import (
    POSTGRES_PREFIXES,
    STATE_TABLES,
    BackgroundConfig,
    CacheConfig,
    StateConfigError,
    StoreConfig,
    WebhooksConfig,
    background_config,
    cache_config,
    default_store_url,
    store_config,
    webhooks_config,
)
from schema.query_limits import DocumentLimits
from store.database_url import sqlite_path

# contract §6's keys of every [sources.<name>] table; the rest are the adapter's knobs.
_SOURCE_KEYS = {"url", "timeout_s", "max_concurrency"}
DEPARTMENT_SOURCES = ("courts", "market", "tax", "water")
# contract §6: a response waits at most timeout_s + 1 s; a minute is already far too long.
MAX_SOURCE_TIMEOUT_S = 60.0


class ConfigError(ValueError):
    """A configuration the gateway refuses to start with; the message names the entry."""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """One [[clients]] entry: an API key's hash and what its holder may do."""

    id: str
    role: Role
    key_sha256: str
    purposes: tuple[str, ...] = ()


DEFAULT_AUDIT_URL = "sqlite:///var/lib/credit-gateway/audit.db"


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Where personal-information queries are logged, and how long a locked store is waited for."""

    url: str = DEFAULT_AUDIT_URL
    timeout_s: float = 2.0
    # contract §5 (2026-11-30): a key, kept away from the store, that seals the entries and
    # the chain's head; without it the gateway warns at start that the chain is unkeyed.
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class RateConfig:
    """A token bucket: `burst` requests at once, refilled at `rate_per_s` requests a second."""

    rate_per_s: float = 10.0
    burst: int = 30


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Request limits (docs/operations.md says why each default); batch size per contract."""

    max_batch: int = 1000
    search_page_max: int = 100
    max_depth: int = 10
    max_aliases: int = 20
    max_tokens: int = 2000
    max_body_bytes: int = 1024 * 1024
    max_query_string_bytes: int = 8192
    max_in_flight: int = 64
    # Field selections of one operation, fragments expanded, and how often one response
    # name may repeat in one selection set: bound the work a document costs before it is
    # validated (graphql-core compares same-named fields pairwise).
    max_fields: int = 1000
    max_field_repeats: int = 10
    # Slow clients: the headers and the body of a request must arrive within these, and
    # bodies still arriving may hold at most this many bytes in all and per client.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_buffered_bytes: int = 64 * 1024 * 1024
    max_client_buffered_bytes: int = 4 * 1024 * 1024
    rate: RateConfig = field(default_factory=RateConfig)
    role_rates: Mapping[Role, RateConfig] = field(default_factory=dict)

    @property
    def document(self) -> DocumentLimits:
        """The limits the schema checks a query document against (QUERY_TOO_COMPLEX)."""
        return DocumentLimits(
            self.max_depth,
            self.max_aliases,
            self.max_tokens,
            self.max_fields,
            self.max_field_repeats,
        )

    def rate_for(self, role: Role) -> RateConfig:
        """The bucket of a caller with this role: its [limits.<role>] table, else the default."""
        return self.role_rates.get(role, self.rate)


DEFAULT_SPOT_CHECK_RATIOS = {"A": 0.05, "B": 0.2, "C": 0.6, "D": 1.0}


@dataclass(frozen=True, slots=True)
class SupervisionConfig:
    """分级分类 spot-check ratio of each class (contract §3 defaults)."""

    ratios: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPOT_CHECK_RATIOS))


@dataclass(frozen=True, slots=True)
class GraphiQLConfig:
    """The in-browser IDE at GET /graphql: whether it is served, and its example subject."""

    enabled: bool = True
    # The USCC the example query opens with; the demo names a subject its sandbox knows.
    example_uscc: str = "91110000MA01B2C34B"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole configuration the app is built from."""

    sources: Mapping[str, SourceConfig]
    clients: tuple[ClientConfig, ...] = ()
    audit: AuditConfig = field(default_factory=AuditConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    supervision: SupervisionConfig = field(default_factory=SupervisionConfig)
    graphiql: GraphiQLConfig = field(default_factory=GraphiQLConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    tracing: TracingConfig = field(default_factory=TracingConfig)
    persisted: PersistedConfig = field(default_factory=PersistedConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    # contract §7: the gateway's own state (bulk checks); None here means beside the audit
    # store, which parse_config always fills in.
    store: StoreConfig | None = None
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    # contract §11: the Redis several replicas share; None: everything in-process.
    cache: CacheConfig | None = None

    @property
    def store_url(self) -> str:
        """[store] url, or its default beside the audit store."""
        return self.store.url if self.store is not None else default_store_url(self.audit.url)


def load_config(path: str | Path) -> GatewayConfig:
    """Read and check a config file; used by every command that takes --config."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc
    return parse_config(data)


def parse_config(data: Mapping[str, Any]) -> GatewayConfig:
    """Build a GatewayConfig from parsed TOML; raises ConfigError naming the bad entry."""
    sections = {"sources", "clients", "audit", "limits", "supervision", "graphiql"}
    unknown = set(data) - sections - set(OPERATIONS_TABLES) - set(STATE_TABLES)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    sources = _table(data, "sources")
    missing = [name for name in DEPARTMENT_SOURCES if name not in sources]
    if missing:
        raise ConfigError(f"[sources] lacks {', '.join(missing)}")
    extra = sorted(set(sources) - set(DEPARTMENT_SOURCES))
    if extra:
        raise ConfigError(f"[sources.{extra[0]}] is not a known department")
    audit = _audit(_table(data, "audit", required=False))
    try:
        store = store_config(_table(data, "store", required=False), audit.url)
        background = background_config(_table(data, "background", required=False))
        webhooks = webhooks_config(_table(data, "webhooks", required=False))
        cache = cache_config(_table(data, "cache", required=False))
    except StateConfigError as exc:
        raise ConfigError(str(exc)) from None
    return GatewayConfig(
        sources={name: _source(name, _table(sources, name)) for name in DEPARTMENT_SOURCES},
        clients=_clients(data.get("clients", [])),
        audit=audit,
        store=store,
        background=background,
        webhooks=webhooks,
        cache=cache,
        limits=_limits(_table(data, "limits", required=False)),
        supervision=_supervision(_table(data, "supervision", required=False)),
        graphiql=_graphiql(_table(data, "graphiql", required=False)),
        **_operations(data),
    )


def _table(data: Mapping[str, Any], key: str, required: bool = True) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _known(table: Mapping[str, Any], where: str, keys: set[str]) -> dict[str, Any]:
    unknown = set(table) - keys
    if unknown:
        raise ConfigError(f"[{where}] has unknown key(s): {', '.join(sorted(unknown))}")
    return dict(table)


def _positive(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"[{where}] {key} must be a positive number")
    return float(value)


def _source(name: str, table: Mapping[str, Any]) -> SourceConfig:
    where = f"sources.{name}"
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"[{where}] url must be an http(s) URL")
    # Keys beyond the contract's are the knobs the department's adapter declares (e.g.
    # courts max_rps, retries): a misspelt one is refused here, not silently ignored.
    options = {k: v for k, v in table.items() if k not in _SOURCE_KEYS}
    try:
        check_source_options(name, options, common=_SOURCE_KEYS)
    except OptionError as exc:
        raise ConfigError(f"[{where}] {exc}") from None
    timeout_s = _positive(table, "timeout_s", where, 2.0)
    if timeout_s > MAX_SOURCE_TIMEOUT_S:
        raise ConfigError(f"[{where}] timeout_s must be at most {MAX_SOURCE_TIMEOUT_S:g} seconds")
    return SourceConfig(
        name=name,
        url=url.rstrip("/"),
        timeout_s=timeout_s,
        max_concurrency=_positive_int(
            table, "max_concurrency", where, default_max_concurrency(name)
        ),
        options=options,
    )


def _clients(entries: Any) -> tuple[ClientConfig, ...]:
    if not isinstance(entries, list):
        raise ConfigError("[[clients]] must be an array of tables")
    clients = tuple(_client(index, entry) for index, entry in enumerate(entries))
    ids = [c.id for c in clients]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"client id {dupes[0]} appears more than once")
    if len({c.key_sha256 for c in clients}) != len(clients):
        raise ConfigError("two clients share one key_sha256")
    return clients


def _client(index: int, entry: Any) -> ClientConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"clients[{index}] must be a table")
    entry = _known(entry, f"clients[{index}]", {"id", "role", "key_sha256", "purposes"})
    client_id = entry.get("id")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"clients[{index}] needs an id")
    try:
        role = Role(entry.get("role"))
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ConfigError(f"client {client_id}: role must be one of {roles}") from None
    key = entry.get("key_sha256")
    if not isinstance(key, str) or not _is_sha256_hex(key):
        raise ConfigError(f"client {client_id}: key_sha256 must be 64 hex digits")
    purposes = entry.get("purposes", [])
    if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
        raise ConfigError(f"client {client_id}: purposes must be a list of strings")
    unknown = sorted(set(purposes) - set(QueryPurpose))
    if unknown:
        # A misspelt purpose would silently deny every person query of this client.
        known = ", ".join(QueryPurpose)
        raise ConfigError(f"client {client_id}: unknown purpose {unknown[0]} (one of {known})")
    return ClientConfig(client_id, role, key.lower(), tuple(purposes))


def _is_sha256_hex(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower())


def _audit(table: Mapping[str, Any]) -> AuditConfig:
    table = _known(table, "audit", {"url", "timeout_s", "key_file"})
    url = table.get("url", DEFAULT_AUDIT_URL)
    if not isinstance(url, str):
        raise ConfigError("[audit] url must be a string such as sqlite:///path/to/audit.db")
    if url.startswith(POSTGRES_PREFIXES):
        # contract §11: one chain in a database every replica appends to (docs/privacy.md).
        _postgres_url(url)
    else:
        try:
            sqlite_path(url)
        except ValueError as exc:
            raise ConfigError(
                f"[audit] url {exc}, or a postgresql:// URL (several replicas)"
            ) from None
    key_file = table.get("key_file")
    if key_file is not None and (not isinstance(key_file, str) or not key_file.strip()):
        raise ConfigError("[audit] key_file must be the path of a file")
    return AuditConfig(
        url=url,
        timeout_s=_positive(table, "timeout_s", "audit", 2.0),
        key_file=Path(key_file) if key_file is not None else None,
    )


def _postgres_url(url: str) -> None:
    """[audit] url in libpq's URL form, checked as libpq reads it (nothing is connected)."""
    from psycopg import Error as PsycopgError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except PsycopgError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot be parsed"
        raise ConfigError(f"[audit] url is not a valid PostgreSQL URL: {reason}") from None


_RATE_KEYS = {"rate_per_s", "burst"}


def _limits(table: Mapping[str, Any]) -> LimitsConfig:
    roles = {role.value for role in Role}
    counts = {
        "max_depth",
        "max_aliases",
        "max_tokens",
        "max_body_bytes",
        "max_query_string_bytes",
        "max_in_flight",
        "max_fields",
        "max_field_repeats",
        "max_buffered_bytes",
        "max_client_buffered_bytes",
    }
    seconds = {"header_timeout_s", "body_timeout_s"}
    known = {"max_batch", "search_page_max"} | counts | seconds | _RATE_KEYS | roles
    table = _known(table, "limits", known)
    default = LimitsConfig()

    def count(key: str) -> int:
        return _positive_int(table, key, "limits", getattr(default, key))

    rate = _rate(table, "limits", default.rate)
    if count("max_client_buffered_bytes") < count("max_body_bytes"):
        # Else the largest body a client may send could never be buffered: always a 429.
        raise ConfigError("[limits] max_client_buffered_bytes must be at least max_body_bytes")
    if count("max_buffered_bytes") < count("max_client_buffered_bytes"):
        raise ConfigError("[limits] max_buffered_bytes must be at least max_client_buffered_bytes")
    return LimitsConfig(
        max_batch=int(_positive(table, "max_batch", "limits", 1000)),
        search_page_max=int(_positive(table, "search_page_max", "limits", 100)),
        max_depth=count("max_depth"),
        max_aliases=count("max_aliases"),
        max_tokens=count("max_tokens"),
        max_body_bytes=count("max_body_bytes"),
        max_query_string_bytes=count("max_query_string_bytes"),
        max_in_flight=count("max_in_flight"),
        max_fields=count("max_fields"),
        max_field_repeats=count("max_field_repeats"),
        header_timeout_s=_positive(table, "header_timeout_s", "limits", default.header_timeout_s),
        body_timeout_s=_positive(table, "body_timeout_s", "limits", default.body_timeout_s),
        max_buffered_bytes=count("max_buffered_bytes"),
        max_client_buffered_bytes=count("max_client_buffered_bytes"),
        rate=rate,
        role_rates={Role(name): _role_rate(table[name], name, rate) for name in roles & set(table)},
    )


def _role_rate(table: Any, role: str, default: RateConfig) -> RateConfig:
    # A role's table only needs the keys it changes; the rest come from [limits].
    where = f"limits.{role}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table of rate_per_s and burst")
    return _rate(_known(table, where, _RATE_KEYS), where, default)


def _rate(table: Mapping[str, Any], where: str, default: RateConfig) -> RateConfig:
    return RateConfig(
        rate_per_s=_positive(table, "rate_per_s", where, default.rate_per_s),
        burst=_positive_int(table, "burst", where, default.burst),
    )


def _positive_int(table: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"[{where}] {key} must be a positive whole number")
    return value


def _supervision(table: Mapping[str, Any]) -> SupervisionConfig:
    ratios = _known(table, "supervision", set(DEFAULT_SPOT_CHECK_RATIOS))
    merged = {**DEFAULT_SPOT_CHECK_RATIOS}
    for name, value in ratios.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"[supervision] {name} must be a ratio between 0 and 1")
        merged[name] = float(value)
    return SupervisionConfig(merged)


def _graphiql(table: Mapping[str, Any]) -> GraphiQLConfig:
    table = _known(table, "graphiql", {"enabled", "example_uscc"})
    default = GraphiQLConfig()
    enabled = table.get("enabled", default.enabled)
    if not isinstance(enabled, bool):
        raise ConfigError("[graphiql] enabled must be true or false")
    example = table.get("example_uscc", default.example_uscc)
    try:
        example = normalize_uscc(example) if isinstance(example, str) else None
    except InvalidIdentity:
        example = None
    if example is None:
        raise ConfigError("[graphiql] example_uscc must be a valid USCC")
    return GraphiQLConfig(enabled=enabled, example_uscc=example)


def _operations(data: Mapping[str, Any]) -> dict[str, Any]:
    # contract §10's tables, each parsed by gateway/config_operations.py.
    parsers = {
        "metrics": metrics_config,
        "logging": logging_config,
        "tracing": tracing_config,
        "persisted": persisted_config,
        "http": http_config,
    }
    try:
        return {name: parse(_table(data, name, required=False)) for name, parse in parsers.items()}
    except OperationsConfigError as exc:
        raise ConfigError(str(exc)) from None
