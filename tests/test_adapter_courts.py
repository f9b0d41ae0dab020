"""Courts adapter against the sandbox: one test per quirk of departments/courts.md."""

from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import date, timedelta

import aiohttp
import orjson
import pytest
from aiohttp import web

from adapters.base import SourceConfig
from adapters.caching import CachingAdapter
from adapters.courts import CourtsAdapter
from adapters.http import Pacer
from adapters.registry import build_adapter
from core.clock import Clock
from core.identity import org_code_of
from core.masking import mask_id_number
from core.records import PersonFacts, RecordKind, SubjectFacts
from core.sources import FailureKind, SourceError
from sandbox.model import Dataset, RestrictionCase, ShixinCase
from sandbox.runner import SandboxServers
from tests.sandbox_support import yuyang_id as citizen_id
from tests.sandbox_support import yuyang_uscc as uscc

TODAY = date(2026, 5, 20)
CLOCK = Clock(TODAY)
SHIXIN = "GET /shixin/search"
XGL = "GET /xgl/search"
MakeCourts = Callable[..., Awaitable[CourtsAdapter]]


ORG_ONLY = uscc("22052001")  # a pre-reform case, stored only under the organisation code
BOTH = uscc("MA703XY2")  # records under the USCC, the org code, and one under both
MANY = uscc("MA70MANY")  # 23 cases: two pages of 20
SAME_IDS = uscc("MA70DUPL")  # a shixin id equal to an xgl ID
CLEAN = uscc("MA70CLEN")
PERSON = citizen_id(date(1980, 3, 14), "123")
REP = citizen_id(date(1975, 11, 2), "421")
PACE_CODES = [uscc(f"MA7P{n:04d}") for n in range(16)]


def shixin(case_id: str, card_num: str, published: date, *, person: bool = False) -> ShixinCase:
    """A 失信被执行人 case as the courts store it."""
    return ShixinCase(
        case_id=case_id,
        iname="王伟" if person else "榆林市宏达建设有限公司",
        case_code=f"（2023）陕0802执{case_id}号",
        card_num=card_num,
        is_person=person,
        age=46 if person else 0,
        sex="男" if person else "",
        business_entity="" if person else "王伟",
        court_name="榆林市榆阳区人民法院",
        area_name="陕西",
        gist_id="（2022）陕0802民初100号",
        gist_unit="榆林市榆阳区人民法院",
        duty="支付货款100000元",
        performance="全部未履行",
        performed_part="暂无",
        unperformed_part="暂无",
        disrupt_types=["违反财产报告制度", "违反限制消费令"],
        reg_date=published - timedelta(days=60),
        publish_date=published,
    )


def restriction(case_id: str, zjhm: str, qy_dm: str, qy_mc: str = "") -> RestrictionCase:
    """A 限制消费人员 case as the courts store it (ZJHM in full; the server masks it)."""
    return RestrictionCase(
        case_id=case_id,
        ah=f"(2024)陕0802执{case_id}号",
        xm="李娜" if zjhm == REP else "王伟",
        zjhm=zjhm,
        qy_mc=qy_mc,
        qy_dm=qy_dm,
        court_name="榆林市榆阳区人民法院",
        filed_on=date(2024, 1, 5),
        published_on=date(2024, 2, 6),
    )


