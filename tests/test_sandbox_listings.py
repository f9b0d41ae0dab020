"""Listings changed while the sandbox runs (POST /_admin/listings), through real HTTP.

The module runs a sandbox of its own: ending a generated listing, or a market entry kept
as history after its end, would otherwise change what the session sandbox's other tests
read. Every test starts from the generated dataset again (`live` republishes it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.clock import Clock
from core.identity import org_code_of
from gateway.app import create_app
from sandbox.generator import generate
from sandbox.listings import ListingEnded, ListingError, UnknownListing
from sandbox.model import Company, Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.sandbox_support import quiet_faults
from tests.servers import KEYS, GatewayServer, GraphQLClient

TODAY_CHINESE = f"{TODAY.year}年{TODAY.month:02d}月{TODAY.day:02d}日"
MARKET_LISTS = {
    # list -> (query path, list key, id field)
    "abnormal": ("abnormal", "busExcList", "busExcId"),
    "serious_illegal": ("illegal", "serILLList", "serILLId"),
    "penalty": ("penalties", "penaltyList", "caseId"),
}
GATEWAY_PREFIX = {
    "abnormal": "MARKET:abnormal:",
    "serious_illegal": "MARKET:illegal:",
    "penalty": "MARKET:penalty:",
}


@pytest.fixture(scope="module")
def own_dataset() -> Dataset:
    """A dataset of this module's sandbox; never the session's."""
    return generate(seed=14, subjects=300, today=TODAY)


@pytest.fixture(scope="module")
def own_sandbox(own_dataset: Dataset) -> Iterator[SandboxThread]:
    """The four departments for this module (the courts without their rate limit)."""
    with SandboxThread(own_dataset, faults=quiet_faults()) as servers:
        yield servers


@pytest.fixture
def live(own_sandbox: SandboxThread, own_dataset: Dataset) -> Iterator[SandboxThread]:
    """The module's sandbox; afterwards the dataset is republished, dropping every change."""
    yield own_sandbox
    own_sandbox.clear_faults()
    own_sandbox.replace_dataset(own_dataset)


def _company(dataset: Dataset, uscc: str) -> Company:
    return next(c for c in dataset.companies if c.uscc == uscc)


def _admin(sandbox: SandboxThread, department: str, body: object) -> httpx.Response:
    url = sandbox.urls[department] + "/_admin/listings"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, timeout=10)
    return httpx.post(url, json=body, timeout=10)


def _courts(sandbox: SandboxThread, resource: str, card_num: str) -> dict[str, Any]:
    response = httpx.get(
        f"{sandbox.urls['courts']}/{resource}/search",
        params={"cardNum": card_num, "pageSize": "20"},
        timeout=10,
    )
    assert response.status_code == 200
    result: dict[str, Any] = response.json()["result"]
    return result


