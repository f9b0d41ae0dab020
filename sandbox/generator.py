"""Deterministic sandbox dataset: labelled scenario subjects first, then realistic random ones."""

from __future__ import annotations

import calendar
import random
import re
from bisect import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import accumulate
from typing import TypeVar

from stdnum.iso7064 import mod_11_10

from core.identity import id_check_digit, org_code_check_digit, org_code_of, uscc_check_digit
from sandbox import names
from sandbox.model import (
    Company,
    Dataset,
    MarketListEntry,
    MarketPenalty,
    PositionRow,
    RestrictionCase,
    ShixinCase,
    TaxCase,
    TaxRatingRow,
    WaterGradeRow,
    WaterListRow,
    WaterPenaltyRow,
)
from sandbox.names import District, Industry

# Courts stored organisations by their organisation code for cases filed before the USCC reform.
USCC_REFORM = date(2016, 1, 1)
# The courts' 失信被执行人 list has existed since October 2013.
SHIXIN_LIST_START = date(2013, 10, 1)

ENTERPRISE, BRANCH, INDIVIDUAL, COOP, VILLAGE, UNION = (
    "enterprise",
    "branch",
    "individual",
    "coop",
    "village",
    "union",
)
_PREFIX = {ENTERPRISE: "91", BRANCH: "91", INDIVIDUAL: "92", COOP: "93", VILLAGE: "N2", UNION: "Y1"}
_RANDOM_KINDS = (ENTERPRISE, BRANCH, INDIVIDUAL, COOP, VILLAGE, UNION)
_RANDOM_KIND_WEIGHTS = (72.0, 4.0, 16.0, 6.5, 1.0, 0.5)
# Share of each kind that tax rates; unrated taxpayers are simply absent from tax_ratings.
_RATED_SHARE = {ENTERPRISE: 0.87, BRANCH: 0.8, INDIVIDUAL: 0.4, COOP: 0.5, VILLAGE: 0.5, UNION: 0.5}
_GRADES = ("A", "B", "M", "C", "D")
_WATER_GRADES = ("AAA", "AA", "A", "B", "C")
BLACKLIST, WATCHLIST = "黑名单", "重点关注名单"
LEGAL_REP = "法定代表人"
_CLOSED_STATES = (names.STATE_CANCELLED, names.STATE_MOVED)
_ALNUM = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 characters, also safe in organisation codes
_NameDraw = Callable[[], str]  # draws a candidate subject name; retried until unique
_T = TypeVar("_T")


def _cum(weights: Sequence[float]) -> tuple[float, ...]:
    """Cumulative weights, computed once so weighted draws stay cheap at 100,000 subjects."""
    return tuple(accumulate(weights))


_CUM = {
    "kind": _cum(_RANDOM_KIND_WEIGHTS),
    "district": _cum(names.DISTRICT_WEIGHTS),
    "surname": _cum(names.SURNAME_WEIGHTS),
    "industry": _cum(names.INDUSTRY_WEIGHTS),
    "ent_type": _cum(names.ENT_TYPE_WEIGHTS),
    "state": _cum(names.REG_STATE_WEIGHTS),
    "capital": _cum(names.CAPITAL_WEIGHTS),
    "grade": _cum((15, 55, 18, 8, 4)),
    "water_grade": _cum((12, 35, 33, 15, 5)),
    "abnormal": _cum(names.ABNORMAL_CAUSE_WEIGHTS),
    "illegal": _cum(names.ILLEGAL_CAUSE_WEIGHTS),
    "disrupt": _cum(names.DISRUPT_WEIGHTS),
    "tax_nature": _cum(names.TAX_NATURE_WEIGHTS),
}


def generate(seed: int, subjects: int, today: date) -> Dataset:
    """Used by the sandbox servers and tests: all four departments' data for these arguments."""
    b = _Builder(random.Random(seed), today)
    # The labelled scenarios (about 45 companies) always exist, so a dataset holds
    # max(subjects, scenario count) companies; random subjects fill up the rest.
    _build_scenarios(b)
    while len(b.data.companies) < subjects:
        _random_subject(b)
    return b.data


# --- dates -------------------------------------------------------------------------------------


def _plus_years(day: date, years: int) -> date:
    """Same calendar day `years` later (negative: earlier); 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _plus_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end; used for 3-month publication."""
    year, month0 = divmod(day.month - 1 + months, 12)
    last = calendar.monthrange(day.year + year, month0 + 1)[1]
    return date(day.year + year, month0 + 1, min(day.day, last))


def _age(born: date, today: date) -> int:
    """Completed years of life; used for the courts' age field."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# --- the builder's parts -------------------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    """A natural person with an issued ID; used for representatives, officers and personal cases."""

    id_number: str
    name: str
    born: date
    male: bool
    companies: int = 0  # how many companies employ them; caps reuse at four


@dataclass(slots=True)
class _Rep:
    """One legal representative's term; person None is a foreign representative without an ID."""

    name: str
    person: _Person | None
    start: date
    end: date | None

    @property
    def id_number(self) -> str:
        """The full ID the market stores, "" for a foreign representative."""
        return self.person.id_number if self.person else ""


@dataclass(slots=True)
class _Subject:
    """A company under construction and what its records need: district, reps, other spellings."""

    company: Company
    district: District
    kind: str
    water: bool
    tax_name: str
    water_name: str
    reps: list[_Rep] = field(default_factory=list)
    ratings: list[TaxRatingRow] = field(default_factory=list)

    @property
    def uscc(self) -> str:
        """The join key."""
        return self.company.uscc

    @property
    def closed_on(self) -> date | None:
        """Day a deregistered or moved-out company left; positions end then."""
        return self.company.appr_date if self.company.reg_state in _CLOSED_STATES else None

    def rep_on(self, day: date) -> _Rep:
        """The representative in office on `day`; records name the rep at their own date."""
        for rep in reversed(self.reps):
            if rep.start <= day:
                return rep
        return self.reps[0]


def _half_width(name: str) -> str:
    """Tax and water spell brackets half-width where the market spells them full-width."""
    return name.replace("（", "(").replace("）", ")")


def _case_number(year: int, court_abbr: str, kind: str, number: int) -> str:
    """A court case number; half-width brackets before 2016, full-width after."""
    if year < USCC_REFORM.year:
        return f"({year}){court_abbr}{kind}{number}号"
    return f"（{year}）{court_abbr}{kind}{number}号"


