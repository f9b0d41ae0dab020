"""The measurements of `make bench`, and the one list that registers them.

A new figure (bulk checks, watchlist statistics, …) is one `async def name(bench) -> Result`
added to MEASUREMENTS: bench/run.py runs the list in order, files each result under its name
in the JSON file and prints its rows in the table. docs/performance.md reads each row.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Final

from bench.bulk import bulk_check
from bench.floor import COURTS_CALLS_PER_SUBJECT, floor
from bench.harness import (
    Bench,
    Goal,
    Measurement,
    Reply,
    Result,
    Row,
    Ticker,
    percentile,
    ratio,
    summary,
)
from bench.stats import statistics
from sandbox.processes import cpu_ms, peak_rss_mb, rss_mb

# Item 1 of the issue: what a bank's credit check asks about one subject.
SUBJECT_QUERY: Final = """query($u: String!) { subject(uscc: $u) {
  name jointPunishment { status complete } supervision { creditClass }
  sources { department state } } }"""
# Lookups made before measuring and thrown away: connections opened, query caches filled.
WARM_UP: Final = 5
# The goals (docs/performance.md says where each comes from).
ISOLATED_P50_GOAL: Final = Goal(1.10, at_most=True, unit="×")
ISOLATED_P99_GOAL: Final = Goal(1.5, at_most=True, unit="×")
COMPLETE_GOAL: Final = Goal(0.95, at_most=False, unit="×")
COMPLETE_GOAL_CALLERS: Final = 64
CPU_COLD_GOAL: Final = Goal(2.0, at_most=True, unit="ms")
CPU_WARM_GOAL: Final = Goal(0.5, at_most=True, unit="ms")


def _complete(reply: Reply) -> bool:
    """jointPunishment.complete: every department answered for today (contract §3)."""
    subject = reply.data.get("subject") or {}
    return bool((subject.get("jointPunishment") or {}).get("complete"))


def _answered(reply: Reply) -> bool:
    """HTTP 200 with a subject, complete or not."""
    return reply.status == 200 and bool(reply.data.get("subject"))


async def lookup(bench: Bench, uscc: str) -> Reply:
    """One subject query of item 1 through the gateway."""
    return await bench.ask(SUBJECT_QUERY, {"u": uscc})


async def isolated_lookup(bench: Bench) -> Result:
    """Items 1 and 2: one cold lookup every interval against the direct floor, then warm again.

    Each step takes a fresh subject and measures the gateway and the floor on it, one after
    the other, in alternating order (so drift of the machine, and whichever goes second,
    weighs on both alike), then asks the gateway for the same subject again (warm).
    """
    settings = bench.settings
    for _ in range(WARM_UP):
        code = bench.codes.take()
        await lookup(bench, code)
        await floor(bench.direct, bench.departments, code)
        await lookup(bench, code)
    gateway_ms: list[float] = []
    floor_ms: list[float] = []
    warm_ms: list[float] = []
    incomplete = unanswered = floor_failed = warm_incomplete = 0
    ticker = Ticker(settings.isolated_interval_s)
    for step in range(settings.isolated_lookups):
        await ticker.wait()
        code = bench.codes.take()
        for side in ("gateway", "floor") if step % 2 == 0 else ("floor", "gateway"):
            if side == "floor":
                direct = await floor(bench.direct, bench.departments, code)
                floor_ms.append(direct.ms)
                floor_failed += not direct.ok
            else:
                cold = await lookup(bench, code)
                gateway_ms.append(cold.ms)
                unanswered += not _answered(cold)
                incomplete += _answered(cold) and not _complete(cold)
        again = await lookup(bench, code)
        warm_ms.append(again.ms)
        warm_incomplete += not _complete(again)
    p50 = ratio(percentile(gateway_ms, 0.5), percentile(floor_ms, 0.5))
    p99 = ratio(percentile(gateway_ms, 0.99), percentile(floor_ms, 0.99))
    gw, fl, warm = summary(gateway_ms), summary(floor_ms), summary(warm_ms)
    data = {
        "interval_ms": round(settings.isolated_interval_s * 1000),
        "gateway_ms": gw,
        "floor_ms": fl,
        "ratio_p50": p50,
        "ratio_p99": p99,
        "gateway_incomplete": incomplete,
        "gateway_unanswered": unanswered,
        "floor_failed_subjects": floor_failed,
        "warm_ms": warm,
        "warm_incomplete": warm_incomplete,
    }
    rows = [
        Row(
            "isolated cold lookup p50",
            f"{gw['p50']:.1f} ms",
            f"direct parallel floor {fl['p50']:.1f} ms",
            p50,
            ISOLATED_P50_GOAL,
            p50,
        ),
        Row(
            "isolated cold lookup p99",
            f"{gw['p99']:.1f} ms",
            f"direct parallel floor {fl['p99']:.1f} ms",
            p99,
            ISOLATED_P99_GOAL,
            p99,
        ),
        Row(
            "isolated cold lookups answered complete",
            f"{len(gateway_ms) - incomplete - unanswered} of {len(gateway_ms)}",
        ),
        Row("warm lookup p50 (same subject again)", f"{warm['p50']:.1f} ms"),
    ]
    return Result(data, rows)


@dataclass
class _Phase:
    """What the callers of one concurrency level saw."""

    replies: list[Reply] = field(default_factory=list)
    refused: int = 0


async def cold_throughput(bench: Bench) -> Result:
    """Item 3: complete cold answers per second at each number of concurrent callers."""
    settings = bench.settings
    # courts.md: 50 requests/s per caller, and a subject takes four of them.
    courts_floor = bench.courts_max_rps / COURTS_CALLS_PER_SUBJECT
    data: dict[str, Any] = {"courts_floor_per_s": courts_floor, "seconds": settings.load_s}
    rows: list[Row] = []
    for callers in settings.load_callers:
        await _settle(bench)
        started = time.monotonic()
        phase = await _load(bench, callers, started + settings.load_s)
        figures = _phase_figures(phase, started, settings.load_s, bench.timeout_s)
        figures["ratio_to_courts_floor"] = ratio(figures["complete_per_s"], courts_floor)
        data[str(callers)] = figures
        goal = COMPLETE_GOAL if callers == COMPLETE_GOAL_CALLERS else None
        share = figures["answered_within_timeout_share"]
        rows += [
            Row(
                f"complete cold answers/s, {callers} callers",
                f"{figures['complete_per_s']:.2f}/s",
                f"courts' floor {courts_floor:g}/s",
                figures["ratio_to_courts_floor"],
                goal,
                figures["ratio_to_courts_floor"],
            ),
            Row(
                f"all answers/s, {callers} callers",
                f"{figures['answers_per_s']:.2f}/s; "
                f"{share * 100:.1f} % within timeout_s ({bench.timeout_s:g} s)",
            ),
            Row(
                f"latency p50 / p99, {callers} callers",
                f"{figures['latency_ms']['p50']:.0f} / {figures['latency_ms']['p99']:.0f} ms",
            ),
        ]
    return Result(data, rows)


async def _load(bench: Bench, callers: int, deadline: float) -> _Phase:
    """`callers` concurrent callers asking for fresh subjects back to back until the deadline."""
    phase = _Phase()

    async def caller() -> None:
        while time.monotonic() < deadline:
            code = bench.codes.take()
            reply = await lookup(bench, code)
            # A refusal did no work: the code is still cold, ask again when told to.
            while reply.refused and time.monotonic() < deadline:
                phase.refused += 1
                await asyncio.sleep(reply.retry_after_s or 1.0)
                reply = await lookup(bench, code)
            if not reply.refused:
                phase.replies.append(reply)

    await asyncio.gather(*(caller() for _ in range(callers)))
    return phase


def _phase_figures(
    phase: _Phase, started: float, seconds: float, timeout_s: float
) -> dict[str, Any]:
    """One concurrency level's figures for the JSON file."""
    # Rates count what was answered inside the window; requests still running at its end
    # are waited for (the next phase starts clean) but not counted towards the rate.
    deadline = started + seconds
    in_window = [r for r in phase.replies if r.ended <= deadline]
    answered = [r for r in phase.replies if _answered(r)]
    within = [r for r in answered if r.ms <= timeout_s * 1000]
    return {
        "requests": len(phase.replies),
        "answers": len(answered),
        "complete_answers": sum(_complete(r) for r in phase.replies),
        "complete_per_s": round(sum(_complete(r) for r in in_window) / seconds, 3),
        "answers_per_s": round(sum(_answered(r) for r in in_window) / seconds, 3),
        "answered_within_timeout_share": round(len(within) / len(phase.replies), 4)
        if phase.replies
        else math.nan,
        "refused_and_sent_again": phase.refused,
        "failed": sum(not _answered(r) for r in phase.replies),
        "latency_ms": summary([r.ms for r in answered]),
    }


