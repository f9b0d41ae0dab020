"""Behaviour every department adapter shares, checked against the sandbox over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date

import aiohttp
import pytest

from adapters.base import Adapter, SourceConfig
from adapters.caching import CachingAdapter
from adapters.courts import CourtsAdapter
from adapters.dates import MalformedDate, parse_chinese, parse_compact, parse_iso, parse_slash
from adapters.market import MarketAdapter
from adapters.registry import ADAPTER_TYPES, build_adapter
from adapters.tax import TaxAdapter
from adapters.water import WaterAdapter
from core.clock import Clock
from core.identity import (
    id_check_digit,
    normalize_uscc,
    org_code_check_digit,
    uscc_check_digit,
)
from core.records import Department, PersonFacts, SubjectFacts
from core.sources import FailureKind, SourceError, SourceState
from sandbox.model import (
    Company,
    Dataset,
    ShixinCase,
    TaxRatingRow,
    WaterGradeRow,
)
from sandbox.runner import SandboxServers

TODAY = date(2026, 5, 20)
CLOCK = Clock(TODAY)
DEPARTMENTS = ("courts", "market", "tax", "water")
MakeAdapter = Callable[..., Awaitable[Adapter]]


def uscc(body8: str, region: str = "610802") -> str:
    """A valid USCC around an 8-character organisation-code body."""
    first17 = "91" + region + body8 + org_code_check_digit(body8)
    return normalize_uscc(first17 + uscc_check_digit(first17))


def citizen_id(region: str, born: date, sequence: str) -> str:
    """A valid 18-digit citizen ID."""
    first17 = f"{region}{born:%Y%m%d}{sequence}"
    return first17 + id_check_digit(first17)


KNOWN = uscc("MA7C0001")
OTHER = [uscc(f"MA7C1{n:03d}") for n in range(5)]
UNKNOWN = uscc("MA7C0099")
PERSON = citizen_id("610802", date(1980, 3, 14), "123")


def _dataset() -> Dataset:
    """KNOWN is on record in all four departments; nothing else is."""
    name = "榆林市宏达建设有限公司"
    return Dataset(
        today=TODAY,
        companies=[
            Company(
                uscc=KNOWN,
                name=name,
                ent_type="有限责任公司(自然人投资或控股)",
                legal_rep_name="王伟",
                legal_rep_id=PERSON,
                reg_cap="500.000000",
                currency="人民币",
                est_date=date(2015, 4, 1),
                op_from=date(2015, 4, 1),
                op_to=None,
                reg_org="榆林市市场监督管理局",
                reg_state="存续（在营、开业、在册）",
                dom="陕西省榆林市榆阳区长城南路1号",
                op_scope="建设工程施工",
                appr_date=date(2023, 6, 1),
            )
        ],
        shixin=[
            ShixinCase(
                case_id="C-1",
                iname=name,
                case_code="（2024）陕0802执12号",
                card_num=KNOWN,
                is_person=False,
                age=0,
                sex="",
                business_entity="王伟",
                court_name="榆林市榆阳区人民法院",
                area_name="陕西",
                gist_id="（2023）陕0802民初1号",
                gist_unit="榆林市榆阳区人民法院",
                duty="支付货款",
                performance="全部未履行",
                performed_part="暂无",
                unperformed_part="暂无",
                disrupt_types=["违反财产报告制度"],
                reg_date=date(2024, 1, 3),
                publish_date=date(2024, 3, 5),
            )
        ],
        tax_ratings=[TaxRatingRow(KNOWN, name, 2025, "B", date(2026, 4, 15))],
        water_grades=[WaterGradeRow(KNOWN, name, "AA", date(2025, 6, 1), date(2027, 5, 31))],
    )


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[SandboxServers]:
    """The four sandbox departments for this module."""
    started = await SandboxServers.start(_dataset())
    yield started
    await started.stop()


@pytest.fixture
async def sandbox(servers: SandboxServers) -> AsyncIterator[SandboxServers]:
    """The sandbox with default knobs (courts unthrottled), restored after the test."""

    def reset() -> None:
        for state in servers.faults.values():
            state.reset()
        # The 50 requests/s limit has its own test in test_adapter_courts.py.
        servers.faults["courts"].update({"rate_limit_rps": None})

    reset()
    yield servers
    for name in DEPARTMENTS:
        await servers.start_department(name)
    reset()


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The caller-owned HTTP session the adapters are handed."""
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def make(
    sandbox: SandboxServers, session: aiohttp.ClientSession
) -> AsyncIterator[MakeAdapter]:
    """Builds and starts an adapter as the runtime does; closes it after the test."""
    made: list[Adapter] = []

    async def factory(name: str, timeout_s: float = 2.0, **options: object) -> Adapter:
        if name == "courts":
            options.setdefault("max_rps", 10_000)
        if name == "water":
            # A hung file download ends on the same clock as the live sources' calls.
            options.setdefault("download_timeout_s", timeout_s)
        config = SourceConfig(
            name=name,
            url=sandbox.urls[name],
            timeout_s=timeout_s,
            options=options,
        )
        adapter = build_adapter(config, session, CLOCK)
        made.append(adapter)
        await adapter.start()
        return adapter

    yield factory
    for adapter in made:
        await adapter.close()


