"""`person` over real HTTP (contract §4): own records, positions, derived records, alerts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from stdnum.iso7064 import mod_11_2

from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY
from tests.sandbox_support import make_id
from tests.servers import KEYS, GraphQLClient

PERSON = """
query($id: String!, $purpose: QueryPurpose!, $ref: String, $scenario: Scenario) {
  person(idNumber: $id, purpose: $purpose, authorizationRef: $ref) {
    idNumberMasked idNumber name
    records { id kind level active listedOn }
    representedSubjects { uscc role startedOn endedOn current subject { uscc name } }
    derivedRecords { subjectUscc subjectName role record { id kind level listedOn active } }
    relocationAlerts { punishedSubjectUscc newSubjectUscc newSubjectName startedOn
                       listing { id listedOn } }
    jointPunishment(scenario: $scenario) {
      status complete missingSources
      listings { id }
      measures { measure { code kind appliesTo } triggeredBy }
      incentives { measure { code } triggeredBy }
    }
    sources { department state }
  }
}"""
BANK_REF = "LOAN-2026-0042"


def _ask(
    client: GraphQLClient,
    id_number: str,
    *,
    regulator: bool = False,
    scenario: str | None = None,
) -> Any:
    """The whole answer: a bank with its authorisation, or a regulator supervising."""
    if regulator:
        variables = {"id": id_number, "purpose": "SUPERVISION", "ref": None}
        key = KEYS["regulator"]
    else:
        variables = {"id": id_number, "purpose": "CREDIT_LOAN", "ref": BANK_REF}
        key = KEYS["bank"]
    return client.query(PERSON, {**variables, "scenario": scenario}, key=key)


def _person(client: GraphQLClient, id_number: str, **kw: Any) -> Any:
    body = _ask(client, id_number, **kw)
    assert "errors" not in body, body.get("errors")
    assert body["data"]["person"] is not None
    return body["data"]["person"]


def _masked(id_number: str) -> str:
    return id_number[:6] + "*" * 8 + id_number[-4:]


def _names(dataset: Dataset) -> dict[str, str]:
    return {c.uscc: c.name for c in dataset.companies}


def _person_measures(client: GraphQLClient) -> set[str]:
    """Codes of the live catalogue's punishment measures that apply to persons."""
    measures = client.query("{ measures { code kind appliesTo } }")["data"]["measures"]
    return {m["code"] for m in measures if "PERSON" in m["appliesTo"] and m["kind"] == "PUNISHMENT"}


def _check_person_measures(client: GraphQLClient, joint: Any, triggers: set[str]) -> None:
    """Only PERSON measures of the catalogue, triggered by exactly the given record ids."""
    assert joint["measures"]
    codes = {m["measure"]["code"] for m in joint["measures"]}
    assert codes <= _person_measures(client)
    assert all("PERSON" in m["measure"]["appliesTo"] for m in joint["measures"])
    assert {t for m in joint["measures"] for t in m["triggeredBy"]} == triggers
    assert joint["incentives"] == []


# --- one person in several subjects ------------------------------------------------------------


def test_person_in_three_subjects_over_time(client: GraphQLClient, dataset: Dataset) -> None:
    id_number = dataset.examples["person.multi_company"]
    assert id_number.endswith("X")
    person = _person(client, id_number)
    assert person["idNumberMasked"] == _masked(id_number)
    assert person["idNumber"] is None
    names = _names(dataset)
    stored = [p for p in dataset.positions if p.cert_no == id_number]
    assert len({p.uscc for p in stored}) == 3
    expected = sorted(
        (
            p.uscc,
            p.position,
            p.start.isoformat(),
            p.end.isoformat() if p.end else None,
            p.start <= TODAY and (p.end is None or p.end >= TODAY),
        )
        for p in stored
    )
    shown = person["representedSubjects"]
    assert (
        sorted((r["uscc"], r["role"], r["startedOn"], r["endedOn"], r["current"]) for r in shown)
        == expected
    )
    # Each position names its subject, resolved like `subject(uscc)`.
    for representation in shown:
        subject = representation["subject"]
        assert subject["uscc"] == representation["uscc"]
        assert subject["name"] == names[representation["uscc"]]
    # The first company was handed over years ago; the other two are current.
    assert {r["uscc"] for r in shown if not r["current"]} == {
        p.uscc for p in stored if p.end is not None and p.end < TODAY
    }
    assert len({r["uscc"] for r in shown if r["current"]}) == 2


