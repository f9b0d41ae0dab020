"""Issue 14, item 4: watchlist statistics fast enough for a dashboard refresh.

A watchlist of `--stat-members` members (100,000, the largest `[background]
max_watchlist_size` allows; 2,000 with --quick), each with a latest check, is written
straight into the running gateway's state store (`[store] url`, state.db beside the audit
store): what the background workers would have stored after checking them, made up here
with the proportions of the sandbox's bulk check (mostly CLEAR, a few WATCH and PUNISHED,
some INCOMPLETE), prefectures drawn from forty real ones, and the active listings of the
watched and punished members. Every member is due ten days from now, so no worker claims
one while the bench runs.

Then `statistics(watchlistId, groupBy)` is asked through /graphql with the bank's key, the
list's owner, for each dimension: one warm-up, then `--stat-requests` (20) requests one
after the other; median and p95 are held against a dashboard refresh's 200 ms. A
regulator's STATUS over every watched subject (no watchlistId) is timed the same way. Each
answer is compared with what was written, and the departments' counters show that no
subject was checked to answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from bench.harness import Bench, Goal, Result, Row, percentile
from core.clock import CST
from core.identity import org_code_check_digit, uscc_check_digit
from core.records import Department, RecordKind
from resolvers.determination import CreditClass, JointStatus
from store.database import Database, open_database
from store.migrate import migrate

STATS_QUERY: Final = """query($w: ID, $g: StatDimension!) {
  statistics(watchlistId: $w, groupBy: $g) { key label subjects records } }"""
SUBJECT_DIMENSIONS: Final = ("STATUS", "CREDIT_CLASS", "REGION")
LISTING_DIMENSIONS: Final = ("LISTING_KIND", "LISTING_MONTH", "DEPARTMENT")
DIMENSIONS: Final = SUBJECT_DIMENSIONS + LISTING_DIMENSIONS
# A dashboard shows its panels at once: each panel's query well under a refresh's second.
STATS_GOAL: Final = Goal(200, at_most=True, unit="ms")
STATS_WARM_UP: Final = 1
REGULATOR_ID: Final = "bench-regulator"
# Rows a transaction: each holds the store's write lock for a fraction of a second, so the
# gateway's own transactions (its background loop polls the store) wait little.
BATCH: Final = 10_000
# Not due while the bench runs: the workers claim members with due_at <= now.
DUE_IN_S: Final = 10 * 86_400
# The sandbox's bulk check of 1,000 codes: CLEAR 91 %, WATCH 7 %, PUNISHED 2 %; a watched
# portfolio has somewhat more trouble, and a department that did not answer leaves a few
# members INCOMPLETE until their next check.
STATUS_WEIGHTS: Final = {
    JointStatus.CLEAR: 0.87,
    JointStatus.WATCH: 0.07,
    JointStatus.PUNISHED: 0.04,
    JointStatus.INCOMPLETE: 0.02,
}
# resolvers/determination.py's supervise(): D when PUNISHED, C when WATCH or INCOMPLETE,
# A (well rated) or B when CLEAR.
CLEAR_A_SHARE: Final = 0.3
# Forty prefectures (characters 3-6 of the code + "00", contract §9), weighted roughly by
# how many companies they register: the large cities first.
PREFECTURES: Final = {
    "110100": 8, "120100": 3, "130100": 3, "130200": 2, "140100": 2, "210100": 2,
    "210200": 2, "220100": 2, "230100": 2, "310100": 8, "320100": 4, "320200": 3,
    "320500": 5, "330100": 5, "330200": 3, "340100": 3, "350100": 2, "350200": 2,
    "360100": 2, "370100": 3, "370200": 3, "410100": 3, "420100": 4, "430100": 3,
    "440100": 6, "440300": 7, "450100": 2, "460100": 1, "500100": 4, "510100": 5,
    "520100": 2, "530100": 2, "540100": 1, "610100": 3, "610300": 1, "610800": 1,
    "620100": 1, "630100": 1, "640100": 1, "650100": 1,
}  # fmt: skip
# Only PUNISHMENT and WATCH records are stored as listings (resolvers/determination.py's
# judge(); ADMINISTRATIVE_PENALTY is information and never one), with their departments.
PUNISHING: Final = {
    RecordKind.DISHONEST_DEBTOR: (Department.COURTS, 0.35),
    RecordKind.CONSUMPTION_RESTRICTION: (Department.COURTS, 0.30),
    RecordKind.MAJOR_TAX_VIOLATION: (Department.TAX, 0.15),
    RecordKind.SERIOUS_ILLEGAL: (Department.MARKET, 0.10),
    RecordKind.WATER_BLACKLIST: (Department.WATER, 0.10),
}
WATCHING: Final = {
    RecordKind.ABNORMAL_OPERATION: (Department.MARKET, 0.85),
    RecordKind.WATER_WATCHLIST: (Department.WATER, 0.15),
}
# The record id prefixes of the adapters (adapters/*.py).
RECORD_PREFIX: Final = {
    RecordKind.DISHONEST_DEBTOR: "COURTS:",
    RecordKind.CONSUMPTION_RESTRICTION: "COURTS:xgl:",
    RecordKind.MAJOR_TAX_VIOLATION: "TAX:",
    RecordKind.SERIOUS_ILLEGAL: "MARKET:illegal:",
    RecordKind.ABNORMAL_OPERATION: "MARKET:abnormal:",
    RecordKind.WATER_BLACKLIST: "WATER:",
    RecordKind.WATER_WATCHLIST: "WATER:",
}
# Listings reach back six years, most of them recent.
LISTING_MONTHS: Final = 72
MEMBER_SQL: Final = (
    "INSERT INTO watch_members (watchlist_id, uscc, added_seq, region, phase, due_at, name, "
    "status, complete, credit_class, since, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LISTING_SQL: Final = (
    "INSERT INTO watch_listings (watchlist_id, uscc, record_id, department, kind, listed_month) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
SUBJECT_SQL: Final = (
    "INSERT INTO watch_subjects (uscc, region, status, credit_class, checked_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
# The departments a check would call; water is the gateway's own index (and syncs files).
CHECKING_DEPARTMENTS: Final = ("courts", "market", "tax")


def add_regulator(config_path: Path) -> str:
    """Used by bench/run.py: a regulator client in the bench's config (its rate lifted); its key."""
    key = secrets.token_urlsafe(24)
    lines = [
        "",
        "[[clients]]",
        f'id = "{REGULATOR_ID}"',
        'role = "regulator"',
        f'key_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"',
        'purposes = ["SUPERVISION"]',
        "",
        "[limits.regulator]",
        "rate_per_s = 100000",
        "burst = 100000",
    ]
    with config_path.open("a", encoding="utf-8") as config:
        config.write("\n".join(lines) + "\n")
    return key


