"""`make bench-anchor`: our market-only query side by side with Hive Gateway over the same market.

Hive Gateway (npm `@graphql-hive/gateway`) serves a supergraph that Mesh Compose
(`@graphql-mesh/compose-cli` with `@omnigraph/openapi`) builds from bench/anchor/'s OpenAPI
description of the sandbox market's 登记基本信息 endpoint. The npm packages go to a scratch
folder outside the repository (installed once, then reused offline). When Node, npm, the
install, the composition or the gateway fails, the anchor is skipped with the reason: its
figures are never made up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.harness import Bench, Goal, Measurement, Reply, Result, Row, Server, ratio
from sandbox.processes import cpu_ms, free_port, process, rss_mb, wait_http

ANCHOR_FILES: Final = Path(__file__).resolve().parent / "anchor"
# Copied into the scratch folder; package.json pins every package exactly.
COPIED: Final = ("package.json", "mesh.config.ts", "market-openapi.json")
# The query of the issue (market only) and the closest Hive Gateway equivalent: the
# entities POST of market.md, composed as a Query field.
OURS_QUERY: Final = "query($u: String!) { subject(uscc: $u) { name registration { status } } }"
HIVE_QUERY: Final = (
    "query($u: String!) { entities(input: {uniscIds: [$u]}) { data { entName regState_CN } } }"
)
RPS_GOAL: Final = Goal(1.5, at_most=False, unit="×")
NPM_TIMEOUT_S: Final = 900
COMPOSE_TIMEOUT_S: Final = 120


class AnchorUnavailable(Exception):
    """Hive Gateway cannot be run here; the message says what failed."""


def default_anchor_dir() -> Path:
    """Used when --anchor-dir is not given: a cache folder outside the repository."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "credit-gateway" / "bench-anchor"


@dataclass
class _Side:
    """One gateway's share of the interleaved rounds."""

    name: str
    server: Server
    query: str
    variables: Callable[[], dict[str, Any]]
    ok: Callable[[Reply], bool]
    key: bool  # ours needs the bench's API key; Hive Gateway has no clients
    answered: int = 0
    failed: int = 0
    seconds: float = 0.0
    cpu_ms: float = 0.0
    # Requests the departments received during this side's rounds, by "<METHOD> <path>".
    calls: Counter[str] = field(default_factory=Counter)

    def figures(self) -> dict[str, Any]:
        """Requests answered per second and CPU per answered request, over all its rounds."""
        return {
            "requests_per_s": round(self.answered / self.seconds, 2) if self.seconds else None,
            "cpu_ms_per_request": round(self.cpu_ms / self.answered, 3) if self.answered else None,
            "answered": self.answered,
            "failed": self.failed,
            "seconds": round(self.seconds, 1),
            "rss_mb": round(rss_mb(self.server.pid), 1),
            # What one answer cost the departments: the two sides must do the same work.
            "department_calls_per_request": {
                call: round(n / self.answered, 2) for call, n in sorted(self.calls.items())
            }
            if self.answered
            else {},
        }


async def hive_anchor(bench: Bench) -> Result:
    """The anchor: requests/s at N callers and CPU per request, ours and Hive's, interleaved."""
    try:
        supergraph = await asyncio.to_thread(_prepare, bench.settings.anchor_dir, bench)
    except AnchorUnavailable as exc:
        return _skipped(str(exc))
    port = free_port()
    node = shutil.which("node") or "node"
    command = [node, str(_bin(bench.settings.anchor_dir, "hive-gateway")), "supergraph"]
    command += [str(supergraph), "--host", "127.0.0.1", "--port", str(port), "--fork", "1"]
    # Beside the packages, not in the run's temporary folder: it outlives a failed start.
    log_path = bench.settings.anchor_dir / "hive-gateway.log"
    with (
        log_path.open("wb") as log,
        process(command, env={"NODE_ENV": "production"}, stdout=log, cwd=supergraph.parent) as hive,
    ):
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthcheck", timeout_s=60, child=hive)
        except SystemExit as exc:
            return _skipped(f"Hive Gateway did not start ({exc}); its log: {log_path}")
        return await _compare(bench, Server(f"http://127.0.0.1:{port}", hive.pid))