def _market(sandbox: SandboxThread, list_name: str, uscc: str) -> list[dict[str, Any]]:
    what, key, _ = MARKET_LISTS[list_name]
    response = httpx.post(
        f"{sandbox.urls['market']}/api/v1/{what}/query", json={"uniscIds": [uscc]}, timeout=10
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "1"
    (item,) = body["data"]
    entries: list[dict[str, Any]] = item[key]
    return entries


# --- courts ---------------------------------------------------------------------------------


def test_new_shixin_case_is_published_under_the_uscc_then_ended(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    # Its old cases are stored under the organisation code; a new case is under the USCC.
    uscc = own_dataset.examples["dishonest.org_code_only"]
    company = _company(own_dataset, uscc)
    old = _courts(live, "shixin", org_code_of(uscc))
    assert old["total"] >= 1 and _courts(live, "shixin", uscc)["total"] == 0

    response = _admin(live, "courts", {"action": "add", "list": "shixin", "uscc": uscc})
    assert response.status_code == 200
    added = response.json()
    case_id = added["id"]
    assert added["action"] == "add" and added["department"] == "courts"
    assert added["list"] == "shixin" and added["uscc"] == uscc
    assert added["gateway_id"] == f"COURTS:{case_id}"
    assert added["ids"] == [case_id] and added["gateway_ids"] == [f"COURTS:{case_id}"]
    assert case_id not in {c.case_id for c in own_dataset.shixin}

    found = _courts(live, "shixin", uscc)
    assert found["total"] == 1
    (item,) = found["items"]
    assert item == added["records"][0]
    assert item["id"] == case_id
    assert item["cardNum"] == uscc and item["partyTypeName"] == "581"
    assert item["iname"] == company.name and item["businessEntity"] == company.legal_rep_name
    assert item["age"] == 0 and item["sexy"] == ""
    assert item["publishDate"] == TODAY_CHINESE
    assert item["regDate"] < TODAY.strftime("%Y%m%d")  # filed before it was published
    assert item["caseCode"].startswith(f"（{item['regDate'][:4]}）") and "执" in item["caseCode"]
    assert item["courtName"].endswith("人民法院") and item["areaName"]
    assert item["performance"] in ("全部未履行", "部分未履行") and item["disruptTypeName"]
    assert _courts(live, "shixin", org_code_of(uscc)) == old  # the old ones are untouched

    response = _admin(live, "courts", {"action": "end", "list": "shixin", "id": case_id})
    assert response.status_code == 200
    ended = response.json()
    assert ended["action"] == "end" and ended["id"] == case_id and ended["uscc"] == uscc
    assert ended["records"] == [item]
    assert _courts(live, "shixin", uscc) == {"total": 0, "page": 1, "pageSize": 20, "items": []}
    again = _admin(live, "courts", {"action": "end", "list": "shixin", "id": case_id})
    assert again.status_code == 404 and "error" in again.json()


def test_new_cases_are_newest_first_with_fresh_ids(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["dishonest.active"]
    before = _courts(live, "shixin", uscc)
    first = live.add_listing("courts", "shixin", uscc)["id"]
    second = live.add_listing("courts", "shixin", uscc)["id"]
    assert first != second
    found = _courts(live, "shixin", uscc)
    assert found["total"] == before["total"] + 2
    # Both are published today, the newest publication first; the id breaks the tie.
    assert [i["id"] for i in found["items"][:2]] == sorted([first, second])
    assert found["items"][2:] == before["items"]


def test_new_restriction_case_names_the_company_and_its_representative(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    company = _company(own_dataset, uscc)
    assert company.legal_rep_id
    added = live.add_listing("courts", "xgl", uscc)
    assert added["gateway_ids"] == [f"COURTS:xgl:{i}" for i in added["ids"]]
    assert len(added["ids"]) == 2

    by_company = _courts(live, "xgl", uscc)
    assert by_company["total"] == 2
    assert sorted(by_company["items"], key=lambda i: str(i["ID"])) == sorted(
        added["records"], key=lambda i: str(i["ID"])
    )
    rows = {i["XM"]: i for i in by_company["items"]}
    assert rows[company.name]["ZJHM"] == ""
    rep = rows[company.legal_rep_name]
    assert rep["ZJHM"] == company.legal_rep_id[:10] + "****" + company.legal_rep_id[-4:]
    for row in rows.values():
        assert row["QY_DM"] == uscc and row["QY_MC"] == company.name
        assert row["FBRQ"] == TODAY.isoformat() and row["LASJStr"] < TODAY.isoformat()
    # courts.md §2: the representative is found by their own ID as well.
    by_person = _courts(live, "xgl", company.legal_rep_id)
    assert rep in by_person["items"]

    # Ending the case by either row's id takes every row of it off.
    response = _admin(live, "courts", {"action": "end", "list": "xgl", "id": rep["ID"]})
    assert response.status_code == 200
    ended = response.json()
    assert ended["id"] == rep["ID"] and sorted(ended["ids"]) == sorted(added["ids"])
    assert ended["gateway_id"] == f"COURTS:xgl:{rep['ID']}" and ended["uscc"] == uscc
    assert _courts(live, "xgl", uscc)["total"] == 0
    assert rep not in _courts(live, "xgl", company.legal_rep_id)["items"]


def test_a_generated_case_under_the_organisation_code_can_end(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["dishonest.org_code_only"]
    old = _courts(live, "shixin", org_code_of(uscc))["items"]
    ended = live.end_listing("courts", "shixin", old[0]["id"])
    assert ended["uscc"] == uscc  # the organisation code read back as the company's USCC
    left = _courts(live, "shixin", org_code_of(uscc))
    assert left["total"] == len(old) - 1 and old[0] not in left["items"]
    # The dataset itself is not changed: republishing it brings the case back.
    live.replace_dataset(own_dataset)
    assert _courts(live, "shixin", org_code_of(uscc))["items"] == old


def test_admin_listings_are_exempt_from_faults_and_counters(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    live.reset_counts()
    live.set_faults("courts", down=True)
    response = _admin(live, "courts", {"action": "add", "list": "shixin", "uscc": uscc})
    assert response.status_code == 200
    search = httpx.get(live.urls["courts"] + "/shixin/search", params={"cardNum": uscc})
    assert search.status_code == 503  # the department itself is down
    live.clear_faults("courts")
    assert _courts(live, "shixin", uscc)["items"][0]["id"] == response.json()["id"]
    assert not any("_admin" in key for key in live.request_counts("courts"))


# --- market ---------------------------------------------------------------------------------


@pytest.mark.parametrize("list_name", ["abnormal", "serious_illegal"])
def test_market_list_entry_added_then_removed_stays_as_history(
    live: SandboxThread, own_dataset: Dataset, list_name: str
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    company = _company(own_dataset, uscc)
    id_field = MARKET_LISTS[list_name][2]
    assert _market(live, list_name, uscc) == []

    response = _admin(live, "market", {"action": "add", "list": list_name, "uscc": uscc})
    assert response.status_code == 200
    added = response.json()
    entry_id = added["id"]
    assert added["gateway_id"] == GATEWAY_PREFIX[list_name] + entry_id
    (entry,) = _market(live, list_name, uscc)
    assert entry == added["records"][0] and entry[id_field] == entry_id
    assert entry["abntime"] == TODAY.isoformat()
    assert entry["remDate"] == "" and entry["remExcpRes_CN"] == "" and entry["reDecOrg_CN"] == ""
    assert entry["decOrg_CN"]
    if list_name == "abnormal":
        assert entry["decOrg_CN"] == company.reg_org
    # Ids follow the department's pattern and never collide with the dataset's.
    assert entry_id[:2] == ("YC" if list_name == "abnormal" else "YZ") and len(entry_id) == 17
    existing = {e.entry_id for e in own_dataset.abnormal + own_dataset.illegal}
    assert entry_id not in existing

    response = _admin(live, "market", {"action": "end", "list": list_name, "id": entry_id})
    assert response.status_code == 200
    (removed,) = _market(live, list_name, uscc)
    assert response.json()["records"] == [removed]
    assert removed[id_field] == entry_id and removed["abntime"] == TODAY.isoformat()
    assert removed["remDate"] == TODAY.isoformat()  # market.md: removal is shown, not deleted
    assert removed["remExcpRes_CN"] and removed["reDecOrg_CN"] == entry["decOrg_CN"]

    again = _admin(live, "market", {"action": "end", "list": list_name, "id": entry_id})
    assert again.status_code == 409 and "error" in again.json()


def test_market_penalty_added_then_repaired(live: SandboxThread, own_dataset: Dataset) -> None:
    uscc = own_dataset.examples["clean.plain"]
    added = live.add_listing("market", "penalty", uscc)
    assert added["gateway_id"] == f"MARKET:penalty:{added['id']}"
    (penalty,) = _market(live, "penalty", uscc)
    assert penalty == added["records"][0]
    assert penalty["publicDate"] == TODAY.isoformat() < penalty["pubEndDate"]
    assert penalty["penDecIssDate"] < TODAY.isoformat()
    assert penalty["repairState"] == "0" and penalty["objectionState"] == "0"
    assert penalty["penDecNo"] and penalty["penAuth_CN"] and penalty["illegActType"]

    ended = live.end_listing("market", "penalty", added["id"])
    (repaired,) = _market(live, "penalty", uscc)
    assert ended["records"] == [repaired]
    # market.md: repairState "1" is a penalty whose publication stopped early.
    assert repaired == {**penalty, "repairState": "1"}
    with pytest.raises(ListingEnded):
        live.end_listing("market", "penalty", added["id"])


def test_ending_a_generated_market_entry_leaves_the_dataset_alone(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["abnormal.active"]
    (entry,) = (e for e in _market(live, "abnormal", uscc) if e["remDate"] == "")
    live.end_listing("market", "abnormal", entry["busExcId"])
    assert all(e["remDate"] for e in _market(live, "abnormal", uscc))
    stored = next(e for e in own_dataset.abnormal if e.entry_id == entry["busExcId"])
    assert stored.removed_on is None


# --- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("department", ["courts", "market"])
@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"",
        b"[]",
        b'"add"',
        {"action": "delete", "list": "shixin", "uscc": "@"},
        {"list": "shixin", "uscc": "@"},
        {"action": "add", "list": "blacklist", "uscc": "@"},
        {"action": "add", "uscc": "@"},
        {"action": "add", "list": "@list"},
        {"action": "add", "list": "@list", "uscc": ""},
        {"action": "add", "list": "@list", "uscc": 91},
        {"action": "add", "list": "@list", "uscc": "91610802MA703XY29Q"},  # not in the dataset
        {"action": "add", "list": "@list", "uscc": "@", "id": "1"},
        {"action": "end", "list": "@list"},
        {"action": "end", "list": "@list", "id": ""},
        {"action": "end", "list": "@list", "uscc": "@"},
    ],
)
def test_bad_requests_are_400_with_a_message(
    live: SandboxThread, own_dataset: Dataset, department: str, body: object
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    list_name = "shixin" if department == "courts" else "abnormal"
    if isinstance(body, dict):
        body = {k: uscc if v == "@" else list_name if v == "@list" else v for k, v in body.items()}
    response = _admin(live, department, body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and error


@pytest.mark.parametrize(
    ("department", "list_name"),
    [("courts", "abnormal"), ("courts", "penalty"), ("market", "shixin"), ("market", "xgl")],
)
def test_another_departments_list_is_400(
    live: SandboxThread, own_dataset: Dataset, department: str, list_name: str
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    response = _admin(live, department, {"action": "add", "list": list_name, "uscc": uscc})
    assert response.status_code == 400 and response.json()["error"]


@pytest.mark.parametrize(
    ("department", "list_name"),
    [
        ("courts", "shixin"),
        ("courts", "xgl"),
        ("market", "abnormal"),
        ("market", "serious_illegal"),
        ("market", "penalty"),
    ],
)
def test_unknown_id_is_404(live: SandboxThread, department: str, list_name: str) -> None:
    response = _admin(live, department, {"action": "end", "list": list_name, "id": "NO-SUCH-ID"})
    assert response.status_code == 404 and response.json()["error"]


def test_python_api_raises_what_the_endpoint_answers(
    live: SandboxThread, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    with pytest.raises(ListingError):
        live.add_listing("courts", "abnormal", uscc)
    with pytest.raises(ListingError):
        live.add_listing("market", "abnormal", "91610802MA703XY29Q")
    with pytest.raises(UnknownListing):
        live.end_listing("courts", "shixin", "NO-SUCH-ID")
    with pytest.raises(LookupError):
        live.end_listing("market", "penalty", "NO-SUCH-ID")
    with pytest.raises(ValueError, match="no listings"):
        live.add_listing("tax", "shixin", uscc)
    with pytest.raises(ValueError, match="unknown department"):
        live.add_listing("police", "shixin", uscc)
    # What the API added, the endpoint ends, and the other way round.
    added = live.add_listing("market", "abnormal", uscc)
    response = _admin(live, "market", {"action": "end", "list": "abnormal", "id": added["id"]})
    assert response.status_code == 200
    added = _admin(live, "courts", {"action": "add", "list": "shixin", "uscc": uscc}).json()
    assert live.end_listing("courts", "shixin", added["id"])["id"] == added["id"]


# --- through the gateway ----------------------------------------------------------------------

SUBJECT = """
query($uscc: String!, $all: Boolean = false) {
  subject(uscc: $uscc) { records(includeInactive: $all) { id kind active repaired } }
}"""


@pytest.fixture(scope="module")
def own_gateway(own_sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """A gateway over this module's sandbox (no answer cache: every query asks again)."""
    server = GatewayServer(create_app(gateway_config(own_sandbox.urls), Clock(TODAY))).start()
    yield server
    server.stop()


def _records(gateway: GatewayServer, uscc: str, every: bool = False) -> dict[str, dict[str, Any]]:
    client = GraphQLClient(gateway.url, KEYS["regulator"])
    body = client.query(SUBJECT, {"uscc": uscc, "all": every})
    assert "errors" not in body, body["errors"]
    return {r["id"]: r for r in body["data"]["subject"]["records"]}


def test_gateway_sees_a_listing_appear_and_end(
    live: SandboxThread, own_gateway: GatewayServer, own_dataset: Dataset
) -> None:
    uscc = own_dataset.examples["clean.plain"]
    assert _records(own_gateway, uscc) == {}
    added = [
        live.add_listing("courts", "shixin", uscc),
        live.add_listing("courts", "xgl", uscc),
        live.add_listing("market", "abnormal", uscc),
        live.add_listing("market", "serious_illegal", uscc),
        live.add_listing("market", "penalty", uscc),
    ]
    expected = {gid for a in added for gid in a["gateway_ids"]}
    records = _records(own_gateway, uscc)
    assert set(records) == expected
    assert all(r["active"] for r in records.values())

    for a in added:
        live.end_listing(a["department"], a["list"], a["id"])
    assert _records(own_gateway, uscc) == {}
    # Courts delete ended cases; market keeps them as history, now inactive.
    history = _records(own_gateway, uscc, every=True)
    market = {gid for a in added if a["department"] == "market" for gid in a["gateway_ids"]}
    assert set(history) == market
    assert not any(r["active"] for r in history.values())
    assert history[added[-1]["gateway_id"]]["repaired"] is True
