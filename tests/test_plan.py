"""Plan by selection, part by part: the field table, views that refuse to guess, the loaders,
the adapters' parts and the answer cache kept per part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime

import aiohttp
import pytest
from graphql import build_schema as parse_sdl

from adapters.base import (
    Adapter,
    AdapterDeps,
    Parts,
    SourceConfig,
    SubjectResult,
    merge_parts,
)
from adapters.market import MarketAdapter
from adapters.registry import build_adapter
from adapters.tax import TaxAdapter
from core.clock import CST, Clock
from core.records import (
    ALL_PARTS,
    PARTS_OF,
    CreditRecord,
    Department,
    Part,
    RecordKind,
    Registration,
    SubjectFacts,
    TaxRating,
)
from core.sources import FailureKind, SourceError, SourceHealth, SourceState
from resolvers.answers import Answer
from resolvers.catalogue import load_catalogue
from resolvers.determination import determine
from resolvers.loaders import Loaders
from resolvers.plan import FULL, NAME, NOTHING, REGISTER, TAX_GRADES, NotAsked, Plan, knowing
from resolvers.subject_view import SubjectView
from sandbox.runner import SandboxServers
from schema import build_schema
from schema.subject import FIELD_PLANS
from tests.sandbox_support import COMPANY_A, COMPANY_B, COMPANY_C, UNREGISTERED

TODAY = date(2026, 5, 20)
NOW = datetime(2026, 5, 20, 10, 0, tzinfo=CST)
CLOCK = Clock(TODAY)
USCC = "91610800MA703XY29Q"
ENTITIES = frozenset({Part.MARKET_ENTITIES})
MARKET_PARTS = PARTS_OF[Department.MARKET]


def facts(department: Department, **fields: object) -> SubjectFacts:
    """Facts of one department on USCC; everything it holds unless `parts` says otherwise."""
    return SubjectFacts(department, USCC, NOW, **{"known": True, **fields})


def everyone(**by_department: Answer[SubjectFacts]) -> dict[Department, Answer[SubjectFacts]]:
    """Every department answered, with nothing on record, but where given."""
    answers = {d: Answer(d, facts=facts(d, known=False)) for d in Department}
    answers.update({Department(k.upper()): a for k, a in by_department.items()})
    return answers


REGISTERED = facts(
    Department.MARKET, name="榆林市宏达建设有限公司", registration=Registration(), parts=ENTITIES
)


# --- the table -------------------------------------------------------------------------------


def test_every_subject_field_is_in_the_table_and_the_deciding_ones_ask_everything() -> None:
    sdl = parse_sdl(build_schema().as_str())
    assert set(FIELD_PLANS) == {*sdl.type_map["Subject"].fields, "__typename"}
    for name in ("records", "jointPunishment", "supervision", "sources"):
        assert FIELD_PLANS[name] == FULL, name
    assert FIELD_PLANS["name"] == NAME and NAME.name and NAME.parts == ENTITIES
    assert Plan.union([REGISTER, TAX_GRADES]).parts == {Part.MARKET_ENTITIES, Part.TAX_GRADES}
    # A lookup that decides null asks at least the register.
    assert knowing(NOTHING) == REGISTER and knowing(TAX_GRADES) == TAX_GRADES


# --- views never read "not asked" as "nothing on record" ---------------------------------------


def test_a_view_of_the_register_alone_answers_only_the_register() -> None:
    view = SubjectView(
        USCC, {Department.MARKET: Answer(Department.MARKET, facts=REGISTERED)}, TODAY
    )
    assert view.known and view.name == REGISTERED.name and view.registration == Registration()
    assert view.settled(NAME)
    for reading in ("records", "missing", "tax_rating", "water_credit"):
        with pytest.raises(NotAsked):
            getattr(view, reading)
    with pytest.raises(NotAsked):
        determine(view, load_catalogue(), None, NOW)
    # Its sources name the one department asked.
    assert [s.department for s in view.source_states()] == [Department.MARKET]


def test_an_unknown_code_is_unknown_only_once_everyone_was_asked() -> None:
    unknown = facts(Department.MARKET, known=False, parts=ENTITIES)
    view = SubjectView(USCC, {Department.MARKET: Answer(Department.MARKET, facts=unknown)}, TODAY)
    assert not view.settled(REGISTER)
    with pytest.raises(NotAsked):
        _ = view.known
    market = Answer(Department.MARKET, facts=facts(Department.MARKET, known=False))
    assert not SubjectView(USCC, everyone(market=market), TODAY).known


def test_facts_of_some_parts_never_pass_for_all_of_them() -> None:
    # Every department answered, but market only for its register: its lists were not asked.
    view = SubjectView(USCC, everyone(market=Answer(Department.MARKET, facts=REGISTERED)), TODAY)
    with pytest.raises(NotAsked, match="MARKET_ABNORMAL, MARKET_ILLEGAL, MARKET_PENALTIES"):
        _ = view.records
    # A department that failed was asked: it is missing, and the view says so.
    error = SourceError(Department.TAX, FailureKind.UNAVAILABLE, "down")
    view = SubjectView(USCC, everyone(tax=Answer(Department.TAX, error=error)), TODAY)
    assert view.records == [] and view.missing == (Department.TAX,)


def test_the_name_of_an_unregistered_code_needs_everyone() -> None:
    unregistered = facts(Department.MARKET, known=False, parts=ENTITIES)
    rated = facts(Department.TAX, name="税务名称", tax_ratings=(TaxRating(2025, "B"),))
    answers = {
        Department.MARKET: Answer(Department.MARKET, facts=unregistered),
        Department.TAX: Answer(Department.TAX, facts=rated),
    }
    view = SubjectView(USCC, answers, TODAY)
    # Known (tax rates it): enough for its grade, not for its name (courts may spell it first).
    assert view.settled(TAX_GRADES) and view.tax_rating == TaxRating(2025, "B")
    assert not view.settled(NAME | TAX_GRADES)
    with pytest.raises(NotAsked):
        _ = view.name


# --- merging the parts of one department --------------------------------------------------------


def test_merging_parts_keeps_one_answer_per_part() -> None:
    lists = facts(Department.MARKET, known=False, parts=MARKET_PARTS - ENTITIES)
    merged = merge_parts([lists, REGISTERED])
    assert merged.parts == MARKET_PARTS and merged.known and merged.name == REGISTERED.name
    # A department that cannot split answers everything; a second copy adds nothing.
    whole = facts(Department.MARKET)
    assert merge_parts([REGISTERED, whole, whole]) is whole
    with pytest.raises(ValueError, match="overlapping"):
        merge_parts([REGISTERED, facts(Department.MARKET, parts=MARKET_PARTS)])


@pytest.fixture
async def live(
    servers: SandboxServers, session: aiohttp.ClientSession, reset_sandbox_faults: None
) -> AsyncIterator[Callable[..., Adapter]]:
    """Builds adapters over the small sandbox: bare (no cache) or as the runtime does."""
    made: list[Adapter] = []

    def make(name: str, cached: bool = False, **options: object) -> Adapter:
        config = SourceConfig(name, servers.urls[name], options=options)
        deps = AdapterDeps(config, session, CLOCK)
        bare = {"market": MarketAdapter, "tax": TaxAdapter}[name]
        adapter = build_adapter(config, session, CLOCK) if cached else bare(deps)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


CODES = [COMPANY_A, COMPANY_B, COMPANY_C, UNREGISTERED]


@pytest.mark.parametrize("name", ["market", "tax"])
async def test_parts_asked_one_by_one_merge_into_the_whole_answer(
    name: str, live: Callable[..., Adapter], servers: SandboxServers
) -> None:
    adapter = live(name)
    department = adapter.department
    whole = await adapter.lookup_subjects(CODES)
    servers.reset_counts()
    by_part = {
        p: await adapter.lookup_subjects(CODES, frozenset({p})) for p in PARTS_OF[department]
    }
    # One upstream call per part: market's four lists, tax's two operations.
    assert len(servers.faults[name].arrivals) == len(PARTS_OF[department])
    for code in CODES:
        parts = [by_part[p][code] for p in PARTS_OF[department]]
        assert all(isinstance(f, SubjectFacts) for f in parts)
        assert {p for f in parts for p in f.parts} == PARTS_OF[department]
        merged = merge_parts(parts)
        expected = whole[code]
        assert isinstance(expected, SubjectFacts) and expected.parts == PARTS_OF[department]
        assert replace(merged, as_of=NOW) == replace(expected, as_of=NOW), code


async def test_the_register_alone_is_one_call_and_says_it_holds_no_lists(
    live: Callable[..., Adapter], servers: SandboxServers
) -> None:
    result = (await live("market").lookup_subjects([COMPANY_A], ENTITIES))[COMPANY_A]
    assert dict(servers.faults["market"].requests) == {"POST /api/v1/entities/query": 1}
    assert isinstance(result, SubjectFacts) and result.parts == ENTITIES
    assert result.known and result.registration is not None and result.records == ()


# --- the loaders -------------------------------------------------------------------------------


class Canned(Adapter):
    """A department answering from a function of (code, parts), noting what it is asked."""

    def __init__(
        self, department: Department, answer: Callable[[str, frozenset[Part]], SubjectResult]
    ) -> None:
        self.department = department
        self.asked: list[tuple[tuple[str, ...], frozenset[Part]]] = []
        self._answer = answer

    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        wanted = parts or PARTS_OF[self.department]
        self.asked.append((tuple(usccs), wanted))
        return {code: self._answer(code, wanted) for code in usccs}

    async def health(self) -> SourceHealth:
        return SourceHealth(self.department, SourceState.OK, NOW)


def canned_everyone(
    market: Callable[[str, frozenset[Part]], SubjectResult] | None = None,
) -> dict[Department, Canned]:
    """Four departments that know every code, each part answered as asked."""

    def held(department: Department) -> Callable[[str, frozenset[Part]], SubjectResult]:
        return lambda code, parts: replace(facts(department), uscc=code, parts=parts)

    adapters = {d: Canned(d, held(d)) for d in Department}
    if market is not None:
        adapters[Department.MARKET] = Canned(Department.MARKET, market)
    return adapters


async def test_loaders_ask_each_part_once_whatever_the_fields_ask() -> None:
    adapters = canned_everyone()
    loaders = Loaders(list(adapters.values()))
    register, tax = await asyncio.gather(
        loaders.subjects(["A", "B"], REGISTER), loaders.subjects(["B", "C"], NAME | TAX_GRADES)
    )
    assert set(register[0]) == {Department.MARKET} and set(tax[0]) == {
        Department.MARKET,
        Department.TAX,
    }
    # One batched call per part asked, for every code that needs it.
    assert adapters[Department.MARKET].asked == [(("A", "B", "C"), ENTITIES)]
    assert adapters[Department.TAX].asked == [(("B", "C"), frozenset({Part.TAX_GRADES}))]
    assert adapters[Department.COURTS].asked == []
    # A later round asks only the parts not asked yet, and joins them with the earlier ones.
    (whole,) = await loaders.subjects(["A"], FULL)
    later = adapters[Department.MARKET].asked[1:]
    assert len(later) == 3
    assert set(later) == {(("A",), frozenset({p})) for p in MARKET_PARTS - ENTITIES}
    market = whole[Department.MARKET].facts
    assert market is not None and market.parts == MARKET_PARTS
    assert set(whole) == set(Department) and all(a.answered for a in whole.values())


async def test_facts_without_the_part_asked_are_no_answer() -> None:
    adapters = canned_everyone(market=lambda code, parts: replace(REGISTERED, uscc=code))
    loaders = Loaders(list(adapters.values()))
    (answers,) = await loaders.subjects(["A"], FULL)
    market = answers[Department.MARKET]
    assert market.facts is None and not market.answered
    assert Department.MARKET in loaders.failures


RECORD = CreditRecord("MARKET:abnormal:1", Department.MARKET, RecordKind.ABNORMAL_OPERATION, "t")


def market_with(illegal: str) -> Callable[[str, frozenset[Part]], SubjectResult]:
    """Market with one abnormal entry; its illegal list fails ("error") or stands in ("stale")."""

    def answer(code: str, parts: frozenset[Part]) -> SubjectResult:
        held = replace(facts(Department.MARKET), uscc=code, parts=parts)
        if Part.MARKET_ABNORMAL in parts:
            held = replace(held, records=(RECORD,))
        if Part.MARKET_ILLEGAL in parts and illegal == "error":
            return SourceError(Department.MARKET, FailureKind.TIMEOUT, "slow")
        if Part.MARKET_ILLEGAL in parts and illegal == "stale":
            # Its last good answer standing in: shown, but no answer of today.
            held = replace(held, refresh_failed=True)
        return held

    return answer


async def test_a_part_that_fails_fails_its_department_whole() -> None:
    adapters = canned_everyone(market_with(illegal="error"))
    (answers,) = await Loaders(list(adapters.values())).subjects(["A"], FULL)
    # The register and the other lists answered; alone they are not shown as market's answer.
    assert answers[Department.MARKET].facts is None
    view = SubjectView("A", answers, TODAY)
    assert view.missing == (Department.MARKET,) and view.records == []


async def test_a_part_standing_in_keeps_its_department_missing() -> None:
    adapters = canned_everyone(market_with(illegal="stale"))
    (answers,) = await Loaders(list(adapters.values())).subjects(["A"], FULL)
    stale = answers[Department.MARKET]
    assert stale.facts is not None and stale.error is not None
    assert stale.facts.parts == MARKET_PARTS
    view = SubjectView("A", answers, TODAY)
    assert view.missing == (Department.MARKET,) and [v.record for v in view.records] == [RECORD]
    assert [s.state for s in view.source_states()][1] is SourceState.STALE


# --- the answer cache keeps parts apart ----------------------------------------------------------


async def test_the_cache_never_serves_fewer_parts_than_asked(
    live: Callable[..., Adapter], servers: SandboxServers
) -> None:
    adapter = live("market", cached=True, stale_ttl_s=3600)
    first = Loaders([adapter])
    (register,) = await first.subjects([COMPANY_A], REGISTER)
    assert register[Department.MARKET].facts.parts == ENTITIES
    # Another request needs everything: the register is fresh, only the lists are asked.
    servers.reset_counts()
    (whole,) = await Loaders([adapter]).subjects([COMPANY_A], FULL)
    assert set(servers.faults["market"].requests) == {
        "POST /api/v1/abnormal/query",
        "POST /api/v1/illegal/query",
        "POST /api/v1/penalties/query",
    }
    assert whole[Department.MARKET].facts.parts == MARKET_PARTS
    # Asked of the adapter itself, everything is never the register's facts.
    assert (await adapter.lookup_subjects([COMPANY_A]))[COMPANY_A].parts == MARKET_PARTS


async def test_a_stale_register_never_stands_in_for_the_lists(
    live: Callable[..., Adapter], servers: SandboxServers
) -> None:
    adapter = live("market", cached=True, cache_ttl_s=0.01, stale_ttl_s=3600, retries=0)
    (register,) = await Loaders([adapter]).subjects([COMPANY_C], REGISTER)
    assert register[Department.MARKET].answered
    await asyncio.sleep(0.05)
    servers.faults["market"].update({"down": True})
    (again,) = await Loaders([adapter]).subjects([COMPANY_C], FULL)
    market = again[Department.MARKET]
    # The register stands in (stale), the lists have no last good answer: market failed.
    assert market.facts is None and not market.answered
    assert SubjectView(COMPANY_C, everyone(market=market), TODAY).missing == (Department.MARKET,)


def test_all_parts_belong_to_one_department_each() -> None:
    assert set().union(*PARTS_OF.values()) == ALL_PARTS
    assert sum(len(p) for p in PARTS_OF.values()) == len(ALL_PARTS)