def _dataset() -> Dataset:
    both_case = shixin("S-BOTH", BOTH, date(2022, 5, 1))
    return Dataset(
        today=TODAY,
        shixin=[
            shixin("S-ORG", org_code_of(ORG_ONLY), date(2014, 3, 1)),
            shixin("S-NEW", BOTH, date(2024, 5, 12)),
            shixin("S-OLD", org_code_of(BOTH), date(2013, 9, 9)),
            # One record the courts hold under both forms: the same id, found twice.
            both_case,
            replace(both_case, card_num=org_code_of(BOTH)),
            *(shixin(f"M{n:02d}", MANY, date(2023, 1, 1) + timedelta(days=n)) for n in range(23)),
            shixin("42", SAME_IDS, date(2024, 1, 1)),
            shixin("P-1", PERSON, date(2023, 5, 12), person=True),
        ],
        restrictions=[
            restriction("R-BOTH", REP, BOTH, "榆林市宏达建设有限公司"),
            restriction("R-BOTH", REP, org_code_of(BOTH), "榆林市宏达建设有限公司"),
            restriction("42", "", SAME_IDS, "榆林市同号有限公司"),
            restriction("R-OWN", PERSON, ""),
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
    """Courts with default knobs except the rate limit, counters zeroed; restored after."""
    servers.faults["courts"].reset()
    servers.faults["courts"].update({"rate_limit_rps": None})
    servers.reset_counts()
    yield servers
    servers.faults["courts"].reset()


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The caller-owned HTTP session."""
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def make(sandbox: SandboxServers, session: aiohttp.ClientSession) -> MakeCourts:
    """A courts adapter on the sandbox; unpaced unless the test passes max_rps."""

    async def factory(
        timeout_s: float = 2.0, max_concurrency: int = 8, url: str | None = None, **options: object
    ) -> CourtsAdapter:
        options.setdefault("max_rps", 10_000)
        if options["max_rps"] is None:
            del options["max_rps"]  # the adapter's default: the documented 50/s
        config = SourceConfig(
            "courts",
            url or sandbox.urls["courts"],
            timeout_s,
            max_concurrency=max_concurrency,
            options=options,
        )
        adapter = build_adapter(config, session, CLOCK)
        # The registry puts the answer cache in front (tests/test_resilience.py); these
        # tests are about the department itself, so they use the adapter behind it.
        assert isinstance(adapter, CachingAdapter) and isinstance(adapter.inner, CourtsAdapter)
        return adapter.inner

    return factory


async def _facts(adapter: CourtsAdapter, code: str) -> SubjectFacts:
    facts = (await adapter.lookup_subjects([code]))[code]
    assert isinstance(facts, SubjectFacts), facts
    return facts


async def test_cases_stored_only_under_the_org_code_are_found(make: MakeCourts) -> None:
    facts = await _facts(await make(), ORG_ONLY)
    assert facts.known
    assert [r.id for r in facts.records] == ["COURTS:S-ORG"]


async def test_records_found_under_both_forms_are_merged_by_id(make: MakeCourts) -> None:
    facts = await _facts(await make(), BOTH)
    ids = [r.id for r in facts.records]
    assert sorted(ids) == sorted(
        ["COURTS:S-NEW", "COURTS:S-OLD", "COURTS:S-BOTH", "COURTS:xgl:R-BOTH"]
    )
    assert len(ids) == len(set(ids))


async def test_every_page_is_followed(make: MakeCourts, sandbox: SandboxServers) -> None:
    facts = await _facts(await make(), MANY)
    assert len(facts.records) == 23
    assert {r.id for r in facts.records} == {f"COURTS:M{n:02d}" for n in range(23)}
    counts = sandbox.request_counts("courts")
    # 23 under the USCC: pages 1 and 2 of 20; none under the org code: one page; xgl: one each.
    assert counts[SHIXIN] == 3
    assert counts[XGL] == 2


async def test_shixin_record_fields_and_date_formats(make: MakeCourts) -> None:
    facts = await _facts(await make(), ORG_ONLY)
    record = facts.records[0]
    assert record.kind is RecordKind.DISHONEST_DEBTOR
    # publishDate arrives as 2014年03月01日, regDate as YYYYMMDD.
    assert record.listed_on == date(2014, 3, 1)
    assert record.document_number == "（2023）陕0802执S-ORG号"
    assert record.authority == "榆林市榆阳区人民法院"
    assert record.title == "失信被执行人（榆林市榆阳区人民法院 （2023）陕0802执S-ORG号）"
    # disruptTypeName is a comma-separated list.
    assert record.reason == "违反财产报告制度；违反限制消费令"
    # partyTypeName 581: an organisation, whose cardNum is a code, not a personal ID.
    assert record.party_name == "榆林市宏达建设有限公司"
    assert record.party_id_masked is None
    assert facts.name == "榆林市宏达建设有限公司"


async def test_xgl_record_fields_and_masked_representative(make: MakeCourts) -> None:
    facts = await _facts(await make(), BOTH)
    (record,) = [r for r in facts.records if r.kind is RecordKind.CONSUMPTION_RESTRICTION]
    assert record.id == "COURTS:xgl:R-BOTH"
    assert record.listed_on == date(2024, 2, 6)  # FBRQ, YYYY-MM-DD
    assert record.party_name == "李娜"
    assert record.party_id_masked == mask_id_number(REP)
    assert record.document_number == "(2024)陕0802执R-BOTH号"


async def test_shixin_and_xgl_ids_are_separate_namespaces(make: MakeCourts) -> None:
    facts = await _facts(await make(), SAME_IDS)
    assert sorted(r.id for r in facts.records) == ["COURTS:42", "COURTS:xgl:42"]


async def test_person_lookup_uses_the_full_id_and_keeps_it_masked(
    make: MakeCourts, sandbox: SandboxServers
) -> None:
    facts = (await (await make()).lookup_persons([PERSON]))[PERSON]
    assert isinstance(facts, PersonFacts)
    assert sorted(r.id for r in facts.records) == ["COURTS:P-1", "COURTS:xgl:R-OWN"]
    assert facts.name == "王伟"
    for record in facts.records:
        # partyTypeName 580 / ZJHM: masked as given, never the full number.
        assert record.party_id_masked == mask_id_number(PERSON)
        assert PERSON not in repr(record)
    assert sandbox.request_counts("courts") == {SHIXIN: 1, XGL: 1}


async def test_clean_subject_is_not_known(make: MakeCourts) -> None:
    facts = await _facts(await make(), CLEAN)
    assert not facts.known and facts.records == ()


async def test_429_is_rate_limited_with_retry_after(
    make: MakeCourts, sandbox: SandboxServers
) -> None:
    sandbox.faults["courts"].update({"throttle_rate": 1.0, "retry_after_s": 3})
    error = (await (await make()).lookup_subjects([MANY]))[MANY]
    assert isinstance(error, SourceError)
    assert error.kind is FailureKind.RATE_LIMITED and error.retry_after_s == 3.0


async def test_the_documented_50_requests_per_second_are_respected(
    make: MakeCourts, sandbox: SandboxServers
) -> None:
    courts = sandbox.faults["courts"]
    courts.reset()  # the documented default: 50 requests/s per caller, else 429
    # Unpaced, 16 codes (64 calls) overrun the limit: some codes come back RATE_LIMITED
    # (without retries, which would wait out the Retry-After and hide the overrun).
    unpaced = await (await make(timeout_s=10.0, max_rps=10_000, retries=0)).lookup_subjects(
        PACE_CODES
    )
    assert any(isinstance(v, SourceError) for v in unpaced.values())
    courts.reset()  # a full bucket again
    adapter = await make(timeout_s=10.0, max_rps=None)
    started = time.monotonic()
    results = await adapter.lookup_subjects(PACE_CODES)
    assert all(isinstance(v, SubjectFacts) for v in results.values()), results
    assert time.monotonic() - started >= 63 / 50 - 0.1


async def test_concurrency_is_bounded(make: MakeCourts, sandbox: SandboxServers) -> None:
    sandbox.faults["courts"].update({"latency_ms": 100})
    adapter = await make(max_concurrency=2)
    started = time.monotonic()
    results = await adapter.lookup_subjects([CLEAN, ORG_ONLY])
    # 8 calls of 100 ms, two at a time.
    assert time.monotonic() - started >= 0.4 - 0.02
    assert all(isinstance(v, SubjectFacts) for v in results.values())


@contextlib.asynccontextmanager
async def courts_answering(envelope: dict[str, object]) -> AsyncIterator[str]:
    """A stand-in courts system answering HTTP 200 with a fixed envelope.

    Used only for answers the sandbox, being faithful to the document, never gives.
    """

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(envelope), content_type="application/json")

    app = web.Application()
    app.router.add_get("/shixin/search", handler)
    app.router.add_get("/xgl/search", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (500, FailureKind.UNAVAILABLE),
        (400, FailureKind.BAD_PAYLOAD),
        (429, FailureKind.RATE_LIMITED),
    ],
)
async def test_envelope_code_other_than_200_is_an_error(
    make: MakeCourts, code: int, kind: FailureKind
) -> None:
    async with courts_answering({"code": code, "message": "系统异常", "result": None}) as url:
        error = (await (await make(url=url)).lookup_subjects([CLEAN]))[CLEAN]
    assert isinstance(error, SourceError) and error.kind is kind


async def test_a_subjects_four_calls_go_out_together(
    make: MakeCourts, sandbox: SandboxServers
) -> None:
    # The pace was a bucket of one: a subject's four calls (失信 and 限制消费, by USCC and by
    # organisation code) left 20 ms apart, and an isolated lookup took 3.8x its floor.
    sandbox.faults["courts"].reset()  # the documented 50 requests/s per caller
    adapter = await make(max_rps=None)
    result = (await adapter.lookup_subjects([CLEAN]))[CLEAN]
    assert isinstance(result, SubjectFacts)
    sent = [at for at, _ in sandbox.faults["courts"].arrivals]
    assert len(sent) == 4
    assert max(sent) - min(sent) < 0.015, [round(t - min(sent), 4) for t in sent]


async def test_bursts_never_take_the_calls_past_the_documented_rate(
    make: MakeCourts, sandbox: SandboxServers
) -> None:
    courts = sandbox.faults["courts"]
    courts.reset()  # 50 requests/s per caller, else 429
    adapter = await make(timeout_s=10.0, max_rps=None, max_concurrency=64, retries=0)
    codes = [uscc(f"MA7W{n:04d}") for n in range(30)]  # 120 calls, in bursts of 4
    started = time.monotonic()
    results = await adapter.lookup_subjects(codes)
    # No 429 without retries to hide it, and the rate's time taken: 70 calls past the
    # first second's 50.
    assert all(isinstance(v, SubjectFacts) for v in results.values()), results
    assert time.monotonic() - started >= 70 / 50 - 0.05


async def test_the_pace_books_no_second_with_more_than_its_rate() -> None:
    # The send times the pacer hands out, in any one-second window (not only whole
    # seconds): bursts of 4 for each lookup, never more than 50 calls in a second.
    pacer = Pacer(50, burst=4)
    sent: list[float] = []
    for _ in range(40):
        sent += pacer.book(4, math.inf) or []
    sent += [(pacer.book(1, math.inf) or [])[0] for _ in range(30)]
    assert len(sent) == 190
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest == 50
    assert sent[3] - sent[0] < 1e-6  # the first lookup's four calls go together


async def test_a_lookup_the_pace_cannot_serve_in_time_is_refused_without_calls(
    make: MakeCourts, sandbox: SandboxServers
) -> None:
    # 64 concurrent lookups with 0.5 s each: at 50 calls/s only a few subjects' four calls
    # can go out in time. Those get answers; the others are refused at once, and no call
    # is spent on a lookup that would have timed out (2.4 complete answers/s under load).
    sandbox.faults["courts"].reset()
    adapter = await make(timeout_s=0.5, max_rps=None, max_concurrency=64, retries=0)
    codes = [uscc(f"MA7B{n:04d}") for n in range(64)]
    started = time.monotonic()
    results = await adapter.lookup_subjects(codes)
    elapsed = time.monotonic() - started
    answered = [c for c, v in results.items() if isinstance(v, SubjectFacts)]
    refused = [
        c
        for c, v in results.items()
        if isinstance(v, SourceError) and v.kind is FailureKind.OVER_BUDGET
    ]
    assert answered and refused and len(answered) + len(refused) == len(codes)
    assert len(sandbox.faults["courts"].arrivals) == 4 * len(answered)
    assert elapsed < 0.5 + 1.0