class _Builder:
    """Used once per generate() call: seeded draws, uniqueness registers, the growing data."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self.data = Dataset(today=today)
        self._org_codes: set[str] = set()
        self._ids: set[str] = set()
        self._names: set[str] = set()
        self._counters: dict[str, int] = {}
        # Persons created by the random fill; reused so some hold several companies.
        self.pool: list[_Person] = []
        # Ratings for year Y are published on one April day of Y + 1.
        self.pjrq = {
            y: date(y + 1, 4, rng.randint(10, 26)) for y in range(today.year - 9, today.year)
        }
        self.rated_years = sorted((y for y, d in self.pjrq.items() if d <= today), reverse=True)

    # --- draws ---

    def chance(self, p: float) -> bool:
        """A Bernoulli draw; the random fill's proportions are all expressed with it."""
        return self.rng.random() < p

    def pick(self, items: Sequence[_T], cum: str) -> _T:
        """A weighted draw from names.py data with precomputed cumulative weights."""
        # rng.choices does the same bisection, with more overhead per call.
        weights = _CUM[cum]
        return items[bisect(weights, self.rng.random() * weights[-1])]

    def between(self, first: date, last: date) -> date:
        """A day in [first, last]; `first` when the range is empty."""
        span = (last - first).days
        return first + timedelta(days=self.rng.randint(0, span)) if span > 0 else first

    def ago(self, least: int, most: int) -> date:
        """A day between `most` and `least` days before today; scenario dates are built with it."""
        return self.today - timedelta(days=self.rng.randint(least, most))

    def record_day(
        self, s: _Subject, oldest: int, newest: int = 1, floor: date = date.min
    ) -> date | None:
        """A record date `newest`..`oldest` days ago while the subject existed, else None."""
        first = max(s.company.est_date + timedelta(days=30), self.today - timedelta(days=oldest))
        first = max(first, floor)
        last = min(self.today - timedelta(days=newest), s.closed_on or self.today)
        return self.between(first, last) if first <= last else None

    def next_id(self, kind: str) -> int:
        """A per-kind counter; record ids are unique because they count."""
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def count_from(self, counters: dict[str, int]) -> None:
        """Used for listings made while the sandbox runs: ids continue after a dataset's."""
        self._counters.update(counters)

    def district(self) -> District:
        """A weighted district of the seeds' regions."""
        return self.pick(names.DISTRICTS, "district")

    def industry(self) -> Industry:
        """A weighted industry; about 15 % of companies come out as water construction firms."""
        return self.pick(names.INDUSTRIES, "industry")

    def label(self, label: str, identity: str) -> None:
        """Registers a labelled example for tests and demonstrations."""
        self.data.examples[label] = identity

    # --- identities ---

    def uscc(self, prefix: str, region: str, ma_char: str, old: bool) -> str:
        """A fresh USCC; old subjects embed a numeric pre-reform organisation code, new ones MA…."""
        while True:
            if old:
                body = f"{self.rng.randrange(10**8):08d}"
            else:
                body = "MA" + ma_char + "".join(self.rng.choices(_ALNUM, k=5))
            org = body + org_code_check_digit(body)
            if org not in self._org_codes:
                self._org_codes.add(org)
                first17 = prefix + region + org
                return first17 + uscc_check_digit(first17)

    def person(
        self, region: str, start: date, *, ends_x: bool = False, male: bool | None = None
    ) -> _Person:
        """A fresh person at least 20 years old on `start`, with a unique ID from `region`."""
        male = self.chance(0.72) if male is None else male
        born_by = min(2000, start.year - 20)
        born = date(self.rng.randint(1955, max(1955, born_by)), 1, 1)
        born += timedelta(days=self.rng.randrange(365))
        given = names.MALE_GIVEN if male else names.FEMALE_GIVEN
        name = self.pick(names.SURNAMES, "surname") + self.given_name(given)
        while True:
            # The 17th digit is odd for men and even for women.
            seq = self.rng.randrange(500) * 2 + (1 if male else 0)
            first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{seq:03d}"
            check = id_check_digit(first17)
            if first17 not in self._ids and (check == "X" or not ends_x):
                self._ids.add(first17)
                return _Person(first17 + check, name, born, male)

    def given_name(self, chars: Sequence[str]) -> str:
        """One character or, three times in four, two different ones (rng.sample is slow)."""
        first = self.rng.choice(chars)
        if self.chance(0.25):
            return first
        second = first
        while second == first:
            second = self.rng.choice(chars)
        return first + second

    def pooled_person(self, district: District, start: date) -> _Person:
        """A random-fill officer: sometimes someone already in office elsewhere, else a newcomer."""
        if self.pool and self.chance(0.07):
            known = self.pool[self.rng.randrange(len(self.pool))]
            if known.companies < 4 and known.born.year <= start.year - 20:
                return known
        region = district.code if self.chance(0.85) else self.district().code
        if self.chance(0.003):
            region = self.rng.choice(("810000", "820000", "830000"))
        person = self.person(region, start)
        self.pool.append(person)
        if self.chance(0.003):
            _personal_cases(self, person)
        return person

    # --- names and registration ---

    def unique_name(self, draw: _NameDraw) -> str:
        """A subject name no other subject has; registration authorities refuse duplicates."""
        while True:
            name = draw()
            if name not in self._names:
                self._names.add(name)
                return name

    def trade(self) -> str:
        """A two-character 字号 such as 鑫源."""
        return self.rng.choice(names.TRADE_FIRST) + self.rng.choice(names.TRADE_SECOND)

    def enterprise_name(self, d: District, industry: Industry, ent_type: str) -> str:
        """行政区划 + 字号 + 行业 + 组织形式 in the common orders, e.g. 鑫源（榆林）能源有限公司."""
        main = d.city if d.county.endswith("区") else d.county
        form = "股份有限公司" if ent_type.startswith("股份") else "有限公司"
        if form == "有限公司" and self.chance(0.2):
            form = "有限责任公司"
        trade, r = self.trade(), self.rng.random()
        if r < 0.5:
            return f"{main}{trade}{industry.word}{form}"
        if r < 0.65:
            return f"{main[:-1]}{trade}{industry.word}{form}"
        if r < 0.8:
            return f"{d.province[:-1]}{trade}{industry.word}{form}"
        if r < 0.9:
            return f"{trade}（{main[:-1]}）{industry.word}{form}"
        return f"{d.county}{trade}{industry.word}{form}"

    def name_for(self, kind: str, d: District, industry: Industry, ent_type: str) -> str:
        """The market's name of a new subject of `kind`."""
        if kind == ENTERPRISE:
            return self.enterprise_name(d, industry, ent_type)
        if kind == BRANCH:
            # The parent is usually registered a level above the branch.
            parent = d.city if d.county.endswith("区") else d.province[:-1]
            return f"{parent}{self.trade()}{industry.word}有限公司（{d.short}分公司）"
        if kind == INDIVIDUAL:
            return f"{d.county}{self.trade()}{self.rng.choice(names.SHOPS)}"
        if kind == COOP:
            town = self.rng.choice(d.towns) if self.chance(0.5) else ""
            suffix = "农民专业合作社" if self.chance(0.7) else "专业合作社"
            return f"{d.county}{town}{self.trade()}{self.rng.choice(names.COOP_PRODUCE)}{suffix}"
        if kind == VILLAGE:
            village = self.pick(names.SURNAMES, "surname") + "家" + self.rng.choice(names.LANDFORMS)
            return f"{d.gov}{self.rng.choice(d.towns)}{village}村股份经济合作社"
        return f"{self.enterprise_name(d, industry, ent_type)}工会委员会"

    def ent_type_for(self, kind: str) -> str:
        """企业类型 matching the kind; enterprises draw from the weighted list."""
        fixed = {
            BRANCH: names.ENT_TYPE_BRANCH,
            INDIVIDUAL: names.ENT_TYPE_INDIVIDUAL,
            COOP: names.ENT_TYPE_COOP,
            VILLAGE: names.ENT_TYPE_VILLAGE,
            UNION: names.ENT_TYPE_UNION,
        }
        return fixed.get(kind) or self.pick(names.ENT_TYPES, "ent_type")

    def capital(self, kind: str) -> str:
        """注册资本 in 万元 with 6 decimals; branches and unions have none."""
        if kind in (BRANCH, UNION):
            return "0.000000"
        if kind == INDIVIDUAL:
            return f"{self.rng.choice((1, 2, 3, 5, 10, 20, 50)):.6f}"
        if kind in (COOP, VILLAGE):
            return f"{self.rng.choice((10, 50, 100, 120, 200, 300, 500)):.6f}"
        return f"{self.pick(names.CAPITALS, 'capital'):.6f}"

    def reg_org(self, kind: str, d: District, city_level: bool) -> str:
        """登记机关: the market office, or the bodies that register villages and unions."""
        if kind == VILLAGE:
            return f"{d.gov}农业农村局"
        if kind == UNION:
            return f"{d.gov}总工会"
        return d.city_reg_org if city_level else d.reg_org

    def address(self, d: District) -> str:
        """A 住所 in the district: street and number, sometimes a building, sometimes a village."""
        if self.chance(0.15):
            village = self.pick(names.SURNAMES, "surname") + "家" + self.rng.choice(names.LANDFORMS)
            return (
                f"{d.address_prefix}{self.rng.choice(d.towns)}{village}村{self.rng.randint(1, 9)}组"
            )
        street = f"{d.address_prefix}{self.rng.choice(d.streets)}{self.rng.randint(1, 399)}号"
        if self.chance(0.3):
            building = self.rng.choice(names.BUILDINGS)
            room = f"{self.rng.randint(1, 18)}{self.rng.randint(1, 4):02d}"
            unit = f"{self.rng.randint(1, 12)}号楼{self.rng.randint(1, 4)}单元"
            return f"{street}{building}{unit}{room}室"
        return street

    def random_est(self) -> date:
        """成立日期 within 30 years, skewed to recent years as real registers are."""
        return self.today - timedelta(days=30 + int(self.rng.random() ** 1.6 * 30 * 365))

    def operating_term(self, kind: str, est: date) -> date | None:
        """营业期限至: None (长期) for half the enterprises and every other kind."""
        if kind != ENTERPRISE or self.chance(0.5):
            return None
        years = self.rng.choice((20, 30, 50))
        # A term that ran out was renewed, so running companies still have one.
        while _plus_years(est, years) <= self.today:
            years += 20
        return _plus_years(est, years) - timedelta(days=1)

    def registration_number(self, region: str) -> str:
        """A 15-digit pre-reform 注册号 (GS15 with an ISO 7064 MOD 11,10 check digit)."""
        first14 = f"{region}{self.rng.randrange(10**8):08d}"
        return first14 + str(mod_11_10.calc_check_digit(first14))

    def subject(
        self,
        kind: str,
        *,
        district: District | None = None,
        industry: Industry | None = None,
        est: date | None = None,
        ent_type: str | None = None,
        state: str = names.STATE_ACTIVE,
    ) -> _Subject:
        """A registered company without staff; scenarios fix what they need, the rest is drawn."""
        d = district or self.district()
        est = est or self.random_est()
        industry = industry or self.industry()
        ent_type = ent_type or self.ent_type_for(kind)
        name = self.unique_name(lambda: self.name_for(kind, d, industry, ent_type))
        city_level = kind == ENTERPRISE and self.chance(0.2)
        old = est < USCC_REFORM and kind in (ENTERPRISE, BRANCH, COOP)
        changed = self.between(est, self.today)
        company = Company(
            uscc=self.uscc(_PREFIX[kind], d.city_code if city_level else d.code, d.ma_char, old),
            name=name,
            ent_type=ent_type,
            legal_rep_name="",
            legal_rep_id="",
            reg_cap=self.capital(kind),
            currency="美元" if ent_type == names.ENT_TYPE_FOREIGN else "人民币",
            est_date=est,
            op_from=est,
            op_to=self.operating_term(kind, est),
            reg_org=self.reg_org(kind, d, city_level),
            reg_state=state,
            dom=_village_address(d, name) if kind == VILLAGE else self.address(d),
            op_scope=_scope_of(kind, industry),
            appr_date=changed,
            reg_no=self.registration_number(d.code) if old else "",
        )
        tax_name = _half_width(name)
        if tax_name != name and self.chance(0.25):
            tax_name = tax_name.replace("(", " (")  # some tax clerks typed a space as well
        water = industry.water and kind in (ENTERPRISE, BRANCH)
        water_name = _half_width(name) if self.chance(0.5) else name
        self.data.companies.append(company)
        return _Subject(company, d, kind, water, tax_name, water_name)

    # --- staff ---

    def position(
        self, person: _Person, s: _Subject, role: str, start: date, end: date | None
    ) -> None:
        """One 人员任职 row."""
        self.data.positions.append(
            PositionRow(person.id_number, s.uscc, s.company.name, role, start, end)
        )

    def set_reps(self, s: _Subject, reps: Sequence[tuple[_Person | str, date]]) -> None:
        """Legal representatives in order, each in office from its date until the next one's."""
        for i, (who, start) in enumerate(reps):
            end = reps[i + 1][1] if i + 1 < len(reps) else s.closed_on
            if isinstance(who, str):
                s.reps.append(_Rep(who, None, start, end))
                continue
            s.reps.append(_Rep(who.name, who, start, end))
            who.companies += 1
            self.position(who, s, LEGAL_REP, start, end)
        s.company.legal_rep_name = s.reps[-1].name
        s.company.legal_rep_id = s.reps[-1].id_number

    def joint_roles(self, s: _Subject, role: str) -> None:
        """A second position each representative holds with the rep term (执行董事, 负责人, …)."""
        for rep in s.reps:
            if rep.person:
                self.position(rep.person, s, role, rep.start, rep.end)

    def officer(self, s: _Subject, role: str, person: _Person | None = None) -> None:
        """A non-representative officer (监事, 总经理, …) in office since establishment."""
        est = s.company.est_date
        person = person or self.pooled_person(s.district, est)
        person.companies += 1
        self.position(person, s, role, est, s.closed_on)

    # --- tax ratings ---

    def rate(self, s: _Subject, grades: Sequence[str] | None = None, shuffle: bool = False) -> None:
        """纳税信用等级 rows, latest year first unless shuffled; scenarios fix the latest grades."""
        est, closed = s.company.est_date, s.closed_on
        years = [
            y for y in self.rated_years[:5] if est.year <= y and (not closed or y < closed.year)
        ]
        if grades is None:
            base = self.pick(_GRADES, "grade")
            drawn = [base if self.chance(0.7) else self.pick(_GRADES, "grade") for _ in years]
            # New taxpayers are usually rated M in their first year.
            grades = [
                "M" if y == est.year and self.chance(0.7) else g
                for y, g in zip(years, drawn, strict=True)
            ]
        for year, grade in zip(years, grades, strict=False):
            s.ratings.append(TaxRatingRow(s.uscc, s.tax_name, year, grade, self.pjrq[year]))
        if shuffle:
            self.rng.shuffle(s.ratings)
        self.data.tax_ratings.extend(s.ratings)

    # --- market records ---

    def abnormal(
        self, s: _Subject, listed: date, removed: date | None = None, cause: str = ""
    ) -> None:
        """An 经营异常名录 entry; a removal keeps the entry as history."""
        org = s.company.reg_org
        self.data.abnormal.append(
            MarketListEntry(
                entry_id=f"YC{s.district.code}{self.next_id('abnormal'):09d}",
                uscc=s.uscc,
                cause=cause or self.pick(names.ABNORMAL_CAUSES, "abnormal"),
                listed_on=listed,
                dec_org=org,
                removed_on=removed,
                rem_reason=self.rng.choice(names.ABNORMAL_REMOVALS) if removed else "",
                rem_org=org if removed else "",
            )
        )

    def illegal(
        self, s: _Subject, listed: date, removed: date | None = None, cause: str = ""
    ) -> None:
        """A 严重违法失信名单 entry; expiry after 3 years is never written into it."""
        org = s.district.city_reg_org
        self.data.illegal.append(
            MarketListEntry(
                entry_id=f"YZ{s.district.code}{self.next_id('illegal'):09d}",
                uscc=s.uscc,
                cause=cause or self.pick(names.ILLEGAL_CAUSES, "illegal"),
                listed_on=listed,
                dec_org=org,
                removed_on=removed,
                rem_reason=names.ILLEGAL_REMOVAL if removed else "",
                rem_org=org if removed else "",
            )
        )

    def market_penalty(
        self,
        s: _Subject,
        decided: date,
        *,
        minor: bool,
        repaired: bool = False,
        disputed: bool = False,
        published: date | None = None,
    ) -> None:
        """A 双公示 penalty published within 7 days; minor ones for 3 months, others for 3 years."""
        act, content, _ = self.rng.choice([p for p in names.MARKET_PENALTIES if p[2] == minor])
        amounts = (500, 1000, 2000, 5000) if minor else (10000, 20000, 30000, 50000, 100000)
        amount = self.rng.choice(amounts)
        # `published` fixes the day (a listing made while the sandbox runs: today).
        public_on = published or min(self.today, decided + timedelta(days=self.rng.randint(1, 7)))
        until = _plus_months(public_on, 3) if minor else _plus_years(public_on, 3)
        self.data.penalties.append(
            MarketPenalty(
                case_id=f"CF{s.district.code}{self.next_id('penalty'):09d}",
                uscc=s.uscc,
                dec_no=f"{s.district.short}市监处罚〔{decided.year}〕{self.rng.randint(1, 899)}号",
                act_type=act,
                content=content.format(amount=amount),
                amount_wan=f"{amount / 10000:.6f}" if "{amount}" in content else "",
                authority=s.company.reg_org,
                decided_on=decided,
                public_on=public_on,
                public_until=until,
                repaired=repaired,
                disputed=disputed,
            )
        )

    # --- courts ---

    def court(self, d: District) -> tuple[str, str]:
        """The enforcing court and its case-number code; most cases sit with the basic court."""
        return (d.court, d.court_abbr) if self.chance(0.85) else (d.city_court, d.city_court_abbr)

    def shixin(
        self, party: _Party, d: District, filed: date, published: date | None = None
    ) -> None:
        """A current 失信被执行人 listing (courts delete removed ones, so every row is in force)."""
        court, abbr = self.court(d)
        number = self.rng.randint(1, 3999)
        amount = self.rng.randint(8, 900) * 1000 + self.rng.randint(0, 999)
        partly = self.chance(0.2)
        gist_id, gist_unit = self.gist(d, court, abbr, filed)
        paid = self.rng.randint(1, amount // 2) if partly else 0
        self.data.shixin.append(
            ShixinCase(
                case_id=str(3_100_000_000 + self.next_id("shixin")),
                iname=party.name,
                case_code=_case_number(filed.year, abbr, "执", number),
                card_num=party.card_num(filed),
                is_person=party.is_person,
                age=party.age(self.today),
                sex=party.sex,
                business_entity=party.entity(filed),
                court_name=court,
                area_name=d.area,
                gist_id=gist_id,
                gist_unit=gist_unit,
                duty=f"{party.name}于本判决生效之日起十日内向{self.creditor(d)}支付"
                f"{self.rng.choice(names.DEBTS)}{amount}元及相应利息。",
                performance="部分未履行" if partly else "全部未履行",
                performed_part=f"已履行{paid}元" if partly else "暂无",
                unperformed_part=f"{amount - paid}元" if partly or self.chance(0.3) else "暂无",
                disrupt_types=self.disrupt_types(),
                reg_date=filed,
                publish_date=published
                or min(self.today, filed + timedelta(days=self.rng.randint(20, 120))),
            )
        )

    def gist(self, d: District, court: str, abbr: str, filed: date) -> tuple[str, str]:
        """执行依据文号 and its unit: mostly the court's judgment, sometimes an award."""
        year = filed.year - self.rng.randint(0, 1)
        if self.chance(0.8):
            return _case_number(year, abbr, "民初", self.rng.randint(1, 5999)), court
        short = d.arbitration.removesuffix("仲裁委员会")
        return f"{short}仲裁字〔{year}〕第{self.rng.randint(1, 499)}号", d.arbitration

    def creditor(self, d: District) -> str:
        """The judgment creditor named in a duty text: a local firm or a person."""
        if self.chance(0.6):
            return f"{d.city or d.county}{self.trade()}{self.industry().word}有限公司"
        return self.pick(names.SURNAMES, "surname") + self.rng.choice(
            names.MALE_GIVEN + names.FEMALE_GIVEN
        )

    def disrupt_types(self) -> list[str]:
        """One to three distinct 失信 situations, the common ones most often."""
        wanted = 1 if self.chance(0.7) else 2 if self.chance(0.8) else 3
        chosen: list[str] = []
        while len(chosen) < wanted:
            kind = self.pick(names.DISRUPT_TYPES, "disrupt")
            if kind not in chosen:
                chosen.append(kind)
        return chosen

    def restriction(
        self,
        party: _Party,
        d: District,
        filed: date,
        company: _Subject | None,
        published: date | None = None,
    ) -> None:
        """限制消费 rows of one case: the company and its rep, or the person of a personal case."""
        court, abbr = self.court(d)
        ah = _case_number(filed.year, abbr, "执", self.rng.randint(1, 3999))
        published = published or min(self.today, filed + timedelta(days=self.rng.randint(5, 60)))
        qy_mc = company.company.name if company else ""
        qy_dm = _stored_code(company, filed) if company else ""
        rows = [(party.name, "")] if company else [(party.name, party.card_num(filed))]
        if company:
            rep = company.rep_on(filed)
            if rep.person:
                rows.append((rep.name, rep.id_number))
        for xm, zjhm in rows:
            case_id = str(7_200_000_000 + self.next_id("restriction"))
            self.data.restrictions.append(
                RestrictionCase(case_id, ah, xm, zjhm, qy_mc, qy_dm, court, filed, published)
            )

    # --- tax cases ---

    def tax_case(self, s: _Subject, gbrq: date, tcrq: date | None = None) -> None:
        """A 重大税收违法失信主体 case; tax also rates the subject D from the decision year on."""
        rdrq = max(s.company.est_date, gbrq - timedelta(days=self.rng.randint(15, 60)))
        rep = s.rep_on(rdrq)
        nature = self.pick(names.TAX_NATURES, "tax_nature")
        office = s.district.tax_office
        evaded = round(self.rng.uniform(15, 900), 2)
        fact, law = _tax_texts(nature, evaded, self.rng.randint(12, 300))
        self.data.tax_cases.append(
            TaxCase(
                ajbh=f"{s.district.city_code}{rdrq.year}{self.next_id('tax_case'):06d}",
                nsrsbh=s.uscc,
                nsrmc=s.tax_name,
                zcdz=s.company.dom,
                fddbrxm=rep.name,
                fddbrzjhm=rep.id_number,
                cwfzrxm=self.person(s.district.code, rdrq).name if self.chance(0.6) else "",
                ajxz=nature,
                zywfss=f"经{office}检查，发现其在{rdrq.year - 2}年1月1日至"
                f"{rdrq.year - 1}年12月31日期间，主要存在以下问题：{fact}",
                xgfljcl=law,
                rdjg=office,
                rdrq=rdrq,
                gbrq=gbrq,
                tcrq=tcrq,
            )
        )
        for row in s.ratings:
            if row.pjnd >= rdrq.year:
                row.xydj = "D"

    # --- water ---

    def water_grade(self, s: _Subject, grade: str, evaluated: date) -> None:
        """A credit-grades.csv row, valid for three years."""
        until = _plus_years(evaluated, 3) - timedelta(days=1)
        self.data.water_grades.append(WaterGradeRow(s.uscc, s.water_name, grade, evaluated, until))

    def water_list(
        self, s: _Subject, list_type: str, listed: date, removed: date | None = None
    ) -> None:
        """A credit-lists.csv row: 黑名单 public for three years, 重点关注名单 for one."""
        years = 3 if list_type == BLACKLIST else 1
        reasons = (
            names.WATER_BLACKLIST_REASONS if list_type == BLACKLIST else names.WATER_WATCH_REASONS
        )
        self.data.water_lists.append(
            WaterListRow(
                record_no=f"SL{listed.year}{self.next_id('water_list'):06d}",
                uscc=s.uscc,
                name=s.water_name,
                list_type=list_type,
                reason=self.rng.choice(reasons),
                authority=s.district.water_office,
                listed_on=listed,
                public_until=_plus_years(listed, years) - timedelta(days=1),
                removed_on=removed,
            )
        )

    def water_penalty(self, s: _Subject, decided: date, repaired: bool = False) -> None:
        """A penalties.csv row published for three years unless repaired."""
        act, content = self.rng.choice(names.WATER_PENALTIES)
        amount = self.rng.choice((5000, 10000, 20000, 50000, 100000, 200000))
        self.data.water_penalties.append(
            WaterPenaltyRow(
                dec_no=f"{s.district.short}水罚〔{decided.year}〕{self.rng.randint(1, 199)}号",
                uscc=s.uscc,
                name=s.water_name,
                act_type=act,
                content=content.format(amount=amount),
                amount_wan=f"{amount / 10000:.2f}",
                decided_on=decided,
                public_until=_plus_years(decided, 3),
                authority=s.district.water_office,
                repaired=repaired,
            )
        )


@dataclass(frozen=True, slots=True)
class _Party:
    """Whoever a court case is against: a company or a person, with how the courts store them."""

    name: str
    is_person: bool
    sex: str = ""
    born: date | None = None
    id_number: str = ""
    subject: _Subject | None = None

    @classmethod
    def of_company(cls, s: _Subject) -> _Party:
        """An organisation party."""
        return cls(s.company.name, False, subject=s)

    @classmethod
    def of_person(cls, p: _Person) -> _Party:
        """A natural-person party."""
        return cls(p.name, True, "男" if p.male else "女", p.born, p.id_number)

    def card_num(self, filed: date) -> str:
        """The stored identity: full citizen ID, or the USCC / pre-reform organisation code."""
        return _stored_code(self.subject, filed) if self.subject else self.id_number

    def age(self, today: date) -> int:
        """Age for persons, 0 for organisations as the courts write it."""
        return _age(self.born, today) if self.born else 0

    def entity(self, filed: date) -> str:
        """businessEntity: the organisation's rep when the case was filed."""
        return self.subject.rep_on(filed).name if self.subject else ""


def _stored_code(s: _Subject, filed: date) -> str:
    """How the courts store an organisation: organisation code before the reform, USCC after."""
    return org_code_of(s.uscc) if filed < USCC_REFORM else s.uscc


def _village_address(d: District, name: str) -> str:
    """A village collective sits in its village: 陕西省榆林市榆阳区鱼河镇刘家湾村."""
    village = name.removeprefix(d.gov).removesuffix("股份经济合作社")
    return f"{d.address_prefix}{village}村民委员会"


def _scope_of(kind: str, industry: Industry) -> str:
    """经营范围 text; shared strings keep 100,000 companies small in memory."""
    scopes = {
        INDIVIDUAL: names.SCOPE_INDIVIDUAL,
        COOP: names.SCOPE_COOP,
        VILLAGE: names.SCOPE_VILLAGE,
        UNION: names.SCOPE_UNION,
    }
    return scopes.get(kind, industry.scope)


def _tax_texts(nature: str, amount: float, invoices: int) -> tuple[str, str]:
    """主要违法事实 and 相关法律依据及处理处罚 for a case of `nature`."""
    facts = {
        "偷税": f"采取虚假申报、少列收入等手段，少缴增值税、企业所得税等税款合计{amount}万元。",
        "虚开增值税专用发票": f"虚开增值税专用发票{invoices}份，金额{amount}万元。",
        "逃避追缴欠税": f"欠缴税款{amount}万元，采取转移或者隐匿财产的手段，"
        "妨碍税务机关追缴欠缴的税款。",
        "虚开普通发票": f"虚开普通发票{invoices}份，金额{amount}万元。",
        "骗取出口退税": f"以假报出口手段骗取国家出口退税款{amount}万元。",
    }
    law = (
        "依照《中华人民共和国税收征收管理法》等相关法律法规的有关规定，"
        f"对其处以追缴税款{amount}万元的行政处理、处以少缴税款1倍的罚款{amount}万元的行政处罚"
    )
    if nature.startswith("虚开"):
        law = (
            "依照《中华人民共和国发票管理办法》等相关法律法规的有关规定，"
            "对其处以罚款的行政处罚，并依法移送公安机关"
        )
    return facts[nature], law + "。"


# --- labelled scenarios ------------------------------------------------------------------------


def _build_scenarios(b: _Builder) -> None:
    """Used first by generate(): the hand-shaped subjects every dataset holds, labelled."""
    _clean_scenarios(b)
    _court_scenarios(b)
    _market_scenarios(b)
    _tax_scenarios(b)
    _water_scenarios(b)
    _identity_scenarios(b)
    _person_scenarios(b)
    _stitched_scenario(b)


def _company(
    b: _Builder,
    *,
    kind: str = ENTERPRISE,
    est: date | None = None,
    industry: Industry | None = None,
    ent_type: str | None = None,
    district: District | None = None,
    grades: Sequence[str] | None = ("B", "B"),
    reps: Sequence[tuple[_Person | str, date]] = (),
) -> _Subject:
    """A scenario company, by default 5-15 years old with one representative since establishment."""
    est = est or b.ago(5 * 365, 15 * 365)
    s = b.subject(kind, district=district, industry=industry, est=est, ent_type=ent_type)
    b.set_reps(s, reps or [(b.person(s.district.code, est), est)])
    if kind in (ENTERPRISE, BRANCH):
        b.joint_roles(s, "执行董事" if kind == ENTERPRISE else "负责人")
    if grades:
        b.rate(s, grades)
    return s


def _stitched_scenario(b: _Builder) -> None:
    """A subject all four departments know; the first example of the README tour."""
    s = _water_company(b)
    b.water_grade(s, "A", b.ago(60, 400))
    b.market_penalty(s, b.ago(20, 60), minor=False)
    b.shixin(_Party.of_company(s), s.district, _post_reform_filing(b, 30, 200))
    b.label("stitched.all_departments", s.uscc)


def _water_company(b: _Builder) -> _Subject:
    """A scenario company of the water-construction subset."""
    return _company(b, industry=b.rng.choice(names.WATER_INDUSTRIES))


def _pre_reform_est(b: _Builder) -> date:
    """An establishment day old enough for courts cases filed before the USCC reform."""
    latest = min(date(2011, 12, 31), _plus_years(b.today, -10))
    return latest - timedelta(days=b.rng.randint(0, 3000))


def _pre_reform_filing(b: _Builder, s: _Subject) -> date:
    """A filing day before 2016, so the courts store the case under the organisation code."""
    first = max(SHIXIN_LIST_START, s.company.est_date + timedelta(days=90))
    last = min(USCC_REFORM - timedelta(days=1), b.today - timedelta(days=400))
    return b.between(first, last)


def _post_reform_filing(b: _Builder, least: int, most: int) -> date:
    """A filing day `least`..`most` days ago but in 2016 or later, so courts store the USCC."""
    first = max(USCC_REFORM, b.today - timedelta(days=most))
    return b.between(first, b.today - timedelta(days=least))


def _clean_scenarios(b: _Builder) -> None:
    """Subjects without any record: one with tax grade A, one with B."""
    b.label("clean.with_grade_a", _company(b, grades=("A", "A", "B")).uscc)
    b.label("clean.plain", _company(b, grades=("B", "B", "M")).uscc)


def _court_scenarios(b: _Builder) -> None:
    """失信 cases under the USCC, the organisation code, both, many of them, and 限制消费."""
    s = _company(b)
    b.shixin(_Party.of_company(s), s.district, _post_reform_filing(b, 150, 500))
    b.label("dishonest.active", s.uscc)

    s = _company(b, est=_pre_reform_est(b))
    b.shixin(_Party.of_company(s), s.district, _pre_reform_filing(b, s))
    b.label("dishonest.org_code_only", s.uscc)

    s = _company(b, est=_pre_reform_est(b))
    b.shixin(_Party.of_company(s), s.district, _pre_reform_filing(b, s))
    b.shixin(_Party.of_company(s), s.district, _post_reform_filing(b, 100, 700))
    b.label("dishonest.both_forms", s.uscc)

    # 23 cases, more than one courts page of 20, stored under both forms.
    s = _company(b, est=_pre_reform_est(b))
    for _ in range(8):
        b.shixin(_Party.of_company(s), s.district, _pre_reform_filing(b, s))
    for _ in range(15):
        b.shixin(_Party.of_company(s), s.district, _post_reform_filing(b, 30, 1500))
    b.label("courts.many", s.uscc)

    s = _company(b)
    b.restriction(_Party.of_company(s), s.district, _post_reform_filing(b, 60, 600), s)
    b.label("restriction.company", s.uscc)


def _market_scenarios(b: _Builder) -> None:
    """经营异常名录, 严重违法失信名单 around the 3-year boundary, and 双公示 penalties."""
    today = b.today
    s = _company(b)
    b.abnormal(s, b.ago(40, 300))
    b.label("abnormal.active", s.uscc)

    s = _company(b)
    listed = b.ago(500, 1000)
    b.abnormal(s, listed, b.between(listed + timedelta(days=60), today - timedelta(days=10)))
    b.label("abnormal.removed", s.uscc)

    # Causes other than the abnormal-list one, so these subjects need no abnormal entry.
    causes = names.ILLEGAL_CAUSES[1:]
    for label, listed in (
        ("serious_illegal.active", b.ago(60, 900)),
        (
            "serious_illegal.expired",
            _plus_years(today, -3) - timedelta(days=b.rng.randint(30, 400)),
        ),
        ("serious_illegal.boundary", _plus_years(today, -3)),
    ):
        s = _company(b)
        b.illegal(s, listed, cause=b.rng.choice(causes))
        b.label(label, s.uscc)

    s = _company(b)
    listed = b.ago(400, 1000)
    removed = b.between(listed + timedelta(days=365), today - timedelta(days=10))
    b.illegal(s, listed, removed, cause=b.rng.choice(causes))
    b.label("serious_illegal.removed", s.uscc)

    for label, decided, minor, repaired, disputed in (
        ("penalty.active", b.ago(20, 300), False, False, False),
        ("penalty.expired", b.ago(150, 600), True, False, False),
        ("penalty.repaired", b.ago(200, 700), False, True, False),
        ("penalty.disputed", b.ago(20, 300), False, False, True),
    ):
        s = _company(b)
        b.market_penalty(s, decided, minor=minor, repaired=repaired, disputed=disputed)
        b.label(label, s.uscc)


def _tax_scenarios(b: _Builder) -> None:
    """重大税收违法 cases in force, stopped and expired, and rating histories."""
    today = b.today
    s = _company(b)
    b.tax_case(s, b.ago(60, 600))
    b.label("tax.major_active", s.uscc)

    s = _company(b)
    gbrq = b.ago(500, 900)
    b.tax_case(s, gbrq, b.between(gbrq + timedelta(days=183), today - timedelta(days=5)))
    b.label("tax.major_stopped", s.uscc)

    s = _company(b)
    b.tax_case(s, _plus_years(today, -3) - timedelta(days=b.rng.randint(20, 300)))
    b.label("tax.major_expired", s.uscc)

    b.label("tax.grade_d", _company(b, grades=("D", "C", "B")).uscc)
    s = _company(b, est=b.ago(7 * 365, 15 * 365), grades=None)
    b.rate(s, ("B", "A", "A", "B", "M"), shuffle=True)
    b.label("tax.several_years", s.uscc)
    b.label("tax.no_rating", _company(b, grades=None).uscc)


def _water_scenarios(b: _Builder) -> None:
    """Water grades and lists on each side of their dates, and water penalties."""
    today = b.today
    three_years_ago = _plus_years(today, -3)
    listings: tuple[tuple[str, str, date, date | None], ...] = (
        ("water.blacklist_active", BLACKLIST, b.ago(30, 300), None),
        ("water.blacklist_removed", BLACKLIST, b.ago(400, 800), b.ago(10, 150)),
        (
            "water.blacklist_expired",
            BLACKLIST,
            three_years_ago - timedelta(days=b.rng.randint(10, 300)),
            None,
        ),
        ("water.watchlist_active", WATCHLIST, b.ago(20, 200), None),
    )
    for label, list_type, listed, removed in listings:
        s = _water_company(b)
        b.water_list(s, list_type, listed, removed)
        b.label(label, s.uscc)

    for label, grade, evaluated in (
        ("water.grade_aaa", "AAA", b.ago(30, 400)),
        ("water.grade_expired", "AA", three_years_ago - timedelta(days=b.rng.randint(1, 300))),
    ):
        s = _water_company(b)
        b.water_grade(s, grade, evaluated)
        b.label(label, s.uscc)

    # The grades file still shows a valid grade, but the active 黑名单 entry cancels it.
    s = _water_company(b)
    b.water_grade(s, "AA", b.ago(100, 600))
    b.water_list(s, BLACKLIST, b.ago(5, 60))
    b.label("water.grade_cancelled", s.uscc)

    s = _water_company(b)
    b.water_penalty(s, b.ago(30, 500))
    b.label("water.penalty_active", s.uscc)
    s = _water_company(b)
    b.water_penalty(s, b.ago(200, 700), repaired=True)
    b.label("water.penalty_repaired", s.uscc)


def _identity_scenarios(b: _Builder) -> None:
    """Letter-prefixed USCCs, bracket spellings that differ by department, a foreign rep."""
    s = _company(b, kind=VILLAGE, district=names.YUYANG, grades=("B", "B"))
    b.officer(s, "监事", b.person(s.district.code, s.company.est_date))
    b.label("uscc.letter_n2", s.uscc)
    s = _company(b, kind=UNION, grades=("M",))
    b.label("uscc.letter_y1", s.uscc)

    s = _company(b, kind=BRANCH, district=names.YUYANG, industry=names.INDUSTRIES[0], grades=None)
    s.tax_name = s.water_name = _half_width(s.company.name)
    b.rate(s, ("B", "A"))
    b.water_grade(s, "AA", b.ago(60, 500))
    b.label("name.bracket_variants", s.uscc)

    est = b.ago(3 * 365, 10 * 365)
    foreigner = b.rng.choice(names.FOREIGN_NAMES)
    s = _company(b, est=est, ent_type=names.ENT_TYPE_FOREIGN, reps=[(foreigner, est)])
    b.officer(s, "监事", b.person(s.district.code, est))
    b.label("company.foreign_rep", s.uscc)


def _person_scenarios(b: _Builder) -> None:
    """Persons: several companies, personal court cases, a residence permit, responsible roles."""
    _multi_company(b)

    est, d = b.ago(3 * 365, 8 * 365), b.district()
    person = b.person(d.code, est)
    s = _company(b, kind=INDIVIDUAL, district=d, est=est, grades=None, reps=[(person, est)])
    b.shixin(_Party.of_person(person), s.district, b.ago(100, 600))
    b.restriction(_Party.of_person(person), s.district, b.ago(100, 600), None)
    b.label("person.restricted", person.id_number)

    est = b.ago(2 * 365, 10 * 365)
    person = b.person(b.rng.choice(("810000", "820000", "830000")), est)
    _company(b, est=est, ent_type=names.ENT_TYPE_PERMIT, reps=[(person, est)])
    b.label("person.residence_permit", person.id_number)

    _relocation(b)
    _role_ended_before_listing(b)


def _multi_company(b: _Builder) -> None:
    """A person who represented three companies over time; their ID ends in X."""
    first_est, d = b.ago(14 * 365, 16 * 365), names.YUYANG
    person = b.person(d.code, first_est, ends_x=True)
    handover = b.ago(7 * 365, 8 * 365)
    successor = b.person(d.code, handover)
    _company(b, district=d, est=first_est, reps=[(person, first_est), (successor, handover)])
    second_est = b.ago(9 * 365, 12 * 365)
    predecessor = b.person(d.code, second_est)
    _company(b, district=d, est=second_est, reps=[(predecessor, second_est), (person, handover)])
    third_est = b.ago(2 * 365, 4 * 365)
    _company(b, est=third_est, reps=[(person, third_est)])
    b.label("person.multi_company", person.id_number)


def _relocation(b: _Builder) -> None:
    """易地开张: a dishonest company's rep opens a new company strictly after the listing."""
    est, d = b.ago(6 * 365, 12 * 365), b.district()
    person = b.person(d.code, est)
    origin = _company(b, district=d, est=est, reps=[(person, est)])
    filed = b.ago(300, 500)
    b.shixin(_Party.of_company(origin), origin.district, filed)
    # Published at most 120 days after filing, so the new company follows both dates.
    new_est = b.between(filed + timedelta(days=150), b.today - timedelta(days=30))
    # Usually elsewhere: 易地 means another place, where the listing is less known.
    new = _company(b, est=new_est, grades=None, reps=[(person, new_est)])
    b.label("person.relocation", person.id_number)
    b.label("company.relocation_origin", origin.uscc)
    b.label("company.relocation_new", new.uscc)


def _role_ended_before_listing(b: _Builder) -> None:
    """A rep who left the day before the company's 严重违法 listing; the successor covers it."""
    est, listed, d = b.ago(8 * 365, 12 * 365), b.ago(100, 700), b.district()
    former = b.person(d.code, est)
    successor = b.person(d.code, listed)
    handover = listed - timedelta(days=1)
    s = _company(b, district=d, est=est, reps=[(former, est), (successor, handover)])
    b.illegal(s, listed, cause=names.ILLEGAL_CAUSES[1])
    b.label("person.role_ended_before_listing", former.id_number)
    b.label("person.rep_at_listing", successor.id_number)
    b.label("company.rep_changed_before_listing", s.uscc)


# --- the random fill ---------------------------------------------------------------------------


def _random_subject(b: _Builder) -> None:
    """One random subject with realistic odds: most are clean, a few percent are on lists."""
    kind = b.pick(_RANDOM_KINDS, "kind")
    ent_type = names.ENT_TYPE_FOREIGN if kind == ENTERPRISE and b.chance(0.003) else None
    s = b.subject(kind, ent_type=ent_type, state=b.pick(names.REG_STATES, "state"))
    _random_staff(b, s)
    if b.chance(_RATED_SHARE[kind]):
        b.rate(s)
    _random_market(b, s)
    _random_courts(b, s)
    if kind in (ENTERPRISE, BRANCH) and b.chance(0.003):
        _random_tax_case(b, s)
    if s.water:
        _random_water(b, s)


def _random_staff(b: _Builder, s: _Subject) -> None:
    """Representatives (a quarter changed once or twice) and the usual officers of the kind."""
    est = s.company.est_date
    last = s.closed_on or b.today
    # Changes happen on later days while the company is registered.
    changes = 0 if b.chance(0.75) or last <= est else 1 if b.chance(0.8) else 2
    starts = sorted([est] + [b.between(est + timedelta(days=1), last) for _ in range(changes)])
    reps: list[tuple[_Person | str, date]] = [(b.pooled_person(s.district, d), d) for d in starts]
    if s.company.ent_type == names.ENT_TYPE_FOREIGN:
        reps[-1] = (b.rng.choice(names.FOREIGN_NAMES), starts[-1])
    b.set_reps(s, reps)
    if s.kind == BRANCH:
        b.joint_roles(s, "负责人")
    elif s.kind == ENTERPRISE:
        stock = s.company.ent_type.startswith("股份")
        if b.chance(0.7):
            b.joint_roles(s, "董事长" if stock else "执行董事")
        if b.chance(0.6):
            b.officer(s, "监事")
        if stock or b.chance(0.15):
            b.officer(s, "总经理")
        if b.chance(0.04):
            b.officer(s, "实际控制人")
    elif s.kind == COOP and b.chance(0.5):
        b.officer(s, "监事")


def _random_market(b: _Builder, s: _Subject) -> None:
    """Abnormal entries (most revoked companies have one), serious-illegal listings, penalties."""
    revoked = s.company.reg_state == names.STATE_REVOKED
    if b.chance(0.6 if revoked else 0.035) and (listed := b.record_day(s, 6 * 365)):
        removed = None
        if not revoked and b.chance(0.45) and listed + timedelta(days=30) < b.today:
            removed = b.between(listed + timedelta(days=30), b.today - timedelta(days=1))
        b.abnormal(s, listed, removed)
    if b.chance(0.006):
        _random_illegal(b, s)
    if b.chance(0.03) and (decided := b.record_day(s, 4 * 365)):
        minor = b.chance(0.35)
        repaired = not minor and decided < b.today - timedelta(days=120) and b.chance(0.15)
        b.market_penalty(s, decided, minor=minor, repaired=repaired, disputed=b.chance(0.03))


def _random_illegal(b: _Builder, s: _Subject) -> None:
    """A 严重违法 listing; the common cause follows three years on the abnormal list."""
    listed = b.record_day(s, 6 * 365)
    if listed is None:
        return
    cause = b.pick(names.ILLEGAL_CAUSES, "illegal")
    abnormal_since = _plus_years(listed, -3) - timedelta(days=b.rng.randint(1, 60))
    if cause == names.ILLEGAL_CAUSE_ABNORMAL and abnormal_since > s.company.est_date:
        b.abnormal(s, abnormal_since, cause=names.ABNORMAL_CAUSES[0])
    removed = None
    # Early removal is possible after one year on the list.
    if b.chance(0.25) and listed + timedelta(days=366) < b.today:
        removed = b.between(listed + timedelta(days=366), b.today - timedelta(days=1))
    b.illegal(s, listed, removed, cause)


def _random_courts(b: _Builder, s: _Subject) -> None:
    """失信 cases for 1.5 % of subjects, most with a 限制消费 case; a few restrictions alone."""
    party = _Party.of_company(s)
    if b.chance(0.015):
        cases = 1 if b.chance(0.7) else b.rng.randint(2, 4)
        filed_days = [b.record_day(s, 12 * 365, 30, SHIXIN_LIST_START) for _ in range(cases)]
        for filed in filed_days:
            if filed:
                b.shixin(party, s.district, filed)
        if filed_days[0] and b.chance(0.6):
            b.restriction(party, s.district, filed_days[0], s)
    elif b.chance(0.003) and (filed := b.record_day(s, 4 * 365, 30)):
        b.restriction(party, s.district, filed, s)


def _personal_cases(b: _Builder, person: _Person) -> None:
    """A personal 失信 case by citizen ID, usually with a personal 限制消费 case."""
    district = b.district()
    filed = b.ago(30, 4 * 365)
    b.shixin(_Party.of_person(person), district, filed)
    if b.chance(0.7):
        b.restriction(_Party.of_person(person), district, filed, None)


def _random_tax_case(b: _Builder, s: _Subject) -> None:
    """A major tax violation; a quarter stopped early, which needs six months of publication."""
    gbrq = b.record_day(s, 5 * 365, 20)
    if gbrq is None:
        return
    tcrq = None
    if b.chance(0.25) and gbrq + timedelta(days=183) < b.today:
        tcrq = b.between(gbrq + timedelta(days=183), b.today - timedelta(days=1))
    b.tax_case(s, gbrq, tcrq)


def _random_water(b: _Builder, s: _Subject) -> None:
    """Water rows of a water-construction firm: usually a grade, sometimes lists and penalties."""
    if b.chance(0.75) and (evaluated := b.record_day(s, 5 * 365)):
        b.water_grade(s, b.pick(_WATER_GRADES, "water_grade"), evaluated)
    for list_type, odds in ((BLACKLIST, 0.04), (WATCHLIST, 0.05)):
        if b.chance(odds) and (listed := b.record_day(s, 6 * 365)):
            removed = None
            if b.chance(0.3) and listed + timedelta(days=180) < b.today:
                removed = b.between(listed + timedelta(days=180), b.today - timedelta(days=1))
            b.water_list(s, list_type, listed, removed)
    if b.chance(0.06) and (decided := b.record_day(s, 4 * 365)):
        b.water_penalty(s, decided, repaired=b.chance(0.1))


# --- listings made while the sandbox runs ---------------------------------------------------

# Record ids count up from these bases (see _Builder.shixin / restriction).
_SHIXIN_ID_BASE = 3_100_000_000
_RESTRICTION_ID_BASE = 7_200_000_000
_MARKET_ID = re.compile(r"(YC|YZ|CF)[0-9]{6}([0-9]{9})")
_MARKET_ID_KIND = {"YC": "abnormal", "YZ": "illegal", "CF": "penalty"}
_KIND_OF_PREFIX = {"91": ENTERPRISE, "92": INDIVIDUAL, "93": COOP, "N2": VILLAGE, "Y1": UNION}


class LiveListings:
    """Used by the sandbox admin endpoints: new listings of a dataset's company, drawn the way
    generate() draws its records and published on the dataset's `today`.

    Record ids continue after the highest the dataset holds, so they never collide with it.
    Each change draws from a generator seeded by the day, the company (or entry) and the
    change's number, so the same changes in the same order give the same records.
    What the generator knows of a company but the dataset does not keep (its district, its
    representative's term) is read back from the company's row: its address, its USCC, and
    the 人员任职 row of its current legal representative.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.today = dataset.today
        self._dataset = dataset
        self._b = _Builder(random.Random(), dataset.today)
        self._b.count_from(_highest_ids(dataset))
        self._changes = 0  # with the company, seeds each change's draws: reproducible runs
        self._companies: dict[str, Company] | None = None
        self._by_org_code: dict[str, str] | None = None

    def company(self, uscc: str) -> Company | None:
        """The dataset's registration row of `uscc`; None when the dataset has no such company."""
        if self._companies is None:
            self._companies = {c.uscc: c for c in self._dataset.companies}
        return self._companies.get(uscc)

    def uscc_of(self, code: str) -> str | None:
        """The USCC of a company stored under `code` (a USCC or organisation code), else None."""
        if self.company(code) is not None:
            return code
        if self._by_org_code is None:
            self._by_org_code = {org_code_of(c.uscc): c.uscc for c in self._dataset.companies}
        return self._by_org_code.get(code)

    def shixin(self, company: Company) -> ShixinCase:
        """A new 失信被执行人 case of the company, published today, stored under its USCC."""
        s = self._subject(company)
        self._b.shixin(_Party.of_company(s), s.district, self._filed(s), published=self.today)
        case = self._b.data.shixin.pop()
        case.card_num = company.uscc  # new cases are stored under the USCC, never the old code
        return case

    def restriction(self, company: Company) -> list[RestrictionCase]:
        """A new 限制消费 case of the company: the company's row and its representative's."""
        s = self._subject(company)
        party = _Party.of_company(s)
        self._b.restriction(party, s.district, self._filed(s), s, published=self.today)
        rows = list(self._b.data.restrictions)
        self._b.data.restrictions.clear()
        for row in rows:
            row.qy_dm = company.uscc
        return rows

    def abnormal(self, company: Company) -> MarketListEntry:
        """A new 经营异常名录 entry listed today."""
        self._b.abnormal(self._subject(company), self.today)
        return self._b.data.abnormal.pop()

    def illegal(self, company: Company) -> MarketListEntry:
        """A new 严重违法失信名单 entry listed today.

        Its cause is one of those that need no earlier abnormal listing, as the scenarios'.
        """
        s = self._subject(company)
        self._b.illegal(s, self.today, cause=self._b.rng.choice(names.ILLEGAL_CAUSES[1:]))
        return self._b.data.illegal.pop()

    def penalty(self, company: Company) -> MarketPenalty:
        """A new 双公示 penalty decided up to a week ago and published today."""
        s = self._subject(company)
        decided = min(self.today, max(company.est_date, self._b.ago(1, 7)))
        minor = self._b.chance(0.35)
        self._b.market_penalty(s, decided, minor=minor, published=self.today)
        return self._b.data.penalties.pop()

    def removed(self, entry: MarketListEntry, abnormal: bool) -> MarketListEntry:
        """A copy of a list entry removed today by the office that listed it."""
        reason = names.ILLEGAL_REMOVAL
        if abnormal and entry.cause in names.ABNORMAL_CAUSES:
            # The removal that cures the cause: the n-th removal answers the n-th cause.
            reason = names.ABNORMAL_REMOVALS[names.ABNORMAL_CAUSES.index(entry.cause)]
        elif abnormal:
            self._changes += 1
            self._b.rng.seed(f"live:{self.today.isoformat()}:{entry.entry_id}:{self._changes}")
            reason = self._b.rng.choice(names.ABNORMAL_REMOVALS)
        return replace(entry, removed_on=self.today, rem_reason=reason, rem_org=entry.dec_org)

    def _subject(self, company: Company) -> _Subject:
        self._changes += 1
        self._b.rng.seed(f"live:{self.today.isoformat()}:{company.uscc}:{self._changes}")
        district = _district_of(company)
        kind = _KIND_OF_PREFIX.get(company.uscc[:2], ENTERPRISE)
        s = _Subject(company, district, kind, False, _half_width(company.name), company.name)
        person = None
        if company.legal_rep_id:
            born, male = _born_and_sex(company.legal_rep_id)
            person = _Person(company.legal_rep_id, company.legal_rep_name, born, male)
        s.reps.append(_Rep(company.legal_rep_name, person, self._rep_since(company), None))
        return s

    def _rep_since(self, company: Company) -> date:
        # The start of the current representative's 人员任职 row; the establishment day
        # without one (a foreign representative has no ID, so no row).
        starts = [
            row.start
            for row in self._dataset.positions
            if row.uscc == company.uscc
            and row.position == LEGAL_REP
            and row.cert_no == company.legal_rep_id
        ]
        return max(starts, default=company.est_date)

    def _filed(self, s: _Subject) -> date:
        # Filed 20-120 days before publication, as generate() publishes, while the current
        # representative was in office; a company too young for that was filed on a day of
        # its life (or today).
        since = s.reps[0].start
        filed = self._b.record_day(s, 120, 20, floor=since)
        return filed or self._b.between(min(since, self.today), self.today)


def _highest_ids(dataset: Dataset) -> dict[str, int]:
    """The per-kind counters generate() ended with, read back from the record ids."""
    counters = {
        "shixin": _highest_number((c.case_id for c in dataset.shixin), _SHIXIN_ID_BASE),
        "restriction": _highest_number(
            (r.case_id for r in dataset.restrictions), _RESTRICTION_ID_BASE
        ),
    }
    market_ids = [e.entry_id for e in dataset.abnormal + dataset.illegal]
    market_ids += [p.case_id for p in dataset.penalties]
    for record_id in market_ids:
        match = _MARKET_ID.fullmatch(record_id)
        if match:
            kind = _MARKET_ID_KIND[match[1]]
            counters[kind] = max(counters.get(kind, 0), int(match[2]))
    return counters


def _highest_number(ids: Iterable[str], base: int) -> int:
    numbers = (int(i) - base for i in ids if i.isascii() and i.isdigit() and int(i) > base)
    return max(numbers, default=0)


def _district_of(company: Company) -> District:
    """The district a company sits in: by its address, else by its USCC's region code."""
    for d in names.DISTRICTS:
        if company.dom.startswith(d.address_prefix):
            return d
    region = company.uscc[2:8]
    for d in names.DISTRICTS:
        if region in (d.code, d.city_code):
            return d
    return names.YUYANG


def _born_and_sex(id_number: str) -> tuple[date, bool]:
    """Birth day and sex (odd 17th digit: male) written in a citizen ID."""
    try:
        born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        born = date(1970, 1, 1)
    return born, id_number[16:17].isdigit() and int(id_number[16]) % 2 == 1
