"""Watchlists, changes, the subscription and webhooks (contract §9), over the sandbox.

The departments' data changes while the gateway runs (the sandbox's /_admin/listings), so
these tests have a sandbox of their own: the session's stays as every other test expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from core.clock import Clock
from gateway.app import create_app
from sandbox.generator import generate
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import FAST_COURTS_RPS, TODAY, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient
from tests.stores import BACKENDS, store_url

CREATE = """mutation($n: String!, $u: [String!]!, $w: String) {
  createWatchlist(name: $n, usccs: $u, webhookUrl: $w) {
    watchlist { id name size webhookUrl counts { key count } } webhookSecret } }"""
LIST = """query($id: ID!, $s: JointStatus, $after: String) { watchlist(id: $id) {
  id size checkedAt counts { key count }
  members(first: 100, status: $s, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { uscc name status complete creditClass since checkedAt } } } } }"""
CHANGES = """query($id: ID, $after: String) { changes(watchlistId: $id, after: $after) {
  pageInfo { hasNextPage endCursor }
  edges { cursor node { id at watchlistId uscc name kind previousStatus status
    record { id department kind title active } } } } }"""
REFRESH = "mutation($id: ID!) { refreshWatchlist(id: $id) { id } }"
STATS = """query($id: ID, $g: StatDimension!) {
  statistics(watchlistId: $id, groupBy: $g) { key label subjects records } }"""


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[SandboxThread, Dataset]]:
    """Departments of these tests alone, whose listings the tests change."""
    dataset = generate(seed=11, subjects=150, today=TODAY)
    with SandboxThread(dataset) as sandbox:
        sandbox.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)
        yield sandbox, dataset


@dataclass
class Gateways:
    """Gateways over `world`, all on one store; stopped at the end of the test."""

    sandbox: SandboxThread
    store: str
    started: list[GatewayServer] = field(default_factory=list)

    def start(self, sources: dict[str, Any] | None = None, **tables: Any) -> GatewayServer:
        config = gateway_config(
            self.sandbox.urls, tables={"store": {"url": self.store}, **tables}, **(sources or {})
        )
        server = GatewayServer(create_app(config, Clock(TODAY))).start()
        self.started.append(server)
        return server


@pytest.fixture(params=BACKENDS)
def gateways(
    request: pytest.FixtureRequest, world: tuple[SandboxThread, Dataset], tmp_path: Path
) -> Iterator[Gateways]:
    sandbox, _ = world
    with store_url(request.param, str(tmp_path / "state.db")) as url:
        made = Gateways(sandbox, url)
        try:
            yield made
        finally:
            for server in made.started:
                server.stop()
            sandbox.clear_faults()
            sandbox.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)


def clean_codes(dataset: Dataset, sandbox: SandboxThread, count: int) -> list[str]:
    """Companies no department lists: a listing added to one is its only one (CLEAR before)."""
    from core.identity import org_code_of

    listed = {c.card_num for c in dataset.shixin} | {r.qy_dm for r in dataset.restrictions}
    listed |= {e.uscc for e in dataset.abnormal + dataset.illegal}
    listed |= {p.uscc for p in dataset.penalties} | {t.nsrsbh for t in dataset.tax_cases}
    listed |= {w.uscc for w in dataset.water_lists}
    return [
        c.uscc
        for c in dataset.companies
        if c.uscc not in listed and org_code_of(c.uscc) not in listed
    ][:count]


def create(client: GraphQLClient, codes: list[str], webhook: str | None = None) -> dict[str, Any]:
    body = client.query(CREATE, {"n": "贷后监控", "u": codes, "w": webhook})
    assert "errors" not in body, body
    created: dict[str, Any] = body["data"]["createWatchlist"]
    return created


def checked(client: GraphQLClient, list_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The list once every member has had its check."""
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, Any] = client.query(LIST, {"id": list_id})["data"]["watchlist"]
        if found["checkedAt"] is not None:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def refreshed(client: GraphQLClient, list_id: str, since: str) -> dict[str, Any]:
    """refreshWatchlist, then the list once every member was checked after `since`."""
    assert "errors" not in client.query(REFRESH, {"id": list_id})
    deadline = time.monotonic() + 30
    while True:
        found: dict[str, Any] = client.query(LIST, {"id": list_id})["data"]["watchlist"]
        nodes = [e["node"] for e in found["members"]["edges"]]
        if all(n["checkedAt"] and n["checkedAt"] > since for n in nodes):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def all_changes(client: GraphQLClient, list_id: str | None = None) -> list[dict[str, Any]]:
    page = client.query(CHANGES, {"id": list_id})["data"]["changes"]
    return [e["node"] for e in page["edges"]]


