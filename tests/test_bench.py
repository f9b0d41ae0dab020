"""`make bench` in its quick mode: every figure is there, a number, and consistent with the others.

Runs `python -m bench.run --quick` as a subprocess (the sandbox and the gateway as processes
of their own, as in a real run) and checks the JSON file's shape and the relations between
its numbers. It never asserts a time or a ratio against a goal: those depend on the machine
and are what the bench reports, not what the suite decides.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick bench run's JSON file, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| figure | ours | reference | ratio | goal | met |" in done.stdout
    loaded: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return loaded


def _number(value: object) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    assert math.isfinite(value), value
    return float(value)


def _count(value: object) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), value
    assert value >= 0
    return value


def _percentiles(summary: dict[str, Any]) -> None:
    assert _count(summary["samples"]) > 0
    assert 0 < _number(summary["p50"]) <= _number(summary["p99"])


def test_the_run_is_described(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert _count(machine["cores"]) >= 1
    assert 1 <= _count(machine["usable_cores"]) <= machine["cores"]
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"]
    assert _number(machine["ram_gib"]) > 0
    assert machine["python"].startswith("3.")
    assert isinstance(machine["date"], str)
    assert machine["git_commit"] is None or len(machine["git_commit"]) == 40
    assert _number(report["latency_ms"]) == 20
    assert report["today"] == "2026-05-20"
    assert report["quick"] is True
    assert report["gateway_config"]["courts_max_rps"] == 50
    assert 0 < _number(report["gateway_config"]["background_share"]) <= 1


def test_isolated_lookups_against_the_floor(report: dict[str, Any]) -> None:
    isolated = report["results"]["isolated_lookup"]
    for side in ("gateway_ms", "floor_ms", "warm_ms"):
        _percentiles(isolated[side])
    assert isolated["gateway_ms"]["samples"] == isolated["floor_ms"]["samples"]
    # The floor waits for ten calls that each take the latency: it cannot be faster.
    assert isolated["floor_ms"]["p50"] >= report["latency_ms"]
    p50 = isolated["gateway_ms"]["p50"] / isolated["floor_ms"]["p50"]
    assert _number(isolated["ratio_p50"]) == pytest.approx(p50, rel=0.01)
    _number(isolated["ratio_p99"])
    for count in ("gateway_incomplete", "gateway_unanswered", "floor_failed_subjects"):
        _count(isolated[count])


def test_cold_throughput_at_each_concurrency(report: dict[str, Any]) -> None:
    throughput = report["results"]["cold_throughput"]
    assert _number(throughput["courts_floor_per_s"]) == 12.5
    for callers in ("16", "64"):
        level = throughput[callers]
        assert _count(level["requests"]) > 0
        assert level["answers"] <= level["requests"]
        assert _count(level["complete_answers"]) <= _count(level["answers"])
        assert 0 <= _number(level["complete_per_s"]) <= _number(level["answers_per_s"])
        assert 0 <= _number(level["answered_within_timeout_share"]) <= 1
        _count(level["refused_and_sent_again"])
        _count(level["failed"])
        _percentiles(level["latency_ms"])
        ratio = level["complete_per_s"] / throughput["courts_floor_per_s"]
        assert _number(level["ratio_to_courts_floor"]) == pytest.approx(ratio, abs=0.001)


def test_cpu_and_memory_of_the_gateway_process(report: dict[str, Any]) -> None:
    cpu = report["results"]["cpu_per_lookup"]
    assert _count(cpu["cold_lookups"]) > 0
    assert _count(cpu["warm_lookups"]) > 0
    # Clock ticks are 10 ms: a short run may see none, never fewer than none.
    assert _number(cpu["cold_ms"]) >= 0
    assert _number(cpu["warm_ms"]) >= 0
    assert _number(cpu["idle_ms_per_s"]) >= 0
    assert 0 <= _number(cpu["cold_ms_less_idle"]) <= cpu["cold_ms"]
    memory = report["results"]["memory"]
    assert _count(memory["water_rows"]) == report["dataset"]["water_rows"] >= 3000
    assert 0 < _number(memory["rss_after_start_mb"]) <= _number(memory["rss_peak_mb"])
    assert 0 < _number(memory["rss_now_mb"]) <= memory["rss_peak_mb"]


def test_bulk_check_against_the_courts_floor(report: dict[str, Any]) -> None:
    bulk = report["results"]["bulk_check"]
    # --quick checks 60 fresh codes of the dataset, all distinct and valid.
    assert _count(bulk["codes"]) == _count(bulk["codes_checked"]) == 60
    assert _number(bulk["latency_ms"]) == 20
    assert _number(bulk["sandbox_courts_rate_limit_rps"]) == _number(bulk["courts_max_rps"]) == 50
    share = _number(bulk["background_share"])
    assert share == report["gateway_config"]["background_share"]
    # The courts' floor at the share: four calls a code at 50/s × share.
    assert _number(bulk["floor_s"]) == pytest.approx(4 * 60 / (50 * share), abs=0.01)
    assert _number(bulk["duration_s"]) > 0
    assert _number(bulk["server_duration_s"]) > 0
    ratio = bulk["duration_s"] / bulk["floor_s"]
    assert _number(bulk["ratio_to_floor"]) == pytest.approx(ratio, rel=0.01)
    assert _count(bulk["polls"]) == len(bulk["progress"]) > 0
    assert bulk["done"] == sum(bulk["counts"].values()) == 60
    calls = bulk["calls"]
    assert calls["courts"]["minimum"] == 240 <= calls["courts"]["minimum_with_pages"]
    assert calls["market"]["minimum"] == 4
    assert calls["tax"]["minimum"] == 4
    for department in ("courts", "market", "tax"):
        assert _count(calls[department]["sent"]) > 0
    rows = {row["figure"]: row for row in report["table"]}
    duration = rows["bulk check, 60 codes: duration"]
    assert duration["goal"] == "≤ 1.10×"
    assert duration["ratio"] == bulk["ratio_to_floor"]
    assert isinstance(duration["met"], bool)
    for department in ("courts", "market", "tax"):
        assert rows[f"bulk check: {department} calls"]["value"].startswith(
            f"{calls[department]['sent']:,}"
        )


STAT_DIMENSIONS = (
    "STATUS",
    "CREDIT_CLASS",
    "REGION",
    "LISTING_KIND",
    "LISTING_MONTH",
    "DEPARTMENT",
)


def test_watchlist_statistics_from_the_store(report: dict[str, Any]) -> None:
    stats = report["results"]["statistics"]
    # --quick writes a watchlist of 2,000 members into the gateway's store.
    members = _count(stats["members"])
    assert members == 2000
    listings = _count(stats["listings"])
    assert 0 < listings < members
    assert _count(stats["requests_per_dimension"]) == 20
    assert stats["client_id"] == "bench-bank"
    dimensions = stats["dimensions"]
    assert tuple(dimensions) == STAT_DIMENSIONS
    for name, dimension in dimensions.items():
        ms = dimension["ms"]
        assert _count(ms["samples"]) == 20, name
        assert 0 < _number(ms["p50"]) <= _number(ms["p95"]) <= _number(ms["max"])
        # The answer is what was written, row for row, sorted by key.
        assert dimension["matches"] is True, name
        answered = [
            {"key": row["key"], "subjects": row["subjects"], "records": row["records"]}
            for row in dimension["rows"]
        ]
        assert answered == dimension["expected"], name
        keys = [row["key"] for row in dimension["rows"]]
        assert keys == sorted(keys), name
    status = dimensions["STATUS"]["rows"]
    # Every member was given a latest check: the statuses count each member once.
    assert sum(_count(row["subjects"]) for row in status) == members
    assert {row["key"] for row in status} <= {"CLEAR", "WATCH", "PUNISHED", "INCOMPLETE"}
    assert all(row["records"] is None for row in status)
    assert sum(row["subjects"] for row in dimensions["CREDIT_CLASS"]["rows"]) == members
    region = dimensions["REGION"]["rows"]
    assert sum(row["subjects"] for row in region) == members
    assert all(len(row["key"]) == 6 and row["label"] for row in region)
    for name in ("LISTING_KIND", "LISTING_MONTH", "DEPARTMENT"):
        rows = dimensions[name]["rows"]
        assert sum(_count(row["records"]) for row in rows) == listings, name
        assert all(0 < row["subjects"] <= row["records"] for row in rows), name
    # The regulator's STATUS over every watched subject: the bench's list is the only one.
    everyone = stats["regulator_status"]
    _number(everyone["ms"]["p50"])
    assert _count(everyone["subjects"]) == members
    assert everyone["matches"] is True
    assert {r["key"]: r["subjects"] for r in everyone["rows"]} == {
        r["key"]: r["subjects"] for r in status
    }
    # Answered from the store: nobody was checked, no department was called.
    assert stats["members_rechecked"] == 0
    assert stats["department_calls"] == {"courts": 0, "market": 0, "tax": 0}
    rows = {row["figure"]: row for row in report["table"]}
    for name in STAT_DIMENSIONS:
        row = rows[f"statistics {name}, 2,000 members: median / p95"]
        assert row["goal"] == "≤ 200 ms"
        assert isinstance(row["met"], bool)
        assert row["value"].startswith(f"{dimensions[name]['ms']['p50']:.1f} / ")
    status_row = rows["statistics STATUS, 2,000 members: median / p95"]
    assert status_row["value"].endswith(f"({len(status)} keys, 2,000 subjects)")
    regulator_row = rows["statistics STATUS, every watched subject (regulator): median / p95"]
    assert regulator_row["goal"] == "≤ 200 ms"


def test_the_table_carries_every_goal(report: dict[str, Any]) -> None:
    rows = report["table"]
    assert all(set(row) == {"figure", "value", "reference", "ratio", "goal", "met"} for row in rows)
    goals = [row["goal"] for row in rows if row["goal"]]
    assert (
        goals
        == ["≤ 1.10×", "≤ 1.50×", "≥ 0.95×", "≤ 2 ms", "≤ 0.5 ms", "≤ 1.10×"] + ["≤ 200 ms"] * 7
    )
    assert all(isinstance(row["met"], bool) for row in rows if row["goal"])
    assert report["codes_asked"] <= report["dataset"]["subjects"]
