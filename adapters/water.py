"""水利 信用信息开放数据 (departments/water.md): three CSV files, synced into our own index."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from adapters.base import Adapter, AdapterDeps, Parts, SubjectResult
from adapters.dates import parse_slash
from adapters.http import PayloadError, fetch, gather_strict
from adapters.observe import CallOutcome, outcome_of
from adapters.options import knob, read_options
from core.records import CreditRecord, Department, RecordKind, SubjectFacts, WaterGrade
from core.sources import (
    PUBLIC_TEXT,
    SNAPSHOT_TEXT,
    FailureKind,
    SourceError,
    SourceHealth,
    SourceState,
)

log = logging.getLogger(__name__)

GRADES_PATH = "/opendata/credit-grades.csv"
LISTS_PATH = "/opendata/credit-lists.csv"
PENALTIES_PATH = "/opendata/penalties.csv"
# water.md: files can hold hundreds of thousands of rows, uncompressed.
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
# contract §6: the files are downloaded at start and every sync_interval_s (default 300).
DEFAULT_SYNC_INTERVAL_S = 300.0
# contract §6: 36 hours; the department rebuilds its files daily.
DEFAULT_MAX_AGE_S = 129_600.0
# A whole file takes longer than one API answer; a hung download still ends.
DEFAULT_DOWNLOAD_TIMEOUT_S = 60.0
WATER_GRADES = frozenset({"AAA", "AA", "A", "B", "C"})
LIST_KINDS = {"黑名单": RecordKind.WATER_BLACKLIST, "重点关注名单": RecordKind.WATER_WATCHLIST}
# water.md: 信用修复 is 是 when publication stopped early after credit repair, else empty.
REPAIRED = "是"


@dataclass(frozen=True, slots=True)
class WaterOptions:
    """Knobs of [sources.water]: how often the files are synced and how large they may be."""

    sync_interval_s: float = knob(DEFAULT_SYNC_INTERVAL_S, above=0, maximum=7 * 86_400)
    # contract §6: a snapshot older than this counts as missing (the files are rebuilt daily).
    max_age_s: float = knob(DEFAULT_MAX_AGE_S, above=0, maximum=30 * 86_400)
    # By default the larger of DEFAULT_DOWNLOAD_TIMEOUT_S and the table's timeout_s.
    download_timeout_s: float | None = knob(None, above=0, maximum=3600)
    max_file_bytes: int = knob(DEFAULT_MAX_FILE_BYTES, minimum=1, maximum=2**40)


@dataclass(slots=True)
class _Subject:
    """What one file, or the merged index, holds on one USCC."""

    name: str | None = None
    grade: WaterGrade | None = None
    records: list[CreditRecord] = field(default_factory=list)


Parsed = dict[str, _Subject]


@dataclass(frozen=True, slots=True)
class _FileSpec:
    """One open-data file: where it is, the columns read and how a row is indexed."""

    name: str
    path: str
    columns: tuple[str, ...]
    row: Callable[[Mapping[str, str], Parsed], None]


@dataclass(frozen=True, slots=True)
class _FileData:
    """A file as last committed: its ETag and its parsed rows."""

    etag: str | None
    parsed: Parsed


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The index served to lookups and when it was last confirmed current."""

    index: dict[str, _Subject]
    synced_at: datetime