def test_lower_case_x_and_blanks_are_the_same_person(
    client: GraphQLClient, dataset: Dataset
) -> None:
    id_number = dataset.examples["person.multi_company"]
    upper = _person(client, id_number)
    lower = _person(client, f"  {id_number.lower()} ")
    assert lower["idNumberMasked"] == _masked(id_number)
    assert sorted(r["uscc"] for r in lower["representedSubjects"]) == sorted(
        r["uscc"] for r in upper["representedSubjects"]
    )
    full = _person(client, id_number.lower(), regulator=True)
    assert full["idNumber"] == id_number  # normalised to the upper-case X


@pytest.mark.parametrize(("regulator", "full"), [(False, False), (True, True)])
def test_id_number_by_role(
    client: GraphQLClient, dataset: Dataset, regulator: bool, full: bool
) -> None:
    id_number = dataset.examples["person.restricted"]
    person = _person(client, id_number, regulator=regulator)
    assert person["idNumberMasked"] == _masked(id_number)
    assert person["idNumber"] == (id_number if full else None)


# --- own records -------------------------------------------------------------------------------


def test_own_court_records_punish_the_person(client: GraphQLClient, dataset: Dataset) -> None:
    id_number = dataset.examples["person.restricted"]
    dishonest = {f"COURTS:{c.case_id}" for c in dataset.shixin if c.card_num == id_number}
    restricted = {f"COURTS:xgl:{r.case_id}" for r in dataset.restrictions if r.zjhm == id_number}
    assert dishonest and restricted
    person = _person(client, id_number)
    kinds = {r["id"]: r["kind"] for r in person["records"]}
    assert kinds == {
        **dict.fromkeys(dishonest, "DISHONEST_DEBTOR"),
        **dict.fromkeys(restricted, "CONSUMPTION_RESTRICTION"),
    }
    assert all(r["active"] and r["level"] == "PUNISHMENT" for r in person["records"])
    assert person["name"]
    joint = person["jointPunishment"]
    assert joint["status"] == "PUNISHED" and joint["complete"] is True
    assert joint["missingSources"] == []
    assert {r["id"] for r in joint["listings"]} == dishonest | restricted
    _check_person_measures(client, joint, dishonest | restricted)


def test_person_measures_follow_the_scenario(client: GraphQLClient, dataset: Dataset) -> None:
    id_number = dataset.examples["person.restricted"]
    joint = _person(client, id_number, scenario="HIGH_CONSUMPTION")["jointPunishment"]
    assert joint["status"] == "PUNISHED" and joint["measures"]
    everything = client.query("{ measures(scenario: HIGH_CONSUMPTION) { code appliesTo } }")
    allowed = {m["code"] for m in everything["data"]["measures"] if "PERSON" in m["appliesTo"]}
    assert {m["measure"]["code"] for m in joint["measures"]} <= allowed


def test_regulator_sees_own_records_with_include_inactive(
    client: GraphQLClient, dataset: Dataset
) -> None:
    query = """query($id: String!) { person(idNumber: $id, purpose: JUDICIAL) {
      records(includeInactive: true) { id active } } }"""
    body = client.query(query, {"id": dataset.examples["person.restricted"]}, key=KEYS["regulator"])
    assert "errors" not in body, body.get("errors")
    assert len(body["data"]["person"]["records"]) >= 2


