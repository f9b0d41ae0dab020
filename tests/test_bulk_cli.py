"""`credit-gateway bulk` (docs/bulk.md): the bank's command line for bulk checks (contract §8).

Three kinds of test: the input file read by the functions themselves; the command as a real
process against a scripted stand-in of the gateway's bulk API, for what a real gateway
cannot be made to do on cue (a 503, a Retry-After, a dropped connection, a cancelled check,
Ctrl-C); and the command as a real process against a real gateway over the sandbox.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.identity import id_check_digit, org_code_check_digit, uscc_check_digit
from gateway import bulk_client
from gateway.bulk_client import BadLine, decode_text, parse_codes, parse_retry_after, retry_delay
from gateway.cli import main
from sandbox.model import Dataset
from tests.conftest import GatewayFactory
from tests.pii import full_id_numbers
from tests.servers import KEYS

BOM = b"\xef\xbb\xbf"
COLUMNS = (
    b"index,uscc,error,name,status,complete,missing_sources,listings,measures,"
    b"credit_class,checked_at"
)
# A citizen ID pasted into the codes file by mistake: valid, so it must never be printed.
ID_NUMBER = "11010519900307777" + id_check_digit("11010519900307777")
KEY_ENV = "CREDIT_GATEWAY_TEST_BULK_KEY"
SUBMITTED = re.compile(r"bulk check (\S+) submitted: (\d+) codes; resume with --resume (\S+)")


def uscc(number: int) -> str:
    """A valid USCC of region 610802 (GB 32100 and GB 11714 check digits)."""
    body = f"{number:08d}"
    first17 = "91610802" + body + org_code_check_digit(body)
    return first17 + uscc_check_digit(first17)


# --- the input file --------------------------------------------------------------------


def test_one_code_a_line_with_line_numbers_and_blank_lines_skipped() -> None:
    text = f"{uscc(1)}\n\n  {uscc(2).lower()}  \r\nnot-a-code\n{uscc(3)}\n\n"
    codes = parse_codes(text)
    # Normalised (trimmed, upper-cased) and in file order.
    assert codes.codes == [uscc(1), uscc(2), uscc(3)]
    assert [(bad.line, bad.value) for bad in codes.bad] == [(4, "not-a-code")]
    assert str(codes.bad[0]) == 'line 4: a USCC has 18 characters ("not-a-code")'


def test_a_bad_check_digit_is_named() -> None:
    wrong = uscc(5)[:-1] + ("0" if uscc(5)[-1] != "0" else "1")
    (bad,) = parse_codes(f"{uscc(4)}\n{wrong}\n").bad
    assert bad.line == 2
    assert "check digit" in bad.reason


def test_a_csv_with_a_uscc_column_anywhere_and_excels_bom() -> None:
    data = (
        BOM
        + (
            "名称,备注,USCC,金额\r\n"
            f'"榆林市某某有限公司","a, quoted note",{uscc(1)},100\r\n'
            "\r\n"
            f"其他公司,,{uscc(2)},\r\n"
            ",,,\r\n"
            "第三家,,12345,7\r\n"
            "第四家,note\r\n"
        ).encode()
    )
    codes = parse_codes(decode_text(data))
    assert codes.codes == [uscc(1), uscc(2)]
    assert [(bad.line, bad.reason) for bad in codes.bad] == [
        (6, "a USCC has 18 characters"),
        (7, "no code in the uscc column"),
    ]


def test_a_csv_of_the_uscc_column_only_and_tab_separated() -> None:
    assert parse_codes(f"uscc\n{uscc(1)}\n").codes == [uscc(1)]
    assert parse_codes(f"name\tuscc\nA\t{uscc(2)}\n").codes == [uscc(2)]


def test_utf16_and_gbk_files_as_excel_saves_them() -> None:
    text = f"名称,uscc\r\n某公司,{uscc(3)}\r\n"
    for data in (text.encode("utf-16"), text.encode("gbk")):
        assert parse_codes(decode_text(data)).codes == [uscc(3)]


def test_an_id_number_on_a_bad_line_is_masked() -> None:
    (bad,) = parse_codes(f"{uscc(1)}\n{ID_NUMBER}\n").bad
    shown = str(bad)
    assert shown.startswith("line 2: ")
    assert ID_NUMBER not in shown
    assert ID_NUMBER[:6] + "********" + ID_NUMBER[-4:] in shown
    # Glued to other text, too; and a terminal escape is shown, not sent.
    (glued,) = parse_codes(f"ID{ID_NUMBER}\x1b[2J\n").bad
    assert not full_id_numbers(str(glued).replace("ID", " "))
    assert "\x1b" not in str(glued)
    assert str(BadLine(9, "x", "A" * 100)).endswith('…")')


def test_an_empty_file_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, "key-bank")
    empty = tmp_path / "codes.csv"
    empty.write_bytes(BOM + b"\r\n\r\n")
    assert _main_bulk(empty) == 2
    assert f"no valid code in {empty}; nothing submitted" in capsys.readouterr().err


def test_a_file_of_bad_lines_only_is_exit_2_listing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, "key-bank")
    codes = tmp_path / "codes.txt"
    codes.write_text(f"nope\n{ID_NUMBER}\n", encoding="utf-8")
    assert _main_bulk(codes) == 2
    err = capsys.readouterr().err
    assert 'line 1: a USCC has 18 characters ("nope")' in err
    assert "line 2: " in err
    assert not full_id_numbers(err)
    assert "(2 bad lines); nothing submitted" in err
    assert "Traceback" not in err


def test_a_missing_or_empty_key_variable_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = tmp_path / "codes.txt"
    codes.write_text(uscc(1) + "\n", encoding="utf-8")
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert _main_bulk(codes) == 2
    assert f"the environment variable {KEY_ENV} is not set or empty" in capsys.readouterr().err
    monkeypatch.setenv(KEY_ENV, "  ")
    assert _main_bulk(codes) == 2
    # A key given where the variable's name belongs is not echoed.
    assert main(["bulk", "--url", "http://127.0.0.1:9", "--key-env", "k3y-Sec.ret", "x"]) == 2
    err = capsys.readouterr().err
    assert "k3y-Sec.ret" not in err
    assert "named by --key-env" in err


def test_neither_file_nor_resume_and_a_bad_url_are_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, "key-bank")
    assert main(["bulk", "--url", "http://127.0.0.1:9", "--key-env", KEY_ENV]) == 2
    assert "give a file of codes to check, or --resume ID" in capsys.readouterr().err
    assert main(["bulk", "--url", "127.0.0.1:8000", "--key-env", KEY_ENV, "--resume", "1"]) == 2
    assert "is not an http:// or https:// URL" in capsys.readouterr().err


def test_retry_after_and_backoff() -> None:
    now = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert retry_delay(0, 12.0) == 12.0
    assert retry_delay(9, 10_000.0) == bulk_client.RETRY_AFTER_MAX_S
    assert 1.0 <= retry_delay(0, None) <= 1.2
    assert 4.0 <= retry_delay(2, None) <= 4.8
    assert retry_delay(40, None) <= bulk_client.BACKOFF_MAX_S * 1.2


def _main_bulk(codes: Path) -> int:
    return main(["bulk", "--url", "http://127.0.0.1:9", "--key-env", KEY_ENV, str(codes)])


# --- against a scripted stand-in of the gateway ------------------------------------------


@dataclass
class Reply:
    """One scripted answer: a status, a JSON or raw body, headers; or a dropped connection."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


