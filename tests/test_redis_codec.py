"""What [cache] url shares needs no Redis to check: the table, and answers as bytes.

The encoding of SubjectFacts and PersonFacts is what every replica reads back: it must give
back exactly the facts written, and an entry of another version, kind or shape must read
as absent (the department is asked again), never as a wrong answer.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from adapters.answer_codec import UndecodableAnswer, decode, encode
from core.clock import CST
from core.records import (
    CreditRecord,
    Department,
    Part,
    PersonFacts,
    PersonIdentity,
    Position,
    RecordKind,
    Registration,
    SubjectFacts,
    TaxRating,
    WaterGrade,
)
from gateway.config import ConfigError, parse_config
from gateway.config_state import CacheConfig

AS_OF = datetime(2026, 5, 20, 9, 30, 15, 123456, tzinfo=CST)
SUBJECT = SubjectFacts(
    department=Department.MARKET,
    uscc="91110000MA01B2C34B",
    as_of=AS_OF,
    known=True,
    name="北京示例科技有限公司",
    registration=Registration(
        entity_type="有限责任公司",
        status="存续",
        registered_capital_wan=Decimal("1000.50"),
        currency="人民币",
        established_on=date(2019, 3, 1),
        operating_to=None,
        address="北京市海淀区",
    ),
    legal_rep=PersonIdentity("张三", "110101199003077777"),
    records=(
        CreditRecord(
            id="MARKET:abn-1",
            department=Department.MARKET,
            kind=RecordKind.ABNORMAL_OPERATION,
            title="经营异常",
            reason="未按规定公示年报",
            listed_on=date(2025, 7, 1),
            removed_on=None,
            disputed=True,
            party_id_masked="110101********7777",
        ),
    ),
    tax_ratings=(TaxRating(2025, "A", date(2026, 4, 1)),),
    water_grade=WaterGrade("AAA", date(2025, 1, 1), date(2027, 12, 31)),
    parts=frozenset({Part.MARKET_ENTITIES, Part.MARKET_ABNORMAL}),
)
PERSON = PersonFacts(
    department=Department.COURTS,
    id_number="110101199003077777",
    as_of=AS_OF,
    name="张三",
    positions=(Position("91110000MA01B2C34B", "北京示例", "法定代表人", date(2019, 3, 1), None),),
)


def test_answers_come_back_exactly_as_written() -> None:
    assert decode(encode(SUBJECT), SubjectFacts) == SUBJECT
    assert decode(encode(PERSON), PersonFacts) == PERSON
    plain = SubjectFacts(Department.COURTS, "91110000MA01B2C34B", AS_OF, known=False)
    assert decode(encode(plain), SubjectFacts) == plain
    # The as_of keeps its zone and microseconds: it is shown as the answer's time.
    assert decode(encode(SUBJECT), SubjectFacts).as_of.utcoffset() == AS_OF.utcoffset()


def test_the_encoding_is_stable_and_versioned() -> None:
    data = encode(SUBJECT)
    assert encode(SUBJECT) == data
    body = orjson.loads(data)
    assert body["v"] == 1 and body["kind"] == "subject"
    # Sets in a fixed order, decimals as text: the same facts are the same bytes.
    assert body["facts"]["parts"] == ["MARKET_ABNORMAL", "MARKET_ENTITIES"]
    assert body["facts"]["registration"]["registered_capital_wan"] == "1000.50"


def _tampered(change: Any) -> bytes:
    body = orjson.loads(encode(SUBJECT))
    change(body)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        _tampered(lambda b: b.update(v=2)),
        _tampered(lambda b: b.update(kind="person")),
        _tampered(lambda b: b["facts"].update(unknown_field=1)),
        _tampered(lambda b: b["facts"].pop("uscc")),
        _tampered(lambda b: b["facts"].update(known="yes")),
        _tampered(lambda b: b["facts"].update(department="POLICE")),
        _tampered(lambda b: b["facts"].update(as_of="yesterday")),
        _tampered(lambda b: b["facts"]["records"][0].update(kind=None)),
    ],
)
def test_anything_else_reads_as_absent(data: bytes) -> None:
    with pytest.raises(UndecodableAnswer):
        decode(data, SubjectFacts)


def test_a_person_is_never_read_as_a_subject() -> None:
    with pytest.raises(UndecodableAnswer):
        decode(encode(PERSON), SubjectFacts)


BASE: dict[str, Any] = {
    "sources": {
        "courts": {"url": "http://127.0.0.1:9101"},
        "market": {"url": "http://127.0.0.1:9102"},
        "tax": {"url": "http://127.0.0.1:9103"},
        "water": {"url": "http://127.0.0.1:9104"},
    },
    "audit": {"url": "sqlite:///tmp/audit.db"},
}


def _with_cache(table: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["cache"] = table
    return data


def test_the_cache_table_and_its_defaults() -> None:
    assert parse_config(BASE).cache is None
    config = parse_config(_with_cache({"url": "redis://cache.internal:6379/0"}))
    assert config.cache == CacheConfig("redis://cache.internal:6379/0")
    assert (config.cache.replicas, config.cache.timeout_s, config.cache.key_prefix) == (
        2,
        0.5,
        "cg:",
    )
    table = {"url": "rediss://cache:6380/1", "replicas": 4, "timeout_s": 0.2, "key_prefix": "p:"}
    assert parse_config(_with_cache(table)).cache == CacheConfig(
        "rediss://cache:6380/1", 4, 0.2, "p:"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"url": "redis://c:6379/0", "ttl": 5}, r"\[cache\] has unknown key\(s\): ttl"),
        ({"replicas": 2}, r"\[cache\] url must be a Redis URL"),
        ({"url": "http://c:6379"}, r"\[cache\] url must be a Redis URL"),
        ({"url": "redis://c", "replicas": 0}, r"\[cache\] replicas must be a whole number"),
        ({"url": "redis://c", "replicas": 1.5}, r"\[cache\] replicas must be a whole number"),
        ({"url": "redis://c", "timeout_s": 0}, r"\[cache\] timeout_s must be between"),
        ({"url": "redis://c", "timeout_s": "1"}, r"\[cache\] timeout_s must be a number"),
        ({"url": "redis://c", "key_prefix": ""}, r"\[cache\] key_prefix must be"),
    ],
)
def test_cache_refusals_name_the_entry(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_with_cache(table))