class WaterAdapter(Adapter):
    """Used for subject lookups, answered from the last good snapshot of the open-data files."""

    department = Department.WATER
    option_types = (WaterOptions,)
    # No per-subject call: any number of codes is answered from the index.
    max_batch = 100_000
    answers_from_snapshot = True

    def __init__(self, deps: AdapterDeps) -> None:
        super().__init__(deps)
        options = read_options(WaterOptions, deps.config.options)
        self._sync_interval_s = options.sync_interval_s
        self._download_timeout_s = options.download_timeout_s or max(
            DEFAULT_DOWNLOAD_TIMEOUT_S, deps.config.timeout_s
        )
        self._max_file_bytes = options.max_file_bytes
        self._base_url = deps.config.url.rstrip("/")
        self._files: dict[str, _FileData] = {}
        self._snapshot: _Snapshot | None = None
        self._max_age_s = options.max_age_s
        # Why the latest sync failed; None when it succeeded (or none ran yet).
        self._failure: SourceError | None = None
        self._sync_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """First sync (failures leave the state UNAVAILABLE), then a sync every interval."""
        if self._task is not None:
            return
        await self._sync_logged()
        self._task = asyncio.create_task(self._keep_synced(), name="water-sync")

    async def close(self) -> None:
        """Stop the background sync."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        """Facts per USCC from the snapshot; NOT_SYNCED for every code while there is none."""
        # One part: whatever is asked, the index answers everything it holds on a code.
        snapshot = self._snapshot
        if snapshot is None:
            error = SourceError(
                Department.WATER, FailureKind.NOT_SYNCED, "no snapshot of the open-data files yet"
            )
            return {code: error for code in usccs}
        stale = self._failure is not None
        # contract §6: a snapshot older than max_age_s counts as missing; its facts are
        # still shown (a blacklist in it still punishes), but never as an answer of today.
        too_old = self._too_old(snapshot)
        results: dict[str, SubjectResult] = {}
        for code in usccs:
            entry = snapshot.index.get(code)
            results[code] = SubjectFacts(
                department=Department.WATER,
                uscc=code,
                as_of=snapshot.synced_at,
                known=entry is not None,
                stale=stale or too_old,
                refresh_failed=too_old,
                name=entry.name if entry else None,
                records=tuple(entry.records) if entry else (),
                water_grade=entry.grade if entry else None,
            )
        return results

    async def health(self) -> SourceHealth:
        """The sync state; no call to the department."""
        return self.snapshot_state()

    def snapshot_state(self) -> SourceHealth:
        """OK, STALE (sync failed or snapshot too old) or UNAVAILABLE (none yet); our texts."""
        snapshot = self._snapshot
        if snapshot is None:
            why = PUBLIC_TEXT[self._failure.kind] if self._failure else "not synced yet"
            message = f"no snapshot of the files yet: {why}"
            return SourceHealth(Department.WATER, SourceState.UNAVAILABLE, None, message)
        if self._too_old(snapshot):
            hours = self._max_age_s / 3600
            message = f"the snapshot is older than max_age_s ({hours:g} h): it counts as missing"
            return SourceHealth(Department.WATER, SourceState.STALE, snapshot.synced_at, message)
        if self._failure is not None:
            return SourceHealth(
                Department.WATER, SourceState.STALE, snapshot.synced_at, SNAPSHOT_TEXT
            )
        return SourceHealth(Department.WATER, SourceState.OK, snapshot.synced_at)

    def _too_old(self, snapshot: _Snapshot) -> bool:
        return (self.deps.clock.now() - snapshot.synced_at).total_seconds() > self._max_age_s

    async def sync_now(self) -> SourceHealth:
        """Download the three files (conditionally) and swap in a new snapshot if all succeed."""
        async with self._sync_lock:
            try:
                fetched = await gather_strict(*(self._fetch(spec) for spec in FILES))
            except SourceError as exc:
                # water.md: "the previous file stays valid"; the old snapshot is kept whole,
                # and the ETags with it, so the next sync asks for the new files again.
                self._failure = exc
                log.warning("water sync failed: %s", exc.message)
                self.deps.observer.sync_done(Department.WATER, outcome_of(exc))
                return self.snapshot_state()
            now = self.deps.clock.now()
            if self._snapshot is not None and all(data is None for data in fetched):
                # Every file answered 304: the index is current as of this check.
                self._snapshot = replace(self._snapshot, synced_at=now)
            else:
                files = {
                    spec.name: data if data is not None else self._files[spec.name]
                    for spec, data in zip(FILES, fetched, strict=True)
                }
                index = await asyncio.to_thread(_merge, [files[spec.name] for spec in FILES])
                self._files = files
                self._snapshot = _Snapshot(index, now)
            self._failure = None
            self.deps.observer.sync_done(Department.WATER, CallOutcome.OK)
            return self.snapshot_state()

    async def _keep_synced(self) -> None:
        while True:
            await asyncio.sleep(self._sync_interval_s)
            await self._sync_logged()

    async def _sync_logged(self) -> None:
        try:
            await self.sync_now()
        except Exception:
            # A bug in one sync must not end the background task: the next interval tries
            # again, and meanwhile the state says the data is stale.
            log.exception("water sync failed unexpectedly")
            self._failure = SourceError(
                Department.WATER, FailureKind.BAD_PAYLOAD, "latest sync failed unexpectedly"
            )
            self.deps.observer.sync_done(Department.WATER, CallOutcome.BAD_PAYLOAD)

    async def _fetch(self, spec: _FileSpec) -> _FileData | None:
        """The file parsed, or None when the department answered 304 Not Modified."""
        known = self._files.get(spec.name)
        headers: dict[str, str] = {}
        if known is not None and known.etag:
            # water.md: a matching If-None-Match gets 304 with no body.
            headers["If-None-Match"] = known.etag
        # A department call like the live ones' (metrics, span, traceparent): one download.
        observed = self.deps.observer.department_call(Department.WATER)
        outcome = CallOutcome.CANCELLED
        try:
            answer = await fetch(
                self.deps.session,
                Department.WATER,
                "GET",
                self._base_url + spec.path,
                timeout_s=self._download_timeout_s,
                headers=observed.headers(headers),
                accept=frozenset({200, 304}),
                max_bytes=self._max_file_bytes,
            )
            outcome = CallOutcome.OK
        except SourceError as exc:
            outcome = outcome_of(exc)
            # The same failure, naming the file, for the STALE/UNAVAILABLE message.
            raise SourceError(
                Department.WATER, exc.kind, f"{spec.name}: {exc.message}", exc.retry_after_s
            ) from None
        finally:
            observed.finished(outcome)
        if answer.status == 304:
            if known is None:
                raise SourceError(
                    Department.WATER, FailureKind.BAD_PAYLOAD, f"{spec.name}: 304 unasked"
                )
            return None
        try:
            # A file of 100,000 rows takes a while to parse: off the event loop.
            parsed = await asyncio.to_thread(_parse_file, spec, answer.body)
        except PayloadError as exc:
            raise SourceError(
                Department.WATER, FailureKind.BAD_PAYLOAD, f"{spec.name}: {exc}"
            ) from None
        return _FileData(answer.headers.get("ETag"), parsed)


def _parse_file(spec: _FileSpec, body: bytes) -> Parsed:
    """A downloaded file's rows by USCC; run in a thread."""
    parsed: Parsed = {}
    for line, row in _rows(body, spec.columns):
        try:
            spec.row(row, parsed)
        except PayloadError as exc:
            raise PayloadError(f"line {line}: {exc}") from None
    return parsed


