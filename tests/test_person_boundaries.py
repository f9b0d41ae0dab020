"""Contract §4 boundaries on a hand-built dataset: who derives a listing, who raises an alert.

Every row is its own person with its own subjects, so rows never see each other's data.
Listings are on LISTED; the clock is pinned to TODAY (2026-05-20).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from core.clock import Clock
from gateway.app import create_app
from sandbox.model import Dataset, MarketListEntry, PositionRow, ShixinCase
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.sandbox_support import company, make_id, make_uscc, quiet_faults, shixin
from tests.servers import KEYS, GatewayServer, GraphQLClient

LISTED = date(2025, 6, 10)
DAY = timedelta(days=1)
LONG_AGO = date(2015, 3, 1)
# 严重违法失信 is in force for 3 years from abntime: this one ended 2026-04-30.
EXPIRED_LISTING = date(2023, 4, 30)
CAUSE = "提交虚假材料或者采取其他欺诈手段隐瞒重要事实，取得公司变更或者注销登记，被撤销登记的"
MARKET, COURTS = "market", "courts"

PERSON = """
query($id: String!) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: "LOAN-2026-0042") {
    representedSubjects { uscc role startedOn endedOn current subject { uscc name } }
    derivedRecords { subjectUscc subjectName role record { id kind level listedOn active } }
    relocationAlerts { punishedSubjectUscc newSubjectUscc newSubjectName startedOn
                       listing { id } }
    jointPunishment { status complete missingSources }
  }
}"""


@dataclass(frozen=True)
class Term:
    """A row of the derivation table: one position in the listed subject."""

    role: str
    start: date
    end: date | None
    source: str = MARKET  # which department lists the subject on LISTED
    listed_on: date = LISTED
    removed_on: date | None = None


@dataclass(frozen=True)
class Move:
    """A row of the relocation table: a position in a new subject after a derived listing."""

    role: str
    start: date
    source: str = COURTS
    listed_on: date = LISTED  # of the origin's listing

    @property
    def listing_active(self) -> bool:
        return self.listed_on != EXPIRED_LISTING


DERIVES: dict[str, tuple[Term, bool]] = {
    # the dates around the listing day, for both kinds of listing
    "market-end-day-before": (Term("法定代表人", LONG_AGO, LISTED - DAY), False),
    "market-end-on-listing-day": (Term("法定代表人", LONG_AGO, LISTED), True),
    "market-start-on-listing-day": (Term("法定代表人", LISTED, None), True),
    "market-start-day-after": (Term("法定代表人", LISTED + DAY, None), False),
    "courts-end-day-before": (Term("法定代表人", LONG_AGO, LISTED - DAY, COURTS), False),
    "courts-end-on-listing-day": (Term("法定代表人", LONG_AGO, LISTED, COURTS), True),
    "courts-start-on-listing-day": (Term("法定代表人", LISTED, None, COURTS), True),
    "courts-start-day-after": (Term("法定代表人", LISTED + DAY, None, COURTS), False),
    # the roles: responsible ones derive, the others never do
    "principal": (Term("负责人", LONG_AGO, None), True),
    "controller": (Term("实际控制人", LONG_AGO, None), True),
    "supervisor": (Term("监事", LONG_AGO, None), False),
    "general-manager": (Term("总经理", LONG_AGO, None), False),
    "executive-director": (Term("执行董事", LONG_AGO, None), False),
    "chairman": (Term("董事长", LONG_AGO, None), False),
    # listings no longer in force
    "market-expired": (Term("法定代表人", LONG_AGO, None, listed_on=EXPIRED_LISTING), False),
    "market-removed": (Term("法定代表人", LONG_AGO, None, removed_on=date(2025, 12, 1)), False),
}
MOVES: dict[str, tuple[Move, bool]] = {
    "rep-on-listing-day": (Move("法定代表人", LISTED), False),
    "rep-day-after": (Move("法定代表人", LISTED + DAY), True),
    "supervisor-day-after": (Move("监事", LISTED + DAY), False),
    "manager-day-after": (Move("总经理", LISTED + DAY), True),
    "rep-day-after-market-listing": (Move("法定代表人", LISTED + DAY, MARKET), True),
    "rep-after-today": (Move("法定代表人", TODAY + DAY), False),
    # a listing no longer in force derives nothing, so a later position alerts nothing
    "rep-after-expired-listing": (
        Move("法定代表人", EXPIRED_LISTING + DAY, MARKET, EXPIRED_LISTING),
        False,
    ),
}


@dataclass
class Case:
    """What one row put into the dataset."""

    person: str
    listed: str  # USCC of the listed subject
    listed_name: str
    record_id: str
    new: str = ""  # USCC of the new subject (relocation rows)
    new_name: str = ""


@dataclass
class SeveralRoles:
    """The person with several roles in two listed subjects."""

    person: str
    first: str
    first_record: str
    second: str
    second_record: str


class _Builder:
    def __init__(self) -> None:
        self.data = Dataset(today=TODAY)
        self.count = 0

    def _next(self) -> int:
        self.count += 1
        return self.count

    def person(self) -> str:
        n = self._next()
        return make_id("610802", date(1970, 1, 1) + timedelta(days=97 * n), f"{n:03d}")

    def subject(self, label: str) -> tuple[str, str]:
        n = self._next()
        uscc = make_uscc("610802", f"MB9{n:04d}K")
        name = f"榆林市边界{n:03d}号{label}有限公司"
        self.data.companies.append(company(uscc, name))
        return uscc, name

    def listing(self, uscc: str, source: str, listed_on: date, removed: date | None) -> str:
        """One PUNISHMENT listing of the subject; its record id as the gateway names it."""
        n = self._next()
        if source == COURTS:
            case: ShixinCase = shixin(f"B{n:04d}", uscc, listed_on, person=False)
            self.data.shixin.append(case)
            return f"COURTS:{case.case_id}"
        entry = MarketListEntry(
            f"YZB{n:06d}", uscc, CAUSE, listed_on, "榆林市市场监督管理局", removed
        )
        if removed is not None:
            entry.rem_reason, entry.rem_org = "信用修复", "榆林市市场监督管理局"
        self.data.illegal.append(entry)
        return f"MARKET:illegal:{entry.entry_id}"

    def position(
        self, person: str, uscc: str, name: str, role: str, start: date, end: date | None
    ) -> None:
        self.data.positions.append(PositionRow(person, uscc, name, role, start, end))


def _build() -> tuple[Dataset, dict[str, Case], dict[str, Case], SeveralRoles, Case]:
    b = _Builder()
    derives: dict[str, Case] = {}
    for label, (term, _) in DERIVES.items():
        person = b.person()
        uscc, name = b.subject("商贸")
        record = b.listing(uscc, term.source, term.listed_on, term.removed_on)
        b.position(person, uscc, name, term.role, term.start, term.end)
        derives[label] = Case(person, uscc, name, record)
    moves: dict[str, Case] = {}
    for label, (move, _) in MOVES.items():
        person = b.person()
        origin, origin_name = b.subject("建设")
        record = b.listing(origin, move.source, move.listed_on, None)
        b.position(person, origin, origin_name, "法定代表人", LONG_AGO, None)
        new, new_name = b.subject("科技")
        b.position(person, new, new_name, move.role, move.start, None)
        moves[label] = Case(person, origin, origin_name, record, new, new_name)
    return b.data, derives, moves, _several_roles(b), _unregistered(b)


def _several_roles(b: _Builder) -> SeveralRoles:
    """A representative who is also executive director and controller of one listed subject,
    and principal of a second one: one derived record per listing."""
    person = b.person()
    first, first_name = b.subject("能源")
    first_record = b.listing(first, MARKET, LISTED, None)
    for role in ("法定代表人", "执行董事", "实际控制人"):
        b.position(person, first, first_name, role, LONG_AGO, None)
    second, second_name = b.subject("物流")
    second_record = b.listing(second, COURTS, LISTED, None)
    b.position(person, second, second_name, "负责人", LONG_AGO, None)
    return SeveralRoles(person, first, first_record, second, second_record)


def _unregistered(b: _Builder) -> Case:
    """A position in a subject no department knows."""
    person = b.person()
    uscc = make_uscc("610802", "MB8UNK0N")
    b.position(person, uscc, "榆林市未登记商贸有限公司", "法定代表人", LONG_AGO, None)
    return Case(person, uscc, "", "")


DATASET, DERIVED_CASES, MOVE_CASES, SEVERAL_ROLES, UNREGISTERED = _build()


@pytest.fixture(scope="module")
def boundary_sandbox() -> Iterator[SandboxThread]:
    """The hand-built dataset's departments, for this module."""
    sandbox = SandboxThread(DATASET, faults=quiet_faults())
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def boundary_client(boundary_sandbox: SandboxThread) -> Iterator[GraphQLClient]:
    """A bank's client of a gateway over the hand-built departments."""
    config = gateway_config(boundary_sandbox.urls)
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    yield GraphQLClient(server.url, KEYS["bank"])
    server.stop()