@dataclass
class Population:
    """The rows written to the store, and what each dimension's answer must be."""

    watchlist_id: str
    members: list[tuple[Any, ...]] = field(default_factory=list)
    listings: list[tuple[Any, ...]] = field(default_factory=list)
    # dimension -> key -> [subjects, records or None], as statistics must answer.
    expected: dict[str, dict[str, list[int | None]]] = field(default_factory=dict)


def populate(watchlist_id: str, members: int, seed: int, today: date) -> Population:
    """Used by statistics(): `members` members with a latest check each, and their listings."""
    rng = random.Random(seed)
    now = time.time()
    checked_until = datetime.combine(today, datetime.now(CST).timetz())
    population = Population(watchlist_id)
    statuses = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()), k=members)
    regions = rng.choices(list(PREFECTURES), list(PREFECTURES.values()), k=members)
    # Distinct organisation codes: every member's USCC is its own.
    bodies = rng.sample(range(10**8), members)
    kinds_of: dict[str, list[tuple[RecordKind, str, str]]] = {}
    record_number = 0
    for number, (status, prefecture) in enumerate(zip(statuses, regions, strict=True)):
        body = f"{bodies[number]:08d}"
        first17 = f"91{prefecture[:4]}{rng.randint(1, 30):02d}{body}{org_code_check_digit(body)}"
        uscc = first17 + uscc_check_digit(first17)
        phase = rng.random()
        # Checked within the last refresh interval (a day), at its place in it.
        checked_at = checked_until - timedelta(seconds=86_400 * rng.random())
        since = checked_at - timedelta(days=rng.randint(0, 720))
        population.members.append(
            (
                watchlist_id,
                uscc,
                number + 1,
                uscc[2:6] + "00",
                phase,
                now + DUE_IN_S + phase * 86_400,
                f"监控企业{number + 1:06d}有限公司",
                status.value,
                int(status is not JointStatus.INCOMPLETE),
                _credit_class(status, rng).value,
                since.isoformat(),
                checked_at.isoformat(),
            )
        )
        for kind in _listed_kinds(status, rng):
            record_number += 1
            department = (PUNISHING | WATCHING)[kind][0]
            record_id = f"{RECORD_PREFIX[kind]}{record_number:08d}"
            back = int(rng.triangular(0, LISTING_MONTHS, 0))
            month = _month_back(today, back)
            population.listings.append(
                (watchlist_id, uscc, record_id, department.value, kind.value, month)
            )
            kinds_of.setdefault(uscc, []).append((kind, department.value, month))
    population.expected = _expected(population.members, kinds_of)
    return population


def _credit_class(status: JointStatus, rng: random.Random) -> CreditClass:
    if status is JointStatus.PUNISHED:
        return CreditClass.D
    if status is not JointStatus.CLEAR:
        return CreditClass.C
    return CreditClass.A if rng.random() < CLEAR_A_SHARE else CreditClass.B


