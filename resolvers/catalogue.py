"""The 联合奖惩措施目录清单 (measure catalogue): typed, validated view of catalogue.toml."""

from __future__ import annotations

import enum
import re
import tomllib
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from core.records import LEVEL_OF_KIND, ListingLevel


class MeasureKind(enum.StrEnum):
    """Joint punishment or joint incentive, as the contract names them."""

    PUNISHMENT = "PUNISHMENT"
    INCENTIVE = "INCENTIVE"


class MeasureCategory(enum.StrEnum):
    """The four kinds of constraint of seed 004 §11–14; incentives reuse them."""

    ADMINISTRATIVE = "ADMINISTRATIVE"
    MARKET = "MARKET"
    INDUSTRY = "INDUSTRY"
    SOCIAL = "SOCIAL"


class SubjectType(enum.StrEnum):
    """Whom a measure can be applied to: the subject itself or its responsible persons."""

    ORGANISATION = "ORGANISATION"
    PERSON = "PERSON"


class Scenario(enum.StrEnum):
    """Business situations in which a caller checks measures (contract enum Scenario)."""

    CREDIT_LOAN = "CREDIT_LOAN"
    PUBLIC_PROCUREMENT = "PUBLIC_PROCUREMENT"
    BIDDING = "BIDDING"
    ADMINISTRATIVE_LICENSING = "ADMINISTRATIVE_LICENSING"
    FISCAL_FUNDS = "FISCAL_FUNDS"
    HONORS = "HONORS"
    SECURITIES = "SECURITIES"
    SPOT_CHECK = "SPOT_CHECK"
    HIGH_CONSUMPTION = "HIGH_CONSUMPTION"
    MARKET_ENTRY = "MARKET_ENTRY"


# Record kinds that can trigger a measure: ADMINISTRATIVE_PENALTY is information only and
# never triggers joint punishment (contract §2).
PUNISHMENT_TRIGGERS: frozenset[str] = frozenset(
    str(k) for k, level in LEVEL_OF_KIND.items() if level is ListingLevel.PUNISHMENT
)
# A current tax grade D counts as a watch fact (contract §2).
WATCH_TRIGGERS: frozenset[str] = frozenset(
    [*(str(k) for k, level in LEVEL_OF_KIND.items() if level is ListingLevel.WATCH), "TAX_GRADE_D"]
)
INCENTIVE_TRIGGERS: frozenset[str] = frozenset({"TAX_GRADE_A", "WATER_GRADE_AAA"})
TRIGGERS: frozenset[str] = PUNISHMENT_TRIGGERS | WATCH_TRIGGERS | INCENTIVE_TRIGGERS

_REQUIRED = (
    "code",
    "name",
    "kind",
    "category",
    "content",
    "administrative_unit",
    "reason",
    "legal_basis",
    "implementing_units",
    "evidence",
    "scenarios",
    "applies_to",
    "triggers",
)
_LISTS = frozenset(
    {"legal_basis", "implementing_units", "evidence", "scenarios", "applies_to", "triggers"}
)
# Scenarios may legitimately be empty: industry and social measures are not tied to one
# business situation, they are listed only when no scenario is asked for.
_MAY_BE_EMPTY = frozenset({"scenarios"})
_E = TypeVar("_E", bound=enum.StrEnum)
_CODE = re.compile(r"(?:P-(?:ADM|MKT|IND|SOC)|I)-\d{2}")


@dataclass(frozen=True, slots=True)
class Measure:
    """One catalogue entry (004 §2 fields); read by the joint-status resolver and the schema."""

    code: str
    name: str
    kind: MeasureKind
    category: MeasureCategory
    content: str
    administrative_unit: str
    reason: str
    legal_basis: tuple[str, ...]
    implementing_units: tuple[str, ...]
    evidence: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    applies_to: tuple[SubjectType, ...]
    triggers: tuple[str, ...]


class CatalogueError(ValueError):
    """Raised when loading a catalogue that breaks a rule; the message names the entry."""


