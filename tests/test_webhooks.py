"""Webhook delivery of watchlist changes (contract §9) on both store engines, to a real receiver.

The receiver is an aiohttp server on a loopback port that records every request and can
be told to fail, redirect or hold its answers. Changes and their deliveries are stored as
the watchlist checks store them: `insert_changes` and `enqueue_deliveries` in one
transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config_state import WebhooksConfig
from gateway.webhooks import NOT_ALLOWED, WebhookSender, body_of, signature
from store.changes import ChangeRow, insert_changes
from store.database import Database, open_database
from store.migrate import migrate
from store.webhooks import WebhookStore, enqueue_deliveries
from tests.stores import BACKENDS, store_url

SECRET = "whsec-测试-4f1c9a"
LIST_ID = "wl-test-1"
DOC = Path(__file__).resolve().parent.parent / "docs" / "monitoring.md"
RECORD = {
    "id": "COURTS:3100000001",
    "department": "COURTS",
    "kind": "DISHONEST_DEBTOR",
    "level": "PUNISHMENT",
    "title": "失信被执行人",
    "reason": "有履行能力而拒不履行",
    "documentNumber": "(2026)沪0115执1234号",
    "authority": "上海市浦东新区人民法院",
    "listedOn": "2026-05-18",
    "endsOn": None,
    "active": True,
    "repaired": False,
    "disputed": False,
}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A webhook receiver on 127.0.0.1: answers 204 unless told otherwise."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        # Answer 500 to this many requests to /hook first.
        self.fail_first = 0
        # Answer 302 to /hook with this Location.
        self.redirect_to: str | None = None
        # While set, requests to /hook wait for this event before being answered.
        self.hold: asyncio.Event | None = None
        self.base = ""
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{self.base}/hook"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body, time.monotonic()))
        if request.path != "/hook":
            return web.Response(status=204)
        if self.hold is not None:
            await self.hold.wait()
        if len(self.at("/hook")) <= self.fail_first:
            return web.Response(status=500, text="down for maintenance")
        if self.redirect_to is not None:
            return web.Response(status=302, headers={"Location": self.redirect_to})
        return web.Response(status=204)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    with store_url(request.param, str(tmp_path / "state.db")) as url:
        database = open_database(url)
        try:
            await migrate(database)
            yield database
        finally:
            await database.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


SenderFactory = Callable[..., WebhookSender]


@pytest.fixture
async def senders(db: Database) -> AsyncIterator[SenderFactory]:
    """Makes senders over the test's store (closed at the end); start() is the test's."""
    made: list[WebhookSender] = []

    def make(allow: tuple[str, ...], **options: Any) -> WebhookSender:
        options.setdefault("first_backoff_s", 0.1)
        options.setdefault("poll_s", 0.1)
        sender = WebhookSender(WebhookStore(db), WebhooksConfig(allow), **options)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.close()


async def _watchlist(db: Database, url: str | None, list_id: str = LIST_ID) -> None:
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO watchlists (id, client_id, name, webhook_url, webhook_secret, "
            "created_at, created_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (list_id, "bank-test", "贷后监控", url, SECRET, "2026-05-20T09:00:00+08:00", 1),
        )


def _change(n: int, list_id: str = LIST_ID) -> ChangeRow:
    return ChangeRow(
        0,
        uuid.uuid4().hex,
        list_id,
        "bank-test",
        "91310115MA1K3YJ52Q",
        f"上海某某贸易有限公司{n}",
        "LISTED",
        RECORD,
        "CLEAR",
        "PUNISHED",
        "2026-05-20T09:41:07+08:00",
    )


async def _changes(
    db: Database,
    url: str,
    count: int = 1,
    now: float | None = None,
    keep_s: float = 86_400 * 2,
    list_id: str = LIST_ID,
) -> list[ChangeRow]:
    """Stored as the watchlist checks store them: the changes and their deliveries at once."""
    async with db.transaction() as tx:
        numbered = await insert_changes(tx, [_change(n, list_id) for n in range(count)])
        await enqueue_deliveries(
            tx, numbered, url, time.time() if now is None else now, keep_s=keep_s
        )
    return numbered


async def _delivery(db: Database, seq: int) -> tuple[Any, ...] | None:
    async with db.transaction() as tx:
        row: tuple[Any, ...] | None = await tx.fetch_one(
            "SELECT attempts, delivered_at, last_error, lease_owner FROM webhook_deliveries "
            "WHERE change_seq = ?",
            (seq,),
        )
    return row


async def until(condition: Callable[[], Any], within_s: float = 8.0) -> None:
    """Waits until condition() (awaited when it is a coroutine) is true."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _verifies(received: Received) -> bool:
    digest = hmac.new(SECRET.encode("utf-8"), received.body, hashlib.sha256).hexdigest()
    header = received.headers["X-Signature-256"]
    return hmac.compare_digest(f"sha256={digest}".encode(), header.encode())