def test_create_validates_every_code_first_and_adds_nothing_on_a_bad_one(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    server = gateways.start()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    good = [c.uscc for c in world[1].companies[:3]]
    body = bank.query(CREATE, {"n": "x", "u": [good[0], "bad", good[1], "610802198707268198"]})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INVALID_USCC"
    assert "position(s) 1, 3" in error["message"] and "6108021987" not in error["message"]
    assert bank.query("{ watchlists { id } }")["data"]["watchlists"] == []
    created = create(bank, [good[0], good[1], good[0].lower()])
    assert created["watchlist"]["size"] == 2  # the same code twice is one member
    assert created["webhookSecret"] is None
    assert created["watchlist"]["counts"] == [{"key": "UNCHECKED", "count": 2}]


def test_ownership_like_bulk_checks(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    server = gateways.start()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    partner = GraphQLClient(server.url, key=KEYS["partner"])
    regulator = GraphQLClient(server.url, key=KEYS["regulator"])
    list_id = create(bank, [world[1].companies[0].uscc])["watchlist"]["id"]
    assert partner.query(LIST, {"id": list_id})["data"]["watchlist"] is None
    for mutation in (REFRESH, "mutation($id: ID!) { deleteWatchlist(id: $id) }"):
        refused = partner.query(mutation, {"id": list_id})
        assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert regulator.query(LIST, {"id": list_id})["data"]["watchlist"]["id"] == list_id
    assert partner.query("{ watchlists { id } }")["data"]["watchlists"] == []
    mine = regulator.query("{ watchlists { id } }")["data"]["watchlists"]
    assert list_id in [w["id"] for w in mine]
    anonymous = GraphQLClient(server.url).query(CREATE, {"n": "x", "u": []})
    assert anonymous["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Statistics over every watched subject: regulators only.
    refused = bank.query(STATS, {"g": "STATUS"})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_limits_and_webhook_allow_list(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    server = gateways.start(
        background={"max_watchlist_size": 2}, webhooks={"allow": ["https://hooks.bank.example/"]}
    )
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    codes = [c.uscc for c in world[1].companies[:3]]
    too_many = bank.query(CREATE, {"n": "x", "u": codes})
    assert too_many["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    for url in ("https://hooks.bank.example.evil.com/x", "http://169.254.169.254/latest"):
        body = bank.query(CREATE, {"n": "x", "u": codes[:1], "w": url})
        assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT", url
    created = create(bank, codes[:2], "https://hooks.bank.example/credit")
    assert len(created["webhookSecret"]) == 64
    assert created["watchlist"]["webhookUrl"] == "https://hooks.bank.example/credit"
    added = bank.query(
        "mutation($id: ID!, $u: [String!]!) { addToWatchlist(id: $id, usccs: $u) { size } }",
        {"id": created["watchlist"]["id"], "u": codes[2:]},
    )
    assert added["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"


def test_a_listing_is_reported_once_and_its_end_as_delisted(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    sandbox, dataset = world
    server = gateways.start()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    codes = clean_codes(dataset, sandbox, 3)
    list_id = create(bank, codes)["watchlist"]["id"]
    baseline = checked(bank, list_id)
    # The first check is the baseline: nothing is reported.
    assert all_changes(bank, list_id) == []
    target = codes[1]
    before = next(e["node"] for e in baseline["members"]["edges"] if e["node"]["uscc"] == target)
    added = sandbox.add_listing("courts", "shixin", target)
    try:
        after = refreshed(bank, list_id, baseline["checkedAt"])
        changes = all_changes(bank, list_id)
        listed = [c for c in changes if c["kind"] == "LISTED"]
        assert [c["uscc"] for c in listed] == [target]
        assert listed[0]["record"]["id"] == added["gateway_id"]
        assert listed[0]["record"]["active"] is True
        status = [c for c in changes if c["kind"] == "STATUS_CHANGED"]
        assert [(c["previousStatus"], c["status"]) for c in status] == [
            (before["status"], "PUNISHED")
        ]
        member = next(e["node"] for e in after["members"]["edges"] if e["node"]["uscc"] == target)
        assert member["status"] == "PUNISHED" and member["since"] > before["since"]
        # Nothing changed since: a second refresh reports nothing new.
        again = refreshed(bank, list_id, after["checkedAt"])
        assert all_changes(bank, list_id) == changes
    finally:
        sandbox.end_listing("courts", "shixin", str(added["id"]))
    refreshed(bank, list_id, again["checkedAt"])
    ended = all_changes(bank, list_id)[len(changes) :]
    assert [(c["kind"], c["uscc"]) for c in ended] == [
        ("DELISTED", target),
        ("STATUS_CHANGED", target),
    ]
    assert ended[0]["record"]["id"] == added["gateway_id"]
    assert ended[1]["previousStatus"] == "PUNISHED" and ended[1]["status"] == before["status"]


def test_a_department_that_did_not_answer_never_delists_nor_reports_clear(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    sandbox, dataset = world
    server = gateways.start()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    target = clean_codes(dataset, sandbox, 1)[0]
    added = sandbox.add_listing("courts", "shixin", target)
    try:
        list_id = create(bank, [target])["watchlist"]["id"]
        baseline = checked(bank, list_id)
        assert baseline["members"]["edges"][0]["node"]["status"] == "PUNISHED"
        sandbox.end_listing("courts", "shixin", str(added["id"]))
        # The courts down: their case has ended, but nothing may be concluded from silence.
        sandbox.set_faults("courts", down=True)
        down = refreshed(bank, list_id, baseline["checkedAt"])
        member = down["members"]["edges"][0]["node"]
        assert member["status"] == "INCOMPLETE" and member["complete"] is False
        assert all_changes(bank, list_id) == []
        sandbox.clear_faults()
        sandbox.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)
        back = refreshed(bank, list_id, down["checkedAt"])
        assert back["members"]["edges"][0]["node"]["complete"] is True
        kinds = [c["kind"] for c in all_changes(bank, list_id)]
        assert kinds == ["DELISTED", "STATUS_CHANGED"]
    finally:
        sandbox.clear_faults()
        sandbox.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)
        with contextlib.suppress(LookupError):  # ended above, unless the test stopped first
            sandbox.end_listing("courts", "shixin", str(added["id"]))


def test_statistics_come_from_the_latest_checks(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    server = gateways.start()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    regulator = GraphQLClient(server.url, key=KEYS["regulator"])
    codes = [c.uscc for c in world[1].companies[:40]]
    list_id = create(bank, codes)["watchlist"]["id"]
    found = checked(bank, list_id)
    counts = {c["key"]: c["count"] for c in found["counts"]}
    status = {
        r["key"]: r["subjects"]
        for r in bank.query(STATS, {"id": list_id, "g": "STATUS"})["data"]["statistics"]
    }
    assert status == counts and sum(status.values()) == 40
    regions = bank.query(STATS, {"id": list_id, "g": "REGION"})["data"]["statistics"]
    assert sum(r["subjects"] for r in regions) == 40
    assert all(r["key"].endswith("00") and len(r["key"]) == 6 and r["label"] for r in regions)
    assert [r["key"] for r in regions] == sorted(r["key"] for r in regions)
    kinds = bank.query(STATS, {"id": list_id, "g": "LISTING_KIND"})["data"]["statistics"]
    departments = bank.query(STATS, {"id": list_id, "g": "DEPARTMENT"})["data"]["statistics"]
    assert sum(r["records"] for r in kinds) == sum(r["records"] for r in departments) > 0
    months = bank.query(STATS, {"id": list_id, "g": "LISTING_MONTH"})["data"]["statistics"]
    assert all(len(r["key"]) == 7 and r["key"][4] == "-" for r in months)
    # A second list with some of the same codes: every watched subject counts once.
    other = create(regulator, codes[:10])["watchlist"]["id"]
    checked(regulator, other)
    everyone = regulator.query(STATS, {"g": "STATUS"})["data"]["statistics"]
    assert sum(r["subjects"] for r in everyone) == 40
    assert {r["key"]: r["subjects"] for r in everyone} == status

    def watched() -> int:
        rows = regulator.query(STATS, {"g": "REGION"})["data"]["statistics"]
        return sum(r["subjects"] for r in rows)

    # Removed from the first list: the five still on the second list stay watched.
    remove = "mutation($id: ID!, $u: [String!]!) { removeFromWatchlist(id: $id, usccs: $u) { id } }"
    assert "errors" not in bank.query(remove, {"id": list_id, "u": codes[:5] + codes[30:35]})
    assert watched() == 35
    assert "errors" not in regulator.query(
        "mutation($id: ID!) { deleteWatchlist(id: $id) }", {"id": other}
    )
    assert watched() == 30


def test_subscription_and_webhook_see_the_change(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    sandbox, dataset = world
    receiver = Receiver()
    with receiver.running() as hook_url:
        server = gateways.start(webhooks={"allow": [hook_url]})
        bank = GraphQLClient(server.url, key=KEYS["bank"])
        target = clean_codes(dataset, sandbox, 1)[0]
        created = create(bank, [target], f"{hook_url}credit-changes")
        list_id, secret = created["watchlist"]["id"], created["webhookSecret"]
        baseline = checked(bank, list_id)
        follow = Follower(server.url.replace("http", "ws") + "/graphql", KEYS["bank"], list_id)
        with follow.running():
            added = sandbox.add_listing("market", "serious_illegal", target)
            try:
                refreshed(bank, list_id, baseline["checkedAt"])
                pushed = follow.wait_for(2)
            finally:
                sandbox.end_listing("market", "serious_illegal", str(added["id"]))
        stored = all_changes(bank, list_id)
        assert [c["id"] for c in pushed] == [c["id"] for c in stored]
        assert [c["kind"] for c in pushed] == ["LISTED", "STATUS_CHANGED"]
        assert pushed[0]["record"]["id"] == added["gateway_id"]
        posts = receiver.wait_for(2)
        assert sorted(p.change_id for p in posts) == sorted(c["id"] for c in stored)
        for post in posts:
            signature = hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest()
            assert post.signature == f"sha256={signature}"
            assert json.loads(post.body)["id"] == post.change_id
            assert json.loads(post.body)["watchlistId"] == list_id
            assert post.path == "/credit-changes"
    # An unknown key is refused at connection_init.
    assert Follower(server_ws(gateways), "no-such-key", None).rejected()


def server_ws(gateways: Gateways) -> str:
    return gateways.started[-1].url.replace("http", "ws") + "/graphql"


@dataclass
class Post:
    path: str
    change_id: str
    signature: str
    body: bytes


class Receiver:
    """A bank's webhook endpoint on loopback, recording what it is sent."""

    def __init__(self) -> None:
        self.posts: list[Post] = []

    def running(self) -> Any:
        import threading

        @contextlib.contextmanager
        def serve() -> Iterator[str]:
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            runner_box: list[web.AppRunner] = []
            port_box: list[int] = []

            async def handle(request: web.Request) -> web.Response:
                self.posts.append(
                    Post(
                        request.path,
                        request.headers.get("X-Change-Id", ""),
                        request.headers.get("X-Signature-256", ""),
                        await request.read(),
                    )
                )
                return web.Response(status=204)

            async def start() -> None:
                app = web.Application()
                app.router.add_post("/{tail:.*}", handle)
                runner = web.AppRunner(app)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                runner_box.append(runner)
                port_box.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
                ready.set()

            thread = threading.Thread(target=loop.run_forever, daemon=True)
            thread.start()
            asyncio.run_coroutine_threadsafe(start(), loop)
            ready.wait(10)
            try:
                yield f"http://127.0.0.1:{port_box[0]}/"
            finally:
                asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)

        return serve()

    def wait_for(self, count: int, timeout_s: float = 30) -> list[Post]:
        deadline = time.monotonic() + timeout_s
        while len(self.posts) < count:
            assert time.monotonic() < deadline, self.posts
            time.sleep(0.1)
        return list(self.posts)


class Follower:
    """A graphql-transport-ws client of subjectChanges, in a thread of its own."""

    QUERY = """subscription($id: ID) { subjectChanges(watchlistId: $id) {
      id kind uscc previousStatus status record { id } } }"""

    def __init__(self, url: str, key: str, list_id: str | None) -> None:
        self.url, self.key, self.list_id = url, key, list_id
        self.seen: list[dict[str, Any]] = []
        self.subscribed = False

    def running(self) -> Any:
        import threading

        @contextlib.contextmanager
        def follow() -> Iterator[None]:
            loop = asyncio.new_event_loop()
            stop = asyncio.Event()
            thread = threading.Thread(
                target=lambda: loop.run_until_complete(self._run(stop)), daemon=True
            )
            thread.start()
            deadline = time.monotonic() + 10
            while not self.subscribed:
                assert time.monotonic() < deadline and thread.is_alive(), "no subscription"
                time.sleep(0.05)
            try:
                yield
            finally:
                loop.call_soon_threadsafe(stop.set)
                thread.join(10)

        return follow()

    async def _run(self, stop: asyncio.Event) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.url, protocols=["graphql-transport-ws"]) as ws,
        ):
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}
            await ws.send_json(init)
            assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
            await ws.send_json(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": self.QUERY, "variables": {"id": self.list_id}},
                }
            )
            # The subscription starts with the changes found from now on.
            await asyncio.sleep(0.5)
            self.subscribed = True
            while not stop.is_set():
                try:
                    message = await ws.receive_json(timeout=0.2)
                except TimeoutError:
                    continue
                if message["type"] == "next":
                    self.seen.append(message["payload"]["data"]["subjectChanges"])

    def wait_for(self, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < count:
            assert time.monotonic() < deadline, self.seen
            time.sleep(0.1)
        return list(self.seen)

    def rejected(self) -> bool:
        async def attempt() -> bool:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(self.url, protocols=["graphql-transport-ws"]) as ws,
            ):
                await ws.send_json(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}
                )
                message = await ws.receive(timeout=10)
                return message.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4403

        return asyncio.run(attempt())


def test_the_example_receiver_is_the_one_the_docs_show() -> None:
    import re

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "monitoring.md").read_text(encoding="utf-8")
    found = re.search(r"### A receiver, for banks.*?```python\n(.*?)```", doc, re.S)
    assert found is not None
    example = (root / "examples" / "webhook_receiver.py").read_text(encoding="utf-8")
    assert example.endswith(found.group(1))


def test_a_watchlist_is_checked_while_a_bulk_check_runs(
    gateways: Gateways, world: tuple[SandboxThread, Dataset]
) -> None:
    sandbox, dataset = world
    # The courts at their published pace: a 100-code check takes about 11 s of court calls.
    sandbox.set_faults("courts", rate_limit_rps=50)
    server = gateways.start(sources={"courts": {"max_rps": 50}})
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    bulk = bank.query(
        "mutation($u: [String!]!) { startBulkCheck(usccs: $u) { id } }",
        {"u": [c.uscc for c in dataset.companies[:100]]},
    )["data"]["startBulkCheck"]
    time.sleep(0.5)
    list_id = create(bank, [c.uscc for c in dataset.companies[100:102]])["watchlist"]["id"]
    found = checked(bank, list_id, timeout_s=30)
    state = bank.query("query($id: ID!) { bulkCheck(id: $id) { state done } }", {"id": bulk["id"]})
    # The members had their baseline while the check was still being worked.
    assert found["checkedAt"] is not None
    assert state["data"]["bulkCheck"]["state"] == "RUNNING", state


def test_a_connection_holds_a_bounded_number_of_subscriptions(gateway: GatewayServer) -> None:
    # WebSockets pass no rate limit: each subscription polls the store every second.
    from gateway.graphql_view import MAX_SUBSCRIPTIONS

    async def subscribe_past_the_limit() -> list[str]:
        url = gateway.url.replace("http", "ws") + "/graphql"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, protocols=["graphql-transport-ws"]) as ws,
        ):
            init = {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {KEYS['bank']}"},
            }
            await ws.send_json(init)
            assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
            for number in range(MAX_SUBSCRIPTIONS + 1):
                query = "subscription { subjectChanges { id } }"
                await ws.send_json(
                    {"id": str(number), "type": "subscribe", "payload": {"query": query}}
                )
            message = await ws.receive_json(timeout=10)
            return [message["type"], message["id"], message["payload"][0]["message"]]

    assert asyncio.run(subscribe_past_the_limit()) == [
        "error",
        str(MAX_SUBSCRIPTIONS),
        "Subscription limit reached",
    ]
