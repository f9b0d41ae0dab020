"""Water adapter against the sandbox: one test per quirk of departments/water.md."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

import aiohttp
import pytest
from aiohttp import web

from adapters.base import SourceConfig
from adapters.registry import build_adapter
from adapters.water import WaterAdapter
from core.clock import Clock
from core.records import RecordKind, SubjectFacts, WaterGrade
from core.sources import FailureKind, SourceError, SourceState
from sandbox.model import Dataset, WaterGradeRow, WaterListRow, WaterPenaltyRow
from sandbox.runner import SandboxServers
from tests.sandbox_support import yuyang_uscc as uscc

TODAY = date(2026, 5, 20)
CLOCK = Clock(TODAY)
FILES = ("credit-grades.csv", "credit-lists.csv", "penalties.csv")
MakeWater = Callable[..., Awaitable[WaterAdapter]]


LISTED = uscc("MA70LXTT")
FINED = uscc("MA70FXNE")
LATER = uscc("MA70LATE")  # appears only in the second dataset version
UNKNOWN = uscc("MA70NULL")
# A name with a comma and quotes, and a reason with a line break: quoted per RFC 4180.
TRICKY_NAME = '榆林"宏达",水利工程有限公司'
TRICKY_REASON = "在水利建设市场中弄虚作假，\r\n骗取中标, 情节严重"


def _dataset(extra: bool = False) -> Dataset:
    lists = [
        WaterListRow(
            "HM-2025-001",
            LISTED,
            TRICKY_NAME,
            "黑名单",
            TRICKY_REASON,
            "陕西省水利厅",
            date(2025, 1, 2),
            date(2028, 1, 1),
        ),
        WaterListRow(
            "ZD-2024-007",
            LISTED,
            TRICKY_NAME,
            "重点关注名单",
            "拖欠农民工工资",
            "榆林市水利局",
            date(2024, 3, 1),
            date(2025, 2, 28),
            removed_on=date(2024, 9, 1),
        ),
    ]
    if extra:
        lists.append(
            WaterListRow(
                "HM-2026-002",
                LATER,
                "榆林后来水务有限公司",
                "黑名单",
                "转包",
                "陕西省水利厅",
                date(2026, 5, 1),
                date(2029, 4, 30),
            )
        )
    return Dataset(
        today=TODAY,
        water_grades=[
            WaterGradeRow(LISTED, TRICKY_NAME, "AA", date(2025, 6, 1), date(2027, 5, 31)),
            # Expired: still returned raw; validity is the resolvers' decision.
            WaterGradeRow(
                FINED, "榆林市罚单水利有限公司", "AAA", date(2022, 6, 1), date(2024, 5, 31)
            ),
        ],
        water_lists=lists,
        water_penalties=[
            WaterPenaltyRow(
                "榆水罚〔2025〕3号",
                FINED,
                "榆林市罚单水利有限公司",
                "未按规定取水",
                "罚款",
                "2.5",
                date(2025, 4, 1),
                date(2028, 4, 1),
                "榆林市水利局",
            ),
            WaterPenaltyRow(
                "榆水罚〔2024〕9号",
                FINED,
                "榆林市罚单水利有限公司",
                "河道违法建设",
                "罚款",
                "",
                date(2024, 2, 1),
                date(2027, 2, 1),
                "榆林市水利局",
                repaired=True,
            ),
        ],
    )


@dataclass
class Exchange:
    """One request the adapter sent and the status it got."""

    path: str
    headers: dict[str, str]
    status: int


@dataclass
class Recorder:
    """The caller-owned session, recording every exchange."""

    session: aiohttp.ClientSession
    exchanges: list[Exchange] = field(default_factory=list)


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[SandboxServers]:
    """The sandbox departments for this module."""
    started = await SandboxServers.start(_dataset())
    yield started
    await started.stop()


@pytest.fixture
async def sandbox(servers: SandboxServers) -> AsyncIterator[SandboxServers]:
    """Water with default knobs, the first dataset and counters zeroed; restored after."""
    servers.faults["water"].reset()
    servers.replace_dataset(_dataset())
    servers.reset_counts()
    yield servers
    await servers.start_department("water")
    servers.faults["water"].reset()


@pytest.fixture(scope="module")
async def recorder() -> AsyncIterator[Recorder]:
    """A session that records each request's headers and answer status."""
    exchanges: list[Exchange] = []

    async def on_request_end(
        _session: aiohttp.ClientSession, _ctx: object, params: aiohttp.TraceRequestEndParams
    ) -> None:
        exchanges.append(Exchange(params.url.path, dict(params.headers), params.response.status))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield Recorder(session, exchanges)


@pytest.fixture
async def make(sandbox: SandboxServers, recorder: Recorder) -> AsyncIterator[MakeWater]:
    """A started water adapter; closed after the test."""
    recorder.exchanges.clear()
    made: list[WaterAdapter] = []

    async def factory(
        url: str | None = None, sync_interval_s: float = 3600, timeout_s: float = 2.0
    ) -> WaterAdapter:
        config = SourceConfig(
            "water",
            url or sandbox.urls["water"],
            timeout_s=timeout_s,
            options={"download_timeout_s": timeout_s, "sync_interval_s": sync_interval_s},
        )
        adapter = build_adapter(config, recorder.session, CLOCK)
        assert isinstance(adapter, WaterAdapter)
        made.append(adapter)
        await adapter.start()
        return adapter

    yield factory
    for adapter in made:
        await adapter.close()


