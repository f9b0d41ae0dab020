"""`make soak`: the gateway under mixed load and department faults for N minutes, then a report.

Three processes, as in production: the four department stand-ins (`credit-gateway sandbox`),
the gateway (`credit-gateway serve`), and this load generator, which also switches faults on
and off through the sandbox's admin endpoint. Reported: answers by HTTP status and error
code, latency percentiles, the gateway's memory over time, and every CLEAR that a failing
department could have made wrong (the product's worst bug). Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from core.clock import Clock
from sandbox.generator import generate
from sandbox.processes import free_port, process, rss_mb, wait_http, write_gateway_config

DEPARTMENTS = ("courts", "market", "tax", "water")
# One fault episode at a time, each department in turn: the fault matrix.
FAULTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("down", {"down": True}),
    ("hang", {"hang": True}),
    ("errors", {"error_rate": 0.5}),
    ("throttle", {"throttle_rate": 0.5, "retry_after_s": 1}),
    ("garbage", {"garbage": True}),
    ("slow", {"latency_ms": 1500}),
)
TAX_ONLY: tuple[tuple[str, dict[str, object]], ...] = (
    ("dtd", {"dtd": True}),
    ("fhdm", {"fhdm_error_rate": 0.5}),
)
# Kinds during which a department cannot have produced a fresh good answer.
SILENT_KINDS = frozenset({"down", "hang", "garbage", "dtd"})
# An answer requested before a fault began may arrive up to the contract's bound later
# (timeout_s 2.0 + 1 s); an OK "asOf" beyond that came from a silent department.
IN_FLIGHT_MARGIN_S = 3.0
SUBJECT = """query($u: String!) { subject(uscc: $u) {
  jointPunishment { status complete missingSources } sources { department state asOf } } }"""
BATCH = """query($us: [String!]!) { subjects(usccs: $us) { uscc error { code }
  subject { jointPunishment { status complete } sources { department state asOf } } } }"""
PERSON = """query($id: String!) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: "SOAK-1") {
    jointPunishment { status complete } sources { department state asOf } } }"""
SEARCH = """{ searchSubjects(name: "公司", first: 10) { totalCount edges { node { uscc } } } }"""


@dataclass
class Episode:
    """One department fault, switched on at `start_wall` and off at `end_wall` (epoch s)."""

    department: str
    kind: str
    start_wall: float
    end_wall: float = float("inf")


@dataclass
class Tally:
    """Everything observed during the run."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    transport_errors: Counter[str] = field(default_factory=Counter)
    clear_answers: int = 0
    violations: list[str] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m sandbox.soak`; exit 1 when a wrong CLEAR or a 5xx is seen."""
    parser = argparse.ArgumentParser(prog="soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--concurrency", type=int, default=16, help="client workers")
    parser.add_argument("--episode-s", type=float, default=20.0, help="length of one fault")
    parser.add_argument("--json", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    report = asyncio.run(_soak(args))
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 1 if report["wrong_clear"] or report["unexpected_5xx"] else 0


async def _soak(args: argparse.Namespace) -> dict[str, Any]:
    dataset = generate(args.seed, args.subjects, Clock.from_env().today())
    usccs = [c.uscc for c in dataset.companies]
    persons = sorted({p.cert_no for p in dataset.positions})
    ports = {name: free_port() for name in DEPARTMENTS}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="credit-gateway-soak-") as workdir:
        config = write_gateway_config(Path(workdir), urls, key, "soak-bank")
        gateway_port = free_port()
        sandbox_cmd = [sys.executable, "-m", "gateway.cli", "--log-level", "warning", "sandbox"]
        sandbox_cmd += ["--seed", str(args.seed), "--subjects", str(args.subjects)]
        for name, port in ports.items():
            sandbox_cmd += [f"--{name}-port", str(port)]
        serve_cmd = [sys.executable, "-m", "gateway.cli", "--log-level", "warning", "serve"]
        serve_cmd += ["--config", str(config), "--port", str(gateway_port)]
        with process(sandbox_cmd) as sandbox:
            await wait_http(f"{urls['market']}/_admin/faults", child=sandbox)
            with process(serve_cmd) as gateway:
                base = f"http://127.0.0.1:{gateway_port}"
                await wait_http(f"{base}/healthz", timeout_s=60, child=gateway)
                tally = Tally()
                episodes: list[Episode] = []
                deadline = time.monotonic() + args.minutes * 60
                async with aiohttp.ClientSession() as session:
                    work = [
                        _client(session, base, key, usccs, persons, deadline, tally, episodes, n)
                        for n in range(args.concurrency)
                    ]
                    await asyncio.gather(
                        *work,
                        _faults(session, urls, deadline, args.episode_s, episodes),
                        _memory(gateway.pid, deadline, tally),
                    )
                    for url in urls.values():
                        await _admin(session, f"{url}/_admin/faults/reset")
    return _report(tally, episodes, args)


async def _client(
    session: aiohttp.ClientSession,
    base: str,
    key: str,
    usccs: list[str],
    persons: list[str],
    deadline: float,
    tally: Tally,
    episodes: list[Episode],
    number: int,
) -> None:
    rng = random.Random(number)
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        roll = rng.random()
        variables: dict[str, object]
        if roll < 0.6:
            kind, query, variables = "subject", SUBJECT, {"u": rng.choice(usccs)}
        elif roll < 0.75:
            kind, query, variables = "subjects", BATCH, {"us": rng.sample(usccs, 50)}
        elif roll < 0.9:
            kind, query, variables = "person", PERSON, {"id": rng.choice(persons)}
        else:
            kind, query, variables = "search", SEARCH, {}
        sent = time.time()
        started = time.perf_counter()
        try:
            async with session.post(
                f"{base}/graphql",
                json={"query": query, "variables": variables},
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                body = await response.json(content_type=None)
                tally.statuses[response.status] += 1
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            tally.transport_errors[type(exc).__name__] += 1
            continue
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        for error in body.get("errors") or []:
            tally.codes[str((error.get("extensions") or {}).get("code", "UNCODED"))] += 1
        for answer in _answers(body.get("data") or {}):
            _check_clear(kind, answer, sent, episodes, tally)


def _answers(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every subject or person answer in a response, with its status and sources."""
    for name in ("subject", "person"):
        if data.get(name):
            yield data[name]
    for item in data.get("subjects") or []:
        if item.get("subject"):
            yield item["subject"]


def _check_clear(
    kind: str, answer: dict[str, Any], sent: float, episodes: list[Episode], tally: Tally
) -> None:
    joint = answer.get("jointPunishment") or {}
    if joint.get("status") != "CLEAR":
        return
    tally.clear_answers += 1
    sources = {s["department"]: s for s in answer.get("sources") or []}
    if not joint.get("complete") or any(s["state"] == "UNAVAILABLE" for s in sources.values()):
        tally.violations.append(f"{kind}: CLEAR with a department missing: {json.dumps(answer)}")
        return
    for episode in episodes:
        if episode.kind not in SILENT_KINDS or sent < episode.start_wall:
            continue
        source = sources.get(episode.department.upper())
        as_of = _timestamp(source.get("asOf")) if source else None
        # A department that cannot answer cannot have produced a fresh OK answer: an OK
        # fetched while it was silent means the gateway read silence or garbage as "clean".
        # (Requests sent during the fault may be answered after it ends: that is fine.)
        silent = as_of is not None and (
            episode.start_wall + IN_FLIGHT_MARGIN_S < as_of < episode.end_wall
        )
        if source and source["state"] == "OK" and silent:
            tally.violations.append(
                f"{kind}: CLEAR with {episode.department} {episode.kind} since "
                f"{datetime.fromtimestamp(episode.start_wall).isoformat()} yet OK as of "
                f"{source['asOf']}"
            )


def _timestamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


async def _faults(
    session: aiohttp.ClientSession,
    urls: dict[str, str],
    deadline: float,
    episode_s: float,
    episodes: list[Episode],
) -> None:
    plan = [(d, kind, knobs) for kind, knobs in FAULTS for d in DEPARTMENTS]
    plan += [("tax", kind, knobs) for kind, knobs in TAX_ONLY]
    step = 0
    # A quarter of each period without faults, so recovery is exercised too.
    while time.monotonic() + episode_s < deadline:
        department, kind, knobs = plan[step % len(plan)]
        step += 1
        episode = Episode(department, kind, time.time())
        episodes.append(episode)
        await _admin(session, f"{urls[department]}/_admin/faults", knobs)
        await asyncio.sleep(episode_s * 0.75)
        # The end is taken before the reset: from then on the department may answer again.
        episode.end_wall = time.time()
        await _admin(session, f"{urls[department]}/_admin/faults/reset")
        await asyncio.sleep(episode_s * 0.25)


async def _admin(
    session: aiohttp.ClientSession, url: str, knobs: dict[str, object] | None = None
) -> None:
    async with session.post(url, json=knobs or {}) as response:
        response.raise_for_status()


async def _memory(pid: int, deadline: float, tally: Tally) -> None:
    started = time.monotonic()
    while time.monotonic() < deadline:
        tally.rss_mb.append((time.monotonic() - started, rss_mb(pid)))
        await asyncio.sleep(5)
    tally.rss_mb.append((time.monotonic() - started, rss_mb(pid)))


def _report(tally: Tally, episodes: list[Episode], args: argparse.Namespace) -> dict[str, Any]:
    latencies = sorted(tally.latencies_ms)

    def pct(p: float) -> float | None:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)
            if latencies
            else None
        )

    # Memory growth measured after a warm-up (caches fill), as MB per minute.
    warm = [(t, m) for t, m in tally.rss_mb if t >= min(60.0, args.minutes * 15)]
    slope = None
    if len(warm) >= 3:
        slope = round(
            statistics.linear_regression([t for t, _ in warm], [m for _, m in warm]).slope * 60, 3
        )
    overloaded = tally.codes.get("OVERLOADED", 0)
    five_xx = sum(n for status, n in tally.statuses.items() if status >= 500)
    return {
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "requests": sum(tally.statuses.values()),
        "http_status": dict(sorted(tally.statuses.items())),
        "error_codes": dict(tally.codes.most_common()),
        "transport_errors": dict(tally.transport_errors),
        "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0)},
        "fault_episodes": [f"{e.department}:{e.kind}" for e in episodes],
        "clear_answers_checked": tally.clear_answers,
        "wrong_clear": tally.violations[:20],
        "unexpected_5xx": five_xx - overloaded,
        "rss_mb": {
            "first": round(tally.rss_mb[0][1], 1) if tally.rss_mb else None,
            "after_warmup": round(warm[0][1], 1) if warm else None,
            "last": round(tally.rss_mb[-1][1], 1) if tally.rss_mb else None,
            "max": round(max(m for _, m in tally.rss_mb), 1) if tally.rss_mb else None,
            "growth_mb_per_min_after_warmup": slope,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
