"""`credit-gateway bulk`: a bank's bulk check (contract §8), from a file of codes to a CSV.

The codes are read and checked here, submitted with `startBulkCheck`, followed with
`bulkCheck` behind a progress bar, and the results downloaded from
`/exports/bulk-checks/<id>.csv` once the check ends. This is a client of the gateway over
HTTP: it imports `core` and nothing of the app, schema, resolvers or adapters.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import csv
import json
import os
import random
import re
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import aiohttp
from tqdm import tqdm  # type: ignore[import-untyped]

from core.identity import InvalidIdentity, normalize_uscc
from core.masking import escape_controls, mask_ids

# Exit statuses: 2 when the request cannot succeed as given (input, key, permission, an
# unknown id, too many codes), 1 when the check did not finish (cancelled, or the gateway
# stayed out of reach: resume later), 130 on Ctrl-C (the check goes on in the gateway).
EXIT_DONE = 0
EXIT_UNFINISHED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130

FINAL_STATES = frozenset({"DONE", "CANCELLED"})
# Refusals the gateway answers before doing anything: always safe to send again.
RETRYABLE_CODES = frozenset({"RATE_LIMITED", "OVERLOADED"})
# Refusals of a submission too large: over `[background] max_bulk_codes`, or over the
# gateway's `[limits] max_body_bytes`.
TOO_LARGE_CODES = frozenset({"BATCH_TOO_LARGE", "REQUEST_TOO_LARGE"})
POLL_INTERVAL_S = 1.0
# On a terminal the bar is redrawn after every poll; otherwise a line is written this often.
LOG_REFRESH_S = 5.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 300.0
# Out of reach this long in a row: stop, saying how to resume (the check goes on).
GIVE_UP_AFTER_S = 900.0
# At most this many bad lines are listed one by one; the rest are counted.
SHOWN_BAD_LINES = 50
SHOWN_VALUE_CHARS = 40
HEADER_NAME = "uscc"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# An environment variable's name; anything else given to --key-env may be the key itself,
# and is never echoed.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_FILE_SAFE = re.compile(r"[^A-Za-z0-9._-]")

START = """
mutation StartBulkCheck($usccs: [String!]!, $scenario: Scenario, $label: String) {
  startBulkCheck(usccs: $usccs, scenario: $scenario, label: $label) { id state total done }
}
"""
POLL = """
query BulkCheck($id: ID!) {
  bulkCheck(id: $id) { id state total done createdAt finishedAt counts { key count } }
}
"""

T = TypeVar("T")


class BulkError(Exception):
    """An expected failure: one line for the user and the exit status, never a traceback."""

    def __init__(self, message: str, status: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.status = status


class Retryable(Exception):
    """A call that failed on the way (connection, 5xx, 429); `reached`: it may have run."""

    def __init__(self, reason: str, retry_after: float | None = None, reached: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.reached = reached


@dataclass(frozen=True)
class BadLine:
    """A line of the input that is not a valid USCC; reported, never submitted."""

    line: int
    reason: str
    value: str

    def __str__(self) -> str:
        return f'line {self.line}: {self.reason} ("{shown_value(self.value)}")'


@dataclass(frozen=True)
class CodeList:
    """The codes of an input file, normalised and in file order, and its bad lines."""

    codes: list[str]
    bad: list[BadLine]


@dataclass(frozen=True)
class BulkOptions:
    """What `credit-gateway bulk` was asked to do."""

    url: str
    key_env: str
    codes_file: Path | None = None
    scenario: str | None = "CREDIT_LOAN"
    label: str | None = None
    out: Path | None = None
    resume: str | None = None


@dataclass(frozen=True)
class CheckStatus:
    """A bulk check as `startBulkCheck` or `bulkCheck` answered it."""

    id: str
    state: str
    total: int
    done: int
    counts: tuple[tuple[str, int], ...] = ()
    created_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class Job:
    """What the run knows so far, for the Ctrl-C message: the check id once there is one."""

    options: BulkOptions
    check_id: str | None = None
    submitting: bool = False
    started: float = field(default_factory=time.monotonic)


# --- input -----------------------------------------------------------------------------


def shown_value(value: str) -> str:
    """A bad line's value as printed: ID numbers masked, controls escaped, cut short."""
    masked = escape_controls(mask_ids(value, decode=False, glued=True))
    if len(masked) > SHOWN_VALUE_CHARS:
        return masked[: SHOWN_VALUE_CHARS - 1] + "…"
    return masked