async def _compare(bench: Bench, hive: Server) -> Result:
    """Both gateways up: warm each, then alternate measured rounds of the same callers."""
    settings = bench.settings
    every_code = bench.codes.cycle()
    ours = _Side(
        "ours",
        bench.gateway,
        OURS_QUERY,
        # Fresh codes: our answer cache must not serve what Hive has to fetch.
        lambda: {"u": bench.codes.take()},
        lambda r: r.status == 200 and bool((r.data.get("subject") or {}).get("registration")),
        key=True,
    )
    theirs = _Side(
        "hive",
        hive,
        HIVE_QUERY,
        # Hive Gateway keeps no answers, so codes may repeat.
        lambda: {"u": next(every_code)},
        lambda r: r.status == 200 and bool((r.data.get("entities") or {}).get("data")),
        key=False,
    )
    # One round of each first, unmeasured: connections, JIT and query caches warm up.
    for side in (ours, theirs):
        await _round(bench, side, min(2.0, settings.anchor_round_s), measure=False)
    for number in range(settings.anchor_rounds):
        # Alternating which goes first, so neither always follows the other.
        for side in (ours, theirs) if number % 2 == 0 else (theirs, ours):
            await asyncio.sleep(settings.settle_s)
            await _round(bench, side, settings.anchor_round_s, measure=True)
    mine, other = ours.figures(), theirs.figures()
    rps_ratio = ratio(mine["requests_per_s"] or 0.0, other["requests_per_s"] or 0.0)
    cpu_ratio = ratio(mine["cpu_ms_per_request"] or 0.0, other["cpu_ms_per_request"] or 0.0)
    data = {
        "callers": settings.anchor_callers,
        "rounds": settings.anchor_rounds,
        "round_s": settings.anchor_round_s,
        "ours": mine,
        "hive": other,
        "ratio_requests_per_s": rps_ratio,
        "ratio_cpu_per_request": cpu_ratio,
        "ours_query": OURS_QUERY,
        "hive_query": HIVE_QUERY,
    }
    rows = [
        Row(
            f"market-only requests/s, {settings.anchor_callers} callers",
            f"{mine['requests_per_s']}/s",
            f"Hive Gateway {other['requests_per_s']}/s",
            rps_ratio,
            RPS_GOAL,
            rps_ratio,
        ),
        Row(
            "market-only CPU per request",
            f"{mine['cpu_ms_per_request']} ms",
            f"Hive Gateway {other['cpu_ms_per_request']} ms",
            cpu_ratio,
        ),
    ]
    return Result(data, rows)


async def _round(bench: Bench, side: _Side, seconds: float, measure: bool) -> None:
    """One side's callers for `seconds`; its answers, CPU and department calls added up."""
    deadline = time.monotonic() + seconds
    answered = failed = 0

    async def caller() -> None:
        nonlocal answered, failed
        while time.monotonic() < deadline:
            reply = await bench.ask(
                side.query, side.variables(), url=f"{side.server.url}/graphql", key=side.key
            )
            if side.ok(reply):
                answered += 1
            else:
                failed += 1

    calls_before = await _department_calls(bench)
    before, started = cpu_ms(side.server.pid), time.monotonic()
    await asyncio.gather(*(caller() for _ in range(bench.settings.anchor_callers)))
    if measure:
        side.cpu_ms += cpu_ms(side.server.pid) - before
        side.calls.update((await _department_calls(bench)) - calls_before)
        side.seconds += time.monotonic() - started
        side.answered += answered
        side.failed += failed


async def _department_calls(bench: Bench) -> Counter[str]:
    """Used around each round: the sandbox's request counters (admin calls not counted)."""
    counts: Counter[str] = Counter()
    for name, url in bench.departments.items():
        async with bench.session.get(f"{url}/_admin/stats") as response:
            stats = await response.json()
        counts.update({f"{name} {call}": n for call, n in stats["requests"].items()})
    return counts


def _skipped(why: str) -> Result:
    """Used when Hive Gateway cannot run: the reason instead of figures."""
    return Result(
        {"skipped": why}, [Row("market-only requests/s (Hive Gateway anchor)", f"skipped: {why}")]
    )


def _bin(scratch: Path, name: str) -> Path:
    """An npm package's command in the scratch folder."""
    return scratch / "node_modules" / ".bin" / name


def _prepare(scratch: Path, bench: Bench) -> Path:
    """npm packages installed (once) and the supergraph composed for this run's market URL."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise AnchorUnavailable("node and npm are not on PATH (Node 20 or later is needed)")
    scratch.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        shutil.copyfile(ANCHOR_FILES / name, scratch / name)
    installed = scratch / "node_modules" / ".bench-package.json"
    wanted = (ANCHOR_FILES / "package.json").read_text(encoding="utf-8")
    if not installed.exists() or installed.read_text(encoding="utf-8") != wanted:
        _run([npm, "install", "--no-audit", "--no-fund"], scratch, NPM_TIMEOUT_S, "npm install")
        installed.write_text(wanted, encoding="utf-8")
    serve = scratch / "serve"
    serve.mkdir(exist_ok=True)
    supergraph = serve / "supergraph.graphql"
    compose = [node, str(_bin(scratch, "mesh-compose")), "-o", str(supergraph)]
    env = {"MARKET_URL": bench.departments["market"]}
    _run(compose, scratch, COMPOSE_TIMEOUT_S, "mesh-compose", env)
    return supergraph


def _run(
    command: list[str], cwd: Path, timeout_s: float, what: str, env: dict[str, str] | None = None
) -> None:
    """Used for npm and mesh-compose: AnchorUnavailable with the output's end on failure."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AnchorUnavailable(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise AnchorUnavailable(f"{what} exited with {done.returncode}: {tail}")


# The measurements of `make bench-anchor`; a later comparison is one more entry.
ANCHOR_MEASUREMENTS: Final[list[Measurement]] = [Measurement("hive_anchor", hive_anchor)]
