"""The config file of contract §6: defaults, and refusals that name the bad entry."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.config import ConfigError, RateConfig, Role, load_config, parse_config

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
    assert water.sync_interval_s == 60 and market.sync_interval_s == 300
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
        ("audit.url", "postgresql://db/audit", r"\[audit\] url must be sqlite://"),
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
    ],
)
def test_request_limit_refusals_name_the_entry(limits: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**VALID, "limits": limits})
