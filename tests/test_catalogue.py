"""The measure catalogue: what it covers, and refusals that name the entry."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from resolvers.catalogue import (
    CatalogueError,
    MeasureKind,
    Scenario,
    SubjectType,
    load_catalogue,
)

PACKAGED = Path(__file__).resolve().parent.parent / "resolvers" / "catalogue.toml"
# Documents the seeds name; a legal basis citing anything else is invented.
ALLOWED_BASES = (
    "国发〔2016〕33号",
    "国办发〔2019〕35号",
    "中办发〔2022〕25号",
    "《关于对重大税收违法案件当事人实施联合惩戒措施的合作备忘录(2016版)》",
    "《失信企业协同监管和联合惩戒合作备忘录》",
    "巴府办发〔2018〕68号",
    "《舞钢市加快推进社会信用体系建设构建以信用为基础的新型监管机制实施方案》",
    "（榆林市水利局）",
    "《哈尔滨市加快推进社会信用体系建设构建以信用为基础的新型监管机制的实施方案》",
)
DOMAIN_MEASURES = [
    "行政许可",
    "股票发行",
    "金融机构",
    "财政性资金",
    "税收优惠",
    "公共资源交易",
    "政府采购",
    "特许经营",
    "荣誉称号",
    "重点监管",
    "限制出境",
    "不动产",
    "乘坐飞机",
    "星级以上宾馆",
    "贷款利率",
    "行业黑名单",
    "通报批评",
    "公开披露",
    "公益诉讼",
    "市场和行业禁入",
    "个人信用记录",
    "绿色通道",
    "容缺受理",
    "财政资金支持",
    "检查频次",
    "信易贷",
    "公开推介",
]


def test_packaged_catalogue_covers_every_scenario_and_domain_measure() -> None:
    catalogue = load_catalogue()
    for scenario in Scenario:
        assert any(m.kind is MeasureKind.PUNISHMENT for m in catalogue.for_scenario(scenario))
    names = " ".join(m.name + m.content for m in catalogue.measures)
    assert [phrase for phrase in DOMAIN_MEASURES if phrase not in names] == []
    assert any(SubjectType.PERSON in m.applies_to for m in catalogue.measures)


def test_legal_bases_cite_only_documents_the_seeds_name() -> None:
    for measure in load_catalogue().measures:
        for basis in measure.legal_basis:
            assert any(doc in basis for doc in ALLOWED_BASES), (measure.code, basis)


def test_triggered_passes_ids_and_filters_by_subject_type() -> None:
    catalogue = load_catalogue()
    ids = {"DISHONEST_DEBTOR": ["COURTS:1", "COURTS:2"]}
    org = catalogue.triggered(ids, MeasureKind.PUNISHMENT, SubjectType.ORGANISATION, None)
    person = catalogue.triggered(ids, MeasureKind.PUNISHMENT, SubjectType.PERSON, None)
    assert all(found == ["COURTS:1", "COURTS:2"] for _, found in org)
    assert "P-MKT-03" in {m.code for m, _ in person} - {m.code for m, _ in org}


def _write(tmp_path: Path, change: dict[str, Any], drop: str | None = None) -> Path:
    data = tomllib.loads(PACKAGED.read_text(encoding="utf-8"))
    entry = data["measures"][0]
    entry.update(change)
    if drop:
        del entry[drop]
    lines = []
    for measure in data["measures"]:
        lines.append("[[measures]]")
        lines += [f"{key} = {_toml(value)}" for key, value in measure.items()]
    path = tmp_path / "catalogue.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace('"', '\\"') + '"'


@pytest.mark.parametrize(
    ("change", "drop", "message"),
    [
        ({"kind": "REWARD"}, None, "P-ADM-01: unknown kind"),
        ({"scenarios": ["LOTTERY"]}, None, "P-ADM-01: unknown scenario"),
        ({"legal_basis": []}, None, "P-ADM-01: legal_basis must be a non-empty list"),
        ({"triggers": ["PARKING_TICKET"]}, None, "P-ADM-01: unknown trigger"),
        (
            {"triggers": ["ADMINISTRATIVE_PENALTY"]},
            None,
            "P-ADM-01: ADMINISTRATIVE_PENALTY is information only",
        ),
        ({"kind": "INCENTIVE"}, None, "P-ADM-01: an incentive triggered by"),
        ({}, "content", "P-ADM-01 lacks content"),
        ({"colour": "red"}, None, "P-ADM-01 has unknown colour"),
        ({"code": "P-ADM-02"}, None, "P-ADM-02 appears more than once"),
    ],
)
def test_bad_entries_stop_the_load_naming_the_entry(
    tmp_path: Path, change: dict[str, Any], drop: str | None, message: str
) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_write(tmp_path, change, drop))