def _rows(body: bytes, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """The data rows of a CSV file as {column: value}, checked against its header."""
    try:
        # water.md: UTF-8 with a byte-order mark; utf-8-sig drops the BOM (and takes a
        # file without one).
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError("file is not UTF-8") from None
    # newline="" hands CRLF and line breaks inside quoted fields to the csv module as they
    # are (RFC 4180), instead of translating them first.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise PayloadError("file is empty")
        # Columns are found by their Chinese header names, never by position; NFKC makes
        # full- and half-width brackets (罚款金额（万元）) compare equal.
        names = [_header_key(name) for name in header]
        positions: dict[str, int] = {}
        for column in columns:
            key = _header_key(column)
            if key not in names:
                raise PayloadError(f"header lacks column {column}")
            positions[column] = names.index(key)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                # A short row is a cut or broken file; half a file would read as clean.
                raise PayloadError(f"line {reader.line_num}: wrong number of fields")
            yield reader.line_num, {c: row[i].strip() for c, i in positions.items()}
    except csv.Error:
        raise PayloadError(f"line {reader.line_num}: malformed CSV") from None


def _header_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip()


def _uscc(row: Mapping[str, str]) -> str:
    code = row["统一社会信用代码"].upper()
    if not code:
        raise PayloadError("统一社会信用代码 is empty")
    return code


def _grade_row(row: Mapping[str, str], parsed: Parsed) -> None:
    """A credit-grades.csv row into the parsed file."""
    grade = row["信用等级"]
    if grade not in WATER_GRADES:
        raise PayloadError("信用等级 is not one of AAA AA A B C")
    found = WaterGrade(
        grade=grade,
        evaluated_on=parse_slash(row["评价日期"], "评价日期"),
        valid_until=parse_slash(row["有效期至"], "有效期至"),
    )
    subject = parsed.setdefault(_uscc(row), _Subject())
    subject.name = subject.name or row["单位名称"] or None
    # Should a subject appear more than once, its latest evaluation is its grade.
    if subject.grade is None or _grade_order(found) > _grade_order(subject.grade):
        subject.grade = found


def _grade_order(grade: WaterGrade) -> tuple[date, date]:
    return (grade.evaluated_on or date.min, grade.valid_until or date.min)


def _list_row(row: Mapping[str, str], parsed: Parsed) -> None:
    """A credit-lists.csv row (黑名单 / 重点关注名单) into the parsed file."""
    kind = LIST_KINDS.get(row["名单类型"])
    if kind is None:
        raise PayloadError("名单类型 is neither 黑名单 nor 重点关注名单")
    number = row["记录编号"]
    if not number:
        raise PayloadError("记录编号 is empty")
    authority = row["认定单位"] or None
    label = (
        "水利建设市场主体黑名单"
        if kind is RecordKind.WATER_BLACKLIST
        else "水利建设市场主体重点关注名单"
    )
    record = CreditRecord(
        id=f"WATER:{number}",
        department=Department.WATER,
        kind=kind,
        title=f"{label}（{authority}）" if authority else label,
        reason=row["列入原因"] or None,
        authority=authority,
        listed_on=parse_slash(row["列入日期"], "列入日期"),
        # water.md: removed and expired entries stay in the file as history; in force until
        # the earlier of 公开期限至 (inclusive) and 移出日期 (exclusive), judged later.
        published_until=parse_slash(row["公开期限至"], "公开期限至"),
        removed_on=parse_slash(row["移出日期"], "移出日期"),
    )
    subject = parsed.setdefault(_uscc(row), _Subject())
    subject.name = subject.name or row["单位名称"] or None
    subject.records.append(record)


def _penalty_row(row: Mapping[str, str], parsed: Parsed) -> None:
    """A penalties.csv row into the parsed file."""
    number = row["处罚决定书文号"]
    if not number:
        raise PayloadError("处罚决定书文号 is empty")
    authority = row["处罚机关"] or None
    amount = row["罚款金额（万元）"]
    reason_parts = [row["违法行为类型"], row["处罚内容"], f"罚款{amount}万元" if amount else ""]
    detail = " ".join(part for part in (authority, number) if part)
    record = CreditRecord(
        id=f"WATER:penalty:{number}",
        department=Department.WATER,
        kind=RecordKind.ADMINISTRATIVE_PENALTY,
        title=f"水行政处罚（{detail}）",
        reason="；".join(part for part in reason_parts if part) or None,
        document_number=number,
        authority=authority,
        listed_on=parse_slash(row["处罚决定日期"], "处罚决定日期"),
        published_until=parse_slash(row["公示截止日期"], "公示截止日期"),
        repaired=row["信用修复"] == REPAIRED,
    )
    subject = parsed.setdefault(_uscc(row), _Subject())
    subject.name = subject.name or row["行政相对人名称"] or None
    subject.records.append(record)


def _merge(files: list[_FileData]) -> dict[str, _Subject]:
    """One index over the three files; run in a thread like the parsing."""
    index: dict[str, _Subject] = {}
    for data in files:
        for code, part in data.parsed.items():
            subject = index.setdefault(code, _Subject())
            subject.name = subject.name or part.name
            subject.grade = subject.grade or part.grade
            subject.records.extend(part.records)
    for subject in index.values():
        subject.records.sort(key=lambda r: (r.listed_on or date.min, r.id), reverse=True)
    return index


FILES = (
    _FileSpec(
        "credit-grades.csv",
        GRADES_PATH,
        ("统一社会信用代码", "单位名称", "信用等级", "评价日期", "有效期至"),
        _grade_row,
    ),
    _FileSpec(
        "credit-lists.csv",
        LISTS_PATH,
        (
            "记录编号",
            "统一社会信用代码",
            "单位名称",
            "名单类型",
            "列入原因",
            "认定单位",
            "列入日期",
            "公开期限至",
            "移出日期",
        ),
        _list_row,
    ),
    _FileSpec(
        "penalties.csv",
        PENALTIES_PATH,
        (
            "处罚决定书文号",
            "统一社会信用代码",
            "行政相对人名称",
            "违法行为类型",
            "处罚内容",
            "罚款金额（万元）",
            "处罚决定日期",
            "公示截止日期",
            "处罚机关",
            "信用修复",
        ),
        _penalty_row,
    ),
)