@pytest.fixture
def boundary_faults(boundary_sandbox: SandboxThread) -> Iterator[SandboxThread]:
    """The hand-built departments for a test that injects faults; cleared afterwards."""
    yield boundary_sandbox
    boundary_sandbox.clear_faults()


def _person(client: GraphQLClient, id_number: str) -> Any:
    body = client.query(PERSON, {"id": id_number})
    assert "errors" not in body, body.get("errors")
    return body["data"]["person"]


@pytest.mark.parametrize(("label", "derives"), [(k, v[1]) for k, v in DERIVES.items()])
def test_who_derives_a_listing(boundary_client: GraphQLClient, label: str, derives: bool) -> None:
    case = DERIVED_CASES[label]
    term = DERIVES[label][0]
    person = _person(boundary_client, case.person)
    assert [r["uscc"] for r in person["representedSubjects"]] == [case.listed]
    assert person["representedSubjects"][0]["role"] == term.role
    assert person["representedSubjects"][0]["subject"]["name"] == case.listed_name
    derived = person["derivedRecords"]
    joint = person["jointPunishment"]
    assert joint["complete"] is True and joint["missingSources"] == []
    if not derives:
        assert derived == []
        assert joint["status"] == "CLEAR"
        return
    assert len(derived) == 1
    (found,) = derived
    assert found["subjectUscc"] == case.listed
    assert found["subjectName"] == case.listed_name
    assert found["role"] == term.role
    record = found["record"]
    assert record["id"] == case.record_id
    assert record["listedOn"] == term.listed_on.isoformat()
    assert record["level"] == "PUNISHMENT" and record["active"] is True
    assert joint["status"] == "PUNISHED"
    assert person["relocationAlerts"] == []


