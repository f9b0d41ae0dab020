"""Issue 13, item 6: one bulk check over the sandbox, its duration and its department calls.

A check of `--bulk-codes` codes (1,000; 60 with --quick), fresh codes of the dataset nobody
asked before, is started with `startBulkCheck` and polled with `bulkCheck` every 0.5 s until
it is DONE. Its duration is held against the courts' floor at the background share: the
courts answer one identity a call and every code takes four first pages (失信 and 限制消费,
each under the USCC and under the organisation code), and background work may take only
`[background] share` of their 50 requests/s (contract §7), so no gateway finishes sooner
than 4 × codes / (50/s × share). The calls the departments counted meanwhile (the sandbox's
`/_admin/stats`) are held against the fewest the codes need (contract §8): courts four a
code (more for a code with more than 20 records on a list), market one call per 100 codes
per endpoint, tax one per 50 codes per SOAP operation.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final

from bench.floor import COURTS_CALLS_PER_SUBJECT, MARKET_PATHS, TAX_OPERATIONS, TAX_PATH
from bench.harness import Bench, Goal, Reply, Result, Row, Ticker, ratio

START_QUERY: Final = """mutation($u: [String!]!, $l: String) {
  startBulkCheck(usccs: $u, label: $l) { id state total done } }"""
CHECK_QUERY: Final = """query($id: ID!) { bulkCheck(id: $id) {
  state total done createdAt finishedAt counts { key count } } }"""
# The issue's goal: the check takes at most 10 % longer than the courts' floor.
BULK_DURATION_GOAL: Final = Goal(1.10, at_most=True, unit="×")
# The measurement's department latency, whatever --latency-ms the other figures use.
BULK_LATENCY_MS: Final = 20.0
# courts.md: 50 requests/s per caller, the deployment's whole budget (contract §7).
COURTS_RATE_RPS: Final = 50.0
POLL_S: Final = 0.5
# Batch sizes the departments' documents allow: market 100 codes a call, tax 50.
MARKET_BATCH: Final = 100
TAX_BATCH: Final = 50
_CALLS_LINE: Final = re.compile(
    r"^credit_gateway_department_calls_total\{(?P<labels>[^}]*)\} (\S+)"
)
_LABEL: Final = re.compile(r'(\w+)="([^"]*)"')


async def bulk_check(bench: Bench) -> Result:
    """Item 6: a bulk check of fresh codes, from startBulkCheck's answer until DONE."""
    settings = bench.settings
    await asyncio.sleep(settings.settle_s)
    codes = [bench.codes.take() for _ in range(settings.bulk_codes)]
    checked = len(set(codes))  # every code of the dataset is a valid USCC
    share = bench.background_share
    floor_s = COURTS_CALLS_PER_SUBJECT * checked / (bench.courts_max_rps * share)
    async with _departments_as_deployed(bench) as knobs:
        calls_before = await _department_calls(bench)
        outcomes_before = await _call_outcomes(bench)
        started = await bench.ask(START_QUERY, {"u": codes, "l": "bench"})
        check = started.data.get("startBulkCheck")
        if not check:
            raise RuntimeError(f"startBulkCheck failed: HTTP {started.status} {started.body}")
        if check["total"] != len(codes):
            raise RuntimeError(f"startBulkCheck took {check['total']} of {len(codes)} codes")
        final, progress = await _until_done(bench, str(check["id"]), started, floor_s)
        calls = await _department_calls(bench) - calls_before
        outcomes = await _call_outcomes(bench) - outcomes_before
    duration_s = progress[-1][0]
    server_s = _seconds_between(final["createdAt"], final["finishedAt"])
    compared = ratio(duration_s, floor_s)
    sent = _sent_against_minimum(bench, codes, calls)
    counts = {c["key"]: c["count"] for c in final["counts"]}
    data: dict[str, Any] = {
        "codes": len(codes),
        "codes_checked": checked,
        "latency_ms": knobs["latency_ms"],
        "sandbox_courts_rate_limit_rps": knobs["courts_rate_limit_rps"],
        "courts_max_rps": bench.courts_max_rps,
        "background_share": share,
        "duration_s": round(duration_s, 2),
        "server_duration_s": round(server_s, 3),
        "floor_s": round(floor_s, 2),
        "ratio_to_floor": compared,
        "server_ratio_to_floor": ratio(server_s, floor_s),
        "polls": len(progress),
        "first_result_s": next((t for t, done, _ in progress if done > 0), None),
        "longest_stall_s": _longest_stall(progress),
        "done": final["done"],
        "counts": counts,
        "calls": sent,
        "call_outcomes": dict(sorted(outcomes.items())),
        # [seconds since startBulkCheck's answer, results done, courts calls so far]
        "progress": progress,
    }
    courts, market, tax = sent["courts"], sent["market"], sent["tax"]
    rows = [
        Row(
            f"bulk check, {checked:,} codes: duration",
            f"{duration_s:.1f} s (createdAt → finishedAt {server_s:.1f} s)",
            f"courts' floor {floor_s:.1f} s (4 × {checked:,} / ({bench.courts_max_rps:g}/s × "
            f"{share:g}))",
            compared,
            BULK_DURATION_GOAL,
            compared,
        ),
        Row(
            "bulk check: courts calls",
            f"{courts['sent']:,}",
            f"minimum {courts['minimum']:,} (4 a code); {courts['minimum_with_pages']:,} "
            f"with the extra pages of {courts['codes_with_extra_pages']} codes",
            ratio(courts["sent"], courts["minimum_with_pages"]),
        ),
        Row(
            "bulk check: market calls",
            f"{market['sent']:,} ("
            + ", ".join(f"{_short(p)} {n}" for p, n in market["by_path"].items())
            + ")",
            f"minimum {market['minimum']:,} ({market['minimum_per_endpoint']} per endpoint "
            f"× {len(MARKET_PATHS)})",
            ratio(market["sent"], market["minimum"]),
        ),
        Row(
            "bulk check: tax calls",
            f"{tax['sent']:,} ("
            + ", ".join(f"{op} {n}" for op, n in tax["by_operation"].items())
            + ")",
            f"minimum {tax['minimum']:,} ({tax['minimum_per_operation']} per operation "
            f"× {len(TAX_OPERATIONS)})",
            ratio(tax["sent"], tax["minimum"]),
        ),
        Row(
            "bulk check: results",
            f"{final['done']:,} of {checked:,} final: "
            + ", ".join(f"{key} {count:,}" for key, count in sorted(counts.items())),
        ),
    ]
    return Result(data, rows)


