"""The unified subject view over real HTTP: the gateway over the four sandbox departments."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from core.identity import org_code_check_digit, org_code_of, uscc_check_digit
from sandbox.model import Company, Dataset
from sandbox.runner import SandboxThread
from tests.conftest import KEYS, TODAY
from tests.servers import GraphQLClient

SUBJECT = """
query($uscc: String!, $all: Boolean = false) {
  subject(uscc: $uscc) {
    uscc name region { code name }
    registration { entityType status registeredCapitalWan currency establishedOn authority
                   address businessScope operatingTo }
    legalRepresentative { name idNumberMasked idNumber }
    records(includeInactive: $all) { id department kind level title reason documentNumber
                                     authority listedOn endsOn active repaired disputed }
    taxCredit { grade year evaluatedOn }
    waterCredit { grade validUntil cancelled }
    sources { department state asOf message }
  }
}"""


def _subject(client: GraphQLClient, uscc: str, key: str | None = None, **variables: object) -> Any:
    body = client.query(SUBJECT, {"uscc": uscc, **variables}, key=key)
    assert "errors" not in body, body.get("errors")
    return body["data"]["subject"]


def _company(dataset: Dataset, uscc: str) -> Company:
    return next(c for c in dataset.companies if c.uscc == uscc)


def test_subject_is_stitched_from_every_department(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["clean.with_grade_a"]
    subject = _subject(client, uscc)
    company = _company(dataset, uscc)
    assert subject["uscc"] == uscc
    assert subject["name"] == company.name
    assert subject["region"]["code"] == uscc[2:8]
    assert subject["region"]["name"]
    registration = subject["registration"]
    assert registration["status"] == company.reg_state
    assert registration["registeredCapitalWan"] == pytest.approx(float(company.reg_cap))
    assert registration["establishedOn"] == company.est_date.isoformat()
    assert subject["taxCredit"]["grade"] == "A"
    assert subject["records"] == []
    states = {s["department"]: s for s in subject["sources"]}
    assert sorted(states) == ["COURTS", "MARKET", "TAX", "WATER"]
    assert all(s["state"] == "OK" and s["asOf"] for s in states.values())


def test_name_is_the_registered_spelling(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["name.bracket_variants"]
    assert _subject(client, uscc)["name"] == _company(dataset, uscc).name


def test_region_names_the_seed_cities(client: GraphQLClient, dataset: Dataset) -> None:
    names = {
        _subject(client, c.uscc)["region"]["name"][:3]
        for c in dataset.companies[:40]
        if c.uscc[2:8].isdigit()
    }
    assert names & {"陕西省", "黑龙江", "甘肃省", "河南省", "四川省"}


def test_case_stored_under_the_organisation_code_is_found(
    client: GraphQLClient, dataset: Dataset
) -> None:
    uscc = dataset.examples["dishonest.org_code_only"]
    records = _subject(client, uscc)["records"]
    dishonest = [r for r in records if r["kind"] == "DISHONEST_DEBTOR"]
    assert dishonest and all(r["active"] and r["level"] == "PUNISHMENT" for r in dishonest)


def test_cases_under_both_forms_are_merged_by_id(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["dishonest.both_forms"]
    stored = {c.case_id for c in dataset.shixin if c.card_num in (uscc, org_code_of(uscc))}
    records = _subject(client, uscc)["records"]
    found = [r["id"] for r in records if r["kind"] == "DISHONEST_DEBTOR"]
    assert len(found) == len(set(found)) == len(stored)


def test_every_page_of_court_records_is_followed(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["courts.many"]
    stored = {c.case_id for c in dataset.shixin if c.card_num in (uscc, org_code_of(uscc))}
    assert len(stored) > 20
    records = _subject(client, uscc)["records"]
    assert len([r for r in records if r["kind"] == "DISHONEST_DEBTOR"]) == len(stored)


def test_expired_listing_is_hidden_by_default(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["serious_illegal.expired"]
    records = _subject(client, uscc)["records"]
    assert [r for r in records if r["kind"] == "SERIOUS_ILLEGAL"] == []


def test_regulator_sees_inactive_records_with_their_end(
    client: GraphQLClient, dataset: Dataset
) -> None:
    uscc = dataset.examples["serious_illegal.expired"]
    records = _subject(client, uscc, key=KEYS["regulator"], all=True)["records"]
    expired = [r for r in records if r["kind"] == "SERIOUS_ILLEGAL"]
    assert expired and not any(r["active"] for r in expired)
    for record in expired:
        listed = date.fromisoformat(record["listedOn"])
        assert date.fromisoformat(record["endsOn"]) < TODAY
        assert listed.replace(year=listed.year + 3) > date.fromisoformat(record["endsOn"])


@pytest.mark.parametrize("key", [None, KEYS["partner"], KEYS["bank"]])
def test_include_inactive_is_for_regulators_only(
    client: GraphQLClient, dataset: Dataset, key: str | None
) -> None:
    uscc = dataset.examples["serious_illegal.expired"]
    body = client.query(SUBJECT, {"uscc": uscc, "all": True}, key=key)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_active_listings_of_each_department(client: GraphQLClient, dataset: Dataset) -> None:
    expected = {
        "serious_illegal.active": "SERIOUS_ILLEGAL",
        "abnormal.active": "ABNORMAL_OPERATION",
        "tax.major_active": "MAJOR_TAX_VIOLATION",
        "water.blacklist_active": "WATER_BLACKLIST",
        "water.watchlist_active": "WATER_WATCHLIST",
        "restriction.company": "CONSUMPTION_RESTRICTION",
        "penalty.active": "ADMINISTRATIVE_PENALTY",
    }
    for label, kind in expected.items():
        records = _subject(client, dataset.examples[label])["records"]
        assert any(r["kind"] == kind and r["active"] for r in records), label


@pytest.mark.parametrize(
    "label",
    [
        "abnormal.removed",
        "serious_illegal.removed",
        "serious_illegal.boundary",
        "tax.major_stopped",
        "tax.major_expired",
        "water.blacklist_removed",
        "water.blacklist_expired",
        "penalty.expired",
        "penalty.repaired",
        "water.penalty_repaired",
    ],
)
def test_records_no_longer_in_force_are_inactive(
    client: GraphQLClient, dataset: Dataset, label: str
) -> None:
    uscc = dataset.examples[label]
    shown = _subject(client, uscc)["records"]
    everything = _subject(client, uscc, key=KEYS["regulator"], all=True)["records"]
    inactive = [r for r in everything if not r["active"]]
    assert inactive, label
    assert not {r["id"] for r in inactive} & {r["id"] for r in shown}


def test_disputed_penalty_stays_active(client: GraphQLClient, dataset: Dataset) -> None:
    records = _subject(client, dataset.examples["penalty.disputed"])["records"]
    assert any(r["disputed"] and r["active"] for r in records)


def test_repaired_penalty_is_marked_for_regulators(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["penalty.repaired"]
    records = _subject(client, uscc, key=KEYS["regulator"], all=True)["records"]
    assert any(r["repaired"] and not r["active"] for r in records)


def test_current_tax_grade_is_the_latest_year(client: GraphQLClient, dataset: Dataset) -> None:
    uscc = dataset.examples["tax.several_years"]
    ratings = [r for r in dataset.tax_ratings if r.nsrsbh == uscc]
    latest = max(ratings, key=lambda r: r.pjnd)
    credit = _subject(client, uscc)["taxCredit"]
    assert (credit["grade"], credit["year"]) == (latest.xydj, latest.pjnd)
    assert credit["evaluatedOn"] == latest.pjrq.isoformat()


def test_water_grade_cancelled_by_blacklist(client: GraphQLClient, dataset: Dataset) -> None:
    water = _subject(client, dataset.examples["water.grade_cancelled"])["waterCredit"]
    assert water["cancelled"] is True and water["grade"] is None


def test_expired_water_grade_is_no_grade(client: GraphQLClient, dataset: Dataset) -> None:
    water = _subject(client, dataset.examples["water.grade_expired"])["waterCredit"]
    assert water["grade"] is None and water["cancelled"] is False
    assert date.fromisoformat(water["validUntil"]) < TODAY


def test_valid_water_grade(client: GraphQLClient, dataset: Dataset) -> None:
    water = _subject(client, dataset.examples["water.grade_aaa"])["waterCredit"]
    assert water == {**water, "grade": "AAA", "cancelled": False}


@pytest.mark.parametrize("label", ["uscc.letter_n2", "uscc.letter_y1"])
def test_letter_prefixed_subjects(client: GraphQLClient, dataset: Dataset, label: str) -> None:
    uscc = dataset.examples[label]
    assert _subject(client, uscc.lower())["uscc"] == uscc


@pytest.mark.parametrize(
    ("key", "masked", "full"),
    [(None, False, False), (KEYS["bank"], True, False), (KEYS["regulator"], True, True)],
)
def test_legal_representative_by_role(
    client: GraphQLClient, dataset: Dataset, key: str | None, masked: bool, full: bool
) -> None:
    uscc = dataset.examples["clean.plain"]
    company = _company(dataset, uscc)
    rep = _subject(client, uscc, key=key)["legalRepresentative"]
    assert rep["name"] == company.legal_rep_name
    expected_masked = company.legal_rep_id[:6] + "*" * 8 + company.legal_rep_id[-4:]
    assert rep["idNumberMasked"] == (expected_masked if masked else None)
    assert rep["idNumber"] == (company.legal_rep_id if full else None)


def test_unknown_code_is_null(client: GraphQLClient, dataset: Dataset) -> None:
    known = {c.uscc for c in dataset.companies}
    body = "MA0000001"
    head = "91610802" + body[:8] + org_code_check_digit(body[:8])
    uscc = head + uscc_check_digit(head)
    assert uscc not in known
    result = client.query(SUBJECT, {"uscc": uscc})
    assert result == {"data": {"subject": None}}


@pytest.mark.parametrize("raw", ["", "not-a-code", "91610800MA703XY29R"])
def test_invalid_code_is_invalid_uscc(client: GraphQLClient, raw: str) -> None:
    body = client.query(SUBJECT, {"uscc": raw})
    assert body["data"]["subject"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_USCC"


def test_a_stopped_department_is_unavailable_and_the_rest_answers(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread
) -> None:
    uscc = dataset.examples["tax.several_years"]
    faults.stop_department("tax")
    try:
        body = client.query(SUBJECT, {"uscc": uscc})
    finally:
        faults.start_department("tax")
    subject = body["data"]["subject"]
    states = {s["department"]: s["state"] for s in subject["sources"]}
    assert states == {"COURTS": "OK", "MARKET": "OK", "TAX": "UNAVAILABLE", "WATER": "OK"}
    assert subject["taxCredit"] is None
    assert subject["registration"] is not None
    codes = [(e["extensions"]["code"], e["extensions"].get("department")) for e in body["errors"]]
    assert codes == [("SOURCE_UNAVAILABLE", "TAX")]
    # Once the department is back, the same subject is complete again.
    again = _subject(client, uscc)
    assert {s["state"] for s in again["sources"]} == {"OK"}


def test_one_subject_carries_data_of_all_four_departments(
    client: GraphQLClient, dataset: Dataset
) -> None:
    subject = _subject(client, dataset.examples["stitched.all_departments"])
    departments = {r["department"] for r in subject["records"]}
    assert {"COURTS", "MARKET"} <= departments
    assert subject["registration"] and subject["taxCredit"]
    assert subject["waterCredit"]["grade"] == "A"
