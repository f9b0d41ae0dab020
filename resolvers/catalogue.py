"""The measure catalogue (目录清单): loaded and checked once at start, then only read."""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from adapters.records import LEVEL_OF_KIND, ListingLevel, RecordKind

E = TypeVar("E", bound=enum.StrEnum)
RATING_FACTS = frozenset({"TAX_GRADE_A", "TAX_GRADE_D", "WATER_GRADE_AAA"})
INCENTIVE_FACTS = frozenset({"TAX_GRADE_A", "WATER_GRADE_AAA"})
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


class MeasureKind(enum.StrEnum):
    """Punishment (联合惩戒) or incentive (守信激励)."""

    PUNISHMENT = "PUNISHMENT"
    INCENTIVE = "INCENTIVE"


class MeasureCategory(enum.StrEnum):
    """Seed 004 §11–14: administrative, market, industry and social measures."""

    ADMINISTRATIVE = "ADMINISTRATIVE"
    MARKET = "MARKET"
    INDUSTRY = "INDUSTRY"
    SOCIAL = "SOCIAL"


class SubjectType(enum.StrEnum):
    """Whom a measure applies to."""

    ORGANISATION = "ORGANISATION"
    PERSON = "PERSON"


class Scenario(enum.StrEnum):
    """The contract's scenarios in which measures are applied."""

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


@dataclass(frozen=True, slots=True)
class Measure:
    """One catalogue entry with the fields of seed 004 §2."""

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
    """A catalogue the gateway refuses to start with; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The closed list of measures; determinations take measures only from here."""

    measures: tuple[Measure, ...]

    def for_scenario(self, scenario: Scenario | None) -> tuple[Measure, ...]:
        """Used by the measures query: all, or those of one scenario."""
        return tuple(m for m in self.measures if scenario is None or scenario in m.scenarios)

    def triggered(
        self,
        triggers: Mapping[str, Sequence[str]],
        kind: MeasureKind,
        subject_type: SubjectType,
        scenario: Scenario | None,
    ) -> list[tuple[Measure, list[str]]]:
        """Measures of a kind that the given triggers (name → record/fact ids) set off."""
        applied = []
        for measure in self.for_scenario(scenario):
            if measure.kind is not kind or subject_type not in measure.applies_to:
                continue
            ids = [i for name in measure.triggers for i in triggers.get(name, ())]
            if ids:
                applied.append((measure, list(dict.fromkeys(ids))))
        return applied


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and check the catalogue; the packaged one unless a path is given."""
    if path is None:
        raw = resources.files("resolvers").joinpath("catalogue.toml").read_bytes()
        where = "packaged catalogue.toml"
    else:
        raw, where = Path(path).read_bytes(), str(path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{where} is not valid TOML: {exc}") from exc
    entries = data.get("measures")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{where} has no [[measures]]")
    measures = tuple(_measure(index, entry) for index, entry in enumerate(entries))
    _check_whole(measures)
    return Catalogue(measures)


def _measure(index: int, entry: Any) -> Measure:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"measures[{index}] is not a table")
    code = entry.get("code")
    name = code if isinstance(code, str) and code else f"measures[{index}]"
    missing = [key for key in _REQUIRED if key not in entry]
    unknown = sorted(set(entry) - set(_REQUIRED))
    if missing or unknown:
        problem = f"lacks {', '.join(missing)}" if missing else f"has unknown {', '.join(unknown)}"
        raise CatalogueError(f"measure {name} {problem}")
    measure = Measure(
        code=_text(entry, "code", name),
        name=_text(entry, "name", name),
        kind=_enum(MeasureKind, entry["kind"], "kind", name),
        category=_enum(MeasureCategory, entry["category"], "category", name),
        content=_text(entry, "content", name),
        administrative_unit=_text(entry, "administrative_unit", name),
        reason=_text(entry, "reason", name),
        legal_basis=_texts(entry, "legal_basis", name),
        implementing_units=_texts(entry, "implementing_units", name),
        evidence=_texts(entry, "evidence", name),
        scenarios=tuple(
            _enum(Scenario, s, "scenario", name) for s in _texts(entry, "scenarios", name)
        ),
        applies_to=tuple(
            _enum(SubjectType, s, "applies_to", name) for s in _texts(entry, "applies_to", name)
        ),
        triggers=_texts(entry, "triggers", name),
    )
    _check_triggers(measure)
    return measure


def _check_triggers(measure: Measure) -> None:
    known = {k.value for k in RecordKind} | RATING_FACTS
    for trigger in measure.triggers:
        if trigger not in known:
            raise CatalogueError(f"measure {measure.code}: unknown trigger {trigger}")
        if measure.kind is MeasureKind.INCENTIVE and trigger not in INCENTIVE_FACTS:
            # Incentives follow good ratings only; a record never earns a reward.
            raise CatalogueError(f"measure {measure.code}: an incentive triggered by {trigger}")
        if measure.kind is MeasureKind.PUNISHMENT and trigger in INCENTIVE_FACTS:
            raise CatalogueError(f"measure {measure.code}: a punishment triggered by {trigger}")
        if trigger in RecordKind.__members__:
            level = LEVEL_OF_KIND[RecordKind(trigger)]
            if level is ListingLevel.INFORMATION:
                raise CatalogueError(f"measure {measure.code}: {trigger} is information only")


def _check_whole(measures: tuple[Measure, ...]) -> None:
    codes = [m.code for m in measures]
    for code in codes:
        if codes.count(code) > 1:
            raise CatalogueError(f"measure {code} appears more than once")
    for scenario in Scenario:
        if not any(m.kind is MeasureKind.PUNISHMENT and scenario in m.scenarios for m in measures):
            raise CatalogueError(f"scenario {scenario.value} has no punishment measure")


def _text(entry: Mapping[str, Any], key: str, name: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"measure {name}: {key} must be non-empty text")
    return value


def _texts(entry: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
    value = entry[key]
    if not isinstance(value, list) or not value:
        raise CatalogueError(f"measure {name}: {key} must be a non-empty list")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise CatalogueError(f"measure {name}: {key} must hold non-empty text")
    return tuple(value)


def _enum(cls: type[E], value: object, key: str, name: str) -> E:
    members = {member.value: member for member in cls}
    if not isinstance(value, str) or value not in members:
        raise CatalogueError(f"measure {name}: unknown {key} {value!r}")
    return members[value]
