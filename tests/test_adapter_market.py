"""Market adapter against the sandbox: one test per quirk of departments/market.md."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import Decimal

import aiohttp
import orjson
import pytest
from aiohttp import web

from adapters.base import SourceConfig
from adapters.caching import CachingAdapter
from adapters.market import MarketAdapter
from adapters.registry import build_adapter
from core.clock import Clock
from core.records import (
    PersonFacts,
    PersonIdentity,
    Position,
    RecordKind,
    SubjectFacts,
)
from core.sources import FailureKind, SourceError
from sandbox.model import Company, Dataset, MarketListEntry, MarketPenalty, PositionRow
from sandbox.runner import SandboxServers
from tests.sandbox_support import yuyang_id as citizen_id
from tests.sandbox_support import yuyang_uscc as uscc

TODAY = date(2026, 5, 20)
CLOCK = Clock(TODAY)
ENDPOINTS = ("entities", "abnormal", "illegal", "penalties")
MakeMarket = Callable[..., Awaitable[MarketAdapter]]


FULL = uscc("MA70FULL")  # 长期, listed, penalised
TERM = uscc("MA70TERM")  # fixed term, foreign representative
UNREGISTERED = uscc("MA70NULL")
REP = citizen_id(date(1980, 3, 14), "123")
SEARCHABLE = [uscc(f"MA7Q{n:04d}") for n in range(60)]
THOUSAND = [uscc(f"MA8{n:05d}") for n in range(1000)]


def company(code: str, name: str, *, op_to: date | None, rep_id: str) -> Company:
    """A registration row."""
    return Company(
        uscc=code,
        name=name,
        ent_type="有限责任公司(自然人投资或控股)",
        legal_rep_name="王伟",
        legal_rep_id=rep_id,
        reg_cap="500.000000",
        currency="人民币",
        est_date=date(2015, 4, 1),
        op_from=date(2015, 4, 1),
        op_to=op_to,
        reg_org="榆林市市场监督管理局",
        reg_state="存续（在营、开业、在册）",
        dom="陕西省榆林市榆阳区长城南路1号",
        op_scope="建设工程施工",
        appr_date=date(2023, 6, 1),
    )


def penalty(case_id: str, *, repaired: bool = False, disputed: bool = False) -> MarketPenalty:
    """A 双公示 penalty of FULL."""
    return MarketPenalty(
        case_id=case_id,
        uscc=FULL,
        dec_no=f"榆市监罚〔2025〕{case_id}号",
        act_type="虚假宣传",
        content="罚款",
        amount_wan="1.5",
        authority="榆林市市场监督管理局",
        decided_on=date(2025, 2, 1),
        public_on=date(2025, 2, 8),
        public_until=date(2028, 2, 8),
        repaired=repaired,
        disputed=disputed,
    )


def _dataset() -> Dataset:
    cause = "未依照《企业信息公示暂行条例》第八条规定的期限公示年度报告的"
    return Dataset(
        today=TODAY,
        companies=[
            company(FULL, "榆林市宏达建设有限公司", op_to=None, rep_id=REP),
            company(TERM, "榆林市期限商贸有限公司", op_to=date(2035, 3, 31), rep_id=""),
            *(
                company(code, f"秦川{n:02d}建设有限公司", op_to=None, rep_id=REP)
                for n, code in enumerate(SEARCHABLE)
            ),
            *(
                company(code, f"千家{n}", op_to=None, rep_id=REP)
                for n, code in enumerate(THOUSAND[::97])
            ),
        ],
        abnormal=[
            MarketListEntry("EX-1", FULL, cause, date(2024, 7, 1), "榆林市市场监督管理局"),
            MarketListEntry(
                "EX-0",
                FULL,
                cause,
                date(2021, 7, 1),
                "榆林市市场监督管理局",
                removed_on=date(2022, 3, 1),
                rem_reason="已补报年度报告",
                rem_org="榆林市市场监督管理局",
            ),
        ],
        illegal=[
            MarketListEntry(
                "ILL-1",
                FULL,
                "被列入经营异常名录届满3年仍未履行相关义务",
                date(2022, 1, 10),
                "陕西省市场监督管理局",
            )
        ],
        penalties=[penalty("P1", repaired=True), penalty("P2", disputed=True)],
        positions=[
            PositionRow(REP, FULL, "榆林市宏达建设有限公司", "法定代表人", date(2015, 4, 1), None),
            PositionRow(
                REP, TERM, "榆林市期限商贸有限公司", "监事", date(2016, 1, 1), date(2019, 6, 30)
            ),
        ],
    )


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[SandboxServers]:
    """The sandbox departments for this module."""
    started = await SandboxServers.start(_dataset())
    yield started
    await started.stop()


@pytest.fixture
async def sandbox(servers: SandboxServers) -> AsyncIterator[SandboxServers]:
    """Market with default knobs, counters zeroed; restored after."""
    servers.faults["market"].reset()
    servers.reset_counts()
    yield servers
    servers.faults["market"].reset()


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The caller-owned HTTP session."""
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def make(sandbox: SandboxServers, session: aiohttp.ClientSession) -> MakeMarket:
    """A market adapter, on the sandbox unless given another URL."""

    async def factory(url: str | None = None) -> MarketAdapter:
        adapter = build_adapter(
            SourceConfig("market", url or sandbox.urls["market"]), session, CLOCK
        )
        # The registry puts the answer cache in front (tests/test_resilience.py); these
        # tests are about the department itself, so they use the adapter behind it.
        assert isinstance(adapter, CachingAdapter) and isinstance(adapter.inner, MarketAdapter)
        return adapter.inner

    return factory