@pytest.mark.parametrize(("label", "alerts"), [(k, v[1]) for k, v in MOVES.items()])
def test_who_raises_a_relocation_alert(
    boundary_client: GraphQLClient, label: str, alerts: bool
) -> None:
    case = MOVE_CASES[label]
    move = MOVES[label][0]
    person = _person(boundary_client, case.person)
    # The origin's listing, while in force, is derived whatever the new position is.
    derived = person["derivedRecords"]
    if not move.listing_active:
        assert derived == [] and person["relocationAlerts"] == []
        assert person["jointPunishment"]["status"] == "CLEAR"
        return
    assert [(d["subjectUscc"], d["record"]["id"]) for d in derived] == [
        (case.listed, case.record_id)
    ]
    assert person["jointPunishment"]["status"] == "PUNISHED"
    expected = [
        {
            "punishedSubjectUscc": case.listed,
            "newSubjectUscc": case.new,
            "newSubjectName": case.new_name,
            "startedOn": move.start.isoformat(),
            "listing": {"id": case.record_id},
        }
    ]
    assert person["relocationAlerts"] == (expected if alerts else [])


def test_one_derived_record_per_listing_whatever_the_roles(
    boundary_client: GraphQLClient,
) -> None:
    case = SEVERAL_ROLES
    person = _person(boundary_client, case.person)
    assert len(person["representedSubjects"]) == 4
    derived = {d["record"]["id"]: d for d in person["derivedRecords"]}
    assert len(person["derivedRecords"]) == 2
    assert set(derived) == {case.first_record, case.second_record}
    assert derived[case.first_record]["subjectUscc"] == case.first
    assert derived[case.first_record]["role"] in ("法定代表人", "实际控制人")
    assert derived[case.second_record]["subjectUscc"] == case.second
    assert derived[case.second_record]["role"] == "负责人"
    assert person["jointPunishment"]["status"] == "PUNISHED"


def test_position_in_a_subject_nobody_knows(boundary_client: GraphQLClient) -> None:
    person = _person(boundary_client, UNREGISTERED.person)
    (representation,) = person["representedSubjects"]
    assert representation["uscc"] == UNREGISTERED.listed
    assert representation["subject"] is None  # as subject(uscc) answers for it
    assert representation["current"] is True
    assert person["derivedRecords"] == []
    assert person["jointPunishment"]["status"] == "CLEAR"


SOURCES = """
query($id: String!) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: "LOAN-2026-0042") {
    sources { department state }
    jointPunishment { status complete missingSources }
  }
}"""


@pytest.mark.parametrize(
    ("label", "status", "missing"),
    [
        # responsible for the subject tax could not answer on: never CLEAR
        ("principal", "PUNISHED", ["TAX"]),
        ("market-end-day-before", "INCOMPLETE", ["TAX"]),
        # only a supervisor or manager there: tax's silence hides nothing of the person's
        ("supervisor", "CLEAR", []),
        ("general-manager", "CLEAR", []),
    ],
)
def test_a_department_down_for_a_represented_subject(
    boundary_client: GraphQLClient,
    boundary_faults: SandboxThread,
    label: str,
    status: str,
    missing: list[str],
) -> None:
    boundary_faults.set_faults("tax", down=True)
    body = boundary_client.query(SOURCES, {"id": DERIVED_CASES[label].person})
    person = body["data"]["person"]
    states = {s["department"]: s["state"] for s in person["sources"]}
    # The person's sources say what the person's answer rests on: a subject they were only a
    # supervisor or manager of shows its failure on its own sources, not here (else a CLEAR
    # person would stand beside an UNAVAILABLE source).
    if missing:
        assert states == {"COURTS": "OK", "MARKET": "OK", "TAX": "UNAVAILABLE", "WATER": "OK"}
    else:
        # No subject the person answers for: only the person's own lookups are listed.
        assert states == {"COURTS": "OK", "MARKET": "OK"}
    joint = person["jointPunishment"]
    assert joint == {"status": status, "complete": not missing, "missingSources": missing}
    failures = [e["extensions"] for e in body["errors"]]
    assert failures == [{"code": "SOURCE_UNAVAILABLE", "department": "TAX"}]
