"""Domain records: what every department adapter produces and the resolvers consume."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


class Department(enum.StrEnum):
    """The four departmental systems the gateway federates."""

    COURTS = "COURTS"
    MARKET = "MARKET"
    TAX = "TAX"
    WATER = "WATER"


class Part(enum.StrEnum):
    """A piece of what a department holds that a lookup can ask for alone (one upstream call).

    Courts and water cannot be split: one part each, everything they hold on a code. Declared
    in department order, and within a department in the order its facts list them.
    """

    COURTS = "COURTS"
    MARKET_ENTITIES = "MARKET_ENTITIES"  # 登记基本信息: name, registration, legal representative
    MARKET_ABNORMAL = "MARKET_ABNORMAL"  # 经营异常名录
    MARKET_ILLEGAL = "MARKET_ILLEGAL"  # 严重违法失信名单
    MARKET_PENALTIES = "MARKET_PENALTIES"  # 行政处罚 (双公示)
    TAX_GRADES = "TAX_GRADES"  # queryNsxy: 纳税信用等级
    TAX_VIOLATIONS = "TAX_VIOLATIONS"  # queryZdsswf: 重大税收违法失信主体
    WATER = "WATER"


DEPARTMENT_OF_PART: dict[Part, Department] = {
    Part.COURTS: Department.COURTS,
    Part.MARKET_ENTITIES: Department.MARKET,
    Part.MARKET_ABNORMAL: Department.MARKET,
    Part.MARKET_ILLEGAL: Department.MARKET,
    Part.MARKET_PENALTIES: Department.MARKET,
    Part.TAX_GRADES: Department.TAX,
    Part.TAX_VIOLATIONS: Department.TAX,
    Part.WATER: Department.WATER,
}
PARTS_OF: dict[Department, frozenset[Part]] = {
    d: frozenset(p for p, of in DEPARTMENT_OF_PART.items() if of is d) for d in Department
}
ALL_PARTS: frozenset[Part] = frozenset(Part)


class RecordKind(enum.StrEnum):
    """Kinds of credit record, named as in the contract."""

    DISHONEST_DEBTOR = "DISHONEST_DEBTOR"
    CONSUMPTION_RESTRICTION = "CONSUMPTION_RESTRICTION"
    ABNORMAL_OPERATION = "ABNORMAL_OPERATION"
    SERIOUS_ILLEGAL = "SERIOUS_ILLEGAL"
    MAJOR_TAX_VIOLATION = "MAJOR_TAX_VIOLATION"
    WATER_BLACKLIST = "WATER_BLACKLIST"
    WATER_WATCHLIST = "WATER_WATCHLIST"
    ADMINISTRATIVE_PENALTY = "ADMINISTRATIVE_PENALTY"


class ListingLevel(enum.StrEnum):
    """How much weight a record carries in the joint status (contract §2)."""

    PUNISHMENT = "PUNISHMENT"
    WATCH = "WATCH"
    INFORMATION = "INFORMATION"


LEVEL_OF_KIND: dict[RecordKind, ListingLevel] = {
    RecordKind.DISHONEST_DEBTOR: ListingLevel.PUNISHMENT,
    RecordKind.CONSUMPTION_RESTRICTION: ListingLevel.PUNISHMENT,
    RecordKind.SERIOUS_ILLEGAL: ListingLevel.PUNISHMENT,
    RecordKind.MAJOR_TAX_VIOLATION: ListingLevel.PUNISHMENT,
    RecordKind.WATER_BLACKLIST: ListingLevel.PUNISHMENT,
    RecordKind.ABNORMAL_OPERATION: ListingLevel.WATCH,
    RecordKind.WATER_WATCHLIST: ListingLevel.WATCH,
    RecordKind.ADMINISTRATIVE_PENALTY: ListingLevel.INFORMATION,
}


@dataclass(frozen=True, slots=True)
class CreditRecord:
    """One record as the department states it; whether it is in force is decided later."""

    id: str  # "<DEPARTMENT>:<the department's own record id>"
    department: Department
    kind: RecordKind
    title: str
    reason: str | None = None
    document_number: str | None = None
    authority: str | None = None
    listed_on: date | None = None
    # Last day of publication the department states (water 公开期限至, 公示截止日期), inclusive.
    published_until: date | None = None
    # Day the record stopped being in force (remDate, tcrq, 移出日期); in force before it only.
    removed_on: date | None = None
    repaired: bool = False
    disputed: bool = False
    # The party named on the record, e.g. a restricted legal representative; ID as given, masked.
    party_name: str | None = None
    party_id_masked: str | None = None

    @property
    def level(self) -> ListingLevel:
        """Level of this record's kind; used by the determination and the schema."""
        return LEVEL_OF_KIND[self.kind]


@dataclass(frozen=True, slots=True)
class PersonIdentity:
    """A natural person as a department names them; id_number is the full number when given."""

    name: str
    id_number: str | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    """Market registration (登记基本信息) of a subject."""

    entity_type: str | None = None
    status: str | None = None
    registered_capital_wan: Decimal | None = None
    currency: str | None = None
    established_on: date | None = None
    operating_from: date | None = None
    operating_to: date | None = None  # None means 长期
    authority: str | None = None
    address: str | None = None
    business_scope: str | None = None
    approved_on: date | None = None
    registration_number: str | None = None


@dataclass(frozen=True, slots=True)
class TaxRating:
    """One year's tax credit grade (纳税信用等级)."""

    year: int
    grade: str
    evaluated_on: date | None = None


@dataclass(frozen=True, slots=True)
class WaterGrade:
    """Water-sector credit grade as published; validity is decided by the resolvers."""

    grade: str
    evaluated_on: date | None
    valid_until: date | None


@dataclass(frozen=True, slots=True)
class SubjectFacts:
    """What one department holds on one subject, fetched at as_of."""

    department: Department
    uscc: str
    as_of: datetime
    known: bool  # False when the department has nothing at all on the code
    # True when served from an older snapshot because the latest refresh failed (state STALE).
    stale: bool = False
    # True when a live department did not answer now and its last good answer stands in:
    # shown (STALE), but the department counts as missing for the joint status (contract §3).
    refresh_failed: bool = False
    name: str | None = None
    registration: Registration | None = None
    legal_rep: PersonIdentity | None = None
    records: tuple[CreditRecord, ...] = ()
    tax_ratings: tuple[TaxRating, ...] = ()
    water_grade: WaterGrade | None = None
    # The parts these facts cover. A lookup of fewer parts says which, so that a part not
    # asked is never read as "nothing on record"; a department that cannot split answers
    # everything it holds and keeps the default.
    parts: frozenset[Part] = ALL_PARTS


@dataclass(frozen=True, slots=True)
class Position:
    """A position a person holds or held in a subject (人员任职)."""

    uscc: str
    subject_name: str
    role: str
    started_on: date | None
    ended_on: date | None  # None while in office


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What one department holds on one natural person, keyed by full ID number."""

    department: Department
    id_number: str
    as_of: datetime
    stale: bool = False
    # As for SubjectFacts: the last good answer standing in for a failed one.
    refresh_failed: bool = False
    name: str | None = None
    records: tuple[CreditRecord, ...] = ()
    positions: tuple[Position, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One subject found by name."""

    uscc: str
    name: str
    legal_rep_name: str | None = None
    status: str | None = None
    established_on: date | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of a name search with the department's total count."""

    total: int
    hits: tuple[SearchHit, ...]
