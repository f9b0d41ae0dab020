"""The measure catalogue: coverage of the seeds, cited documents, validation, look-ups."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from resolvers.catalogue import (
    INCENTIVE_TRIGGERS,
    PUNISHMENT_TRIGGERS,
    WATCH_TRIGGERS,
    Catalogue,
    CatalogueError,
    MeasureCategory,
    MeasureKind,
    Scenario,
    SubjectType,
    load_catalogue,
)

# The documents the seeds cite or are (DOMAIN.md "Legal bases the seeds cite"): a legal
# basis naming any other 《title》 or 〔year〕 number would be invented.
ALLOWED_TITLES = {
    "《国务院关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》",
    "《国务院办公厅关于加快推进社会信用体系建设构建以信用为基础的新型监管机制的指导意见》",
    "《关于推进社会信用体系建设高质量发展促进形成新发展格局的意见》",
    "《关于对重大税收违法案件当事人实施联合惩戒措施的合作备忘录(2016版)》",
    "《失信企业协同监管和联合惩戒合作备忘录》",
    # The seeds themselves: 004 巴中, 001 哈尔滨, 003 舞钢, 000 榆林水利, 002 清水.
    "《巴中市建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设实施方案》",
    "《哈尔滨市加快推进社会信用体系建设构建以信用为基础的新型监管机制的实施方案》",
    "《舞钢市加快推进社会信用体系建设构建以信用为基础的新型监管机制实施方案》",
    "《加快推进水利行业社会信用体系建设构建以信用为基础的新型监管机制实施方案》",
    "《关于推进社会信用体系建设高质量发展加快打造“诚信清水”的实施方案》",
}
ALLOWED_NUMBERS = {
    "国发〔2016〕33号",
    "国办发〔2019〕35号",
    "中办发〔2022〕25号",
    "巴府办发〔2018〕68号",
    "哈政办规〔2020〕12号",
}
# Key phrases of every measure DOMAIN.md lists ("Measures the seeds name").
DOMAIN_PHRASES = [
    "从严审核行政许可",
    "限制新增项目审批",
    "限制股票发行",
    "金融机构",
    "财政性资金",
    "税收优惠",
    "限制参与",
    "政府采购",
    "招标投标",
    "特许经营",
    "荣誉称号",
    "评先评优",
    "重点监管",
    "抽查比例和频次",
    "限制出境",
    "限制不动产交易",
    "限制乘坐飞机",
    "高等级列车",
    "高消费",
    "贷款",
    "保荐、承销",
    "警告",
    "通报批评",
    "公开谴责",
    "行业黑名单",
    "不予接纳",
    "劝退",
    "公开披露",
    "举报",
    "公益诉讼",
    "市场和行业禁入",
    "个人信用记录",
    "绿色通道",
    "容缺受理",
    "公共服务",
    "财政资金",
    "检查频次",
    "信易",
    "公开推介",
]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The packaged catalogue, loaded once for the coverage tests."""
    return load_catalogue()


def test_packaged_catalogue_loads(catalogue: Catalogue) -> None:
    assert len(catalogue.measures) == len(catalogue.by_code) >= 20
    assert catalogue.by_code["P-MKT-03"].name.startswith("限制乘坐飞机")
    assert {m.kind for m in catalogue.measures} == set(MeasureKind)
    assert {m.category for m in catalogue.measures} == set(MeasureCategory)


@pytest.mark.parametrize("scenario", list(Scenario))
def test_every_scenario_has_a_punishment(catalogue: Catalogue, scenario: Scenario) -> None:
    kinds = {m.kind for m in catalogue.for_scenario(scenario)}
    assert MeasureKind.PUNISHMENT in kinds


@pytest.mark.parametrize("phrase", DOMAIN_PHRASES)
def test_every_domain_measure_is_there(catalogue: Catalogue, phrase: str) -> None:
    assert any(phrase in m.name for m in catalogue.measures), phrase


def test_persons_face_their_own_measures(catalogue: Catalogue) -> None:
    personal = {m.name for m in catalogue.measures if SubjectType.PERSON in m.applies_to}
    for phrase in ("限制出境", "限制乘坐飞机", "高消费", "个人信用记录", "市场和行业禁入"):
        assert any(phrase in name for name in personal), phrase
    # Leaving the country is a personal measure only.
    assert catalogue.by_code["P-MKT-01"].applies_to == (SubjectType.PERSON,)