async def cpu_per_lookup(bench: Bench) -> Result:
    """Item 4: the gateway's CPU per cold and per warm lookup, from /proc/<pid>/stat.

    Cold and warm stretches alternate round by round, so both see the same machine. Cold
    lookups are paced like the isolated ones (under the courts' rate: no 429s, no waits
    in the pacer); warm ones run back to back, repeating the round's cold subjects.
    """
    settings = bench.settings
    await _settle(bench)
    pid = bench.gateway.pid
    # What the gateway spends while nobody asks (timers, syncs): the paced cold stretches
    # include such time, so it is measured too, long enough for 10 ms ticks to matter little.
    before, idle_started = cpu_ms(pid), time.monotonic()
    await asyncio.sleep(settings.cpu_idle_s)
    idle_ms_per_s = (cpu_ms(pid) - before) / (time.monotonic() - idle_started)
    cold_cpu = warm_cpu = cold_s = 0.0
    cold_n = warm_n = 0
    cold_per_round = max(1, settings.cpu_cold // settings.cpu_rounds)
    warm_per_round = max(1, settings.cpu_warm // settings.cpu_rounds)
    failed = 0
    for _ in range(settings.cpu_rounds):
        codes = [bench.codes.take() for _ in range(cold_per_round)]
        ticker = Ticker(settings.isolated_interval_s)
        before, started = cpu_ms(pid), time.monotonic()
        for code in codes:
            await ticker.wait()
            failed += not _answered(await lookup(bench, code))
        cold_cpu += cpu_ms(pid) - before
        cold_s += time.monotonic() - started
        cold_n += len(codes)
        before = cpu_ms(pid)
        for number in range(warm_per_round):
            failed += not _answered(await lookup(bench, codes[number % len(codes)]))
        warm_cpu += cpu_ms(pid) - before
        warm_n += warm_per_round
    cold = round(cold_cpu / cold_n, 3)
    warm = round(warm_cpu / warm_n, 3)
    # The cold figure without what the gateway would have spent idle over the same time.
    cold_less_idle = round(max(0.0, cold_cpu - idle_ms_per_s * cold_s) / cold_n, 3)
    data = {
        "cold_ms": cold,
        "warm_ms": warm,
        "cold_ms_less_idle": cold_less_idle,
        "cold_lookups": cold_n,
        "warm_lookups": warm_n,
        "rounds": settings.cpu_rounds,
        "idle_ms_per_s": round(idle_ms_per_s, 3),
        "idle_measured_s": settings.cpu_idle_s,
        "unanswered": failed,
    }
    rows = [
        Row(
            "gateway CPU per cold lookup",
            f"{cold:.2f} ms ({cold_less_idle:.2f} ms less idle)",
            goal=CPU_COLD_GOAL,
            compared=cold,
        ),
        Row("gateway CPU per warm lookup", f"{warm:.2f} ms", goal=CPU_WARM_GOAL, compared=warm),
    ]
    return Result(data, rows)


async def memory(bench: Bench) -> Result:
    """Item 5: the gateway's resident memory with the water index, after start and now."""
    pid = bench.gateway.pid
    data = {
        "water_rows": bench.water_rows,
        "rss_after_start_mb": round(bench.rss_after_start_mb, 1),
        "rss_now_mb": round(rss_mb(pid), 1),
        "rss_peak_mb": round(peak_rss_mb(pid), 1),
    }
    rows = [
        Row(
            f"gateway RSS, {bench.water_rows:,} water rows: after start / now / peak",
            f"{data['rss_after_start_mb']:.0f} / {data['rss_now_mb']:.0f} / "
            f"{data['rss_peak_mb']:.0f} MiB",
        )
    ]
    return Result(data, rows)


async def _settle(bench: Bench) -> None:
    # The courts' token bucket refills in a second and earlier requests drain: each
    # measurement starts from a quiet gateway, not from the previous one's queue.
    await asyncio.sleep(bench.settings.settle_s)


# The measurements of `make bench`, in the order they run (memory last: "now" is after load).
MEASUREMENTS: Final[list[Measurement]] = [
    Measurement("isolated_lookup", isolated_lookup),
    Measurement("cold_throughput", cold_throughput),
    Measurement("cpu_per_lookup", cpu_per_lookup),
    # Issue 13, item 6 (bench/bulk.py).
    Measurement("bulk_check", bulk_check),
    # Issue 14, item 4 (bench/stats.py).
    Measurement("statistics", statistics),
    Measurement("memory", memory),
]
