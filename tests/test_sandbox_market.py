"""The sandbox market regulation server follows market.md to the letter, through real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from sandbox.runner import SandboxServers
from tests.sandbox_support import (
    COMPANY_A,
    COMPANY_B,
    COMPANY_C,
    PERSON_1,
    PERSON_NO_POSITIONS,
    UNREGISTERED,
    Reply,
    fetch,
    make_uscc,
)

# Servers, session and the fault reset come from conftest.py.
pytestmark = pytest.mark.usefixtures("reset_sandbox_faults")


async def _post(
    servers: SandboxServers, session: aiohttp.ClientSession, what: str, codes: object
) -> Reply:
    url = f"{servers.urls['market']}/api/v1/{what}/query"
    return await fetch(session, "POST", url, json={"uniscIds": codes})


async def _get(
    servers: SandboxServers, session: aiohttp.ClientSession, path: str, **params: str
) -> Reply:
    return await fetch(session, "GET", servers.urls["market"] + path, params=params)


async def test_entities_envelope_and_field_types(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = (await _post(servers, session, "entities", [COMPANY_A, UNREGISTERED, COMPANY_B])).json()
    assert body["status"] == "1" and isinstance(body["status"], str)
    assert body["msg"] == "success"
    assert body["notFound"] == [UNREGISTERED]
    first, second = body["data"]
    assert (first["uniscId"], second["uniscId"]) == (COMPANY_A, COMPANY_B)
    assert first["regCap"] == "500.000000"
    assert first["opTo"] is None  # 长期
    assert second["opTo"] == "2035-04-01"
    assert first["lerepCerNo"] == PERSON_1  # unmasked in the sharing interface
    assert first["estDate"] == "2015-04-01" and first["regNo"] == ""
    assert set(first) == {
        "uniscId", "entName", "regNo", "entType_CN", "name", "lerepCerNo", "regCap",
        "regCapCur_CN", "estDate", "opFrom", "opTo", "regOrg_CN", "regState_CN", "dom",
        "opScope", "apprDate",
    }  # fmt: skip


async def test_more_than_100_codes_is_413(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    codes = [make_uscc("610802", f"MA8{n:04d}K") for n in range(101)]
    too_many = await _post(servers, session, "entities", codes)
    assert too_many.status == 413
    assert too_many.json()["status"] == "0" and too_many.json()["data"] is None
    exactly = await _post(servers, session, "abnormal", codes[:100])
    assert exactly.status == 200 and len(exactly.json()["notFound"]) == 100


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"uniscIds": "91610802MA703XY29M"}', b'{"codes": []}', b"[1, 2]"],
)
async def test_malformed_body_is_400(
    servers: SandboxServers, session: aiohttp.ClientSession, body: bytes
) -> None:
    url = servers.urls["market"] + "/api/v1/entities/query"
    reply = await fetch(session, "POST", url, data=body)
    assert reply.status == 400
    assert reply.json()["status"] == "0"


async def test_abnormal_history_keeps_removed_entries(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = (await _post(servers, session, "abnormal", [COMPANY_A, COMPANY_C, UNREGISTERED])).json()
    assert body["notFound"] == [UNREGISTERED]
    by_code = {item["uniscId"]: item["busExcList"] for item in body["data"]}
    assert by_code[COMPANY_C] == []  # exists, no entries
    removed, listed = by_code[COMPANY_A]
    assert (removed["remDate"], listed["remDate"]) == ("2022-03-01", "")
    assert listed["remExcpRes_CN"] == "" and listed["abntime"] == "2024-07-01"


async def test_illegal_list_key_and_fields(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = (await _post(servers, session, "illegal", [COMPANY_A])).json()
    (entry,) = body["data"][0]["serILLList"]
    assert set(entry) == {
        "serILLId", "serILLRea_CN", "abntime", "decOrg_CN", "remExcpRes_CN", "remDate",
        "reDecOrg_CN",
    }  # fmt: skip
    assert entry["remDate"] == ""  # older than 3 years and still "", as the doc warns


async def test_penalty_states_are_strings(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = (await _post(servers, session, "penalties", [COMPANY_A])).json()
    repaired, disputed = body["data"][0]["penaltyList"]
    assert (repaired["repairState"], repaired["objectionState"], repaired["penAm"]) == (
        "1",
        "0",
        "",
    )
    assert (disputed["repairState"], disputed["objectionState"], disputed["penAm"]) == (
        "0",
        "1",
        "1.5",
    )
    assert repaired["pubEndDate"] == "2027-03-08"


async def test_positions_in_office_and_left(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = (await _get(servers, session, f"/api/v1/persons/{PERSON_1}/positions")).json()
    assert body["status"] == "1" and "notFound" not in body
    left, current = body["data"]
    assert (left["position_CN"], left["endDate"]) == ("监事", "2016-12-31")
    assert (current["position_CN"], current["endDate"]) == ("法定代表人", None)


async def test_person_without_positions_gets_empty_list(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    body = (await _get(servers, session, f"/api/v1/persons/{PERSON_NO_POSITIONS}/positions")).json()
    assert (body["status"], body["data"]) == ("1", [])


@pytest.mark.parametrize("cert_no", ["12345", PERSON_1[:17] + "0", "61080219801314123X"])
async def test_malformed_cert_no_is_status_0_inside_200(
    servers: SandboxServers, session: aiohttp.ClientSession, cert_no: str
) -> None:
    reply = await _get(servers, session, f"/api/v1/persons/{cert_no}/positions")
    assert reply.status == 200
    body = reply.json()
    assert (body["status"], body["data"]) == ("0", None)
    assert "证件号码" in body["msg"]


async def test_search_pages_in_a_stable_order(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    pages = [
        (await _get(servers, session, "/api/v1/entities/search", keyword="测试", page=str(n),
                    pageSize="5")).json()["data"]
        for n in (1, 2, 3)
    ]  # fmt: skip
    assert [p["total"] for p in pages] == [12, 12, 12]
    names = [row["entName"] for p in pages for row in p["list"]]
    assert names == [f"榆林市测试{n:02d}号企业有限公司" for n in range(12)]
    assert set(pages[0]["list"][0]) == {"uniscId", "entName", "name", "regState_CN", "estDate"}


async def test_search_is_a_substring_match_on_the_name_as_spelled(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    half = await _get(servers, session, "/api/v1/entities/search", keyword="(中泰)")
    full = await _get(servers, session, "/api/v1/entities/search", keyword="（中泰）")
    assert [r["uniscId"] for r in half.json()["data"]["list"]] == [COMPANY_C]
    assert full.json()["data"] == {"total": 0, "list": []}
    # "0" occurs twice in 测试00号 and once in 测试10号: every name is counted once.
    zeros = await _get(servers, session, "/api/v1/entities/search", keyword="0", pageSize="50")
    assert zeros.json()["data"]["total"] == 11


async def test_search_page_size_over_50_is_400(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    reply = await _get(servers, session, "/api/v1/entities/search", keyword="测试", pageSize="51")
    assert reply.status == 400 and reply.json()["status"] == "0"
    ok = await _get(servers, session, "/api/v1/entities/search", keyword="测试", pageSize="50")
    assert ok.status == 200


async def test_overload_is_429_with_retry_after(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["market"].update({"throttle_rate": 1.0, "retry_after_s": 7})
    reply = await _post(servers, session, "entities", [COMPANY_A])
    assert reply.status == 429 and reply.headers["Retry-After"] == "7"
    assert reply.json()["status"] == "0"


async def test_maintenance_503_has_an_empty_body(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["market"].update({"down": True})
    reply = await _post(servers, session, "entities", [COMPANY_A])
    assert (reply.status, reply.body) == (503, b"")