async def _until_done(
    bench: Bench, check_id: str, started: Reply, floor_s: float
) -> tuple[dict[str, Any], list[list[float]]]:
    """Polls bulkCheck until DONE: its last answer and [seconds, done, courts calls] a poll."""
    # Three times the floor and a minute is far beyond any working gateway.
    deadline = started.ended + 3 * floor_s + 60.0
    courts_before = await _courts_calls(bench)
    progress: list[list[float]] = []
    ticker = Ticker(POLL_S)
    while True:
        await ticker.wait()
        reply = await bench.ask(CHECK_QUERY, {"id": check_id})
        check = reply.data.get("bulkCheck")
        courts = await _courts_calls(bench) - courts_before
        if check is not None:
            seconds = round(reply.ended - started.ended, 3)
            progress.append([seconds, check["done"], courts])
            if check["state"] == "DONE":
                return check, progress
            if check["state"] == "CANCELLED":
                raise RuntimeError("the bulk check was cancelled")
        if reply.ended > deadline:
            state = check["state"] if check else f"HTTP {reply.status}"
            raise RuntimeError(
                f"the bulk check was not DONE within {reply.ended - started.ended:.0f} s "
                f"({state}, {progress[-1][1] if progress else 0} done)"
            )


def _sent_against_minimum(
    bench: Bench, codes: list[str], calls: Counter[str]
) -> dict[str, dict[str, Any]]:
    """What each department was sent during the check, beside the fewest the codes need."""
    checked = list(dict.fromkeys(codes))
    extra = {code: bench.courts_calls[code] for code in checked if code in bench.courts_calls}
    courts_sent = {k: n for k, n in calls.items() if k.startswith("courts ")}
    market_sent = {k: n for k, n in calls.items() if k.startswith("market ")}
    per_endpoint = math.ceil(len(checked) / MARKET_BATCH)
    per_operation = math.ceil(len(checked) / TAX_BATCH)
    return {
        "courts": {
            "sent": sum(courts_sent.values()),
            "by_path": courts_sent,
            "minimum": COURTS_CALLS_PER_SUBJECT * len(checked),
            "minimum_with_pages": COURTS_CALLS_PER_SUBJECT * (len(checked) - len(extra))
            + sum(extra.values()),
            "codes_with_extra_pages": len(extra),
        },
        "market": {
            "sent": sum(market_sent.values()),
            # The four endpoints a result needs, and any other the gateway called.
            "by_path": {
                f"POST {path}": calls.get(f"market POST {path}", 0) for path in MARKET_PATHS
            }
            | {k.removeprefix("market "): n for k, n in market_sent.items()},
            "minimum_per_endpoint": per_endpoint,
            "minimum": per_endpoint * len(MARKET_PATHS),
        },
        "tax": {
            # Both SOAP operations are POSTs to one path; the sandbox also counts each by name.
            "sent": calls.get(f"tax POST {TAX_PATH}", 0),
            "by_operation": {op: calls.get(f"tax SOAP {op}", 0) for op in TAX_OPERATIONS}
            | {
                k.removeprefix("tax SOAP "): n
                for k, n in calls.items()
                if k.startswith("tax SOAP ")
            },
            "minimum_per_operation": per_operation,
            "minimum": per_operation * len(TAX_OPERATIONS),
        },
        "water": {
            # Answered from the gateway's own index: any call is a file sync, not a code's.
            "sent": sum(n for k, n in calls.items() if k.startswith("water ")),
            "minimum": 0,
        },
    }