class Catalogue:
    """The loaded, validated catalogue; built once at startup by load_catalogue."""

    __slots__ = ("_by_code", "_by_trigger", "measures")

    def __init__(self, measures: Iterable[Measure]) -> None:
        """Used by load_catalogue after validation; keeps the file's order."""
        self.measures: tuple[Measure, ...] = tuple(measures)
        self._by_code = types.MappingProxyType({m.code: m for m in self.measures})
        # Positions of the measures each trigger sets off: a determination looks only at
        # the few measures its triggers name, not at the whole catalogue (every lookup).
        by_trigger: dict[str, list[int]] = {}
        for position, measure in enumerate(self.measures):
            for trigger in measure.triggers:
                by_trigger.setdefault(trigger, []).append(position)
        self._by_trigger = {t: tuple(p) for t, p in by_trigger.items()}

    @property
    def by_code(self) -> Mapping[str, Measure]:
        """Read-only lookup by code; used for the `measures` query and by tests."""
        return self._by_code

    def for_scenario(self, scenario: Scenario | None) -> tuple[Measure, ...]:
        """All measures, or only those of `scenario`; used when listing the catalogue."""
        if scenario is None:
            return self.measures
        return tuple(m for m in self.measures if scenario in m.scenarios)

    def triggered(
        self,
        triggers: Mapping[str, Sequence[str]],
        kind: MeasureKind,
        subject_type: SubjectType,
        scenario: Scenario | None = None,
    ) -> list[tuple[Measure, list[str]]]:
        """Measures of `kind` that a subject's triggers set off; used by the joint status.

        `triggers` maps a trigger name (record kind or fact) to the ids of the active records
        or facts behind it, e.g. {"DISHONEST_DEBTOR": ["COURTS:1"]}. Each result pairs a
        measure with the ids that trigger it, in catalogue order; names the catalogue does
        not know (ADMINISTRATIVE_PENALTY) and empty id lists trigger nothing.
        """
        named = {p for t, ids in triggers.items() if ids for p in self._by_trigger.get(t, ())}
        result: list[tuple[Measure, list[str]]] = []
        for position in sorted(named):  # catalogue order
            measure = self.measures[position]
            if measure.kind is not kind or subject_type not in measure.applies_to:
                continue
            if scenario is not None and scenario not in measure.scenarios:
                continue
            # dict.fromkeys: one id may stand behind several triggers; report it once.
            ids = dict.fromkeys(i for t in measure.triggers for i in triggers.get(t, ()))
            if ids:
                result.append((measure, list(ids)))
        return result


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue at startup; the packaged catalogue.toml by default."""
    if path is None:
        data = resources.files("resolvers").joinpath("catalogue.toml").read_bytes()
        source = "catalogue.toml"
    else:
        data = Path(path).read_bytes()
        source = str(path)
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{source}: not valid TOML: {exc}") from exc
    unknown = set(document) - {"measures"}
    if unknown:
        raise CatalogueError(f"{source}: unknown top-level keys {sorted(unknown)}")
    entries = document.get("measures")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{source}: no [[measures]] entries")

    measures: list[Measure] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        measure = _measure(entry, f"measures[{index}]")
        if measure.code in seen:
            raise CatalogueError(f"{measure.code}: duplicate code")
        seen.add(measure.code)
        measures.append(measure)

    # Every scenario a caller can ask about must list some punishment, otherwise a query in
    # that scenario would wrongly suggest that a punished subject faces no measure there.
    covered = {s for m in measures if m.kind is MeasureKind.PUNISHMENT for s in m.scenarios}
    for scenario in Scenario:
        if scenario not in covered:
            raise CatalogueError(f"{source}: scenario {scenario} has no PUNISHMENT measure")
    return Catalogue(measures)


def _measure(entry: Any, where: str) -> Measure:
    # Validates one [[measures]] table; errors name its code, or its position without one.
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: not a table")
    given = entry.get("code")
    label = given if isinstance(given, str) and given else where
    unknown = set(entry) - set(_REQUIRED)
    if unknown:
        raise CatalogueError(f"{label}: unknown keys {sorted(unknown)}")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise CatalogueError(f"{label}: missing required fields {missing}")
    for key in _REQUIRED:
        value = entry[key]
        if key not in _LISTS:
            if not isinstance(value, str) or not value.strip():
                raise CatalogueError(f"{label}: {key} must be a non-empty string")
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise CatalogueError(f"{label}: {key} must be a list of non-empty strings")
        if not value and key not in _MAY_BE_EMPTY:
            raise CatalogueError(f"{label}: {key} is empty")
        if len(set(value)) != len(value):
            raise CatalogueError(f"{label}: {key} repeats an item")
    code: str = entry["code"]  # a non-empty string: checked above
    if not _CODE.fullmatch(code):
        raise CatalogueError(f"{label}: code must look like P-ADM-01 or I-01")

    kind = _enum(MeasureKind, entry["kind"], label, "kind")
    category = _enum(MeasureCategory, entry["category"], label, "category")
    scenarios = tuple(_enum(Scenario, s, label, "scenario") for s in entry["scenarios"])
    applies_to = tuple(_enum(SubjectType, s, label, "applies_to") for s in entry["applies_to"])
    triggers = tuple(entry["triggers"])
    for trigger in triggers:
        if trigger not in TRIGGERS:
            raise CatalogueError(f"{label}: unknown trigger {trigger!r}")
    if code.startswith("I-") != (kind is MeasureKind.INCENTIVE):
        raise CatalogueError(f"{label}: code prefix does not match kind {kind}")
    _check_proportionate(label, kind, triggers, scenarios)
    return Measure(
        code=code,
        name=entry["name"],
        kind=kind,
        category=category,
        content=entry["content"],
        administrative_unit=entry["administrative_unit"],
        reason=entry["reason"],
        legal_basis=tuple(entry["legal_basis"]),
        implementing_units=tuple(entry["implementing_units"]),
        evidence=tuple(entry["evidence"]),
        scenarios=scenarios,
        applies_to=applies_to,
        triggers=triggers,
    )


def _check_proportionate(
    label: str, kind: MeasureKind, triggers: tuple[str, ...], scenarios: tuple[Scenario, ...]
) -> None:
    # 过惩相当: incentives follow only good facts; punishments never follow good facts; and
    # watch-level findings (not yet 失信惩戒对象) justify only stricter spot checks.
    if kind is MeasureKind.INCENTIVE:
        wrong = [t for t in triggers if t not in INCENTIVE_TRIGGERS]
        if wrong:
            raise CatalogueError(f"{label}: INCENTIVE triggered by record kinds/facts {wrong}")
        return
    wrong = [t for t in triggers if t in INCENTIVE_TRIGGERS]
    if wrong:
        raise CatalogueError(f"{label}: PUNISHMENT triggered by incentive facts {wrong}")
    watch = [t for t in triggers if t in WATCH_TRIGGERS]
    if watch and scenarios != (Scenario.SPOT_CHECK,):
        raise CatalogueError(
            f"{label}: watch-level triggers {watch} may trigger only SPOT_CHECK measures"
        )


def _enum(cls: type[_E], value: str, label: str, field: str) -> _E:
    # Maps a TOML string onto its enum, naming the entry when the value is not allowed.
    try:
        return cls(value)
    except ValueError:
        raise CatalogueError(f"{label}: unknown {field} {value!r}") from None