@contextlib.asynccontextmanager
async def department_answering(answer: Callable[[list[str]], object]) -> AsyncIterator[str]:
    """A stand-in market department whose batch calls answer `answer(codes)` (int: a status).

    Used only for answers the sandbox, being faithful to the document, never gives.
    """

    async def handler(request: web.Request) -> web.Response:
        codes = orjson.loads(await request.read())["uniscIds"]
        answered = answer(codes)
        if isinstance(answered, int):
            return web.Response(status=answered)  # a bare HTTP status, e.g. 503 maintenance
        return web.Response(body=orjson.dumps(answered), content_type="application/json")

    app = web.Application()
    for endpoint in ENDPOINTS:
        app.router.add_post(f"/api/v1/{endpoint}/query", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


async def _facts(adapter: MarketAdapter, code: str) -> SubjectFacts:
    facts = (await adapter.lookup_subjects([code]))[code]
    assert isinstance(facts, SubjectFacts), facts
    return facts


async def test_registration_fields(make: MakeMarket) -> None:
    facts = await _facts(await make(), FULL)
    assert facts.known and facts.name == "榆林市宏达建设有限公司"
    registration = facts.registration
    assert registration is not None
    assert registration.status == "存续（在营、开业、在册）"
    assert registration.established_on == date(2015, 4, 1)
    assert registration.authority == "榆林市市场监督管理局"
    assert registration.registration_number is None  # regNo ""


async def test_registered_capital_string_is_an_exact_decimal(make: MakeMarket) -> None:
    registration = (await _facts(await make(), FULL)).registration
    assert registration is not None
    assert registration.registered_capital_wan == Decimal("500.000000")
    assert str(registration.registered_capital_wan) == "500.000000"


async def test_null_op_to_means_long_term(make: MakeMarket) -> None:
    adapter = await make()
    full = (await _facts(adapter, FULL)).registration
    term = (await _facts(adapter, TERM)).registration
    assert full is not None and full.operating_to is None
    assert term is not None and term.operating_to == date(2035, 3, 31)


async def test_legal_representative_with_unmasked_or_missing_id(make: MakeMarket) -> None:
    adapter = await make()
    assert (await _facts(adapter, FULL)).legal_rep == PersonIdentity("王伟", REP)
    # lerepCerNo is empty for foreign representatives.
    assert (await _facts(adapter, TERM)).legal_rep == PersonIdentity("王伟", None)


async def test_not_found_is_known_false(make: MakeMarket) -> None:
    facts = await _facts(await make(), UNREGISTERED)
    assert not facts.known
    assert facts.registration is None and facts.legal_rep is None and facts.records == ()


async def test_empty_rem_date_is_still_listed(make: MakeMarket) -> None:
    records = {r.id: r for r in (await _facts(await make(), FULL)).records}
    current, removed = records["MARKET:abnormal:EX-1"], records["MARKET:abnormal:EX-0"]
    assert current.kind is RecordKind.ABNORMAL_OPERATION
    assert current.listed_on == date(2024, 7, 1) and current.removed_on is None
    assert removed.removed_on == date(2022, 3, 1)
    illegal = records["MARKET:illegal:ILL-1"]
    assert illegal.kind is RecordKind.SERIOUS_ILLEGAL
    # Expired by its 3 years but remDate ""; the term is applied by the resolvers.
    assert illegal.listed_on == date(2022, 1, 10) and illegal.removed_on is None


async def test_penalty_states_are_read_from_strings(make: MakeMarket) -> None:
    records = {r.id: r for r in (await _facts(await make(), FULL)).records}
    repaired, disputed = records["MARKET:penalty:P1"], records["MARKET:penalty:P2"]
    assert repaired.kind is RecordKind.ADMINISTRATIVE_PENALTY
    assert repaired.repaired and not repaired.disputed
    assert disputed.disputed and not disputed.repaired
    assert disputed.published_until == date(2028, 2, 8)
    assert disputed.document_number == "榆市监罚〔2025〕P2号"
    assert disputed.authority == "榆林市市场监督管理局"


async def test_1000_codes_make_exactly_10_calls_per_endpoint(
    make: MakeMarket, sandbox: SandboxServers
) -> None:
    results = await (await make()).lookup_subjects(THOUSAND)
    assert set(results) == set(THOUSAND)
    assert all(isinstance(v, SubjectFacts) for v in results.values())  # never a 413
    assert sum(1 for v in results.values() if isinstance(v, SubjectFacts) and v.known) == len(
        THOUSAND[::97]
    )
    assert sandbox.request_counts("market") == {
        f"POST /api/v1/{endpoint}/query": 10 for endpoint in ENDPOINTS
    }


async def test_status_must_be_the_string_1(make: MakeMarket) -> None:
    def number_one(codes: list[str]) -> object:
        return {"status": 1, "msg": "success", "data": [], "notFound": codes}

    async with department_answering(number_one) as url:
        error = (await (await make(url)).lookup_subjects([FULL]))[FULL]
    assert isinstance(error, SourceError) and error.kind is FailureKind.BAD_PAYLOAD


async def test_status_0_is_a_business_error_with_its_msg(make: MakeMarket) -> None:
    def refused(codes: list[str]) -> object:
        return {"status": "0", "msg": "参数错误", "data": None}

    async with department_answering(refused) as url:
        error = (await (await make(url)).lookup_subjects([FULL]))[FULL]
    assert isinstance(error, SourceError) and error.kind is FailureKind.BAD_PAYLOAD
    assert "参数错误" in error.message


async def test_a_code_left_out_of_the_answer_is_not_clean(make: MakeMarket) -> None:
    def forgetful(codes: list[str]) -> object:
        return {"status": "1", "msg": "success", "data": [], "notFound": codes[1:]}

    async with department_answering(forgetful) as url:
        results = await (await make(url)).lookup_subjects([FULL, UNREGISTERED])
    left_out = results[FULL]
    assert isinstance(left_out, SourceError) and left_out.kind is FailureKind.BAD_PAYLOAD
    answered = results[UNREGISTERED]
    assert isinstance(answered, SubjectFacts) and not answered.known


async def test_person_positions(make: MakeMarket) -> None:
    facts = (await (await make()).lookup_persons([REP]))[REP]
    assert isinstance(facts, PersonFacts)
    assert sorted(facts.positions, key=lambda p: p.started_on or date.min) == [
        Position(FULL, "榆林市宏达建设有限公司", "法定代表人", date(2015, 4, 1), None),
        Position(TERM, "榆林市期限商贸有限公司", "监事", date(2016, 1, 1), date(2019, 6, 30)),
    ]


async def test_malformed_cert_no_is_the_departments_status_0(make: MakeMarket) -> None:
    bad = REP[:17] + ("0" if REP[17] != "0" else "1")
    error = (await (await make()).lookup_persons([bad]))[bad]
    assert isinstance(error, SourceError) and error.kind is FailureKind.BAD_PAYLOAD
    assert "证件号码格式错误" in error.message


async def test_search_maps_offset_and_limit_onto_pages(
    make: MakeMarket, sandbox: SandboxServers
) -> None:
    adapter = await make()
    page = await adapter.search("秦川", 45, 10)
    assert page.total == 60
    # The sandbox orders by name: 秦川00…秦川59; offset 45 spans pages 1 and 2 of 50.
    assert [h.name for h in page.hits] == [f"秦川{n:02d}建设有限公司" for n in range(45, 55)]
    assert page.hits[0].uscc == SEARCHABLE[45] and page.hits[0].legal_rep_name == "王伟"
    assert sandbox.request_counts("market") == {"GET /api/v1/entities/search": 2}
    sandbox.reset_counts()
    page = await adapter.search("秦川", 20, 10)
    assert page.hits[0].name == "秦川20建设有限公司" and len(page.hits) == 10
    assert sandbox.request_counts("market") == {"GET /api/v1/entities/search": 1}
    tail = await adapter.search("秦川", 55, 100)
    assert len(tail.hits) == 5 and tail.total == 60


async def test_search_failure_raises_source_error(
    make: MakeMarket, sandbox: SandboxServers
) -> None:
    sandbox.faults["market"].update({"down": True})
    with pytest.raises(SourceError) as raised:
        await (await make()).search("秦川", 0, 10)
    assert raised.value.kind is FailureKind.UNAVAILABLE


async def test_a_failing_chunk_costs_only_its_own_codes(make: MakeMarket) -> None:
    codes = THOUSAND[:250]  # chunks of 100, 100 and 50
    poisoned = codes[150]

    def maintenance_for_one_chunk(asked: list[str]) -> object:
        if poisoned in asked:
            return 503
        return {"status": "1", "msg": "success", "data": [], "notFound": asked}

    async with department_answering(maintenance_for_one_chunk) as url:
        results = await (await make(url)).lookup_subjects(codes)
    failed = {c for c, v in results.items() if isinstance(v, SourceError)}
    assert failed == set(codes[100:200])
    assert all(
        v.kind is FailureKind.UNAVAILABLE for v in results.values() if isinstance(v, SourceError)
    )