def test_legal_bases_cite_only_documents_the_seeds_name(catalogue: Catalogue) -> None:
    for measure in catalogue.measures:
        for basis in measure.legal_basis:
            titles = set(re.findall(r"《[^《》]*》", basis))
            numbers = set(re.findall(r"[一-龥]+〔\d{4}〕\d+号", basis))
            assert titles or numbers, (measure.code, basis)
            assert titles <= ALLOWED_TITLES, (measure.code, titles - ALLOWED_TITLES)
            assert numbers <= ALLOWED_NUMBERS, (measure.code, numbers - ALLOWED_NUMBERS)


def test_triggers_are_proportionate(catalogue: Catalogue) -> None:
    for measure in catalogue.measures:
        triggers = set(measure.triggers)
        if measure.kind is MeasureKind.INCENTIVE:
            assert triggers <= INCENTIVE_TRIGGERS, measure.code
        else:
            assert triggers <= PUNISHMENT_TRIGGERS | WATCH_TRIGGERS, measure.code
            if triggers & WATCH_TRIGGERS:
                assert measure.scenarios == (Scenario.SPOT_CHECK,), measure.code
    by_code = catalogue.by_code
    assert set(by_code["P-MKT-04"].triggers) == {"DISHONEST_DEBTOR", "CONSUMPTION_RESTRICTION"}
    assert "MAJOR_TAX_VIOLATION" in by_code["P-ADM-06"].triggers
    assert "WATER_BLACKLIST" in by_code["P-IND-03"].triggers


def test_incentives_of_seed_004_are_there(catalogue: Catalogue) -> None:
    incentives = [m for m in catalogue.measures if m.kind is MeasureKind.INCENTIVE]
    assert len(incentives) >= 5
    for measure in incentives:
        assert set(measure.triggers) == {"TAX_GRADE_A", "WATER_GRADE_AAA"}, measure.code
        assert any("巴府办发〔2018〕68号" in basis for basis in measure.legal_basis)


def test_for_scenario_filters(catalogue: Catalogue) -> None:
    assert catalogue.for_scenario(None) == catalogue.measures
    procurement = catalogue.for_scenario(Scenario.PUBLIC_PROCUREMENT)
    assert procurement
    assert all(Scenario.PUBLIC_PROCUREMENT in m.scenarios for m in procurement)
    # Order is catalogue order.
    order = [m.code for m in catalogue.measures]
    assert [m.code for m in procurement] == sorted((m.code for m in procurement), key=order.index)


def test_triggered_passes_ids_through(catalogue: Catalogue) -> None:
    ids = {"DISHONEST_DEBTOR": ["COURTS:1", "COURTS:2"], "CONSUMPTION_RESTRICTION": ["COURTS:1"]}
    found = catalogue.triggered(ids, MeasureKind.PUNISHMENT, SubjectType.ORGANISATION, None)
    codes = [m.code for m, _ in found]
    assert "P-MKT-04" in codes and "P-ADM-07" in codes
    # P-MKT-01 (限制出境) is for persons only.
    assert "P-MKT-01" not in codes
    assert dict((m.code, i) for m, i in found)["P-MKT-04"] == ["COURTS:1", "COURTS:2"]
    order = [m.code for m in catalogue.measures]
    assert codes == sorted(codes, key=order.index)


def test_triggered_filters_subject_type_scenario_and_kind(catalogue: Catalogue) -> None:
    ids = {"DISHONEST_DEBTOR": ["COURTS:9"]}
    person = catalogue.triggered(
        ids, MeasureKind.PUNISHMENT, SubjectType.PERSON, Scenario.HIGH_CONSUMPTION
    )
    assert {m.code for m, _ in person} == {"P-MKT-01", "P-MKT-02", "P-MKT-03", "P-MKT-04"}
    assert all(i == ["COURTS:9"] for _, i in person)
    assert catalogue.triggered(ids, MeasureKind.INCENTIVE, SubjectType.ORGANISATION, None) == []


def test_triggered_by_watch_facts_and_incentives(catalogue: Catalogue) -> None:
    watch = {"TAX_GRADE_D": ["TAX:grade:D:2025"], "ADMINISTRATIVE_PENALTY": ["MARKET:7"]}
    found = catalogue.triggered(watch, MeasureKind.PUNISHMENT, SubjectType.ORGANISATION, None)
    assert [(m.code, i) for m, i in found] == [("P-ADM-10", ["TAX:grade:D:2025"])]
    good = {"TAX_GRADE_A": ["TAX:grade:A:2025"], "DISHONEST_DEBTOR": []}
    incentives = catalogue.triggered(
        good, MeasureKind.INCENTIVE, SubjectType.ORGANISATION, Scenario.CREDIT_LOAN
    )
    assert [(m.code, i) for m, i in incentives] == [("I-06", ["TAX:grade:A:2025"])]
    assert catalogue.triggered(good, MeasureKind.PUNISHMENT, SubjectType.ORGANISATION, None) == []