async def test_a_change_is_posted_signed_with_its_public_fields(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    await _watchlist(db, receiver.url)
    [change] = await _changes(db, receiver.url)
    outcomes: list[str] = []
    sender = senders((receiver.base + "/",), on_attempt=outcomes.append)
    await sender.start()
    sender.wake()
    store = WebhookStore(db)
    await until(lambda: outcomes)
    await until(lambda: _pending_is(store, 0))
    [request] = receiver.requests
    assert request.path == "/hook"
    expected = json.dumps(change.public(), ensure_ascii=False, separators=(",", ":")).encode()
    assert request.body == expected == body_of(change)
    assert json.loads(request.body)["record"] == RECORD
    assert "上海某某贸易有限公司0" in request.body.decode("utf-8")
    assert _verifies(request)
    assert request.headers["X-Signature-256"] == signature(SECRET, request.body)
    assert request.headers["X-Change-Id"] == change.id
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "credit-gateway-webhooks"
    assert outcomes == ["delivered"]
    row = await _delivery(db, change.seq)
    assert row is not None and row[0] == 1 and row[1] is not None and row[3] is None


async def _pending_is(store: WebhookStore, count: int) -> bool:
    return await store.pending() == count


async def test_a_failing_receiver_gets_the_same_change_again_after_backoff(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    receiver.fail_first = 2
    await _watchlist(db, receiver.url)
    [change] = await _changes(db, receiver.url)
    outcomes: list[str] = []
    sender = senders((receiver.base + "/",), on_attempt=outcomes.append, first_backoff_s=0.2)
    await sender.start()
    await until(lambda: outcomes == ["failed", "failed", "delivered"])
    requests = receiver.at("/hook")
    assert len(requests) == 3
    assert {r.headers["X-Change-Id"] for r in requests} == {change.id}
    assert len({r.body for r in requests}) == 1 and all(_verifies(r) for r in requests)
    # 0.2 s after the first failure, then twice that (jitter only adds).
    assert requests[1].at - requests[0].at >= 0.2 - 0.02
    assert requests[2].at - requests[1].at >= 0.4 - 0.02
    row = await _delivery(db, change.seq)
    assert row is not None and row[0] == 3 and row[1] is not None
    assert row[2] == "HTTP 500"
    assert await WebhookStore(db).pending() == 0


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    receiver.redirect_to = receiver.base + "/elsewhere"
    await _watchlist(db, receiver.url)
    [change] = await _changes(db, receiver.url)
    outcomes: list[str] = []
    sender = senders((receiver.base + "/",), on_attempt=outcomes.append)
    await sender.start()
    await until(lambda: len(outcomes) >= 2)
    await sender.close()
    assert set(outcomes) == {"failed"}
    assert receiver.at("/elsewhere") == []
    assert len(receiver.at("/hook")) >= 2
    row = await _delivery(db, change.seq)
    assert row is not None and row[0] >= 2 and row[1] is None and row[2] == "HTTP 302"
    assert await WebhookStore(db).pending() == 1


async def test_a_url_no_longer_allowed_is_never_called(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    await _watchlist(db, receiver.url)
    [change] = await _changes(db, receiver.url)
    outcomes: list[str] = []
    # The operator narrowed the allow-list after the list was created.
    sender = senders(("https://hooks.bank.example/",), on_attempt=outcomes.append)
    await sender.start()
    await until(lambda: len(outcomes) >= 2)
    await sender.close()
    assert receiver.requests == []
    row = await _delivery(db, change.seq)
    assert row is not None and row[0] >= 2 and row[1] is None and row[2] == NOT_ALLOWED
    # Allowed again: the delivery still pending is made.
    again: list[str] = []
    sender = senders((receiver.base + "/",), on_attempt=again.append, max_backoff_s=0.2)
    await sender.start()
    await until(lambda: again == ["delivered"])
    assert [r.headers["X-Change-Id"] for r in receiver.requests] == [change.id]


async def test_a_new_sender_delivers_what_a_stopped_one_left(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    receiver.hold = asyncio.Event()
    await _watchlist(db, receiver.url)
    changes = await _changes(db, receiver.url, count=3)
    first = senders((receiver.base + "/",), batch=1)
    await first.start()
    await until(lambda: len(receiver.requests) == 1)
    # Stopped while its first POST waits for an answer: nothing was recorded delivered.
    await first.close()
    store = WebhookStore(db)
    assert await store.pending() == 3
    hold, receiver.hold = receiver.hold, None
    hold.set()
    outcomes: list[str] = []
    second = senders((receiver.base + "/",), on_attempt=outcomes.append)
    assert second.owner != first.owner
    await second.start()
    # Its leases were given back: taken at once, not after they ran out (30 s).
    await until(lambda: _pending_is(store, 0), within_s=5.0)
    assert outcomes == ["delivered"] * 3
    ids = [r.headers["X-Change-Id"] for r in receiver.requests]
    # At least once: the change being sent when the first sender stopped may come twice.
    assert set(ids) == {c.id for c in changes} and len(ids) in (3, 4)
    for change in changes:
        row = await _delivery(db, change.seq)
        assert row is not None and row[1] is not None


async def test_a_delivery_past_its_give_up_time_is_not_sent(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    receiver.fail_first = 1000
    await _watchlist(db, receiver.url)
    # Found long ago: its give-up time is past (the gateway was down all that time).
    [old] = await _changes(db, receiver.url, now=time.time() - 100, keep_s=50)
    # Found now, kept 1 s: attempts at about 0, 0.1, 0.3 and 0.7 s, then given up.
    [recent] = await _changes(db, receiver.url, keep_s=1.0)
    store = WebhookStore(db)
    assert await store.pending() == 1
    outcomes: list[str] = []
    sender = senders((receiver.base + "/",), on_attempt=outcomes.append)
    await sender.start()
    await until(lambda: "given_up" in outcomes)
    sent = len(receiver.requests)
    await asyncio.sleep(1.2)
    assert len(receiver.requests) == sent, "nothing is sent after giving up"
    assert outcomes[-1] == "given_up" and set(outcomes[:-1]) == {"failed"}
    assert {r.headers["X-Change-Id"] for r in receiver.requests} == {recent.id}
    assert 2 <= sent <= 5
    assert await store.pending() == 0 and await store.next_due() is None
    old_row = await _delivery(db, old.seq)
    assert old_row is not None and old_row[0] == 0 and old_row[1] is None


async def test_a_deleted_watchlist_gets_no_delivery(
    db: Database, receiver: Receiver, senders: SenderFactory
) -> None:
    await _watchlist(db, receiver.url)
    [change] = await _changes(db, receiver.url)
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM watchlists WHERE id = ?", (LIST_ID,))
    store = WebhookStore(db)
    assert await store.claim("someone", time.time(), 30, 10) == []
    assert await _delivery(db, change.seq) is None, "dropped"
    # And the sender sends nothing for a list deleted while its delivery waited.
    await _watchlist(db, receiver.url, "wl-test-2")
    await _changes(db, receiver.url, list_id="wl-test-2")
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM watchlists WHERE id = ?", ("wl-test-2",))
    sender = senders((receiver.base + "/",))
    await sender.start()
    await until(lambda: _pending_is(store, 0))
    await asyncio.sleep(0.2)
    assert receiver.requests == []


async def test_leases_keep_senders_apart(db: Database) -> None:
    await _watchlist(db, "https://hooks.bank.example/credit")
    changes = await _changes(db, "https://hooks.bank.example/credit", count=4)
    store = WebhookStore(db)
    now = time.time()
    a, b = await asyncio.gather(store.claim("A", now, 30, 3), store.claim("B", now, 30, 3))
    seqs_a, seqs_b = {d.change.seq for d in a}, {d.change.seq for d in b}
    assert not seqs_a & seqs_b and seqs_a | seqs_b == {c.seq for c in changes}
    claimed = {d.change.seq: d for d in a + b}
    for change in changes:
        delivery = claimed[change.seq]
        assert delivery.change == change and delivery.secret == SECRET
        assert delivery.url == "https://hooks.bank.example/credit" and delivery.attempts == 0
    assert await store.claim("C", now + 1, 30, 10) == [], "leases held"
    # An idle sender waits for the leases to run out rather than ask again and again.
    assert await store.next_due(now + 1) == pytest.approx(now + 30)
    # Leases run out (their holders died): another sender takes everything over.
    taken = await store.claim("C", now + 31, 30, 10)
    assert len(taken) == 4
    seq = taken[0].change.seq
    assert not await store.failed("A", seq, now + 40, "HTTP 500"), "only by the lease holder"
    assert await store.failed("C", seq, now + 40, "HTTP 500")
    row = await _delivery(db, seq)
    assert row is not None and row[0] == 1 and row[2] == "HTTP 500" and row[3] is None
    await store.release("C")
    assert len(await store.claim("D", now + 32, 30, 10)) == 3, "one waits for its retry"
    assert await store.delivered("D", seq, "2026-05-20T10:00:00+08:00")
    assert not await store.delivered("D", seq, "2026-05-20T10:00:01+08:00")
    assert await store.pending(now + 32) == 3
    assert await store.claim("E", now + 100, 30, 10) != []


def _documented_receiver() -> str:
    """The Python receiver of docs/monitoring.md, as written there."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Webhooks", 1)[1].split("### A receiver, for banks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.fixture
def documented_receiver() -> Iterator[tuple[dict[str, Any], str, list[dict[str, Any]]]]:
    """The documented receiver running on a loopback port: its namespace, URL, and what it
    handled."""
    namespace: dict[str, Any] = {"__name__": "webhook_receiver_example"}
    exec(compile(_documented_receiver(), str(DOC), "exec"), namespace)
    handled: list[dict[str, Any]] = []
    namespace["SECRET"] = SECRET
    namespace["handle"] = handled.append
    namespace["WebhookHandler"].log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), namespace["WebhookHandler"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield namespace, f"http://127.0.0.1:{server.server_address[1]}/webhooks", handled
    finally:
        server.shutdown()
        server.server_close()


async def test_the_documented_receiver_verifies_and_deduplicates(
    db: Database,
    senders: SenderFactory,
    documented_receiver: tuple[dict[str, Any], str, list[dict[str, Any]]],
) -> None:
    namespace, url, handled = documented_receiver
    await _watchlist(db, url)
    [change] = await _changes(db, url)
    outcomes: list[str] = []
    sender = senders((url.rsplit("/", 1)[0] + "/",), on_attempt=outcomes.append)
    await sender.start()
    await until(lambda: outcomes == ["delivered"])
    assert handled == [change.public()]
    body = body_of(change)
    verify = namespace["verify"]
    assert verify(SECRET, body, signature(SECRET, body))
    assert not verify(SECRET, body + b" ", signature(SECRET, body))
    assert not verify("another secret", body, signature(SECRET, body))
    assert not verify(SECRET, body, None)
    assert not verify(SECRET, body, "sha256=加")
    async with aiohttp.ClientSession() as session:

        async def post(data: bytes, signed: str | None) -> int:
            headers = {"Content-Type": "application/json", "X-Change-Id": change.id}
            if signed is not None:
                headers["X-Signature-256"] = signed
            async with session.post(url, data=data, headers=headers) as response:
                return response.status

        # Sent again (at least once): accepted, not handled twice.
        assert await post(body, signature(SECRET, body)) == 204
        tampered = body.replace(b"PUNISHED", b"CLEAR")
        assert await post(tampered, signature(SECRET, body)) == 401
        assert await post(body, None) == 401
    assert handled == [change.public()]