def _listed_kinds(status: JointStatus, rng: random.Random) -> list[RecordKind]:
    """The kinds of a member's active listings: 1-3 when PUNISHED, 0-2 when WATCH."""

    def draw(table: dict[RecordKind, tuple[Department, float]]) -> RecordKind:
        return rng.choices(list(table), [weight for _, weight in table.values()])[0]

    if status is JointStatus.PUNISHED:
        more = rng.choices([0, 1, 2], [0.55, 0.3, 0.15])[0]
        return [draw(PUNISHING)] + [draw(PUNISHING | WATCHING) for _ in range(more)]
    if status is JointStatus.WATCH:
        # A few are watched for a fact (a grade, an arrear), not for a listing.
        count = rng.choices([0, 1, 2], [0.15, 0.7, 0.15])[0]
        return [draw(WATCHING) for _ in range(count)]
    if status is JointStatus.INCOMPLETE and rng.random() < 0.2:
        return [draw(WATCHING)]
    return []


def _month_back(today: date, months: int) -> str:
    index = today.year * 12 + today.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _expected(
    members: list[tuple[Any, ...]], kinds_of: dict[str, list[tuple[RecordKind, str, str]]]
) -> dict[str, dict[str, list[int | None]]]:
    """Each dimension's rows as the store must count them, sorted by key."""
    expected: dict[str, dict[str, list[int | None]]] = {}
    for dimension, column in (("STATUS", 7), ("CREDIT_CLASS", 9), ("REGION", 3)):
        counts = Counter(str(m[column]) for m in members)
        expected[dimension] = {k: [n, None] for k, n in sorted(counts.items())}
    for dimension, part in (("LISTING_KIND", 0), ("DEPARTMENT", 1), ("LISTING_MONTH", 2)):
        subjects: dict[str, set[str]] = {}
        records: Counter[str] = Counter()
        for uscc, listed in kinds_of.items():
            for entry in listed:
                key = str(entry[part])
                subjects.setdefault(key, set()).add(uscc)
                records[key] += 1
        expected[dimension] = {k: [len(subjects[k]), records[k]] for k in sorted(subjects)}
    return expected


async def write(db: Database, population: Population, client_id: str) -> None:
    """The list, its members and their listings, in transactions of BATCH rows."""
    created = datetime.now(CST)
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO watchlists (id, client_id, name, webhook_url, webhook_secret, "
            "created_at, created_seq) VALUES (?, ?, ?, NULL, NULL, ?, ?)",
            (
                population.watchlist_id,
                client_id,
                "bench: post-loan portfolio",
                created.isoformat(),
                time.time_ns() // 1000,
            ),
        )
    # watch_subjects: each watched subject once with its latest check (what the store's
    # WatchStore keeps as it records checks; the regulators' statistics read it).
    subjects = [(m[1], m[3], m[7], m[9], m[11]) for m in population.members]
    for sql, rows in (
        (MEMBER_SQL, population.members),
        (LISTING_SQL, population.listings),
        (SUBJECT_SQL, subjects),
    ):
        for start in range(0, len(rows), BATCH):
            async with db.transaction() as tx:
                await tx.execute_many(sql, rows[start : start + BATCH])


@dataclass
class _Timed:
    """The requests of one dimension: their milliseconds and the last answer."""

    ms: list[float] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "samples": len(self.ms),
            "p50": round(percentile(self.ms, 0.5), 2),
            "p95": round(percentile(self.ms, 0.95), 2),
            "max": round(max(self.ms), 2),
        }


async def _timed(
    bench: Bench, watchlist_id: str | None, dimension: str, key: str | None = None
) -> _Timed:
    """One warm-up, then the settings' number of requests, one after the other."""
    timed = _Timed()
    variables = {"w": watchlist_id, "g": dimension}
    for number in range(STATS_WARM_UP + bench.settings.stat_requests):
        reply = await bench.ask(STATS_QUERY, variables, as_key=key)
        rows = reply.data.get("statistics")
        if reply.status != 200 or rows is None or reply.codes:
            raise RuntimeError(f"statistics({dimension}): HTTP {reply.status} {reply.body}")
        if number >= STATS_WARM_UP:
            timed.ms.append(reply.ms)
        timed.rows = rows
    return timed


def _as_expected(rows: list[dict[str, Any]]) -> dict[str, list[int | None]]:
    return {str(r["key"]): [r["subjects"], r["records"]] for r in rows}


