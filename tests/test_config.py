"""The config file of contract §6: defaults, and refusals that name the bad entry."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from core.roles import Role
from gateway.config import ConfigError, RateConfig, load_config, parse_config
from store.database_url import sqlite_path

VALID: dict[str, Any] = {
    "sources": {
        "courts": {"url": "http://127.0.0.1:9101", "timeout_s": 1.5, "max_rps": 20},
        "market": {"url": "http://127.0.0.1:9102/"},
        "tax": {"url": "http://127.0.0.1:9103"},
        "water": {"url": "http://127.0.0.1:9104", "sync_interval_s": 60},
    },
    "audit": {"url": "sqlite:///tmp/audit.db"},
    "clients": [
        {"id": "bank-demo", "role": "bank", "key_sha256": "a" * 64, "purposes": ["CREDIT_LOAN"]}
    ],
}


def test_defaults_and_options() -> None:
    config = parse_config(VALID)
    courts, market, water = (
        config.sources["courts"],
        config.sources["market"],
        config.sources["water"],
    )
    assert courts.timeout_s == 1.5 and courts.options == {"max_rps": 20}
    assert market.timeout_s == 2.0 and market.url == "http://127.0.0.1:9102"
    assert water.options == {"sync_interval_s": 60} and market.options == {}
    assert config.clients[0].role is Role.BANK and config.clients[0].purposes == ("CREDIT_LOAN",)
    assert config.limits.max_batch == 1000


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    target = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("sources.tax", None, "lacks tax"),
        ("sources.courts.url", "ftp://x", r"\[sources.courts\] url"),
        ("sources.market.timeout_s", -1, r"\[sources.market\] timeout_s"),
        ("sources.post", {"url": "http://x"}, "sources.post"),
        ("clients.0.role", "admin", "client bank-demo: role"),
        ("clients.0.key_sha256", "abc", "client bank-demo: key_sha256"),
        ("clients.0.purposes", ["CREDIT_LAON"], "client bank-demo: unknown purpose CREDIT_LAON"),
        ("audit.path", "/x", r"\[audit\] has unknown key"),
        ("audit.url", "mysql://db/audit", r"\[audit\] url must be sqlite://.* or a postgresql://"),
        ("audit.url", "sqlite://:memory:", r"\[audit\] url .*not durable"),
        ("audit.url", "sqlite://", r"\[audit\] url must name a file"),
        ("audit.url", 5, r"\[audit\] url must be a string"),
        ("audit.timeout_s", 0, r"\[audit\] timeout_s must be a positive number"),
        ("audit.timeout_s", -0.5, r"\[audit\] timeout_s must be a positive number"),
        ("extra", {}, "unknown config section"),
    ],
)
def test_refusals_name_the_entry(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_broken(path, value))


def test_audit_defaults_and_timeout() -> None:
    data = copy.deepcopy(VALID)
    del data["audit"]
    default = parse_config(data).audit
    assert default.url == "sqlite:///var/lib/credit-gateway/audit.db"
    assert default.timeout_s == 2.0
    configured = parse_config({**VALID, "audit": {"url": "sqlite://audit.db", "timeout_s": 1}})
    assert configured.audit.url == "sqlite://audit.db" and configured.audit.timeout_s == 1.0


def test_duplicate_client_ids_are_refused() -> None:
    data = copy.deepcopy(VALID)
    data["clients"].append({**data["clients"][0], "key_sha256": "b" * 64})
    with pytest.raises(ConfigError, match="appears more than once"):
        parse_config(data)


def test_unreadable_and_malformed_files(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sources\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_supervision_ratios_are_configurable() -> None:
    config = parse_config({**VALID, "supervision": {"B": 0.1}})
    assert config.supervision.ratios == {"A": 0.05, "B": 0.1, "C": 0.6, "D": 1.0}
    with pytest.raises(ConfigError, match=r"\[supervision\] C must be a ratio"):
        parse_config({**VALID, "supervision": {"C": 1.5}})
    with pytest.raises(ConfigError, match=r"\[supervision\] has unknown key"):
        parse_config({**VALID, "supervision": {"E": 0.5}})


def test_request_limits_defaults_and_role_tables() -> None:
    default = parse_config(VALID).limits
    assert (default.max_depth, default.max_aliases, default.max_tokens) == (10, 20, 2000)
    assert (default.max_body_bytes, default.max_query_string_bytes) == (1024 * 1024, 8192)
    assert default.max_in_flight == 64
    assert default.rate_for(Role.PUBLIC) == RateConfig(rate_per_s=10.0, burst=30)
    limits = {"rate_per_s": 5, "burst": 10, "bank": {"burst": 2}, "public": {"rate_per_s": 0.5}}
    configured = parse_config({**VALID, "limits": limits}).limits
    assert configured.rate_for(Role.BANK) == RateConfig(rate_per_s=5.0, burst=2)
    assert configured.rate_for(Role.PUBLIC) == RateConfig(rate_per_s=0.5, burst=10)
    assert configured.rate_for(Role.PARTNER) == RateConfig(rate_per_s=5.0, burst=10)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_depth": 0}, r"\[limits\] max_depth must be a positive whole number"),
        ({"max_aliases": -1}, r"\[limits\] max_aliases must be a positive whole number"),
        ({"max_tokens": 2.5}, r"\[limits\] max_tokens must be a positive whole number"),
        ({"max_body_bytes": "1MiB"}, r"\[limits\] max_body_bytes must be a positive whole"),
        ({"max_query_string_bytes": 0}, r"\[limits\] max_query_string_bytes must be a positive"),
        ({"max_in_flight": True}, r"\[limits\] max_in_flight must be a positive whole number"),
        ({"rate_per_s": 0}, r"\[limits\] rate_per_s must be a positive number"),
        ({"burst": 0.5}, r"\[limits\] burst must be a positive whole number"),
        ({"bank": {"burst": 0}}, r"\[limits.bank\] burst must be a positive whole number"),
        ({"bank": {"rate_per_s": "fast"}}, r"\[limits.bank\] rate_per_s must be a positive"),
        ({"bank": {"rate": 1}}, r"\[limits.bank\] has unknown key\(s\): rate"),
        ({"bank": 5}, r"\[limits.bank\] must be a table"),
        ({"admin": {"burst": 1}}, r"\[limits\] has unknown key\(s\): admin"),
        (
            {"max_body_bytes": 8 * 1024 * 1024},
            r"\[limits\] max_client_buffered_bytes must be at least max_body_bytes",
        ),
        (
            {"max_client_buffered_bytes": 128 * 1024 * 1024},
            r"\[limits\] max_buffered_bytes must be at least max_client_buffered_bytes",
        ),
        ({"header_timeout_s": 0}, r"\[limits\] header_timeout_s must be a positive number"),
        ({"max_field_repeats": 0}, r"\[limits\] max_field_repeats must be a positive whole"),
    ],
)
def test_request_limit_refusals_name_the_entry(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**VALID, "limits": limits})


@pytest.mark.parametrize(
    ("department", "knobs", "message"),
    [
        # Misspelt knobs were silently ignored before: each must name the table and key.
        (
            "courts",
            {"cache_ttl": 0},
            r"\[sources.courts\] cache_ttl \(did you mean cache_ttl_s\?\)",
        ),
        ("courts", {"timeot_s": 3}, r"\[sources.courts\] timeot_s \(did you mean timeout_s\?\)"),
        ("market", {"max_rps": 10}, r"\[sources.market\] max_rps is not a known key"),
        ("water", {"retries": 1}, r"\[sources.water\] retries is not a known key"),
        ("water", {"cache_ttl_s": 5}, r"\[sources.water\] cache_ttl_s is not a known key"),
        ("tax", {"sync_interval_s": 60}, r"\[sources.tax\] sync_interval_s is not a known key"),
        # Out of range: retries = -1 crashed `serve` with a traceback before.
        ("courts", {"retries": -1}, r"\[sources.courts\] retries must be a whole number >= 0"),
        ("market", {"retries": 1.5}, r"\[sources.market\] retries must be a whole number"),
        ("tax", {"retries": 11}, r"\[sources.tax\] retries must be a whole number >= 0 and <= 10"),
        ("courts", {"max_rps": 0}, r"\[sources.courts\] max_rps must be a number > 0"),
        ("courts", {"max_rps": True}, r"\[sources.courts\] max_rps must be a number"),
        ("market", {"cache_ttl_s": -1}, r"\[sources.market\] cache_ttl_s must be a number >= 0"),
        (
            "market",
            {"cache_ttl_s": 60, "stale_ttl_s": 10},
            r"\[sources.market\] stale_ttl_s must be 0 or at least cache_ttl_s",
        ),
        ("tax", {"breaker_cooldown_s": 0}, r"\[sources.tax\] breaker_cooldown_s must be a number"),
        (
            "water",
            {"sync_interval_s": 0},
            r"\[sources.water\] sync_interval_s must be a number > 0",
        ),
        ("water", {"max_file_bytes": "1GB"}, r"\[sources.water\] max_file_bytes must be a whole"),
        ("courts", {"timeout_s": 600}, r"\[sources.courts\] timeout_s must be at most 60"),
        (
            "courts",
            {"max_concurrency": 0},
            r"\[sources.courts\] max_concurrency must be a positive",
        ),
    ],
)
def test_source_knobs_are_declared_and_checked(
    department: str, knobs: dict[str, Any], message: str
) -> None:
    data = copy.deepcopy(VALID)
    data["sources"][department].update(knobs)
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_every_declared_knob_is_accepted_where_it_applies() -> None:
    data = copy.deepcopy(VALID)
    live = {
        "retries": 0,
        "retry_backoff_s": 0.5,
        "attempt_timeout_s": 1,
        "breaker_failures": 0,
        "breaker_cooldown_s": 5,
        "cache_ttl_s": 0,
        "stale_ttl_s": 0,
        "cache_max_entries": 10,
        "stale_max_entries": 10,
    }
    for name in ("courts", "market", "tax"):
        data["sources"][name].update(live)
    data["sources"]["courts"]["max_rps"] = 50
    data["sources"]["water"].update({"download_timeout_s": 30, "max_file_bytes": 1024})
    config = parse_config(data)
    assert config.sources["tax"].options == live
    assert config.sources["water"].options == {
        "sync_interval_s": 60,
        "download_timeout_s": 30,
        "max_file_bytes": 1024,
    }


@pytest.mark.parametrize("url", ["sqlite:///var/lib/cg/audit.db", "sqlite:////var/lib/cg/audit.db"])
def test_three_and_four_slash_sqlite_urls_name_the_same_absolute_file(url: str) -> None:
    config = parse_config({**VALID, "audit": {"url": url}})
    assert sqlite_path(config.audit.url) == Path("/var/lib/cg/audit.db")
    assert sqlite_path(config.audit.url).as_posix() == "/var/lib/cg/audit.db"


@pytest.mark.parametrize(
    ("graphiql", "message"),
    [
        ({"enabled": "yes"}, r"\[graphiql\] enabled must be true or false"),
        ({"example_uscc": "91110000MA01B2C34X"}, r"\[graphiql\] example_uscc must be a valid"),
        ({"theme": "dark"}, r"\[graphiql\] has unknown key"),
    ],
)
def test_graphiql_table_is_checked(graphiql: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**VALID, "graphiql": graphiql})


def test_each_department_has_its_own_default_concurrency() -> None:
    # One bound of 8 for all capped a registration-only query at ~85 requests/s whatever
    # CPU was free; each department's default now follows what it publishes.
    config = parse_config(VALID)
    defaults = {name: source.max_concurrency for name, source in config.sources.items()}
    assert defaults == {"courts": 16, "market": 32, "tax": 16, "water": 8}
    data = copy.deepcopy(VALID)
    data["sources"]["market"]["max_concurrency"] = 4
    assert parse_config(data).sources["market"].max_concurrency == 4


@pytest.mark.parametrize(
    ("table", "value", "message"),
    [
        ("metrics", {"enabled": "yes"}, r"\[metrics\] enabled must be true or false"),
        ("metrics", {"port": 9000}, r"\[metrics\] has unknown key\(s\): port"),
        ("logging", {"format": "xml"}, r'\[logging\] format must be "text" or "json"'),
        ("tracing", {"otlp_endpoint": "collector:4318"}, r"\[tracing\] otlp_endpoint must be"),
        ("tracing", {"sample_ratio": 2}, r"\[tracing\] sample_ratio must be a number from 0"),
        ("persisted", {"only_for": ["partner"]}, r"\[persisted\] only_for needs a path"),
        ("persisted", {"path": "/p.json", "only_for": ["admin"]}, r"\[persisted\] only_for"),
        ("http", {"cors_allow_origins": ["*"]}, r"\[http\] cors_allow_origins must be a list"),
        ("http", {"cors_allow_origins": ["https://a.example/x"]}, r"\[http\] cors_allow_origins"),
        ("http", {"gzip_min_bytes": -1}, r"\[http\] gzip_min_bytes must be a whole number"),
        ("http", {"introspection_roles": ["root"]}, r"\[http\] introspection_roles must be"),
    ],
)
def test_operations_tables_are_checked(table: str, value: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**VALID, table: value})


def test_operations_tables_default_to_metrics_on_and_the_rest_off() -> None:
    config = parse_config(VALID)
    assert config.metrics.enabled and config.logging.format == "text"
    assert not config.tracing.enabled and config.persisted.path is None
    assert config.http.cors_allow_origins == () and config.http.gzip_min_bytes == 1024
    assert set(config.http.introspection_roles) == set(Role)


@pytest.mark.parametrize(
    ("table", "value", "message"),
    [
        ("store", {"url": "mysql://db/credit"}, r"\[store\] url must be sqlite"),
        ("store", {"url": "sqlite://"}, r"\[store\] url must name a file"),
        ("store", {"path": "/x.db"}, r"\[store\] has unknown key\(s\): path"),
        ("background", {"share": 0}, r"\[background\] share must be above 0"),
        ("background", {"share": 1.5}, r"\[background\] share must be above 0"),
        ("background", {"lease_s": 1}, r"\[background\] lease_s must be between 5"),
        ("background", {"max_bulk_codes": 2.5}, r"\[background\] max_bulk_codes must be"),
        ("background", {"retry_window_s": -1}, r"\[background\] retry_window_s must be"),
        ("background", {"shares": 0.5}, r"\[background\] has unknown key\(s\): shares"),
    ],
)
def test_state_tables_are_checked(table: str, value: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**VALID, table: value})


def test_the_store_defaults_to_state_db_beside_the_audit_store() -> None:
    config = parse_config(VALID)
    assert config.store_url == "sqlite:///tmp/state.db"
    assert config.background.share == 0.7 and config.background.lease_s == 30
    assert config.background.max_bulk_codes == 50_000
    assert config.background.retry_window_s == 600
    url = "postgresql://gateway@db.internal/credit"
    assert parse_config({**VALID, "store": {"url": url}}).store_url == url


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"allow": "https://bank.example/"}, r"\[webhooks\] allow must be a list"),
        ({"allow": ["ftp://bank.example/"]}, r"is not an http\(s\) URL prefix"),
        ({"allow": ["https://bank.example"]}, r"must end with / after the host"),
        ({"hosts": []}, r"\[webhooks\] has unknown key\(s\): hosts"),
    ],
)
def test_webhooks_table_is_checked(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**VALID, "webhooks": value})


def test_webhooks_allow_only_what_starts_with_a_prefix() -> None:
    assert parse_config(VALID).webhooks.allow == ()
    config = parse_config({**VALID, "webhooks": {"allow": ["https://hooks.bank.example/"]}})
    assert config.webhooks.allows("https://hooks.bank.example/credit")
    assert not config.webhooks.allows("https://hooks.bank.example.evil.com/")
    assert not config.webhooks.allows("http://hooks.bank.example/credit")
    with pytest.raises(ConfigError, match=r"refresh_interval_s must be between 60"):
        parse_config({**VALID, "background": {"refresh_interval_s": 30}})