# ---------------------------------------------------------------- validation


def _packaged() -> dict[str, Any]:
    text = resources.files("resolvers").joinpath("catalogue.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _dump(data: dict[str, Any]) -> str:
    # The catalogue holds only strings and lists of strings; JSON strings are TOML strings.
    lines: list[str] = [
        f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in data.items() if k != "measures"
    ]
    for entry in data.get("measures", []):
        lines.append("[[measures]]")
        lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def _entry(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(e for e in data["measures"] if e["code"] == code)


def _set(code: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        _entry(data, code)[key] = value

    return change


def _drop(code: str, key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del _entry(data, code)[key]

    return change


def _duplicate(data: dict[str, Any]) -> None:
    data["measures"].append(dict(_entry(data, "P-SOC-03")))


def _no_securities(data: dict[str, Any]) -> None:
    for entry in data["measures"]:
        if entry["kind"] == "PUNISHMENT" and "SECURITIES" in entry["scenarios"]:
            entry["scenarios"] = [s for s in entry["scenarios"] if s != "SECURITIES"]


def test_round_trip_of_the_packaged_catalogue_loads(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(_dump(_packaged()), encoding="utf-8")
    assert load_catalogue(path).measures == load_catalogue().measures


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("P-ADM-02", "kind", "REWARD"), "P-ADM-02: unknown kind 'REWARD'"),
        (_set("P-ADM-02", "category", "MORAL"), "P-ADM-02: unknown category 'MORAL'"),
        (_set("P-ADM-02", "scenarios", ["LOTTERY"]), "P-ADM-02: unknown scenario 'LOTTERY'"),
        (_set("P-ADM-02", "applies_to", ["ROBOT"]), "P-ADM-02: unknown applies_to 'ROBOT'"),
        (_set("P-ADM-02", "triggers", ["PARKING"]), "P-ADM-02: unknown trigger 'PARKING'"),
        (
            _set("P-ADM-02", "triggers", ["ADMINISTRATIVE_PENALTY"]),
            "P-ADM-02: unknown trigger 'ADMINISTRATIVE_PENALTY'",
        ),
        (_set("P-ADM-02", "legal_basis", []), "P-ADM-02: legal_basis is empty"),
        (
            _set("P-ADM-02", "legal_basis", "国发〔2016〕33号"),
            "P-ADM-02: legal_basis must be a list",
        ),
        (_set("P-ADM-02", "name", " "), "P-ADM-02: name must be a non-empty string"),
        (_drop("P-ADM-02", "reason"), r"P-ADM-02: missing required fields \['reason'\]"),
        (_set("P-ADM-02", "colour", "red"), r"P-ADM-02: unknown keys \['colour'\]"),
        (_duplicate, "P-SOC-03: duplicate code"),
        (_set("P-SOC-03", "code", "X-1"), "X-1: code must look like"),
        (_no_securities, "scenario SECURITIES has no PUNISHMENT measure"),
        (
            _set("I-01", "triggers", ["TAX_GRADE_A", "DISHONEST_DEBTOR"]),
            r"I-01: INCENTIVE triggered by record kinds/facts \['DISHONEST_DEBTOR'\]",
        ),
        (_set("I-01", "triggers", ["TAX_GRADE_D"]), "I-01: INCENTIVE triggered by"),
        (_set("P-ADM-02", "triggers", ["TAX_GRADE_A"]), "P-ADM-02: PUNISHMENT triggered by"),
        (
            _set("P-ADM-02", "triggers", ["ABNORMAL_OPERATION"]),
            "P-ADM-02: watch-level triggers",
        ),
        (_set("P-ADM-02", "kind", "INCENTIVE"), "P-ADM-02: code prefix does not match"),
    ],
)
def test_validation_names_the_entry(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = _packaged()
    change(data)
    path = tmp_path / "catalogue.toml"
    path.write_text(_dump(data), encoding="utf-8")
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_entry_without_code_is_named_by_position(tmp_path: Path) -> None:
    data = _packaged()
    del data["measures"][0]["code"]
    path = tmp_path / "catalogue.toml"
    path.write_text(_dump(data), encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"measures\[0\]: missing required fields"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("measures = [", "not valid TOML"),
        ("title = 'x'\n", "unknown top-level keys"),
        ("", r"no \[\[measures\]\] entries"),
    ],
)
def test_broken_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)