def decode_text(data: bytes) -> str:
    """The input file's text: UTF-8 (BOM or not), UTF-16 with a BOM, else GB18030 (GBK)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # What Excel on a Chinese Windows writes for "CSV (逗号分隔)".
        return data.decode("gb18030", errors="replace")


def parse_codes(text: str) -> CodeList:
    """Codes from one code a line, or from the `uscc` column of a CSV with a header row."""
    lines = _LINE_BREAK.split(text.removeprefix("\ufeff"))
    for index, line in enumerate(lines):
        if line.strip():
            delimiter = _delimiter(line)
            column = _uscc_column(next(csv.reader([line], delimiter=delimiter)))
            if column is None:
                return _plain_codes(lines)
            return _csv_codes(lines[index + 1 :], index + 1, column, delimiter)
    return CodeList([], [])


def _delimiter(header: str) -> str:
    """Used on the header row: the separator Excel wrote."""
    # Excel writes commas, semicolons in some locales, tabs for "Unicode text".
    return next((d for d in ",\t;" if d in header), ",")


def _uscc_column(cells: Sequence[str]) -> int | None:
    """Used on the first row: where the `uscc` column is, or None for one code a line."""
    names = [cell.strip().removeprefix("\ufeff").strip().lower() for cell in cells]
    return names.index(HEADER_NAME) if HEADER_NAME in names else None


def _plain_codes(lines: Sequence[str]) -> CodeList:
    """Used for a file of one code a line."""
    result = CodeList([], [])
    for number, line in enumerate(lines, start=1):
        if line.strip():
            _take(result, number, line)
    return result


def _csv_codes(rows: Sequence[str], header_line: int, column: int, delimiter: str) -> CodeList:
    """Used for a CSV file: the rows after the header, numbered as lines of the file."""
    result = CodeList([], [])
    reader = csv.reader(rows, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return result
        except csv.Error as exc:
            result.bad.append(BadLine(header_line + reader.line_num, f"not a CSV row: {exc}", ""))
            continue
        number = header_line + reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if column >= len(row) or not row[column].strip():
            result.bad.append(BadLine(number, "no code in the uscc column", delimiter.join(row)))
            continue
        _take(result, number, row[column])


def _take(result: CodeList, number: int, value: str) -> None:
    """Used for each non-blank value: a code kept, or a bad line noted."""
    try:
        result.codes.append(normalize_uscc(value))
    except InvalidIdentity as exc:
        result.bad.append(BadLine(number, str(exc), value.strip()))


def read_codes(path: Path) -> CodeList:
    """Used before submitting: the codes file read, decoded and checked line by line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BulkError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_codes(decode_text(data))


def report_bad_lines(bad: Sequence[BadLine], stream: IO[str]) -> None:
    """Used after reading the file: each bad line on stderr, the first few one by one."""
    for line in bad[:SHOWN_BAD_LINES]:
        print(line, file=stream)
    if len(bad) > SHOWN_BAD_LINES:
        print(f"… and {len(bad) - SHOWN_BAD_LINES} more bad lines", file=stream)


# --- settings --------------------------------------------------------------------------


def read_key(env_var: str) -> str:
    """Used first: the API key from the environment variable --key-env names."""
    key = os.environ.get(env_var, "").strip() if env_var else ""
    if key:
        return key
    # A key given by mistake instead of a variable's name is not echoed back.
    name = env_var if _ENV_NAME.fullmatch(env_var) else "named by --key-env"
    raise BulkError(
        f"the environment variable {name} is not set or empty: it must hold the API key "
        "(--key-env takes the variable's name; a key never goes on the command line)"
    )


def base_url(url: str) -> str:
    """The gateway's base URL without a trailing slash; http:// or https:// only."""
    if not re.match(r"https?://[^/\s]+", url):
        raise BulkError(f"--url {url!r} is not an http:// or https:// URL of the gateway")
    return url.rstrip("/")


