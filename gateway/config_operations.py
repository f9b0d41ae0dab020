"""The operators' tables of the config (contract §10): metrics, logs, traces, partners' HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.roles import Role


class OperationsConfigError(ValueError):
    """A bad entry in one of these tables; gateway.config turns it into a ConfigError."""


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """[metrics]: whether /metrics answers (Prometheus text format)."""

    enabled: bool = True


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """[logging]: "text" lines for people, or "json", one object a line, for collectors."""

    format: str = "text"


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """[tracing]: OpenTelemetry spans to an OTLP/HTTP collector; off without an endpoint."""

    otlp_endpoint: str | None = None
    service_name: str = "credit-gateway"
    sample_ratio: float = 1.0

    @property
    def enabled(self) -> bool:
        """True when spans are exported (an endpoint is configured)."""
        return self.otlp_endpoint is not None


@dataclass(frozen=True, slots=True)
class PersistedConfig:
    """[persisted]: trusted documents partners may send by hash, and who may send only those."""

    path: Path | None = None
    only_for: tuple[Role, ...] = ()


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """[http]: what browsers and partners' HTTP clients get beyond GraphQL itself."""

    # CORS: origins whose browser pages may call the gateway; none by default.
    cors_allow_origins: tuple[str, ...] = ()
    # Answers at least this large are gzipped for clients that accept it; 0 switches it off.
    gzip_min_bytes: int = 1024
    # Roles whose queries may introspect the schema (GraphiQL needs it); all by default.
    introspection_roles: tuple[Role, ...] = field(default_factory=lambda: tuple(Role))


OPERATIONS_TABLES = ("metrics", "logging", "tracing", "persisted", "http")


def metrics_config(table: Mapping[str, Any]) -> MetricsConfig:
    """[metrics]."""
    _known(table, "metrics", {"enabled"})
    return MetricsConfig(enabled=_bool(table, "metrics", "enabled", True))


def logging_config(table: Mapping[str, Any]) -> LoggingConfig:
    """[logging]."""
    _known(table, "logging", {"format"})
    fmt = table.get("format", "text")
    if fmt not in ("text", "json"):
        raise OperationsConfigError('[logging] format must be "text" or "json"')
    return LoggingConfig(format=fmt)


def tracing_config(table: Mapping[str, Any]) -> TracingConfig:
    """[tracing]."""
    _known(table, "tracing", {"otlp_endpoint", "service_name", "sample_ratio"})
    endpoint = table.get("otlp_endpoint")
    if endpoint is not None and not _http_url(endpoint):
        raise OperationsConfigError("[tracing] otlp_endpoint must be an http(s) URL")
    name = table.get("service_name", "credit-gateway")
    if not isinstance(name, str) or not name.strip():
        raise OperationsConfigError("[tracing] service_name must be a non-empty string")
    ratio = table.get("sample_ratio", 1.0)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise OperationsConfigError("[tracing] sample_ratio must be a number from 0 to 1")
    return TracingConfig(otlp_endpoint=endpoint, service_name=name, sample_ratio=float(ratio))


def persisted_config(table: Mapping[str, Any]) -> PersistedConfig:
    """[persisted]."""
    _known(table, "persisted", {"path", "only_for"})
    path = table.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise OperationsConfigError("[persisted] path must be the path of a file")
    only_for = _roles(table, "persisted", "only_for", ())
    if only_for and path is None:
        # Roles limited to registered documents, with none registered, could ask nothing.
        raise OperationsConfigError("[persisted] only_for needs a path of registered documents")
    return PersistedConfig(path=Path(path) if path else None, only_for=only_for)


def http_config(table: Mapping[str, Any]) -> HttpConfig:
    """[http]."""
    _known(table, "http", {"cors_allow_origins", "gzip_min_bytes", "introspection_roles"})
    origins = table.get("cors_allow_origins", [])
    if not isinstance(origins, list) or not all(_origin(o) for o in origins):
        raise OperationsConfigError(
            "[http] cors_allow_origins must be a list of origins such as https://dash.example"
        )
    size = table.get("gzip_min_bytes", 1024)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise OperationsConfigError("[http] gzip_min_bytes must be a whole number >= 0")
    roles = _roles(table, "http", "introspection_roles", tuple(Role))
    return HttpConfig(
        cors_allow_origins=tuple(origins), gzip_min_bytes=size, introspection_roles=roles
    )


def _known(table: Mapping[str, Any], where: str, keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise OperationsConfigError(f"[{where}] has unknown key(s): {', '.join(unknown)}")


def _bool(table: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise OperationsConfigError(f"[{where}] {key} must be true or false")
    return value


def _roles(
    table: Mapping[str, Any], where: str, key: str, default: tuple[Role, ...]
) -> tuple[Role, ...]:
    value = table.get(key)
    if value is None:
        return default
    names = ", ".join(r.value for r in Role)
    if not isinstance(value, list) or not all(v in {r.value for r in Role} for v in value):
        raise OperationsConfigError(f"[{where}] {key} must be a list of roles ({names})")
    return tuple(Role(v) for v in dict.fromkeys(value))


def _http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _origin(value: object) -> bool:
    # An origin is scheme://host[:port], nothing after it; "*" is refused on purpose: a
    # gateway answering personal data names the dashboards it serves.
    if not _http_url(value):
        return False
    assert isinstance(value, str)
    parts = urlsplit(value)
    return parts.path in ("", "/") and not parts.query and not parts.fragment