def test_residence_permit_is_a_valid_id(client: GraphQLClient, dataset: Dataset) -> None:
    id_number = dataset.examples["person.residence_permit"]
    assert id_number[:6] in ("810000", "820000", "830000")
    person = _person(client, id_number)
    assert person["idNumberMasked"] == _masked(id_number)
    stored = {p.uscc for p in dataset.positions if p.cert_no == id_number}
    assert stored and {r["uscc"] for r in person["representedSubjects"]} == stored
    names = _names(dataset)
    assert all(r["subject"]["name"] == names[r["uscc"]] for r in person["representedSubjects"])
    assert _person(client, id_number, regulator=True)["idNumber"] == id_number


def test_unknown_valid_id_is_a_person_with_nothing_known(
    client: GraphQLClient, dataset: Dataset
) -> None:
    id_number = make_id("610802", date(1971, 2, 3), "997")
    known = {p.cert_no for p in dataset.positions} | {c.card_num for c in dataset.shixin}
    known |= {r.zjhm for r in dataset.restrictions} | {c.legal_rep_id for c in dataset.companies}
    assert id_number not in known
    person = _person(client, id_number)
    assert person["idNumberMasked"] == _masked(id_number)
    for field in ("records", "representedSubjects", "derivedRecords", "relocationAlerts"):
        assert person[field] == [], field
    joint = person["jointPunishment"]
    assert joint == {
        "status": "CLEAR",
        "complete": True,
        "missingSources": [],
        "listings": [],
        "measures": [],
        "incentives": [],
    }
    # Only the departments that keep anything by citizen ID were asked, and answered.
    assert [(s["department"], s["state"]) for s in person["sources"]] == [
        ("COURTS", "OK"),
        ("MARKET", "OK"),
    ]


