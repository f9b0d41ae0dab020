"""Tax adapter against the sandbox: one test per quirk of departments/tax.md."""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from adapters.base import SourceConfig
from adapters.caching import CachingAdapter
from adapters.registry import build_adapter
from adapters.tax import TaxAdapter
from core.clock import Clock
from core.masking import mask_id_number
from core.records import RecordKind, SubjectFacts, TaxRating
from core.sources import FailureKind, SourceError
from sandbox.model import Dataset, TaxCase, TaxRatingRow
from sandbox.runner import SandboxServers
from tests.sandbox_support import yuyang_id as citizen_id
from tests.sandbox_support import yuyang_uscc as uscc

TODAY = date(2026, 5, 20)
CLOCK = Clock(TODAY)
SERVICE = "POST /services/TaxCreditService"
MakeTax = Callable[..., Awaitable[TaxAdapter]]


RATED = uscc("MA70RATE")
CASED = uscc("MA70CAXE")
UNKNOWN = uscc("MA70NULL")
REP = citizen_id(date(1980, 3, 14), "123")
THOUSAND = [uscc(f"MA9{n:05d}") for n in range(1000)]
# 喆 is in GBK but not GB 2312; 𠮷 is outside GBK, so the service sends a character reference.
GBK_NAME = "榆林喆宏达𠮷建设（集团）有限公司"


def case(number: str, published: date, stopped: date | None) -> TaxCase:
    """A 重大税收违法失信主体 case of CASED (the ID in full; the service masks it)."""
    return TaxCase(
        ajbh=number,
        nsrsbh=CASED,
        nsrmc="榆林市偷税商贸有限公司",
        zcdz="陕西省榆林市榆阳区长城南路1号",
        fddbrxm="王伟",
        fddbrzjhm=REP,
        cwfzrxm="",
        ajxz="偷税",
        zywfss="少缴增值税100万元",
        xgfljcl="依法追缴税款并处罚款",
        rdjg="国家税务总局榆林市税务局稽查局",
        rdrq=published,
        gbrq=published,
        tcrq=stopped,
    )


