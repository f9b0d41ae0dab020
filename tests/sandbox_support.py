"""Hand-built datasets and HTTP helpers for the sandbox department tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import aiohttp
import orjson
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_11_2

from sandbox.faults import FaultState
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

TODAY = date(2026, 5, 20)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code(body8: str) -> str:
    """A GB 11714 organisation code: 8 characters and their check character."""
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w
        for c, w in zip(body8, _ORG_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return body8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def make_uscc(region: str, body8: str, kind: str = "91") -> str:
    """A valid USCC for a region and organisation-code body."""
    first17 = kind + region + org_code(body8)
    return first17 + str(stdnum_uscc.calc_check_digit(first17))


def make_id(region: str, born: date, sequence: str) -> str:
    """A valid 18-digit citizen ID."""
    first17 = f"{region}{born:%Y%m%d}{sequence}"
    return first17 + str(mod_11_2.calc_check_digit(first17))


def yuyang_uscc(body8: str) -> str:
    """A valid 榆阳区 (610802) USCC around an 8-character organisation-code body."""
    return make_uscc("610802", body8)


def yuyang_id(born: date, sequence: str) -> str:
    """A valid citizen ID of a person registered in 榆阳区 (610802)."""
    return make_id("610802", born, sequence)


# Identities used across the tests.
COMPANY_A = make_uscc("610802", "MA703XY2")  # records under both USCC and org code
COMPANY_B = make_uscc("610802", "22052001")  # courts know it only by its org code
COMPANY_C = make_uscc("610802", "MA70AB3C")  # registered, no listings, no tax rating
UNREGISTERED = make_uscc("610802", "MA70YY9P")
PERSON_1 = make_id("610802", date(1980, 3, 14), "123")  # 23 shixin records
PERSON_2 = make_id("610802", date(1975, 11, 2), "421")  # restricted for COMPANY_A's case
PERSON_3 = make_id("610103", date(1990, 6, 30), "052")  # restricted for a personal case
PERSON_NO_POSITIONS = make_id("610802", date(1988, 8, 8), "888")
WATER_TRICKY_NAME = '榆林"宏达",水利工程有限公司'


def company(uscc: str, name: str, op_to: date | None = None) -> Company:
    """A registration row with plausible values."""
    return Company(
        uscc=uscc,
        name=name,
        ent_type="有限责任公司(自然人投资或控股)",
        legal_rep_name="王伟",
        legal_rep_id=PERSON_1,
        reg_cap="500.000000",
        currency="人民币",
        est_date=date(2015, 4, 1),
        op_from=date(2015, 4, 1),
        op_to=op_to,
        reg_org="榆林市市场监督管理局",
        reg_state="存续（在营、开业、在册）",
        dom="陕西省榆林市榆阳区长城南路1号",
        op_scope="建设工程施工",
        appr_date=date(2023, 6, 1),
    )


def shixin(case_id: str, card_num: str, published: date, *, person: bool = True) -> ShixinCase:
    """A 失信被执行人 record."""
    return ShixinCase(
        case_id=case_id,
        iname="王伟" if person else "榆林市宏达建设有限公司",
        case_code=f"（2023）陕0802执{case_id}号",
        card_num=card_num,
        is_person=person,
        age=46 if person else 0,
        sex="男" if person else "",
        business_entity="" if person else "王伟",
        court_name="榆林市榆阳区人民法院",
        area_name="陕西",
        gist_id="（2022）陕0802民初100号",
        gist_unit="榆林市榆阳区人民法院",
        duty="支付货款100000元",
        performance="全部未履行",
        performed_part="暂无",
        unperformed_part="暂无",
        disrupt_types=["违反财产报告制度", "违反限制消费令"],
        reg_date=published - timedelta(days=60),
        publish_date=published,
    )


def restriction(case_id: str, zjhm: str, xm: str, qy_dm: str, qy_mc: str) -> RestrictionCase:
    """A 限制消费人员 record."""
    return RestrictionCase(
        case_id=case_id,
        ah=f"(2024)陕0802执{case_id}号",
        xm=xm,
        zjhm=zjhm,
        qy_mc=qy_mc,
        qy_dm=qy_dm,
        court_name="榆林市榆阳区人民法院",
        filed_on=date(2024, 1, 5),
        published_on=date(2024, 2, 6),
    )


def _shixin_cases() -> list[ShixinCase]:
    # 23 records for PERSON_1; records 5 and 6 share a publish date to exercise the tiebreak.
    person = [
        shixin(f"P{n:03d}", PERSON_1, date(2023, 1, 1) + timedelta(days=10 * n)) for n in range(23)
    ]
    person[6].publish_date = person[5].publish_date
    orgs = [
        shixin("B-OLD-1", org_code("22052001"), date(2014, 3, 1), person=False),
        shixin("B-OLD-2", org_code("22052001"), date(2015, 7, 9), person=False),
        shixin("A-NEW", COMPANY_A, date(2024, 5, 12), person=False),
        shixin("A-OLD", COMPANY_A[8:17], date(2013, 9, 9), person=False),
    ]
    return person + orgs


def _market_lists() -> tuple[list[MarketListEntry], list[MarketListEntry]]:
    abnormal = [
        MarketListEntry(
            "EX-1",
            COMPANY_A,
            "未依照《企业信息公示暂行条例》第八条规定的期限公示年度报告的",
            date(2024, 7, 1),
            "榆林市市场监督管理局",
        ),
        MarketListEntry(
            "EX-0",
            COMPANY_A,
            "通过登记的住所或者经营场所无法联系的",
            date(2021, 7, 1),
            "榆林市市场监督管理局",
            date(2022, 3, 1),
            "已补报年度报告",
            "榆林市市场监督管理局",
        ),
    ]
    illegal = [
        MarketListEntry(
            "ILL-1",
            COMPANY_A,
            "被列入经营异常名录届满3年仍未履行相关义务",
            date(2022, 1, 10),
            "陕西省市场监督管理局",
        ),
    ]
    return abnormal, illegal


def _market_penalties() -> list[MarketPenalty]:
    return [
        MarketPenalty(
            "PEN-1",
            COMPANY_A,
            "榆市监罚〔2024〕12号",
            "虚假宣传",
            "罚款",
            "",
            "榆林市市场监督管理局",
            date(2024, 3, 1),
            date(2024, 3, 8),
            date(2027, 3, 8),
            repaired=True,
        ),
        MarketPenalty(
            "PEN-2",
            COMPANY_A,
            "榆市监罚〔2025〕3号",
            "无照经营",
            "罚款、没收违法所得",
            "1.5",
            "榆林市市场监督管理局",
            date(2025, 2, 1),
            date(2025, 2, 8),
            date(2028, 2, 8),
            disputed=True,
        ),
    ]


def _positions() -> list[PositionRow]:
    return [
        PositionRow(
            PERSON_1, COMPANY_A, "榆林市宏达建设有限公司", "法定代表人", date(2015, 4, 1), None
        ),
        PositionRow(
            PERSON_1,
            COMPANY_B,
            "榆林市秦塞商贸有限公司",
            "监事",
            date(2010, 1, 1),
            date(2016, 12, 31),
        ),
    ]


def _tax() -> tuple[list[TaxRatingRow], list[TaxCase]]:
    years = {2021: "B", 2022: "A", 2023: "M", 2024: "B", 2025: "A"}
    ratings = [
        TaxRatingRow(COMPANY_A, "榆林市宏达建设有限公司", y, g, date(y + 1, 4, 15))
        for y, g in years.items()
    ]
    ratings += [
        TaxRatingRow(COMPANY_B, "榆林市秦塞商贸有限公司", y, "C", date(y + 1, 4, 18))
        for y in (2024, 2025)
    ]
    cases = [
        TaxCase(
            "AJ-2",
            COMPANY_A,
            "榆林市宏达建设有限公司",
            "陕西省榆林市榆阳区长城南路1号",
            "王伟",
            PERSON_1,
            "",
            "虚开增值税专用发票",
            "虚开发票100份",
            "依据《税收征收管理法》处罚款",
            "国家税务总局榆林市税务局稽查局",
            date(2024, 6, 1),
            date(2024, 7, 1),
        ),
        TaxCase(
            "AJ-1",
            COMPANY_A,
            "榆林市宏达建设有限公司",
            "陕西省榆林市榆阳区长城南路1号",
            "王伟",
            PERSON_1,
            "李娜",
            "偷税",
            "少缴税款50万元",
            "追缴税款并处罚款",
            "国家税务总局榆林市税务局稽查局",
            date(2020, 6, 1),
            date(2020, 7, 1),
            date(2022, 1, 5),
        ),
    ]
    return ratings, cases


def _water() -> tuple[list[WaterGradeRow], list[WaterListRow], list[WaterPenaltyRow]]:
    grades = [
        WaterGradeRow(COMPANY_A, WATER_TRICKY_NAME, "AA", date(2025, 3, 2), date(2028, 3, 1)),
        WaterGradeRow(COMPANY_B, "榆林市秦塞商贸有限公司", "B", date(2024, 1, 9), date(2027, 1, 8)),
    ]
    lists = [
        WaterListRow(
            "WL-1",
            COMPANY_A,
            WATER_TRICKY_NAME,
            "黑名单",
            "转包工程",
            "陕西省水利厅",
            date(2025, 1, 2),
            date(2028, 1, 1),
        ),
        WaterListRow(
            "WL-0",
            COMPANY_B,
            "榆林市秦塞商贸有限公司",
            "重点关注名单",
            "拖欠工资",
            "陕西省水利厅",
            date(2022, 1, 2),
            date(2023, 1, 1),
            date(2022, 6, 30),
        ),
    ]
    penalties = [
        WaterPenaltyRow(
            "陕水罚〔2024〕1号",
            COMPANY_A,
            WATER_TRICKY_NAME,
            "未批先建",
            "罚款",
            "",
            date(2024, 2, 2),
            date(2027, 2, 2),
            "陕西省水利厅",
            repaired=True,
        ),
        WaterPenaltyRow(
            "陕水罚〔2025〕7号",
            COMPANY_B,
            "榆林市秦塞商贸有限公司",
            "非法取水",
            "罚款",
            "2.5",
            date(2025, 5, 5),
            date(2028, 5, 5),
            "榆林市水利局",
        ),
    ]
    return grades, lists, penalties


def build_dataset(search_filler: int = 12) -> Dataset:
    """The small dataset every sandbox test module serves; filler companies feed search."""
    abnormal, illegal = _market_lists()
    ratings, cases = _tax()
    grades, lists, penalties = _water()
    filler = [
        company(make_uscc("610802", f"MA7{n:04d}F"), f"榆林市测试{n:02d}号企业有限公司")
        for n in range(search_filler)
    ]
    return Dataset(
        today=TODAY,
        companies=[
            company(COMPANY_A, "榆林市宏达建设有限公司"),
            company(COMPANY_B, "榆林市秦塞商贸有限公司", op_to=date(2035, 4, 1)),
            company(COMPANY_C, "榆林市(中泰)能源科技有限公司"),
            *filler,
        ],
        positions=_positions(),
        abnormal=abnormal,
        illegal=illegal,
        penalties=_market_penalties(),
        shixin=_shixin_cases(),
        restrictions=[
            restriction("R1", PERSON_2, "李强", COMPANY_A, "榆林市宏达建设有限公司"),
            restriction("R2", "", "榆林市宏达建设有限公司", COMPANY_A, "榆林市宏达建设有限公司"),
            restriction("R3", PERSON_3, "张敏", "", ""),
        ],
        tax_ratings=ratings,
        tax_cases=cases,
        water_grades=grades,
        water_lists=lists,
        water_penalties=penalties,
    )


def quiet_faults() -> dict[str, FaultState]:
    """Department defaults, except the courts rate limit, which the functional tests would trip."""
    faults = {
        name: FaultState.for_department(name) for name in ("courts", "market", "tax", "water")
    }
    faults["courts"] = FaultState(seed="courts", rate_limit_rps=None)
    return faults


@dataclass(frozen=True)
class Reply:
    """A finished HTTP answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return orjson.loads(self.body)


async def fetch(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Reply:
    """One request through real HTTP, answered in full."""
    async with session.request(method, url, **kwargs) as response:
        return Reply(response.status, response.headers.copy(), await response.read())