def _expected(name: str, kind: FailureKind) -> FailureKind:
    # The water files are read at start: a failure before any snapshot leaves every
    # lookup NOT_SYNCED, whatever the cause (the cause is in health()).
    return FailureKind.NOT_SYNCED if name == "water" else kind


def _errors(results: object, codes: list[str]) -> list[SourceError]:
    assert isinstance(results, dict)
    assert set(results) == set(codes)
    errors = [results[code] for code in codes]
    assert all(isinstance(e, SourceError) for e in errors), errors
    return errors


@pytest.mark.parametrize(
    ("parse", "text", "wrong_format"),
    [
        (parse_compact, "20230301", "2023-03-01"),  # courts regDate
        (parse_chinese, "2023年03月01日", "20230301"),  # courts publishDate
        (parse_iso, "2023-03-01", "2023/03/01"),  # market, tax, courts xgl
        (parse_slash, "2023/03/01", "2023年03月01日"),  # water CSV
    ],
)
def test_the_four_date_formats(
    parse: Callable[[object, str], date | None], text: str, wrong_format: str
) -> None:
    assert parse(text, "d") == date(2023, 3, 1)
    assert parse(f" {text} ", "d") == date(2023, 3, 1)
    # An empty field or null means no value.
    assert parse("", "d") is None and parse(None, "d") is None
    impossible = text.replace("03", "02").replace("01", "30")  # 30 February
    # A date in another department's format, an impossible day, full-width digits or a
    # number are malformed: the caller answers BAD_PAYLOAD instead of guessing.
    for malformed in (wrong_format, impossible, text.replace("2", "２"), 20230301):
        with pytest.raises(MalformedDate):
            parse(malformed, "d")


def test_registry_knows_exactly_the_four_departments(session: aiohttp.ClientSession) -> None:
    assert {
        "courts": CourtsAdapter,
        "market": MarketAdapter,
        "tax": TaxAdapter,
        "water": WaterAdapter,
    } == ADAPTER_TYPES
    assert CourtsAdapter.max_batch == 1
    assert MarketAdapter.max_batch == 100
    assert TaxAdapter.max_batch == 50
    assert WaterAdapter.max_batch >= 100_000
    assert [name for name, t in ADAPTER_TYPES.items() if t.supports_search] == ["market"]
    with pytest.raises(ValueError, match="no adapter"):
        build_adapter(SourceConfig("post", "http://127.0.0.1:1"), session, CLOCK)


