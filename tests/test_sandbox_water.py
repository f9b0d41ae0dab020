"""The sandbox water server follows water.md to the letter: BOM, CRLF, quoting, ETags."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import replace
from datetime import date

import aiohttp
import pytest

from sandbox.model import WaterGradeRow
from sandbox.runner import SandboxServers
from tests.sandbox_support import (
    COMPANY_A,
    WATER_TRICKY_NAME,
    Reply,
    build_dataset,
    fetch,
    quiet_faults,
)

GRADES = "/opendata/credit-grades.csv"
LISTS = "/opendata/credit-lists.csv"
PENALTIES = "/opendata/penalties.csv"


# Servers, session and the fault reset come from conftest.py.
pytestmark = pytest.mark.usefixtures("reset_sandbox_faults")


async def _get(
    servers: SandboxServers, session: aiohttp.ClientSession, path: str, **headers: str
) -> Reply:
    return await fetch(session, "GET", servers.urls["water"] + path, headers=headers)


def _rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


async def test_bom_crlf_and_exact_headers(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    headers = {
        GRADES: "统一社会信用代码,单位名称,信用等级,评价日期,有效期至",
        LISTS: "记录编号,统一社会信用代码,单位名称,名单类型,列入原因,认定单位,"
        "列入日期,公开期限至,移出日期",
        PENALTIES: "处罚决定书文号,统一社会信用代码,行政相对人名称,违法行为类型,处罚内容,"
        "罚款金额（万元）,处罚决定日期,公示截止日期,处罚机关,信用修复",
    }
    for path, header in headers.items():
        reply = await _get(servers, session, path)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert reply.body.startswith(b"\xef\xbb\xbf" + header.encode() + b"\r\n")
        assert reply.body.endswith(b"\r\n")
        assert reply.body.count(b"\n") == reply.body.count(b"\r\n")


async def test_rfc4180_quoting_of_comma_and_quote(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    reply = await _get(servers, session, GRADES)
    assert '"榆林""宏达"",水利工程有限公司"'.encode() in reply.body
    rows = _rows(reply.body)
    assert rows[1] == [COMPANY_A, WATER_TRICKY_NAME, "AA", "2025/03/02", "2028/03/01"]


async def test_slash_dates_and_empty_fields(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    lists = _rows((await _get(servers, session, LISTS)).body)
    assert lists[1][6:] == ["2025/01/02", "2028/01/01", ""]  # not removed: empty 移出日期
    assert lists[2][6:] == ["2022/01/02", "2023/01/01", "2022/06/30"]
    penalties = _rows((await _get(servers, session, PENALTIES)).body)
    assert (penalties[1][5], penalties[1][9]) == ("", "是")  # no amount; credit repaired
    assert (penalties[2][5], penalties[2][9]) == ("2.5", "")


async def test_etag_and_304(servers: SandboxServers, session: aiohttp.ClientSession) -> None:
    first = await _get(servers, session, GRADES)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Last-Modified"].endswith(" GMT")
    again = await _get(servers, session, GRADES, **{"If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")
    assert again.headers["ETag"] == etag
    other = await _get(servers, session, GRADES, **{"If-None-Match": '"stale"'})
    assert other.status == 200 and other.body == first.body


async def test_rebuilding_503_then_the_previous_file_is_still_valid(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    etag = (await _get(servers, session, LISTS)).headers["ETag"]
    servers.faults["water"].update({"rebuilding": True})
    during = await _get(servers, session, LISTS, **{"If-None-Match": etag})
    assert during.status == 503
    servers.faults["water"].update({"rebuilding": False})
    after = await _get(servers, session, LISTS, **{"If-None-Match": etag})
    assert after.status == 304


async def test_new_dataset_version_gets_a_new_etag(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    before = await _get(servers, session, GRADES)
    lists_before = await _get(servers, session, LISTS)
    dataset = build_dataset()
    dataset.water_grades[0] = replace(dataset.water_grades[0], grade="A")
    try:
        servers.replace_dataset(dataset)
        after = await _get(servers, session, GRADES, **{"If-None-Match": before.headers["ETag"]})
        assert after.status == 200 and after.headers["ETag"] != before.headers["ETag"]
        unchanged = await _get(servers, session, LISTS)
        assert unchanged.headers["ETag"] == lists_before.headers["ETag"]
        assert unchanged.headers["Last-Modified"] == lists_before.headers["Last-Modified"]
    finally:
        servers.replace_dataset(build_dataset())


async def test_large_file_is_rendered_once_and_served_fast() -> None:
    dataset = build_dataset()
    dataset.water_grades = [
        WaterGradeRow(
            f"9161080200{n:07d}X", f"第{n}号水利工程公司", "A", date(2025, 1, 1), date(2028, 1, 1)
        )
        for n in range(120_000)
    ]
    sandbox = await SandboxServers.start(dataset, faults=quiet_faults())
    try:
        async with aiohttp.ClientSession() as client:
            started = time.perf_counter()
            replies = [await _get(sandbox, client, GRADES) for _ in range(3)]
            elapsed = time.perf_counter() - started
        assert {r.headers["ETag"] for r in replies} == {replies[0].headers["ETag"]}
        assert replies[0].body.count(b"\r\n") == 120_001
        assert elapsed < 3.0  # bytes are cached; no per-request rendering
    finally:
        await sandbox.stop()