def _dataset() -> Dataset:
    return Dataset(
        today=TODAY,
        tax_ratings=[
            TaxRatingRow(RATED, GBK_NAME, 2023, "B", date(2024, 4, 16)),
            TaxRatingRow(RATED, GBK_NAME, 2025, "A", date(2026, 4, 15)),
            TaxRatingRow(RATED, GBK_NAME, 2024, "M", date(2025, 4, 18)),
            *(TaxRatingRow(c, "千家", 2025, "B", date(2026, 4, 15)) for c in THOUSAND[::97]),
        ],
        tax_cases=[
            case("ZD-2025-1", date(2025, 3, 1), None),
            case("ZD-2021-7", date(2021, 6, 1), date(2023, 1, 9)),
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
    """Tax with default knobs, counters zeroed; restored after."""
    servers.faults["tax"].reset()
    servers.reset_counts()
    yield servers
    servers.faults["tax"].reset()


@pytest.fixture(scope="module")
async def sent() -> AsyncIterator[SimpleNamespace]:
    """A caller-owned session that records the headers of every request it sends."""
    headers: list[dict[str, str]] = []

    async def on_request_start(
        _session: aiohttp.ClientSession, _ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        headers.append(dict(params.headers))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield SimpleNamespace(session=session, headers=headers)


@pytest.fixture
def make(sandbox: SandboxServers, sent: SimpleNamespace) -> MakeTax:
    """A tax adapter, on the sandbox unless given another URL."""
    sent.headers.clear()

    async def factory(url: str | None = None) -> TaxAdapter:
        config = SourceConfig("tax", url or sandbox.urls["tax"])
        adapter = build_adapter(config, sent.session, CLOCK)
        # The registry puts the answer cache in front (tests/test_resilience.py); these
        # tests are about the department itself, so they use the adapter behind it.
        assert isinstance(adapter, CachingAdapter) and isinstance(adapter.inner, TaxAdapter)
        return adapter.inner

    return factory


Answer = Callable[[str], tuple[int, bytes, str]]


@contextlib.asynccontextmanager
async def service_answering(answer: Answer) -> AsyncIterator[str]:
    """A stand-in tax service: (status, body, content type) per operation.

    Used only for answers the sandbox, being faithful to the document, never gives.
    """

    async def handler(request: web.Request) -> web.Response:
        status, body, content_type = answer(request.headers["SOAPAction"].strip('"'))
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_post("/services/TaxCreditService", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def _fault(code: str) -> Answer:
    body = (
        '<?xml version="1.0" encoding="GBK"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>"
        "<faultstring>参数超限</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode("gbk")
    return lambda _operation: (500, body, "text/xml; charset=GBK")


async def _facts(adapter: TaxAdapter, code: str) -> SubjectFacts:
    facts = (await adapter.lookup_subjects([code]))[code]
    assert isinstance(facts, SubjectFacts), facts
    return facts


async def test_gbk_names_are_decoded(make: MakeTax) -> None:
    facts = await _facts(await make(), RATED)
    assert facts.name == GBK_NAME


async def test_requests_are_utf8_soap_with_the_soap_action(
    make: MakeTax, sent: SimpleNamespace
) -> None:
    await (await make()).lookup_subjects([RATED])
    actions = sorted(h["SOAPAction"] for h in sent.headers)
    assert actions == ['"queryNsxy"', '"queryZdsswf"']
    assert all(h["Content-Type"] == "text/xml; charset=UTF-8" for h in sent.headers)


async def test_all_rating_years_newest_first(make: MakeTax) -> None:
    facts = await _facts(await make(), RATED)
    assert facts.known
    assert facts.tax_ratings == (
        TaxRating(2025, "A", date(2026, 4, 15)),
        TaxRating(2024, "M", date(2025, 4, 18)),
        TaxRating(2023, "B", date(2024, 4, 16)),
    )


async def test_cases_are_major_tax_violations(make: MakeTax) -> None:
    facts = await _facts(await make(), CASED)
    records = {r.id: r for r in facts.records}
    assert set(records) == {"TAX:ZD-2025-1", "TAX:ZD-2021-7"}
    current = records["TAX:ZD-2025-1"]
    assert current.kind is RecordKind.MAJOR_TAX_VIOLATION
    assert current.listed_on == date(2025, 3, 1)
    assert current.removed_on is None  # <tcrq/>: still published
    assert current.reason == "偷税：少缴增值税100万元"
    assert current.document_number == "ZD-2025-1"
    assert current.authority == "国家税务总局榆林市税务局稽查局"
    assert current.party_name == "王伟"
    assert current.party_id_masked == mask_id_number(REP)
    assert records["TAX:ZD-2021-7"].removed_on == date(2023, 1, 9)
    assert facts.name == "榆林市偷税商贸有限公司" and facts.tax_ratings == ()


async def test_1000_codes_make_20_calls_per_operation(
    make: MakeTax, sandbox: SandboxServers, sent: SimpleNamespace
) -> None:
    results = await (await make()).lookup_subjects(THOUSAND)
    assert set(results) == set(THOUSAND)
    assert all(isinstance(v, SubjectFacts) for v in results.values())  # never 参数超限
    known = [c for c, v in results.items() if isinstance(v, SubjectFacts) and v.known]
    assert sorted(known) == sorted(THOUSAND[::97])
    assert sandbox.request_counts("tax") == {
        SERVICE: 40,
        "SOAP queryNsxy": 20,
        "SOAP queryZdsswf": 20,
    }
    assert Counter(h["SOAPAction"] for h in sent.headers) == {
        '"queryNsxy"': 20,
        '"queryZdsswf"': 20,
    }


async def test_fhdm_error_inside_http_200_is_an_error_for_every_code(
    make: MakeTax, sandbox: SandboxServers
) -> None:
    sandbox.faults["tax"].update({"fhdm_error_rate": 1.0})
    codes = [RATED, CASED, UNKNOWN, *THOUSAND[:60]]
    results = await (await make()).lookup_subjects(codes)
    for code in codes:
        error = results[code]
        assert isinstance(error, SourceError)
        # fhdm 2001 系统繁忙: the service is busy, not the answer malformed.
        assert error.kind is FailureKind.UNAVAILABLE and "2001" in error.message


async def test_soap_fault_client_is_bad_payload(make: MakeTax) -> None:
    async with service_answering(_fault("soapenv:Client")) as url:
        error = (await (await make(url)).lookup_subjects([RATED]))[RATED]
    assert isinstance(error, SourceError) and error.kind is FailureKind.BAD_PAYLOAD
    assert "参数超限" not in error.message


async def test_soap_fault_server_is_unavailable(make: MakeTax) -> None:
    async with service_answering(_fault("soap:Server")) as url:
        error = (await (await make(url)).lookup_subjects([RATED]))[RATED]
    assert isinstance(error, SourceError) and error.kind is FailureKind.UNAVAILABLE


async def test_charset_from_the_xml_declaration_when_the_header_has_none(
    make: MakeTax,
) -> None:
    def gbk_without_header_charset(operation: str) -> tuple[int, bytes, str]:
        items = (
            f"<nsxyList><nsxy><nsrsbh>{RATED}</nsrsbh><nsrmc>榆林喆宏达建设有限公司</nsrmc>"
            "<pjnd>2025</pjnd><xydj>D</xydj><pjrq>2026-04-15</pjrq></nsxy></nsxyList>"
            if operation == "queryNsxy"
            else "<ajList/>"
        )
        body = (
            '<?xml version="1.0" encoding="GBK"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<soapenv:Body><t:{operation}Response xmlns:t="urn:credit:tax:v1"><return>'
            f"<fhdm>0</fhdm><fhxx>成功</fhxx>{items}</return>"
            f"</t:{operation}Response></soapenv:Body></soapenv:Envelope>"
        ).encode("gbk")
        return 200, body, "text/xml"

    async with service_answering(gbk_without_header_charset) as url:
        facts = await _facts(await make(url), RATED)
    assert facts.name == "榆林喆宏达建设有限公司"
    assert facts.tax_ratings == (TaxRating(2025, "D", date(2026, 4, 15)),)


async def test_dtd_payload_is_refused_as_bad_payload(
    make: MakeTax, sandbox: SandboxServers
) -> None:
    sandbox.faults["tax"].update({"dtd": True})
    started = time.monotonic()
    error = (await (await make()).lookup_subjects([RATED]))[RATED]
    # Refused before any expansion: a billion laughs would take far longer (and gigabytes).
    assert time.monotonic() - started < 1.0
    assert isinstance(error, SourceError) and error.kind is FailureKind.BAD_PAYLOAD
    assert "DTD" in error.message