@contextlib.asynccontextmanager
async def files_served(files: dict[str, bytes]) -> AsyncIterator[str]:
    """A stand-in open-data site serving fixed bytes; for layouts the sandbox never uses."""
    app = web.Application()
    for name, body in files.items():

        async def handler(_request: web.Request, body: bytes = body) -> web.Response:
            return web.Response(body=body, content_type="text/csv", charset="utf-8")

        app.router.add_get(f"/opendata/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


async def _facts(adapter: WaterAdapter, code: str) -> SubjectFacts:
    facts = (await adapter.lookup_subjects([code]))[code]
    assert isinstance(facts, SubjectFacts), facts
    return facts


async def test_bom_crlf_quoted_fields_and_slash_dates(make: MakeWater) -> None:
    facts = await _facts(await make(), LISTED)
    assert facts.known and facts.name == TRICKY_NAME  # no BOM on the first column's values
    blacklist = {r.id: r for r in facts.records}["WATER:HM-2025-001"]
    assert blacklist.kind is RecordKind.WATER_BLACKLIST
    assert blacklist.reason == TRICKY_REASON.strip()
    assert blacklist.authority == "陕西省水利厅"
    assert blacklist.listed_on == date(2025, 1, 2)  # 2025/01/02
    assert blacklist.published_until == date(2028, 1, 1)
    assert blacklist.removed_on is None  # empty field: no value


async def test_watch_list_history_is_kept_with_its_dates(make: MakeWater) -> None:
    facts = await _facts(await make(), LISTED)
    watch = {r.id: r for r in facts.records}["WATER:ZD-2024-007"]
    assert watch.kind is RecordKind.WATER_WATCHLIST
    assert watch.listed_on == date(2024, 3, 1)
    assert watch.published_until == date(2025, 2, 28)
    assert watch.removed_on == date(2024, 9, 1)


async def test_grades_are_returned_raw(make: MakeWater) -> None:
    adapter = await make()
    listed = await _facts(adapter, LISTED)
    assert listed.water_grade == WaterGrade("AA", date(2025, 6, 1), date(2027, 5, 31))
    fined = await _facts(adapter, FINED)
    assert fined.water_grade == WaterGrade("AAA", date(2022, 6, 1), date(2024, 5, 31))


async def test_penalties_with_credit_repair(make: MakeWater) -> None:
    facts = await _facts(await make(), FINED)
    penalties = {r.id: r for r in facts.records}
    current = penalties["WATER:penalty:榆水罚〔2025〕3号"]
    repaired = penalties["WATER:penalty:榆水罚〔2024〕9号"]
    assert current.kind is RecordKind.ADMINISTRATIVE_PENALTY
    assert current.published_until == date(2028, 4, 1) and not current.repaired
    assert current.authority == "榆林市水利局"
    assert current.document_number == "榆水罚〔2025〕3号"
    assert repaired.repaired  # 信用修复 是


async def test_unknown_code_and_as_of_is_the_sync_time(make: MakeWater) -> None:
    adapter = await make()
    facts = await _facts(adapter, UNKNOWN)
    assert not facts.known and not facts.stale
    assert facts.as_of == adapter.snapshot_state().as_of


async def test_columns_are_found_by_header_name(make: MakeWater) -> None:
    bom = "\ufeff"
    files = {
        "credit-grades.csv": f"{bom}信用等级,统一社会信用代码,有效期至,备注,评价日期,单位名称\r\n"
        f"B,{LISTED},2027/05/31,,2025/06/01,榆林换序有限公司\r\n",
        "credit-lists.csv": f"{bom}统一社会信用代码,记录编号,名单类型,单位名称,列入原因,认定单位,"
        "移出日期,公开期限至,列入日期\r\n",
        # Half-width brackets in the header: the same column as 罚款金额（万元）.
        "penalties.csv": f"{bom}统一社会信用代码,处罚决定书文号,行政相对人名称,违法行为类型,"
        "处罚内容,罚款金额(万元),处罚决定日期,公示截止日期,处罚机关,信用修复\r\n"
        f'{LISTED},"水罚〔2026〕1号",榆林换序有限公司,无证取水,罚款,3,2026/01/05,2029/01/05,'
        "榆林市水利局,是\r\n",
    }
    async with files_served({k: v.encode() for k, v in files.items()}) as url:
        facts = await _facts(await make(url), LISTED)
    assert facts.water_grade == WaterGrade("B", date(2025, 6, 1), date(2027, 5, 31))
    (penalty,) = facts.records
    assert penalty.id == "WATER:penalty:水罚〔2026〕1号" and penalty.repaired
    assert penalty.listed_on == date(2026, 1, 5)


async def test_second_sync_sends_if_none_match_and_keeps_the_parse_on_304(
    make: MakeWater, recorder: Recorder
) -> None:
    adapter = await make()
    first = adapter.snapshot_state().as_of
    assert [e.status for e in recorder.exchanges] == [200, 200, 200]
    etags = {e.path: e.headers.get("If-None-Match") for e in recorder.exchanges}
    assert set(etags.values()) == {None}
    recorder.exchanges.clear()
    state = await adapter.sync_now()
    assert sorted(e.path for e in recorder.exchanges) == sorted(f"/opendata/{f}" for f in FILES)
    assert all(e.status == 304 for e in recorder.exchanges)
    assert all(e.headers.get("If-None-Match", "").startswith('"') for e in recorder.exchanges)
    assert state.state is SourceState.OK
    assert state.as_of is not None and first is not None and state.as_of >= first
    assert (await _facts(adapter, LISTED)).known


async def test_a_new_file_version_replaces_the_snapshot(
    make: MakeWater, sandbox: SandboxServers, recorder: Recorder
) -> None:
    adapter = await make()
    assert not (await _facts(adapter, LATER)).known
    sandbox.replace_dataset(_dataset(extra=True))
    recorder.exchanges.clear()
    await adapter.sync_now()
    statuses = {e.path: e.status for e in recorder.exchanges}
    assert statuses["/opendata/credit-lists.csv"] == 200
    assert statuses["/opendata/credit-grades.csv"] == 304
    later = await _facts(adapter, LATER)
    assert later.known and later.records[0].id == "WATER:HM-2026-002"
    assert (await _facts(adapter, FINED)).water_grade is not None  # kept from the 304 file


async def test_failed_sync_keeps_the_old_snapshot_as_stale(
    make: MakeWater, sandbox: SandboxServers
) -> None:
    adapter = await make()
    good = adapter.snapshot_state()
    assert good.state is SourceState.OK
    sandbox.replace_dataset(_dataset(extra=True))
    sandbox.faults["water"].update({"rebuilding": True})  # 503 while the files are rebuilt
    stale = await adapter.sync_now()
    assert stale.state is SourceState.STALE and stale.as_of == good.as_of
    # Our own words, never the department's (the 503 itself is in the log).
    assert stale.message == "the latest sync failed: an earlier snapshot is served"
    assert await adapter.health() == stale
    facts = await _facts(adapter, LISTED)
    assert facts.known and facts.stale and facts.as_of == good.as_of
    assert not (await _facts(adapter, LATER)).known  # the old data, not half of the new
    sandbox.faults["water"].update({"rebuilding": False})
    recovered = await adapter.sync_now()
    assert recovered.state is SourceState.OK and recovered.message is None
    later = await _facts(adapter, LATER)
    assert later.known and not later.stale


async def test_a_bad_file_after_a_good_one_is_stale_too(
    make: MakeWater, sandbox: SandboxServers
) -> None:
    adapter = await make()
    sandbox.replace_dataset(_dataset(extra=True))  # new ETags, so the files are fetched
    sandbox.faults["water"].update({"garbage": True})  # an HTML page with a 200
    state = await adapter.sync_now()
    assert state.state is SourceState.STALE
    assert state.message == "the latest sync failed: an earlier snapshot is served"
    assert (await _facts(adapter, LISTED)).stale


async def test_no_snapshot_is_not_synced(make: MakeWater, sandbox: SandboxServers) -> None:
    await sandbox.stop_department("water")
    adapter = await make()
    error = (await adapter.lookup_subjects([LISTED]))[LISTED]
    assert isinstance(error, SourceError) and error.kind is FailureKind.NOT_SYNCED
    health = await adapter.health()
    assert health.state is SourceState.UNAVAILABLE and health.as_of is None
    await sandbox.start_department("water")
    assert (await adapter.sync_now()).state is SourceState.OK
    assert (await _facts(adapter, LISTED)).known


async def test_background_sync_every_interval_until_closed(
    make: MakeWater, sandbox: SandboxServers
) -> None:
    adapter = await make(sync_interval_s=0.1)
    await asyncio.sleep(0.45)
    synced = sandbox.request_counts("water")
    assert all(synced[f"GET /opendata/{f}"] >= 3 for f in FILES)
    await adapter.close()
    after_close = sandbox.request_counts("water")
    await asyncio.sleep(0.3)
    assert sandbox.request_counts("water") == after_close


async def test_100000_rows_are_parsed_off_the_event_loop(
    make: MakeWater, sandbox: SandboxServers
) -> None:
    big = _dataset()
    row = big.water_lists[0]
    big.water_lists = [
        WaterListRow(
            f"HM-{n:06d}",
            FINED,
            row.name,
            row.list_type,
            row.reason,
            row.authority,
            row.listed_on,
            row.public_until,
        )
        for n in range(100_000)
    ]
    sandbox.replace_dataset(big)
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        last = time.monotonic()
        while not done:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            longest, last = max(longest, now - last), now

    ticking = asyncio.create_task(ticker())
    adapter = await make(timeout_s=30.0)
    done = True
    await ticking
    facts = await _facts(adapter, FINED)
    assert len([r for r in facts.records if r.kind is RecordKind.WATER_BLACKLIST]) == 100_000
    assert longest < 0.5