@pytest.mark.parametrize("name", DEPARTMENTS)
def test_live_departments_get_the_answer_cache_and_water_does_not(
    name: str, session: aiohttp.ClientSession
) -> None:
    # Retries and the breaker live in SourceHttp, which every live adapter calls through;
    # the cache is put in front by the registry (tests/test_resilience.py shows both).
    adapter = build_adapter(SourceConfig(name, "http://127.0.0.1:9"), session, CLOCK)
    assert isinstance(adapter, CachingAdapter) is (name != "water")
    inner = adapter.inner if isinstance(adapter, CachingAdapter) else adapter
    assert isinstance(inner, ADAPTER_TYPES[name])
    assert (adapter.department, adapter.max_batch, adapter.supports_search) == (
        inner.department,
        inner.max_batch,
        inner.supports_search,
    )


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_known_code_is_known(name: str, make: MakeAdapter) -> None:
    adapter = await make(name)
    facts = (await adapter.lookup_subjects([KNOWN]))[KNOWN]
    assert isinstance(facts, SubjectFacts)
    assert facts.known and facts.uscc == KNOWN
    assert facts.department is Department[name.upper()]
    assert facts.as_of.date() == TODAY and facts.as_of.tzinfo is not None
    assert facts.name == "榆林市宏达建设有限公司"


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_unknown_code_is_not_known(name: str, make: MakeAdapter) -> None:
    adapter = await make(name)
    facts = (await adapter.lookup_subjects([UNKNOWN]))[UNKNOWN]
    assert isinstance(facts, SubjectFacts)
    assert not facts.known and facts.records == () and facts.name is None


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_every_code_gets_one_value(name: str, make: MakeAdapter) -> None:
    adapter = await make(name)
    assert await adapter.lookup_subjects([]) == {}
    results = await adapter.lookup_subjects([KNOWN, UNKNOWN, KNOWN, *OTHER])
    assert set(results) == {KNOWN, UNKNOWN, *OTHER}
    assert all(isinstance(v, SubjectFacts) for v in results.values())


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_server_down_is_unavailable_for_every_code(
    name: str, make: MakeAdapter, sandbox: SandboxServers
) -> None:
    await sandbox.stop_department(name)  # connection refused
    adapter = await make(name)
    codes = [KNOWN, UNKNOWN, *OTHER]
    for error in _errors(await adapter.lookup_subjects(codes), codes):
        assert error.kind is _expected(name, FailureKind.UNAVAILABLE)
        assert error.department is Department[name.upper()]
    health = await adapter.health()
    assert health.state is SourceState.UNAVAILABLE and health.message


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_maintenance_and_internal_errors_are_unavailable(
    name: str, make: MakeAdapter, sandbox: SandboxServers
) -> None:
    for knobs in ({"down": True}, {"error_rate": 1.0}):
        sandbox.faults[name].reset()
        sandbox.faults[name].update(knobs)
        adapter = await make(name)
        for error in _errors(await adapter.lookup_subjects([KNOWN, UNKNOWN]), [KNOWN, UNKNOWN]):
            assert error.kind is _expected(name, FailureKind.UNAVAILABLE)
            # Fixed short messages only: no upstream HTML ever reaches a client.
            assert "<" not in error.message and len(error.message) < 120
        assert (await adapter.health()).state is SourceState.UNAVAILABLE


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_hang_is_a_timeout_within_timeout_plus_one_second(
    name: str, make: MakeAdapter, sandbox: SandboxServers
) -> None:
    sandbox.faults[name].update({"hang": True})
    started = time.monotonic()
    adapter = await make(name, timeout_s=0.5)  # water downloads at start
    codes = [KNOWN, UNKNOWN, *OTHER]
    results = await adapter.lookup_subjects(codes)
    health = await adapter.health()
    assert time.monotonic() - started < 0.5 + 1.0
    for error in _errors(results, codes):
        assert error.kind is _expected(name, FailureKind.TIMEOUT)
    assert health.state is SourceState.UNAVAILABLE
    assert health.message is not None and "timeout" in health.message


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_garbage_is_bad_payload(
    name: str, make: MakeAdapter, sandbox: SandboxServers
) -> None:
    sandbox.faults[name].update({"garbage": True})
    adapter = await make(name)
    for error in _errors(await adapter.lookup_subjects([KNOWN, UNKNOWN]), [KNOWN, UNKNOWN]):
        assert error.kind is _expected(name, FailureKind.BAD_PAYLOAD)
        assert "<" not in error.message
    health = await adapter.health()
    assert health.state is SourceState.UNAVAILABLE and health.message


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_throttled_is_rate_limited_with_retry_after(
    name: str, make: MakeAdapter, sandbox: SandboxServers
) -> None:
    sandbox.faults[name].update({"throttle_rate": 1.0, "retry_after_s": 7})
    adapter = await make(name)
    for error in _errors(await adapter.lookup_subjects([KNOWN]), [KNOWN]):
        assert error.kind is _expected(name, FailureKind.RATE_LIMITED)
        if name != "water":
            assert error.retry_after_s == 7.0


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_health_is_ok_with_as_of(name: str, make: MakeAdapter) -> None:
    adapter = await make(name)
    health = await adapter.health()
    assert health.department is Department[name.upper()]
    assert health.state is SourceState.OK and health.message is None
    assert health.as_of is not None and health.as_of.date() == TODAY


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_persons_get_a_value_each(name: str, make: MakeAdapter) -> None:
    adapter = await make(name)
    results = await adapter.lookup_persons([PERSON])
    facts = results[PERSON]
    assert isinstance(facts, PersonFacts)
    assert facts.id_number == PERSON and facts.department is Department[name.upper()]


@pytest.mark.parametrize("name", ["courts", "market"])
async def test_persons_of_a_down_department_are_errors_not_exceptions(
    name: str, make: MakeAdapter, sandbox: SandboxServers
) -> None:
    await sandbox.stop_department(name)
    adapter = await make(name)
    error = (await adapter.lookup_persons([PERSON]))[PERSON]
    assert isinstance(error, SourceError) and error.kind is FailureKind.UNAVAILABLE