def _checked(first17: str) -> str:
    """17 digits and their right check digit, whatever the digits say."""
    return first17 + str(mod_11_2.calc_check_digit(first17))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not-an-id",
        "61080219901122858",  # 17 characters
        "610802199011228581",  # the check digit of 61080219901122858X is X
        _checked("61080219900230001"),  # 30 February
        _checked("61080220990101001"),  # born in the future
        _checked("61080219901122858") + "0",  # 19 characters
    ],
)
def test_invalid_id_number(client: GraphQLClient, raw: str) -> None:
    body = _ask(client, raw)
    assert body["data"]["person"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID_NUMBER"


# --- what the person answered for --------------------------------------------------------------


def test_relocation_derives_the_listing_and_alerts_on_the_new_subject(
    client: GraphQLClient, dataset: Dataset
) -> None:
    id_number = dataset.examples["person.relocation"]
    origin = dataset.examples["company.relocation_origin"]
    new = dataset.examples["company.relocation_new"]
    names = _names(dataset)
    listings = {f"COURTS:{c.case_id}" for c in dataset.shixin if c.card_num == origin}
    assert len(listings) == 1
    (listing,) = listings
    person = _person(client, id_number)
    derived = person["derivedRecords"]
    assert [
        (d["subjectUscc"], d["subjectName"], d["role"], d["record"]["id"]) for d in derived
    ] == [(origin, names[origin], "法定代表人", listing)]
    assert derived[0]["record"]["kind"] == "DISHONEST_DEBTOR" and derived[0]["record"]["active"]
    new_start = min(p.start for p in dataset.positions if p.cert_no == id_number and p.uscc == new)
    alerts = person["relocationAlerts"]
    assert alerts == [
        {
            "punishedSubjectUscc": origin,
            "newSubjectUscc": new,
            "newSubjectName": names[new],
            "startedOn": new_start.isoformat(),
            "listing": {"id": listing, "listedOn": derived[0]["record"]["listedOn"]},
        }
    ]
    assert date.fromisoformat(alerts[0]["listing"]["listedOn"]) < new_start
    joint = person["jointPunishment"]
    assert joint["status"] == "PUNISHED" and joint["complete"] is True
    assert {r["id"] for r in joint["listings"]} == {listing}
    _check_person_measures(client, joint, {listing})


def test_role_ended_the_day_before_the_listing_derives_nothing(
    client: GraphQLClient, dataset: Dataset
) -> None:
    uscc = dataset.examples["company.rep_changed_before_listing"]
    id_number = dataset.examples["person.role_ended_before_listing"]
    person = _person(client, id_number)
    assert uscc in {r["uscc"] for r in person["representedSubjects"]}
    assert person["derivedRecords"] == [] and person["relocationAlerts"] == []
    joint = person["jointPunishment"]
    assert joint["status"] == "CLEAR" and joint["complete"] is True
    assert joint["measures"] == []


def test_representative_on_the_listing_day_gets_the_listing(
    client: GraphQLClient, dataset: Dataset
) -> None:
    uscc = dataset.examples["company.rep_changed_before_listing"]
    (entry,) = [e for e in dataset.illegal if e.uscc == uscc]
    record_id = f"MARKET:illegal:{entry.entry_id}"
    person = _person(client, dataset.examples["person.rep_at_listing"])
    derived = person["derivedRecords"]
    assert [(d["subjectUscc"], d["role"], d["record"]["id"]) for d in derived] == [
        (uscc, "法定代表人", record_id)
    ]
    assert derived[0]["subjectName"] == _names(dataset)[uscc]
    assert derived[0]["record"]["kind"] == "SERIOUS_ILLEGAL"
    assert derived[0]["record"]["listedOn"] == entry.listed_on.isoformat()
    assert person["jointPunishment"]["status"] == "PUNISHED"
    _check_person_measures(client, person["jointPunishment"], {record_id})


# --- a department down -------------------------------------------------------------------------


def _states(person: Any) -> dict[str, str]:
    return {s["department"]: s["state"] for s in person["sources"]}


def _failures(body: Any) -> list[tuple[str, str | None]]:
    return [(e["extensions"]["code"], e["extensions"].get("department")) for e in body["errors"]]


def test_courts_down_makes_a_person_incomplete(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread
) -> None:
    faults.set_faults("courts", down=True)
    body = _ask(client, dataset.examples["person.restricted"])
    person = body["data"]["person"]
    assert person is not None
    joint = person["jointPunishment"]
    # The person's own court records are unknown: never CLEAR on missing data.
    assert joint["status"] == "INCOMPLETE"
    assert joint["complete"] is False and joint["missingSources"] == ["COURTS"]
    assert _states(person) == {"COURTS": "UNAVAILABLE", "MARKET": "OK", "TAX": "OK", "WATER": "OK"}
    assert _failures(body) == [("SOURCE_UNAVAILABLE", "COURTS")]
    assert person["representedSubjects"]  # market still answered


def test_courts_down_keeps_a_known_punishment(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread
) -> None:
    faults.set_faults("courts", down=True)
    body = _ask(client, dataset.examples["person.rep_at_listing"])
    person = body["data"]["person"]
    joint = person["jointPunishment"]
    # The market's 严重违法 listing is still known, so the person stays PUNISHED.
    assert joint["status"] == "PUNISHED"
    assert joint["complete"] is False and joint["missingSources"] == ["COURTS"]
    assert _states(person)["COURTS"] == "UNAVAILABLE"
    assert _failures(body) == [("SOURCE_UNAVAILABLE", "COURTS")]


def test_market_down_hides_positions_and_makes_a_person_incomplete(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread
) -> None:
    faults.set_faults("market", down=True)
    body = _ask(client, dataset.examples["person.relocation"])
    person = body["data"]["person"]
    assert person["representedSubjects"] == [] and person["derivedRecords"] == []
    joint = person["jointPunishment"]
    assert joint["status"] == "INCOMPLETE"
    assert joint["complete"] is False and joint["missingSources"] == ["MARKET"]
    assert _states(person)["MARKET"] == "UNAVAILABLE"
    assert _failures(body) == [("SOURCE_UNAVAILABLE", "MARKET")]
