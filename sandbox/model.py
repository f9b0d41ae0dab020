"""The sandbox's data, held as each department stores it; servers render it per their document."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(slots=True)
class Company:
    """Market registration row (登记基本信息)."""

    uscc: str
    name: str  # as market regulation spells it
    ent_type: str
    legal_rep_name: str
    legal_rep_id: str  # full citizen ID; "" for foreign representatives
    reg_cap: str  # 万元 with 6 decimals, e.g. "500.000000"
    currency: str
    est_date: date
    op_from: date
    op_to: date | None  # None = 长期
    reg_org: str
    reg_state: str
    dom: str  # address
    op_scope: str
    appr_date: date
    reg_no: str = ""


@dataclass(slots=True)
class PositionRow:
    """人员任职: a person's position in a company."""

    cert_no: str  # full citizen ID
    uscc: str
    ent_name: str
    position: str  # 法定代表人, 执行董事, 董事长, 总经理, 负责人, 实际控制人, 监事
    start: date
    end: date | None


@dataclass(slots=True)
class MarketListEntry:
    """经营异常名录 or 严重违法失信名单 entry; removed entries stay as history."""

    entry_id: str
    uscc: str
    cause: str
    listed_on: date  # abntime
    dec_org: str
    removed_on: date | None = None  # remDate; None is rendered as ""
    rem_reason: str = ""
    rem_org: str = ""


@dataclass(slots=True)
class MarketPenalty:
    """行政处罚 (双公示) published by market regulation."""

    case_id: str
    uscc: str
    dec_no: str
    act_type: str
    content: str
    amount_wan: str  # may be ""
    authority: str
    decided_on: date
    public_on: date
    public_until: date
    repaired: bool = False
    disputed: bool = False


@dataclass(slots=True)
class ShixinCase:
    """失信被执行人 as the courts store it; card_num is the FULL stored identity."""

    case_id: str
    iname: str
    case_code: str
    card_num: str  # person: full citizen ID; organisation: USCC or 9-char organisation code
    is_person: bool
    age: int
    sex: str  # 男/女/"" for organisations
    business_entity: str  # legal rep name for organisations, else ""
    court_name: str
    area_name: str
    gist_id: str
    gist_unit: str
    duty: str
    performance: str  # 全部未履行 / 部分未履行
    performed_part: str
    unperformed_part: str
    disrupt_types: list[str]
    reg_date: date
    publish_date: date


@dataclass(slots=True)
class RestrictionCase:
    """限制消费人员 as the courts store it; zjhm is FULL (masked on output), "" for companies."""

    case_id: str
    ah: str
    xm: str
    zjhm: str
    qy_mc: str
    qy_dm: str  # USCC or organisation code as stored; "" for personal cases
    court_name: str
    filed_on: date
    published_on: date


@dataclass(slots=True)
class TaxRatingRow:
    """One evaluation year's 纳税信用等级."""

    nsrsbh: str
    nsrmc: str
    pjnd: int
    xydj: str
    pjrq: date


@dataclass(slots=True)
class TaxCase:
    """重大税收违法失信主体 case; fddbrzjhm is FULL here, masked on output."""

    ajbh: str
    nsrsbh: str
    nsrmc: str
    zcdz: str
    fddbrxm: str
    fddbrzjhm: str
    cwfzrxm: str
    ajxz: str
    zywfss: str
    xgfljcl: str
    rdjg: str
    rdrq: date
    gbrq: date
    tcrq: date | None = None


@dataclass(slots=True)
class WaterGradeRow:
    """credit-grades.csv row."""

    uscc: str
    name: str
    grade: str
    evaluated_on: date
    valid_until: date


@dataclass(slots=True)
class WaterListRow:
    """credit-lists.csv row (黑名单 / 重点关注名单), a history."""

    record_no: str
    uscc: str
    name: str
    list_type: str  # 黑名单 / 重点关注名单
    reason: str
    authority: str
    listed_on: date
    public_until: date
    removed_on: date | None = None


@dataclass(slots=True)
class WaterPenaltyRow:
    """penalties.csv row."""

    dec_no: str
    uscc: str
    name: str
    act_type: str
    content: str
    amount_wan: str
    decided_on: date
    public_until: date
    authority: str
    repaired: bool = False


@dataclass(slots=True)
class Dataset:
    """Everything the four sandbox departments hold, plus labels of notable cases for tests."""

    today: date  # the day the dataset was generated for
    companies: list[Company] = field(default_factory=list)
    positions: list[PositionRow] = field(default_factory=list)
    abnormal: list[MarketListEntry] = field(default_factory=list)
    illegal: list[MarketListEntry] = field(default_factory=list)
    penalties: list[MarketPenalty] = field(default_factory=list)
    shixin: list[ShixinCase] = field(default_factory=list)
    restrictions: list[RestrictionCase] = field(default_factory=list)
    tax_ratings: list[TaxRatingRow] = field(default_factory=list)
    tax_cases: list[TaxCase] = field(default_factory=list)
    water_grades: list[WaterGradeRow] = field(default_factory=list)
    water_lists: list[WaterListRow] = field(default_factory=list)
    water_penalties: list[WaterPenaltyRow] = field(default_factory=list)
    # label -> identity (USCC or citizen ID), e.g. "serious_illegal.expired" -> "9161…"
    examples: dict[str, str] = field(default_factory=dict)