def default_out(check_id: str) -> Path:
    """Where the results go without --out: bulk-<id>.csv in the current directory."""
    return Path(f"bulk-{_FILE_SAFE.sub('_', check_id)}.csv")


def check_out_dir(out: Path | None) -> None:
    """Used before submitting, so a run of hours does not end on a directory that is not there."""
    folder = (out.parent if out is not None else Path()).resolve()
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise BulkError(f"cannot write the results into {folder}: no such writable directory")


def resume_command(options: BulkOptions, check_id: str) -> str:
    """The command line that continues a check, printed wherever this run stops early."""
    words = ["credit-gateway", "bulk", "--url", options.url, "--key-env", options.key_env]
    words += ["--resume", check_id]
    if options.out is not None:
        words += ["--out", str(options.out)]
    return " ".join(shlex.quote(word) for word in words)


# --- HTTP ------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date); None if it says none."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_delay(failures: int, retry_after: float | None) -> float:
    """Used between tries: the server's Retry-After when given, else a growing backoff."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_MAX_S)
    backoff = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** min(failures, 16))
    # Up to a fifth more, so that many clients refused together do not come back together.
    return backoff * (1 + random.random() / 5)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    say: Callable[[str], None],
    idempotent: bool = True,
    give_up_after_s: float = GIVE_UP_AFTER_S,
) -> T:
    """Used for every call to the gateway: a call refused or cut off is tried again later.

    A call that may have run (`Retryable.reached`) is repeated only when `idempotent`;
    otherwise, or when the gateway stays out of reach, the Retryable is raised.
    """
    started = time.monotonic()
    failures = 0
    while True:
        try:
            return await attempt()
        except Retryable as exc:
            if exc.reached and not idempotent:
                raise
            delay = retry_delay(failures, exc.retry_after)
            if time.monotonic() - started + delay > give_up_after_s:
                raise
            say(f"{exc.reason}; trying again in {delay:.0f} s")
            failures += 1
            await asyncio.sleep(delay)


def error_line(errors: Any, status: int) -> tuple[str | None, str]:
    """The first GraphQL error of an answer as (code, one line naming it)."""
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}
    extensions = first.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    message = first.get("message") or "no message"
    named = f"{code}: {message}" if code else str(message)
    if status != 200:
        named = f"HTTP {status} {named}"
    return (str(code) if code else None), escape_controls(mask_ids(named, decode=False))


class Gateway:
    """The gateway's GraphQL endpoint and bulk-check export, one try per call."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self._session = session
        self.url = url
        self._headers = {"Authorization": f"Bearer {key}"}

    async def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Used for the mutation and each poll: the answer's `data`, or an error raised."""
        body = json.dumps({"query": query, "variables": variables}, separators=(",", ":"))
        headers = {**self._headers, "Content-Type": "application/json"}
        try:
            async with self._session.post(
                f"{self.url}/graphql", data=body.encode(), headers=headers
            ) as response:
                _raise_if_retryable(response)
                status, raw = response.status, await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise Retryable(_no_connection(self.url, exc), reached=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Retryable(f"connection to {self.url} lost ({type(exc).__name__})") from None
        return _graphql_data(status, raw, self.url)

    async def export(self, check_id: str) -> bytes:
        """Used once the check has ended: the CSV export's bytes, exactly as served."""
        url = f"{self.url}/exports/bulk-checks/{quote(check_id, safe='')}.csv"
        try:
            async with self._session.get(url, headers=self._headers) as response:
                _raise_if_retryable(response)
                status, raw = response.status, await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise Retryable(_no_connection(self.url, exc), reached=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Retryable(f"download from {self.url} cut off ({type(exc).__name__})") from None
        if status == 200:
            return raw
        if status == 404:
            raise BulkError(f"the gateway has no export of bulk check {check_id} (HTTP 404)")
        raise BulkError(f"the export was refused: {_refusal(status, raw)}")


def _no_connection(url: str, exc: aiohttp.ClientConnectorError) -> str:
    """Used when the gateway cannot be reached at all: nothing was sent."""
    return f"cannot connect to {url}: {exc.strerror or type(exc).__name__}"


def _raise_if_retryable(response: aiohttp.ClientResponse) -> None:
    """Used on every answer: a 429 or 5xx becomes a Retryable, with its Retry-After."""
    if response.status != 429 and response.status < 500:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    # 429 and 503 are refusals before any work; another 5xx may have come after some.
    reached = response.status not in (429, 503)
    raise Retryable(f"the gateway answered HTTP {response.status}", retry_after, reached)


def _graphql_data(status: int, raw: bytes, url: str) -> dict[str, Any]:
    """Used on a GraphQL answer: its data, or its first error as a one-line failure."""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if status == 200:
            raise BulkError(f"{url}/graphql did not answer with JSON; is --url the gateway?")
        raise BulkError(f"{url}/graphql answered HTTP {status}; is --url the gateway's base URL?")
    if payload.get("errors"):
        code, line = error_line(payload["errors"], status)
        if code in RETRYABLE_CODES:
            raise Retryable(f"the gateway refused for now: {line}", reached=False)
        hint = "; split the file into smaller ones" if code in TOO_LARGE_CODES else ""
        raise BulkError(f"the gateway refused the request: {line}{hint}")
    data = payload.get("data")
    if status != 200 or not isinstance(data, dict):
        raise BulkError(f"{url}/graphql answered HTTP {status} without data")
    return data


def _refusal(status: int, raw: bytes) -> str:
    """Used when the export is refused: the gateway's error, or the HTTP status."""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("errors"):
        return error_line(payload["errors"], status)[1]
    return f"HTTP {status}"


# --- the check -------------------------------------------------------------------------


def check_status(node: Any) -> CheckStatus:
    """A BulkCheck object of an answer, its shape checked."""
    if not isinstance(node, dict):
        raise BulkError("the gateway's answer has no bulk check in it")
    try:
        counts = tuple((str(c["key"]), int(c["count"])) for c in node.get("counts") or ())
        return CheckStatus(
            id=str(node["id"]),
            state=str(node["state"]),
            total=int(node["total"]),
            done=int(node["done"]),
            counts=counts,
            created_at=_timestamp(node.get("createdAt")),
            finished_at=_timestamp(node.get("finishedAt")),
        )
    except (KeyError, TypeError, ValueError):
        raise BulkError("the gateway's answer is not a bulk check as the contract has it") from None


def _timestamp(value: Any) -> datetime | None:
    """Used for createdAt and finishedAt."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


async def submit(gateway: Gateway, codes: list[str], options: BulkOptions) -> CheckStatus:
    """Used without --resume: startBulkCheck, tried again only when it surely did not run."""
    variables = {"usccs": codes, "scenario": options.scenario, "label": options.label}

    async def attempt() -> CheckStatus:
        data = await gateway.graphql(START, variables)
        return check_status(data.get("startBulkCheck"))

    try:
        return await with_retries(attempt, _say_plain, idempotent=False)
    except Retryable as exc:
        if not exc.reached:
            raise BulkError(f"{exc.reason}; nothing was submitted", EXIT_UNFINISHED) from None
        raise BulkError(
            f"{exc.reason} while submitting: the gateway may have started the check anyway "
            "(query bulkChecks to see it) or not",
            EXIT_UNFINISHED,
        ) from None


async def poll(gateway: Gateway, check_id: str, say: Callable[[str], None]) -> CheckStatus:
    """Used every second while following a check: bulkCheck(id), retried until it answers."""

    async def attempt() -> CheckStatus:
        data = await gateway.graphql(POLL, {"id": check_id})
        if data.get("bulkCheck") is None:
            raise BulkError(
                f"NOT_FOUND: no bulk check {check_id} for this key (it does not exist, or "
                "belongs to another client)"
            )
        return check_status(data["bulkCheck"])

    return await with_retries(attempt, say)


class _LineWriter:
    """Used as the bar's file when stderr is no terminal: each redraw becomes one line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        line = " ".join(text.replace("\r", " ").split())
        if line:
            self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def is_terminal(stream: IO[str]) -> bool:
    """Whether the bar can be redrawn in place: a terminal that says how wide it is."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError):
        return False


class ProgressBar:
    """Used while following a check: done/total, codes per second and time left, on stderr."""

    TERMINAL_FORMAT = (
        "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} codes "
        "[{elapsed}<{remaining}, {rate_noinv_fmt}]"
    )
    LOG_FORMAT = (
        "{desc}: {n_fmt}/{total_fmt} codes ({percentage:.0f}%), {rate_noinv_fmt}, "
        "{remaining} left, {elapsed} elapsed"
    )

    def __init__(self, status: CheckStatus, stream: IO[str]) -> None:
        self._stream = stream
        self._terminal = is_terminal(stream)
        self._every = 0.0 if self._terminal else LOG_REFRESH_S
        self._shown = time.monotonic()
        # Printed only when show() asks (mininterval 0); the rate is the average of this
        # run (smoothing 0), counting from where it found the check (initial).
        self._bar: Any = tqdm(
            total=status.total,
            initial=status.done,
            desc=status.state,
            file=stream if self._terminal else _LineWriter(stream),
            unit=" codes",
            bar_format=self.TERMINAL_FORMAT if self._terminal else self.LOG_FORMAT,
            mininterval=0,
            miniters=0,
            smoothing=0,
            ascii=not self._terminal,
            dynamic_ncols=self._terminal,
            # On a terminal the finished bar stays; in a log the final line is show()'s.
            leave=self._terminal,
        )

    def show(self, status: CheckStatus, final: bool = False) -> None:
        """Used after each poll: redraws the bar, or in a log writes a line now and then."""
        now = time.monotonic()
        if not final and now - self._shown < self._every:
            return
        self._shown = now
        self._bar.total = status.total
        self._bar.set_description_str(status.state, refresh=False)
        if status.done > self._bar.n:
            self._bar.update(status.done - self._bar.n)
        else:
            self._bar.n = status.done
            self._bar.refresh()

    def say(self, text: str) -> None:
        """Used for messages while the bar is up (retries): printed above it."""
        if self._terminal:
            tqdm.write(text, file=self._stream)
        else:
            print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Used when following ends, whichever way."""
        self._bar.close()


async def follow(gateway: Gateway, status: CheckStatus, job: Job) -> CheckStatus:
    """Used after submitting or on --resume: polls until DONE or CANCELLED, with the bar."""
    bar = ProgressBar(status, sys.stderr)
    try:
        while status.state not in FINAL_STATES:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                status = await poll(gateway, status.id, bar.say)
            except Retryable as exc:
                raise _unreachable(exc, job, status.id) from None
            bar.show(status, final=status.state in FINAL_STATES)
        return status
    finally:
        bar.close()


def _unreachable(exc: Retryable, job: Job, check_id: str) -> BulkError:
    """Used when retries run out: the failure, with the line that resumes the check."""
    minutes = GIVE_UP_AFTER_S / 60
    return BulkError(
        f"{exc.reason}, for over {minutes:.0f} minutes; the check goes on in the gateway: "
        f"resume with: {resume_command(job.options, check_id)}",
        EXIT_UNFINISHED,
    )


def duration_text(seconds: float) -> str:
    """A duration as people read it: 48 s, 3 min 05 s, 2 h 07 min."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def summary_lines(status: CheckStatus, run_s: float) -> list[str]:
    """Used when a check has ended: its state and duration, then one `KEY: count` a line."""
    if status.created_at is not None and status.finished_at is not None:
        took = duration_text((status.finished_at - status.created_at).total_seconds())
    else:
        took = f"{duration_text(run_s)} (followed by this run)"
    lines = [f"bulk check {status.id} {status.state}: {status.done}/{status.total} codes, {took}"]
    lines += [f"{key}: {count}" for key, count in status.counts]
    return lines


def write_atomically(path: Path, data: bytes) -> None:
    """The export written as received, under a temporary name first, so no half file stays."""
    partial = path.with_name(f".{path.name}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


async def save_export(gateway: Gateway, job: Job, check_id: str, path: Path) -> None:
    """Used at the end: downloads the export (retried) and writes it to path."""
    try:
        data = await with_retries(lambda: gateway.export(check_id), _say_plain)
    except Retryable as exc:
        raise _unreachable(exc, job, check_id) from None
    try:
        await asyncio.to_thread(write_atomically, path, data)
    except OSError as exc:
        raise BulkError(
            f"cannot write {path}: {exc.strerror or exc}; the results stay in the gateway: "
            f"resume with: {resume_command(job.options, check_id)}",
            EXIT_UNFINISHED,
        ) from None


def _say_plain(text: str) -> None:
    """Used for every message outside the bar: one line on stderr."""
    print(text, file=sys.stderr, flush=True)


async def run_check(job: Job, key: str, codes: list[str]) -> int:
    """The run once the input is read: submit or resume, follow, summarise, download."""
    options = job.options
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        gateway = Gateway(session, base_url(options.url), key)
        if options.resume is None:
            job.submitting = True
            status = await submit(gateway, codes, options)
            job.check_id = status.id
            _say_plain(
                f"bulk check {status.id} submitted: {len(codes)} codes; "
                f"resume with --resume {status.id}"
            )
        else:
            job.check_id = options.resume
            try:
                status = await poll(gateway, options.resume, _say_plain)
            except Retryable as exc:
                raise _unreachable(exc, job, options.resume) from None
            _say_plain(f"bulk check {status.id}: {status.state}, {status.done}/{status.total} done")
        status = await follow(gateway, status, job)
        for line in summary_lines(status, time.monotonic() - job.started):
            _say_plain(line)
        path = options.out if options.out is not None else default_out(status.id)
        await save_export(gateway, job, status.id, path)
    _say_plain(f"results written to {path}")
    print(path, flush=True)
    return EXIT_DONE if status.state == "DONE" else EXIT_UNFINISHED


def prepare(options: BulkOptions) -> tuple[str, list[str]]:
    """Used before any request: the key, the URL, the output folder and the checked codes."""
    key = read_key(options.key_env)
    base_url(options.url)
    check_out_dir(options.out)
    if options.resume is not None:
        if options.codes_file is not None:
            _say_plain(f"note: --resume given, so {options.codes_file} is not read")
        return key, []
    if options.codes_file is None:
        raise BulkError("give a file of codes to check, or --resume ID")
    codes = read_codes(options.codes_file)
    report_bad_lines(codes.bad, sys.stderr)
    if not codes.codes:
        bad = f" ({len(codes.bad)} bad lines)" if codes.bad else ""
        raise BulkError(f"no valid code in {options.codes_file}{bad}; nothing submitted")
    if codes.bad:
        _say_plain(f"{len(codes.bad)} bad lines left out; {len(codes.codes)} codes to submit")
    return key, codes.codes


def run(options: BulkOptions) -> int:
    """`credit-gateway bulk`: the whole run, its exit status, and Ctrl-C's resume line."""
    job = Job(options)
    try:
        key, codes = prepare(options)
        return asyncio.run(run_check(job, key, codes))
    except BulkError as exc:
        print(f"credit-gateway bulk: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(_interrupted(job), file=sys.stderr)
        return EXIT_INTERRUPTED


def _interrupted(job: Job) -> str:
    """Used on Ctrl-C: how to resume, or that nothing (or maybe something) was submitted."""
    if job.check_id is not None:
        # Nothing is cancelled: the check goes on in the gateway.
        return f"interrupted; resume with: {resume_command(job.options, job.check_id)}"
    if job.submitting:
        return (
            "interrupted before the gateway confirmed the submission; it may have started "
            "the check anyway (query bulkChecks to see it)"
        )
    return "interrupted; nothing was submitted"


def main(args: argparse.Namespace) -> int:
    """Used by gateway/cli.py: the parsed arguments of `credit-gateway bulk`, run."""
    return run(
        BulkOptions(
            url=args.url,
            key_env=args.key_env,
            codes_file=Path(args.codes) if args.codes is not None else None,
            scenario=args.scenario or None,
            label=args.label,
            out=Path(args.out) if args.out is not None else None,
            resume=args.resume,
        )
    )
