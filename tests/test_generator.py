"""The sandbox generator: determinism, valid identities, every labelled case and its property."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from core.identity import (
    RESIDENCE_PERMIT_PREFIXES,
    normalize_id_number,
    normalize_uscc,
    org_code_of,
)
from sandbox.generator import generate
from sandbox.model import Company, Dataset, ShixinCase

TODAY = date(2026, 11, 22)
# Days that stress "relative to today": a leap day, New Year, just before and after the
# April tax publication, and the day this suite was written.
TODAYS = (TODAY, date(2028, 2, 29), date(2027, 1, 1), date(2027, 4, 1), date(2027, 5, 1))
RESPONSIBLE = ("法定代表人", "负责人", "实际控制人")
LABELS = (
    "clean.with_grade_a",
    "clean.plain",
    "dishonest.active",
    "dishonest.org_code_only",
    "dishonest.both_forms",
    "courts.many",
    "restriction.company",
    "abnormal.active",
    "abnormal.removed",
    "serious_illegal.active",
    "serious_illegal.expired",
    "serious_illegal.removed",
    "serious_illegal.boundary",
    "penalty.active",
    "penalty.expired",
    "penalty.repaired",
    "penalty.disputed",
    "tax.major_active",
    "tax.major_stopped",
    "tax.major_expired",
    "tax.grade_d",
    "tax.several_years",
    "tax.no_rating",
    "water.blacklist_active",
    "water.blacklist_removed",
    "water.blacklist_expired",
    "water.watchlist_active",
    "water.grade_aaa",
    "water.grade_expired",
    "water.grade_cancelled",
    "water.penalty_active",
    "water.penalty_repaired",
    "uscc.letter_n2",
    "uscc.letter_y1",
    "name.bracket_variants",
    "company.foreign_rep",
    "person.multi_company",
    "person.restricted",
    "person.residence_permit",
    "person.relocation",
    "person.role_ended_before_listing",
)


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@pytest.fixture(scope="module")
def small() -> Dataset:
    """The smallest size the brief names for 'every labelled case exists'."""
    return generate(11, 60, TODAY)


@pytest.fixture(scope="module")
def large() -> Dataset:
    """A 20,000-subject dataset; its generation completing is itself a test."""
    return generate(3, 20_000, TODAY)


def usccs_of(data: Dataset, *tables: str) -> set[str]:
    """USCCs found in the named Dataset tables whose rows carry a `uscc` field."""
    return {row.uscc for table in tables for row in getattr(data, table)}


class View:
    """Look-ups over one dataset by subject, as the department servers would answer."""

    def __init__(self, data: Dataset) -> None:
        """Indexes companies by USCC once; the other look-ups scan, which is quick at 60."""
        self.data = data
        self.today = data.today
        self.companies = {c.uscc: c for c in data.companies}

    def company(self, uscc: str) -> Company:
        """The market registration of `uscc`."""
        return self.companies[uscc]

    def shixin(self, uscc: str) -> list[ShixinCase]:
        """失信 cases found under the USCC and under the organisation code, as the gateway asks."""
        codes = (uscc, org_code_of(uscc))
        return [r for r in self.data.shixin if r.card_num in codes]

    def has_any_record(self, uscc: str) -> bool:
        """True when any department holds a record (not a rating or grade) on `uscc`."""
        codes = (uscc, org_code_of(uscc))
        d = self.data
        return (
            bool(self.shixin(uscc))
            or any(r.qy_dm in codes for r in d.restrictions)
            or uscc in usccs_of(d, "abnormal", "illegal", "penalties")
            or any(r.nsrsbh == uscc for r in d.tax_cases)
            or uscc in usccs_of(d, "water_lists", "water_penalties")
        )

    def latest_grade(self, uscc: str) -> str:
        """The tax grade of the latest evaluation year."""
        rows = [r for r in self.data.tax_ratings if r.nsrsbh == uscc]
        return max(rows, key=lambda r: r.pjnd).xydj

    def positions(self, id_number: str) -> list[tuple[str, str, date, date | None]]:
        """(uscc, position, start, end) of every position the person holds or held."""
        return [
            (p.uscc, p.position, p.start, p.end)
            for p in self.data.positions
            if p.cert_no == id_number
        ]

    def holders_on(self, uscc: str, day: date) -> set[str]:
        """IDs of persons in a responsible role of `uscc` on `day` (contract §4)."""
        return {
            p.cert_no
            for p in self.data.positions
            if p.uscc == uscc
            and p.position in RESPONSIBLE
            and p.start <= day
            and (p.end is None or p.end >= day)
        }


# --- determinism and identities -------------------------------------------------------------


def test_same_arguments_give_the_same_dataset() -> None:
    assert generate(5, 300, TODAY) == generate(5, 300, TODAY)


def test_another_seed_gives_another_dataset() -> None:
    first, second = generate(5, 300, TODAY), generate(6, 300, TODAY)
    assert [c.uscc for c in first.companies] != [c.uscc for c in second.companies]
    assert set(first.examples) == set(second.examples)


def test_size_is_the_requested_count_but_never_below_the_scenarios() -> None:
    assert len(generate(1, 500, TODAY).companies) == 500
    tiny = generate(1, 10, TODAY)
    assert len(tiny.companies) >= 10
    assert set(LABELS) <= set(tiny.examples)


def all_person_ids(data: Dataset) -> set[str]:
    """Every citizen ID stored anywhere in the dataset."""
    ids = {c.legal_rep_id for c in data.companies if c.legal_rep_id}
    ids |= {p.cert_no for p in data.positions}
    ids |= {r.card_num for r in data.shixin if r.is_person}
    ids |= {r.zjhm for r in data.restrictions if r.zjhm}
    ids |= {r.fddbrzjhm for r in data.tax_cases if r.fddbrzjhm}
    return ids


@pytest.mark.parametrize("which", ["small", "large"])
def test_every_identity_is_valid_and_unique(which: str, request: pytest.FixtureRequest) -> None:
    data: Dataset = request.getfixturevalue(which)
    usccs = [c.uscc for c in data.companies]
    for uscc in usccs:
        assert normalize_uscc(uscc) == uscc
    assert len(set(usccs)) == len(usccs)
    assert len({org_code_of(u) for u in usccs}) == len(usccs)
    for number in all_person_ids(data):
        assert normalize_id_number(number, data.today) == number
    for label, identity in data.examples.items():
        if label.startswith("person."):
            assert normalize_id_number(identity, data.today) == identity
        else:
            assert identity in {c.uscc for c in data.companies}


@pytest.mark.parametrize("which", ["small", "large"])
def test_special_identities_are_present(which: str, request: pytest.FixtureRequest) -> None:
    data: Dataset = request.getfixturevalue(which)
    prefixes = Counter(c.uscc[:2] for c in data.companies)
    assert prefixes["N2"] >= 1 and prefixes["Y1"] >= 1
    if which == "large":
        assert prefixes["91"] > prefixes["92"] > prefixes["93"] > prefixes["N2"]
    ids = all_person_ids(data)
    assert any(i[:6] in RESIDENCE_PERMIT_PREFIXES for i in ids)
    assert any(i.endswith("X") for i in ids)
    assert any(c.legal_rep_id == "" for c in data.companies)


def test_every_record_points_at_a_registered_company(large: Dataset) -> None:
    usccs = {c.uscc for c in large.companies}
    org_codes = {org_code_of(u) for u in usccs}
    kinds = ("abnormal", "illegal", "penalties", "positions")
    assert usccs_of(large, *kinds, "water_grades", "water_lists", "water_penalties") <= usccs
    assert {r.nsrsbh for r in large.tax_ratings} <= usccs
    assert {r.nsrsbh for r in large.tax_cases} <= usccs
    assert all(r.is_person or r.card_num in usccs | org_codes for r in large.shixin)
    assert all(r.qy_dm == "" or r.qy_dm in usccs | org_codes for r in large.restrictions)


def test_every_legal_rep_holds_a_legal_rep_position(large: Dataset) -> None:
    held = {(p.cert_no, p.uscc) for p in large.positions if p.position == "法定代表人"}
    for c in large.companies:
        assert c.legal_rep_name
        if c.legal_rep_id:
            assert (c.legal_rep_id, c.uscc) in held


def test_dates_are_consistent_with_today(large: Dataset) -> None:
    today = large.today
    for c in large.companies:
        assert c.est_date <= c.appr_date <= today and c.op_from == c.est_date
        assert c.op_to is None or c.op_to > c.est_date
    for p in large.positions:
        assert p.start <= today and (p.end is None or p.start <= p.end <= today)
    for r in large.tax_ratings:
        assert r.pjrq <= today and r.pjrq.year == r.pjnd + 1 and r.pjrq.month == 4
    # Courts hold current listings only.
    assert all(r.reg_date <= r.publish_date <= today for r in large.shixin)
    assert all(r.filed_on <= r.published_on <= today for r in large.restrictions)
    for e in (*large.abnormal, *large.illegal):
        assert e.listed_on <= today and (e.removed_on is None or e.listed_on < e.removed_on)
    assert all(t.rdrq <= t.gbrq <= today for t in large.tax_cases)


def test_company_fields_look_like_the_market_register(large: Dataset) -> None:
    states = Counter(c.reg_state for c in large.companies)
    assert states.most_common(1)[0][0] == "存续（在营、开业、在册）"
    assert {"吊销，未注销", "注销", "迁出"} <= set(states)
    assert Counter(c.currency for c in large.companies).most_common(1)[0][0] == "人民币"
    assert any(c.op_to is None for c in large.companies)
    for c in large.companies:
        whole, _, decimals = c.reg_cap.partition(".")
        assert whole.isdigit() and len(decimals) == 6
    types = {c.ent_type for c in large.companies}
    assert {"个体工商户", "农民专业合作社", "有限责任公司(自然人投资或控股)"} <= types


def test_most_subjects_are_clean_and_a_few_percent_listed(large: Dataset) -> None:
    n = len(large.companies)
    listed = usccs_of(large, "abnormal", "illegal")
    assert 0.01 * n < len(listed) < 0.15 * n
    rated = {r.nsrsbh for r in large.tax_ratings}
    assert 0.5 * n < len(rated) < n
    water = usccs_of(large, "water_grades", "water_lists", "water_penalties")
    assert 0.05 * n < len(water) < 0.2 * n
    shixin_orgs = {r.card_num for r in large.shixin if not r.is_person}
    assert 0.005 * n < len(shixin_orgs) < 0.05 * n


def test_some_persons_represent_several_companies(large: Dataset) -> None:
    reps = Counter(p.cert_no for p in large.positions if p.position == "法定代表人")
    assert any(count >= 2 for count in reps.values())
    assert max(reps.values()) <= 4


def test_courts_store_old_cases_under_the_organisation_code(large: Dataset) -> None:
    old = [r for r in large.shixin if not r.is_person and r.reg_date < date(2016, 1, 1)]
    assert old
    assert all(len(r.card_num) == 9 and r.case_code.startswith("(") for r in old)
    new = [r for r in large.shixin if not r.is_person and r.reg_date >= date(2016, 1, 1)]
    assert all(len(r.card_num) == 18 and r.case_code.startswith("（") for r in new)


# --- labelled cases -------------------------------------------------------------------------


@pytest.fixture(scope="module", params=TODAYS, ids=str)
def view(request: pytest.FixtureRequest) -> View:
    """A 60-subject dataset for each of several todays."""
    return View(generate(2024, 60, request.param))


def test_every_label_is_present_and_distinct(view: View) -> None:
    examples = view.data.examples
    assert set(LABELS) <= set(examples)
    required = [examples[label] for label in LABELS]
    assert len(set(required)) == len(required)


def test_clean_subjects(view: View) -> None:
    grade_a = view.data.examples["clean.with_grade_a"]
    plain = view.data.examples["clean.plain"]
    assert not view.has_any_record(grade_a) and not view.has_any_record(plain)
    assert view.latest_grade(grade_a) == "A"
    assert view.latest_grade(plain) == "B"


def test_dishonest_debtors(view: View) -> None:
    ex = view.data.examples
    active = ex["dishonest.active"]
    assert any(r.card_num == active for r in view.shixin(active))

    only_org = ex["dishonest.org_code_only"]
    rows = view.shixin(only_org)
    assert rows and all(r.card_num == org_code_of(only_org) for r in rows)
    assert all(r.reg_date < date(2016, 1, 1) for r in rows)

    both = ex["dishonest.both_forms"]
    assert {r.card_num for r in view.shixin(both)} == {both, org_code_of(both)}

    many = ex["courts.many"]
    rows = view.shixin(many)
    assert len(rows) > 20
    assert {r.card_num for r in rows} == {many, org_code_of(many)}
    assert len({r.case_id for r in rows}) == len(rows)
    for r in rows:
        assert r.disrupt_types and r.business_entity and r.age == 0 and r.sex == ""


def test_company_restriction_names_the_company_and_its_rep(view: View) -> None:
    uscc = view.data.examples["restriction.company"]
    company = view.company(uscc)
    rows = [r for r in view.data.restrictions if r.qy_dm in (uscc, org_code_of(uscc))]
    assert {r.zjhm for r in rows} == {"", company.legal_rep_id}
    assert all(r.qy_mc == company.name for r in rows)
    assert len({r.ah for r in rows}) == 1


def test_market_lists(view: View) -> None:
    ex, today = view.data.examples, view.today
    three_years_ago = years_before(today, 3)

    def entries(kind: str, label: str) -> list[tuple[date, date | None, str]]:
        rows = view.data.abnormal if kind == "abnormal" else view.data.illegal
        found = [(e.listed_on, e.removed_on, e.rem_reason) for e in rows if e.uscc == ex[label]]
        assert found, label
        return found

    assert any(removed is None for _, removed, _ in entries("abnormal", "abnormal.active"))
    assert all(removed and reason for _, removed, reason in entries("abnormal", "abnormal.removed"))
    [(listed, removed, _)] = entries("illegal", "serious_illegal.active")
    assert removed is None and three_years_ago < listed <= today
    [(listed, removed, _)] = entries("illegal", "serious_illegal.expired")
    assert removed is None and listed < three_years_ago
    [(listed, removed, reason)] = entries("illegal", "serious_illegal.removed")
    assert removed is not None and listed < removed <= today and reason
    [(listed, removed, _)] = entries("illegal", "serious_illegal.boundary")
    assert removed is None and listed == three_years_ago


def test_market_penalties(view: View) -> None:
    ex, today = view.data.examples, view.today
    by_label = {
        label: [p for p in view.data.penalties if p.uscc == ex[label]]
        for label in ("penalty.active", "penalty.expired", "penalty.repaired", "penalty.disputed")
    }
    [active] = by_label["penalty.active"]
    assert active.public_until >= today and not active.repaired and not active.disputed
    [expired] = by_label["penalty.expired"]
    assert expired.public_until < today
    [repaired] = by_label["penalty.repaired"]
    assert repaired.repaired
    [disputed] = by_label["penalty.disputed"]
    assert disputed.disputed and disputed.public_until >= today and not disputed.repaired


def test_tax(view: View) -> None:
    ex, today = view.data.examples, view.today
    three_years_ago = years_before(today, 3)

    def case(label: str) -> tuple[date, date | None]:
        [c] = [c for c in view.data.tax_cases if c.nsrsbh == ex[label]]
        assert c.fddbrzjhm == view.company(ex[label]).legal_rep_id
        return c.gbrq, c.tcrq

    gbrq, tcrq = case("tax.major_active")
    assert tcrq is None and gbrq > three_years_ago
    gbrq, tcrq = case("tax.major_stopped")
    assert tcrq is not None and gbrq < tcrq <= today
    gbrq, tcrq = case("tax.major_expired")
    assert tcrq is None and gbrq < three_years_ago

    assert view.latest_grade(ex["tax.grade_d"]) == "D"
    years = [r.pjnd for r in view.data.tax_ratings if r.nsrsbh == ex["tax.several_years"]]
    assert len(set(years)) >= 3
    assert not any(r.nsrsbh == ex["tax.no_rating"] for r in view.data.tax_ratings)
    assert ex["tax.no_rating"] in view.companies


def test_water(view: View) -> None:
    ex, today = view.data.examples, view.today

    def lists(label: str) -> list[tuple[str, date, date, date | None]]:
        rows = view.data.water_lists
        found = [(r.list_type, r.listed_on, r.public_until, r.removed_on) for r in rows]
        return [f for f, r in zip(found, rows, strict=True) if r.uscc == ex[label]]

    def in_force(listed: date, until: date, removed: date | None) -> bool:
        return listed <= today <= until and (removed is None or removed > today)

    [(kind, listed, until, removed)] = lists("water.blacklist_active")
    assert kind == "黑名单" and in_force(listed, until, removed)
    [(kind, listed, until, removed)] = lists("water.blacklist_removed")
    assert kind == "黑名单" and removed is not None and removed <= today
    [(kind, listed, until, removed)] = lists("water.blacklist_expired")
    assert kind == "黑名单" and until < today and removed is None
    [(kind, listed, until, removed)] = lists("water.watchlist_active")
    assert kind == "重点关注名单" and in_force(listed, until, removed)

    grades = {g.uscc: g for g in view.data.water_grades}
    aaa = grades[ex["water.grade_aaa"]]
    assert aaa.grade == "AAA" and aaa.valid_until >= today and not lists("water.grade_aaa")
    assert grades[ex["water.grade_expired"]].valid_until < today
    assert grades[ex["water.grade_cancelled"]].valid_until >= today
    [(kind, listed, until, removed)] = lists("water.grade_cancelled")
    assert kind == "黑名单" and in_force(listed, until, removed)

    penalties = {p.uscc: p for p in view.data.water_penalties}
    active = penalties[ex["water.penalty_active"]]
    assert active.public_until >= today and not active.repaired
    assert penalties[ex["water.penalty_repaired"]].repaired


def test_identity_cases(view: View) -> None:
    ex = view.data.examples
    assert ex["uscc.letter_n2"].startswith("N2") and ex["uscc.letter_y1"].startswith("Y1")
    for label in ("uscc.letter_n2", "uscc.letter_y1"):
        assert any(r.nsrsbh == ex[label] for r in view.data.tax_ratings)
        assert view.positions(view.company(ex[label]).legal_rep_id)
    uscc = ex["name.bracket_variants"]
    market = view.company(uscc).name
    assert "（" in market
    tax_names = {r.nsrmc for r in view.data.tax_ratings if r.nsrsbh == uscc}
    water_names = {r.name for r in view.data.water_grades if r.uscc == uscc}
    assert tax_names and water_names
    for other in tax_names | water_names:
        assert other != market and other.replace("(", "（").replace(")", "）") == market
    foreign = view.company(ex["company.foreign_rep"])
    assert foreign.legal_rep_id == "" and foreign.legal_rep_name


def test_persons(view: View) -> None:
    ex = view.data.examples
    positions = view.positions(ex["person.multi_company"])
    multi = {uscc for uscc, role, _, _ in positions if role == "法定代表人"}
    assert len(multi) >= 3

    restricted = ex["person.restricted"]
    assert any(r.zjhm == restricted and r.qy_mc == r.qy_dm == "" for r in view.data.restrictions)
    assert any(r.card_num == restricted and r.is_person for r in view.data.shixin)

    permit = ex["person.residence_permit"]
    assert permit[:6] in RESIDENCE_PERMIT_PREFIXES
    assert any(c.legal_rep_id == permit for c in view.data.companies)


def test_relocation(view: View) -> None:
    person = view.data.examples["person.relocation"]
    alerts = []
    for uscc, role, _, _ in view.positions(person):
        if role not in RESPONSIBLE:
            continue
        for case in view.shixin(uscc):
            # Whichever courts date the gateway takes as listedOn, both precede the new role.
            listed = max(case.reg_date, case.publish_date)
            if person in view.holders_on(uscc, case.reg_date):
                alerts += [
                    other
                    for other, other_role, start, _ in view.positions(person)
                    if other != uscc and other_role != "监事" and start > listed
                ]
    assert alerts


def test_role_ended_before_listing(view: View) -> None:
    person = view.data.examples["person.role_ended_before_listing"]
    [(uscc, _, _, end)] = [p for p in view.positions(person) if p[1] == "法定代表人"]
    [entry] = [e for e in view.data.illegal if e.uscc == uscc]
    assert entry.removed_on is None and entry.listed_on > years_before(view.today, 3)
    assert end == entry.listed_on - timedelta(days=1)
    holders = view.holders_on(uscc, entry.listed_on)
    assert person not in holders and holders