def _short(path: str) -> str:
    """ "POST /api/v1/entities/query" as "entities"."""
    parts = path.strip("/").split("/")
    return parts[-2] if len(parts) >= 2 else path


def _longest_stall(progress: list[list[float]]) -> float:
    """The longest stretch between polls over which no result was added, before DONE."""
    longest, since, last_done = 0.0, 0.0, 0.0
    for seconds, done, _ in progress:
        if done != last_done:
            since, last_done = seconds, done
        longest = max(longest, seconds - since)
    return round(longest, 2)


def _seconds_between(created_at: str, finished_at: str | None) -> float:
    """finishedAt − createdAt of the check, as the gateway stamped them."""
    if finished_at is None:
        return math.nan
    return (
        datetime.fromisoformat(finished_at) - datetime.fromisoformat(created_at)
    ).total_seconds()


@asynccontextmanager
async def _departments_as_deployed(bench: Bench) -> AsyncIterator[dict[str, float | None]]:
    """Every department at 20 ms and the courts at their 50 requests/s, for the check only.

    The sandbox of the run was started with --latency-ms, which the other figures may set
    otherwise; the knobs are set back afterwards.
    """
    before: dict[str, dict[str, Any]] = {}
    for name, url in bench.departments.items():
        async with bench.session.get(f"{url}/_admin/faults") as response:
            before[name] = await response.json()
    wanted = {name: {"latency_ms": BULK_LATENCY_MS} for name in bench.departments}
    wanted["courts"]["rate_limit_rps"] = COURTS_RATE_RPS
    changed = {
        name: {k: v for k, v in knobs.items() if before[name].get(k) != v}
        for name, knobs in wanted.items()
    }
    await _patch(bench, {name: patch for name, patch in changed.items() if patch})
    try:
        yield {"latency_ms": BULK_LATENCY_MS, "courts_rate_limit_rps": COURTS_RATE_RPS}
    finally:
        await _patch(
            bench,
            {name: {k: before[name][k] for k in patch} for name, patch in changed.items() if patch},
        )


async def _patch(bench: Bench, patches: dict[str, dict[str, Any]]) -> None:
    for name, patch in patches.items():
        url = f"{bench.departments[name]}/_admin/faults"
        async with bench.session.post(url, json=patch) as response:
            if response.status != 200:
                raise RuntimeError(f"{name} refused the knobs {patch}: {await response.text()}")


async def _department_calls(bench: Bench) -> Counter[str]:
    """The sandbox's request counters, as "<department> <METHOD> <path>" (admin not counted)."""
    counts: Counter[str] = Counter()
    for name, url in bench.departments.items():
        async with bench.session.get(f"{url}/_admin/stats") as response:
            stats = await response.json()
        counts.update({f"{name} {call}": n for call, n in stats["requests"].items()})
    return counts


async def _courts_calls(bench: Bench) -> int:
    async with bench.session.get(f"{bench.departments['courts']}/_admin/stats") as response:
        stats = await response.json()
    return sum(int(n) for n in stats["requests"].values())


async def _call_outcomes(bench: Bench) -> Counter[str]:
    """The gateway's department calls by outcome (/metrics), as "<department> <outcome>"."""
    counts: Counter[str] = Counter()
    async with bench.session.get(f"{bench.gateway.url}/metrics") as response:
        if response.status != 200:
            return counts
        text = await response.text()
    for line in text.splitlines():
        found = _CALLS_LINE.match(line)
        if found:
            labels = dict(_LABEL.findall(found["labels"]))
            key = f"{labels.get('department')} {labels.get('outcome')}"
            counts[key] += int(float(found[2]))
    return counts