def check(state: str, done: int, total: int = 3, **counts: int) -> Reply:
    """A `bulkCheck` (or `startBulkCheck`) answer of check 42."""
    node = {
        "id": "42",
        "state": state,
        "total": total,
        "done": done,
        "createdAt": "2026-05-20T09:00:00+08:00",
        "finishedAt": "2026-05-20T09:02:05+08:00" if state in ("DONE", "CANCELLED") else None,
        "counts": [{"key": k, "count": v} for k, v in counts.items()],
    }
    return Reply(body={"data": {"bulkCheck": node, "startBulkCheck": node}})


def refusal(code: str, message: str, status: int = 200) -> Reply:
    """A GraphQL error answer, as the gateway writes one."""
    return Reply(
        status, {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    )


EXPORT = (
    BOM + COLUMNS + b"\r\n0,91610802X,,\xe6\xa6\x86,CLEAR,true,,,,A,2026-05-20T09:00:01+08:00\r\n"
)


class FakeGateway:
    """Answers /graphql and the export from scripts; the last answer of a script repeats."""

    def __init__(self, start: list[Reply], polls: list[Reply], export: list[Reply]) -> None:
        self.scripts = {"start": start, "poll": polls, "export": export}
        self.requests: list[tuple[str, dict[str, Any], str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def operations(self) -> list[str]:
        """The operations asked for, in order: start, poll, export, cancel."""
        return [op for op, _, _ in self.requests]

    def _next(self, op: str) -> Reply:
        with self._lock:
            script = self.scripts[op]
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                query = payload["query"]
                op = (
                    "cancel"
                    if "cancelBulkCheck" in query
                    else "start"
                    if "startBulkCheck" in query
                    else "poll"
                )
                self._answer(op, payload)

            def do_GET(self) -> None:
                self._answer("export", {"path": self.path})

            def _answer(self, op: str, payload: dict[str, Any]) -> None:
                fake.requests.append((op, payload, self.headers.get("Authorization", "")))
                reply = fake._next(op if op != "cancel" else "poll")
                if reply.drop:
                    self.close_connection = True
                    return
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = body if isinstance(body, bytes) else body.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> FakeGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def codes_file(tmp_path: Path) -> Path:
    """Three good codes and a bad line between them."""
    path = tmp_path / "codes.txt"
    path.write_text(f"{uscc(1)}\n{uscc(2)}\nbad\n{uscc(3)}\n", encoding="utf-8")
    return path


def run_bulk(
    url: str, *args: str, cwd: Path, key: str | None = KEYS["bank"]
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway.cli bulk --url URL --key-env VAR ARGS`, the key in VAR."""
    return subprocess.run(
        _command(url, *args),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd,
        env=_env(key),
    )


def _command(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "bulk", "--url", url, "--key-env", KEY_ENV, *args]


def _env(key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    if key is not None:
        env[KEY_ENV] = key
    return env


def test_submits_follows_and_writes_the_export_as_received(
    tmp_path: Path, codes_file: Path
) -> None:
    with FakeGateway(
        start=[check("QUEUED", 0)],
        polls=[check("RUNNING", 1), check("RUNNING", 2), check("DONE", 3, CLEAR=2, PUNISHED=1)],
        export=[Reply(body=EXPORT, headers={"Content-Type": "text/csv; charset=utf-8"})],
    ) as fake:
        result = run_bulk(fake.url, str(codes_file), "--label", "贷前筛查", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert 'line 3: a USCC has 18 characters ("bad")' in err
    assert "bulk check 42 submitted: 3 codes; resume with --resume 42" in err
    # The bar's lines when stderr is no terminal: the first, and the final one.
    assert "QUEUED: 0/3 codes (0%)" in err
    assert re.search(r"DONE: 3/3 codes \(100%\), [0-9.]+ codes/s, 00:00 left", err), err
    assert "bulk check 42 DONE: 3/3 codes, 2 min 05 s" in err
    assert "\nCLEAR: 2\nPUNISHED: 1\n" in err
    assert (tmp_path / "bulk-42.csv").read_bytes() == EXPORT
    assert result.stdout == "bulk-42.csv\n"
    start = fake.requests[0]
    assert start[0] == "start"
    assert start[1]["variables"] == {
        "usccs": [uscc(1), uscc(2), uscc(3)],
        "scenario": "CREDIT_LOAN",
        "label": "贷前筛查",
    }
    assert {auth for _, _, auth in fake.requests} == {f"Bearer {KEYS['bank']}"}
    assert fake.requests[-1][1] == {"path": "/exports/bulk-checks/42.csv"}


def test_without_a_terminal_the_bar_writes_a_line_now_and_then(
    tmp_path: Path, codes_file: Path
) -> None:
    polls = [check("RUNNING", done, total=10) for done in range(1, 8)]
    with FakeGateway(
        start=[check("RUNNING", 0, total=10)],
        polls=[*polls, check("DONE", 10, total=10, CLEAR=10)],
        export=[Reply(body=EXPORT)],
    ) as fake:
        result = run_bulk(fake.url, str(codes_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = re.findall(
        r"^(RUNNING|DONE): (\d+)/10 codes \(\d+%\), (\S+) codes/s, (\S+) left, (\S+) elapsed$",
        result.stderr,
        re.MULTILINE,
    )
    # The first line, at least one while running (5 s apart), and the last.
    assert lines[0][:2] == ("RUNNING", "0")
    assert lines[-1][:2] == ("DONE", "10")
    between = lines[1:-1]
    assert between, result.stderr
    assert all(state == "RUNNING" and 0 < int(done) < 10 for state, done, *_ in between)
    # A rate in codes per second and the time left, from the progress of this run.
    for *_, rate, left, _ in between:
        assert float(rate) > 0
        assert re.fullmatch(r"\d\d:\d\d", left)


def test_polling_rides_out_503_a_dropped_connection_and_429_with_retry_after(
    tmp_path: Path, codes_file: Path
) -> None:
    with FakeGateway(
        # The submission too is sent again after a 429: nothing was started.
        start=[Reply(429, {"errors": []}, {"Retry-After": "1"}), check("RUNNING", 0)],
        polls=[
            refusal("OVERLOADED", "the gateway is busy", status=503),
            Reply(drop=True),
            Reply(429, refusal("RATE_LIMITED", "slow down").body, {"Retry-After": "3"}),
            check("DONE", 3, CLEAR=3),
        ],
        export=[Reply(503), Reply(body=EXPORT)],
    ) as fake:
        out = tmp_path / "out" / "results.csv"
        out.parent.mkdir()
        result = run_bulk(fake.url, str(codes_file), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "the gateway answered HTTP 429; trying again in 1 s" in err
    assert "the gateway answered HTTP 503; trying again in 1 s" in err
    assert re.search(r"connection to \S+ lost \(\w+\); trying again in 2 s", err), err
    assert "the gateway answered HTTP 429; trying again in 3 s" in err
    assert "Traceback" not in err
    assert fake.operations().count("start") == 2
    assert out.read_bytes() == EXPORT
    assert result.stdout == f"{out}\n"


def test_a_submission_whose_answer_is_lost_is_not_sent_twice(
    tmp_path: Path, codes_file: Path
) -> None:
    with FakeGateway(start=[Reply(500)], polls=[check("DONE", 3)], export=[Reply()]) as fake:
        result = run_bulk(fake.url, str(codes_file), cwd=tmp_path)
    assert result.returncode == 1
    assert "may have started the check anyway" in result.stderr
    assert fake.operations() == ["start"]


def test_batch_too_large_shows_the_gateways_message(tmp_path: Path, codes_file: Path) -> None:
    too_large = refusal("BATCH_TOO_LARGE", "at most 2 codes in a bulk check")
    with FakeGateway(start=[too_large], polls=[check("DONE", 3)], export=[Reply()]) as fake:
        result = run_bulk(fake.url, str(codes_file), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "credit-gateway bulk: the gateway refused the request: "
        "BATCH_TOO_LARGE: at most 2 codes in a bulk check; split the file" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert fake.operations() == ["start"]


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        (refusal("UNAUTHENTICATED", "unknown API key", 401), "HTTP 401 UNAUTHENTICATED"),
        (refusal("FORBIDDEN", "bulk checks need an API key"), "FORBIDDEN: bulk checks need"),
    ],
)
def test_refused_keys_are_one_line_and_exit_2(
    tmp_path: Path, codes_file: Path, reply: Reply, shown: str
) -> None:
    with FakeGateway(start=[reply], polls=[reply], export=[Reply()]) as fake:
        result = run_bulk(fake.url, str(codes_file), cwd=tmp_path)
    assert result.returncode == 2
    assert shown in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_of_an_unknown_id_is_not_found(tmp_path: Path) -> None:
    with FakeGateway(
        start=[check("DONE", 3)], polls=[Reply(body={"data": {"bulkCheck": None}})], export=[]
    ) as fake:
        result = run_bulk(fake.url, "--resume", "777", cwd=tmp_path)
    assert result.returncode == 2
    assert "NOT_FOUND: no bulk check 777 for this key" in result.stderr
    assert fake.operations() == ["poll"]


def test_resume_skips_submission_and_a_cancelled_check_writes_what_there_is(
    tmp_path: Path, codes_file: Path
) -> None:
    with FakeGateway(
        start=[check("QUEUED", 0)],
        polls=[check("RUNNING", 1), check("CANCELLED", 1, CLEAR=1)],
        export=[Reply(body=EXPORT)],
    ) as fake:
        # The original command line with --resume added: the file is not read again.
        result = run_bulk(fake.url, str(codes_file), "--resume", "42", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "--resume given, so" in result.stderr
    assert "bulk check 42: RUNNING, 1/3 done" in result.stderr
    assert "bulk check 42 CANCELLED: 1/3 codes" in result.stderr
    assert "\nCLEAR: 1\n" in result.stderr
    assert (tmp_path / "bulk-42.csv").read_bytes() == EXPORT
    assert "start" not in fake.operations()


def test_ctrl_c_prints_how_to_resume_and_cancels_nothing(tmp_path: Path, codes_file: Path) -> None:
    with FakeGateway(start=[check("RUNNING", 0)], polls=[check("RUNNING", 1)], export=[]) as fake:
        process = subprocess.Popen(
            _command(fake.url, str(codes_file), "--out", "r.csv"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_env(KEYS["bank"]),
        )
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if SUBMITTED.search(line):
                break
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
    err = "".join(seen) + rest
    assert process.returncode == 130, err
    assert (
        f"interrupted; resume with: credit-gateway bulk --url {fake.url} "
        f"--key-env {KEY_ENV} --resume 42 --out r.csv" in err
    )
    assert "Traceback" not in err
    assert "cancel" not in fake.operations()
    assert not (tmp_path / "r.csv").exists()


# --- against a real gateway over the sandbox ---------------------------------------------


def _served(field_name: str) -> bool:
    from schema import build_schema

    return field_name in build_schema().as_str()


needs_bulk_checks = pytest.mark.skipif(
    not _served("startBulkCheck"),
    reason="the gateway does not serve startBulkCheck yet (the server side of contract §8)",
)


@pytest.fixture
def bulk_gateway(make_gateway: GatewayFactory, tmp_path: Path) -> Iterator[str]:
    """A gateway of its own with a store in the test's directory; its base URL."""
    server = make_gateway(tables={"store": {"url": f"sqlite://{tmp_path}/state.db"}})
    yield server.url


def _ten_codes(dataset: Dataset) -> list[str]:
    codes = [dataset.examples["clean.with_grade_a"]]
    codes += [c.uscc for c in dataset.companies if c.uscc not in codes]
    return codes[:10]


@needs_bulk_checks
def test_a_small_file_runs_to_done_and_resume_writes_the_same_export(
    bulk_gateway: str, dataset: Dataset, tmp_path: Path
) -> None:
    codes = _ten_codes(dataset)
    lines = ["uscc,备注", *(f"{c},ok" for c in codes[:4]), "not-a-code,x", f"{ID_NUMBER},oops"]
    lines += [f"{c.lower()}," for c in codes[4:]]
    path = tmp_path / "申请人.csv"
    path.write_bytes(BOM + "\r\n".join(lines).encode() + b"\r\n")

    result = run_bulk(bulk_gateway, str(path), "--label", "e2e", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert 'line 6: a USCC has 18 characters ("not-a-code")' in err
    assert "line 7: " in err
    assert not full_id_numbers(err + result.stdout)
    submitted = SUBMITTED.search(err)
    assert submitted is not None, err
    check_id = submitted.group(1)
    assert submitted.group(2) == "10"
    assert re.search(r"^(QUEUED|RUNNING|DONE): \d+/10 codes", err, re.MULTILINE), err
    assert re.search(r"DONE: 10/10 codes \(100%\), [0-9.?]+ codes/s", err), err
    assert f"bulk check {check_id} DONE: 10/10 codes" in err
    counted = re.findall(r"^([A-Z_]+): (\d+)$", err, re.MULTILINE)
    assert sum(int(n) for _, n in counted) == 10, err
    out = tmp_path / result.stdout.strip()
    assert out.name == f"bulk-{re.sub(r'[^A-Za-z0-9._-]', '_', check_id)}.csv"

    export = out.read_bytes()
    assert export.startswith(BOM + COLUMNS + b"\r\n")
    assert export.count(b"\n") == export.count(b"\r\n")
    rows = export[len(BOM) :].decode().split("\r\n")
    assert rows[-1] == ""
    assert len(rows[1:-1]) == 10
    assert [row.split(",")[1] for row in rows[1:-1]] == codes

    again = run_bulk(bulk_gateway, "--resume", check_id, "--out", "again.csv", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "submitted" not in again.stderr
    assert (tmp_path / "again.csv").read_bytes() == export

    # Another client's check reads as none (contract §7).
    other = run_bulk(bulk_gateway, "--resume", check_id, cwd=tmp_path, key=KEYS["partner"])
    assert other.returncode == 2
    assert f"NOT_FOUND: no bulk check {check_id}" in other.stderr


@needs_bulk_checks
def test_a_key_the_gateway_does_not_know_is_a_clear_refusal(
    bulk_gateway: str, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "codes.txt"
    path.write_text("\n".join(_ten_codes(dataset)[:2]) + "\n", encoding="utf-8")
    result = run_bulk(bulk_gateway, str(path), cwd=tmp_path, key="no-such-key")
    assert result.returncode == 2
    assert "the gateway refused the request: HTTP 401 UNAUTHENTICATED" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
