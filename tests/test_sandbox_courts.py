"""The sandbox courts server follows courts.md to the letter, through real HTTP."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from sandbox.faults import FaultState
from sandbox.runner import SandboxServers
from tests.sandbox_support import (
    COMPANY_A,
    COMPANY_B,
    PERSON_1,
    PERSON_2,
    PERSON_3,
    Reply,
    build_dataset,
    fetch,
    org_code,
)

BAD_REQUEST = {"code": 400, "message": "参数错误", "result": None}


# Servers, session and the fault reset come from conftest.py.
pytestmark = pytest.mark.usefixtures("reset_sandbox_faults")


async def _search(
    servers: SandboxServers, session: aiohttp.ClientSession, path: str, **params: str
) -> Reply:
    return await fetch(session, "GET", servers.urls["courts"] + path, params=params)


async def test_pagination_newest_first_across_pages(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    pages = [
        (await _search(servers, session, "/shixin/search", cardNum=PERSON_1, page=str(n))).json()
        for n in (1, 2, 3, 4)
    ]
    assert [p["result"]["total"] for p in pages] == [23, 23, 23, 23]
    assert [len(p["result"]["items"]) for p in pages] == [10, 10, 3, 0]  # default pageSize 10
    assert pages[0]["result"]["page"] == 1 and pages[0]["result"]["pageSize"] == 10
    ids = [item["id"] for p in pages for item in p["result"]["items"]]
    assert len(set(ids)) == 23
    # P005 and P006 share a publish date: the id breaks the tie, so pages never overlap.
    assert ids == [f"P{n:03d}" for n in range(22, 6, -1)] + ["P005", "P006"] + [
        f"P{n:03d}" for n in range(4, -1, -1)
    ]


async def test_page_size_twenty_gives_two_pages(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    first = await _search(servers, session, "/shixin/search", cardNum=PERSON_1, pageSize="20")
    second = await _search(
        servers, session, "/shixin/search", cardNum=PERSON_1, pageSize="20", page="2"
    )
    assert len(first.json()["result"]["items"]) == 20
    assert len(second.json()["result"]["items"]) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"cardNum": PERSON_1, "pageSize": "21"},
        {"cardNum": PERSON_1, "pageSize": "0"},
        {"cardNum": PERSON_1, "page": "0"},
        {"cardNum": PERSON_1, "page": "x"},
        {},
        {"cardNum": ""},
        {"cardNum": PERSON_1[:17]},
        {"cardNum": PERSON_1.lower() + "1"},
        {"cardNum": " " + PERSON_1},
        {"cardNum": "91610802ma703xy29m"},
    ],
)
async def test_bad_parameters_are_400(
    servers: SandboxServers, session: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    for path in ("/shixin/search", "/xgl/search"):
        reply = await _search(servers, session, path, **params)
        assert reply.status == 400
        assert reply.json() == BAD_REQUEST


async def test_no_match_is_an_empty_success(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    reply = await _search(servers, session, "/shixin/search", cardNum=PERSON_3)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.json() == {
        "code": 200,
        "message": "成功",
        "result": {"total": 0, "page": 1, "pageSize": 10, "items": []},
    }


async def test_org_code_storage_is_not_found_by_uscc(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    by_uscc = await _search(servers, session, "/shixin/search", cardNum=COMPANY_B)
    by_code = await _search(servers, session, "/shixin/search", cardNum=org_code("22052001"))
    assert by_uscc.json()["result"]["total"] == 0
    items = by_code.json()["result"]["items"]
    assert [i["id"] for i in items] == ["B-OLD-2", "B-OLD-1"]
    assert items[0]["cardNum"] == COMPANY_B[8:17]  # organisations shown as stored


async def test_organisation_with_records_under_both_forms(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    new = (await _search(servers, session, "/shixin/search", cardNum=COMPANY_A)).json()
    old = (await _search(servers, session, "/shixin/search", cardNum=COMPANY_A[8:17])).json()
    assert [i["id"] for i in new["result"]["items"]] == ["A-NEW"]
    assert [i["id"] for i in old["result"]["items"]] == ["A-OLD"]
    org = new["result"]["items"][0]
    assert org["cardNum"] == COMPANY_A
    assert (org["age"], org["sexy"], org["partyTypeName"]) == (0, "", "581")
    assert org["businessEntity"] == "王伟"


async def test_person_record_fields_and_formats(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    reply = await _search(servers, session, "/shixin/search", cardNum=PERSON_1, pageSize="1")
    item = reply.json()["result"]["items"][0]
    assert item["cardNum"] == PERSON_1[:10] + "****" + PERSON_1[-4:]
    assert item["cardNum"] == "6108021980****1236"
    assert item["age"] == 46 and isinstance(item["age"], int)
    assert (item["sexy"], item["partyTypeName"], item["businessEntity"]) == ("男", "580", "")
    assert item["publishDate"] == "2023年08月09日"
    assert item["regDate"] == "20230610"
    assert item["disruptTypeName"] == "违反财产报告制度,违反限制消费令"
    assert set(item) == {
        "id", "iname", "caseCode", "age", "sexy", "cardNum", "businessEntity", "partyTypeName",
        "courtName", "areaName", "gistId", "gistUnit", "duty", "performance", "performedPart",
        "unperformPart", "disruptTypeName", "regDate", "publishDate",
    }  # fmt: skip


async def test_xgl_company_code_returns_restricted_people_upper_case(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    items = (await _search(servers, session, "/xgl/search", cardNum=COMPANY_A)).json()["result"]
    assert items["total"] == 2
    person, itself = sorted(items["items"], key=lambda i: i["ID"])
    assert set(person) == {"ID", "AH", "XM", "ZJHM", "QY_MC", "QY_DM", "ZXFYMC", "LASJStr", "FBRQ"}
    assert person["ZJHM"] == PERSON_2[:10] + "****" + PERSON_2[-4:]
    assert person["QY_DM"] == COMPANY_A
    assert (person["LASJStr"], person["FBRQ"]) == ("2024-01-05", "2024-02-06")
    assert itself["ZJHM"] == ""  # the company itself is the restricted party


async def test_xgl_matches_the_persons_full_id(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    by_person = (await _search(servers, session, "/xgl/search", cardNum=PERSON_2)).json()
    personal = (await _search(servers, session, "/xgl/search", cardNum=PERSON_3)).json()
    assert [i["ID"] for i in by_person["result"]["items"]] == ["R1"]
    item = personal["result"]["items"][0]
    assert (item["QY_MC"], item["QY_DM"]) == ("", "")


async def test_default_rate_limit_answers_429_with_retry_after() -> None:
    assert FaultState.for_department("courts").rate_limit_rps == 50
    sandbox = await SandboxServers.start(build_dataset())  # department defaults
    try:
        async with aiohttp.ClientSession() as client:
            url = sandbox.urls["courts"] + "/shixin/search"
            burst = [fetch(client, "GET", url, params={"cardNum": PERSON_1}) for _ in range(80)]
            replies = await asyncio.gather(*burst)
        limited = [r for r in replies if r.status == 429]
        # A bucket of 50 tokens: the first 50 pass, then refills trickle in at 50/s.
        assert sum(r.status == 200 for r in replies) >= 50
        assert limited and {r.status for r in replies} == {200, 429}
        assert limited[0].json() == {
            "code": 429,
            "message": "访问过于频繁，请稍后再试",
            "result": None,
        }
        assert int(limited[0].headers["Retry-After"]) >= 1
    finally:
        await sandbox.stop()


async def test_failures_are_html(servers: SandboxServers, session: aiohttp.ClientSession) -> None:
    servers.faults["courts"].update({"error_rate": 1.0})
    replies = [
        await _search(servers, session, "/shixin/search", cardNum=PERSON_1) for _ in range(6)
    ]
    assert {r.status for r in replies} <= {500, 503}
    assert all(r.headers["Content-Type"].startswith("text/html") for r in replies)