async def statistics(bench: Bench) -> Result:
    """Issue 14, item 4: statistics of a large watchlist, from the store, per dimension."""
    settings = bench.settings
    if not bench.store_url or not bench.regulator_key:
        raise RuntimeError("the bench has no state store url or regulator key")
    await asyncio.sleep(settings.settle_s)
    started = time.perf_counter()
    population = populate(
        uuid.uuid4().hex, settings.stat_members, settings.seed, date.fromisoformat(settings.today)
    )
    made_s = time.perf_counter() - started
    db = open_database(bench.store_url)
    try:
        started = time.perf_counter()
        # The gateway migrated the store when it started; this only finds nothing to do.
        await migrate(db)
        await write(db, population, bench.client_id)
        written_s = time.perf_counter() - started
        calls_before = await _checking_calls(bench)
        timed = {d: await _timed(bench, population.watchlist_id, d) for d in DIMENSIONS}
        everyone = await _timed(bench, None, "STATUS", bench.regulator_key)
        calls = {d: n - calls_before[d] for d, n in (await _checking_calls(bench)).items()}
        rechecked = await _rechecked(db, population.watchlist_id)
    finally:
        await db.close()
    members = len(population.members)
    dimensions: dict[str, Any] = {}
    rows: list[Row] = [
        Row(
            f"statistics: {members:,}-member watchlist written to the store",
            f"{written_s:.2f} s ({members:,} members, {len(population.listings):,} listings; "
            f"made up in {made_s:.2f} s)",
        )
    ]
    for dimension, answer in timed.items():
        figures = answer.figures()
        expected = population.expected[dimension]
        got = _as_expected(answer.rows)
        matches = got == expected and list(got) == sorted(got)
        dimensions[dimension] = {
            "ms": figures,
            "matches": matches,
            "rows": answer.rows,
            "expected": [{"key": k, "subjects": s, "records": r} for k, (s, r) in expected.items()],
        }
        rows.append(_row(f"statistics {dimension}, {members:,} members", figures, answer.rows))
    status_total = sum(int(r["subjects"]) for r in everyone.rows)
    everyone_figures = everyone.figures()
    figure = "statistics STATUS, every watched subject (regulator)"
    rows.append(_row(figure, everyone_figures, everyone.rows))
    matching = sum(d["matches"] for d in dimensions.values())
    # The bench's list is the only one: every watched subject is one of its members.
    everyone_matches = _as_expected(everyone.rows) == population.expected["STATUS"]
    rows.append(
        Row(
            "statistics: answers against the rows written",
            f"{matching} of {len(DIMENSIONS)} dimensions as written, the regulator's STATUS "
            f"{'too' if everyone_matches else 'NOT'}; members re-checked "
            f"{rechecked}; department calls meanwhile "
            + ", ".join(f"{d} {n}" for d, n in calls.items()),
        )
    )
    data: dict[str, Any] = {
        "members": members,
        "listings": len(population.listings),
        "watchlist_id": population.watchlist_id,
        "client_id": bench.client_id,
        "made_up_s": round(made_s, 2),
        "written_s": round(written_s, 2),
        "requests_per_dimension": settings.stat_requests,
        "warm_up": STATS_WARM_UP,
        "goal_median_ms": STATS_GOAL.bound,
        "dimensions": dimensions,
        "regulator_status": {
            "ms": everyone_figures,
            "subjects": status_total,
            "matches": everyone_matches,
            "rows": everyone.rows,
        },
        "members_rechecked": rechecked,
        "department_calls": calls,
    }
    return Result(data, rows)


def _row(figure: str, ms: dict[str, Any], answer: list[dict[str, Any]]) -> Row:
    subjects = sum(int(r["subjects"]) for r in answer)
    records = sum(int(r["records"] or 0) for r in answer)
    content = f"{len(answer)} keys, {subjects:,} subjects" + (
        f", {records:,} records" if any(r["records"] is not None for r in answer) else ""
    )
    return Row(
        f"{figure}: median / p95",
        f"{ms['p50']:.1f} / {ms['p95']:.1f} ms ({content})",
        goal=STATS_GOAL,
        compared=ms["p50"],
    )


async def _checking_calls(bench: Bench) -> dict[str, int]:
    """The requests the departments a check calls have counted so far (/_admin/stats)."""
    counts: dict[str, int] = {}
    for name in CHECKING_DEPARTMENTS:
        async with bench.session.get(f"{bench.departments[name]}/_admin/stats") as response:
            stats = await response.json()
        counts[name] = sum(int(n) for n in stats["requests"].values())
    return counts


async def _rechecked(db: Database, watchlist_id: str) -> int:
    """Members a worker claimed or checked since they were written: none should be."""
    async with db.transaction() as tx:
        row = await tx.fetch_one(
            "SELECT COUNT(*) FROM watch_members WHERE watchlist_id = ? AND "
            "(lease_owner IS NOT NULL OR state IS NOT NULL OR due_at <= ?)",
            (watchlist_id, time.time()),
        )
    return int(row[0]) if row is not None else 0
