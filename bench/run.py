"""`make bench` / `make bench-anchor`: start the sandbox and the gateway, measure, report.

Three processes, as in production: the departments (bench/sandbox_server.py, with the
latency knob set), the gateway (`credit-gateway serve`, so its CPU and memory are its own),
and this load generator. Prints a markdown table and writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench.floor import direct_session
from bench.harness import Bench, CodePool, Measurement, Row, Server, Settings
from bench.hive import ANCHOR_MEASUREMENTS, default_anchor_dir
from bench.machine import describe
from bench.measurements import MEASUREMENTS
from bench.stats import add_regulator
from gateway.config import load_config
from sandbox.faults import DEPARTMENTS
from sandbox.processes import free_port, process, rss_mb, wait_http, write_gateway_config

SUITES: Final[dict[str, list[Measurement]]] = {"main": MEASUREMENTS, "anchor": ANCHOR_MEASUREMENTS}
# The same pinned day as the test suite (tests/conftest.py): the same dataset every run.
TODAY: Final = "2026-05-20"
# The courts' documented allowance (courts.md), as deployed: written into the config.
COURTS_MAX_RPS: Final = 50
SOURCES_QUERY: Final = "{ sources { department state } }"
# What bench/sandbox_server.py writes for the bench alone: per-code lists, not the report's.
DATASET_LISTS: Final = frozenset({"codes", "courts_calls"})
# The config's one bank client: the owner of the watchlist bench/stats.py writes.
BANK_CLIENT: Final = "bench-bank"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m bench.run`; exit 1 when a measurement could not be made."""
    args = _parser().parse_args(argv)
    settings = _settings(args)
    report = asyncio.run(_run(settings))
    print(render_markdown(report))
    out = Path(args.out or f"bench-{'results' if settings.suite == 'main' else 'anchor'}.json")
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {out}", file=sys.stderr)
    return 1 if any("error" in r for r in report["results"].values()) else 0


def _parser() -> argparse.ArgumentParser:
    """The command line; docs/performance.md lists the knobs."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--suite", choices=sorted(SUITES), default="main")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="added by every department (default 20)"
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds, small dataset")
    parser.add_argument("--out", help="JSON file (default bench-results.json / bench-anchor.json)")
    parser.add_argument("--subjects", type=int, help="dataset size (default 20000; anchor 50000)")
    parser.add_argument("--water-rows", type=int, help="rows of the water files (default 100000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--lookups", type=int, help="isolated lookups (default 300)")
    parser.add_argument("--load-s", type=float, help="seconds per concurrency level (default 20)")
    parser.add_argument("--callers", type=int, nargs="+", help="concurrency levels (default 16 64)")
    parser.add_argument("--cpu-cold", type=int, help="cold lookups for CPU (default 100)")
    parser.add_argument("--cpu-warm", type=int, help="warm lookups for CPU (default 1000)")
    parser.add_argument("--bulk-codes", type=int, help="codes of the bulk check (default 1000)")
    parser.add_argument(
        "--stat-members", type=int, help="members of the statistics' watchlist (default 100000)"
    )
    parser.add_argument(
        "--stat-requests", type=int, help="statistics requests per dimension (default 20)"
    )
    parser.add_argument(
        "--anchor-dir",
        type=Path,
        default=None,
        help="scratch folder for Hive Gateway's npm packages (default ~/.cache/…)",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """The run's settings: what was given, else the full run's or --quick's defaults."""
    quick = bool(args.quick)

    def pick(given: Any, full: Any, small: Any) -> Any:
        return given if given is not None else (small if quick else full)

    anchor = args.suite == "anchor"
    return Settings(
        suite=args.suite,
        latency_ms=args.latency_ms,
        # Every cold lookup takes a subject nobody asked before; the anchor's market-only
        # query may answer hundreds a second once it calls market alone.
        subjects=pick(args.subjects, 50_000 if anchor else 20_000, 1_500),
        # The anchor needs no water: the market-only query never reads it.
        water_rows=pick(args.water_rows, 0 if anchor else 100_000, 3_000),
        seed=args.seed,
        today=TODAY,
        isolated_lookups=pick(args.lookups, 300, 20),
        # One cold lookup every 100 ms: 40 courts calls a second, under their 50.
        isolated_interval_s=0.1,
        load_s=pick(args.load_s, 20.0, 2.0),
        load_callers=tuple(pick(args.callers, [16, 64], [16, 64])),
        cpu_cold=pick(args.cpu_cold, 100, 20),
        cpu_warm=pick(args.cpu_warm, 1000, 100),
        cpu_rounds=2 if quick else 5,
        cpu_idle_s=0.5 if quick else 10.0,
        settle_s=0.5 if quick else 2.0,
        anchor_callers=16,
        anchor_rounds=2 if quick else 4,
        anchor_round_s=2.0 if quick else 5.0,
        anchor_dir=args.anchor_dir or default_anchor_dir(),
        quick=quick,
        bulk_codes=pick(args.bulk_codes, 1000, 60),
        stat_members=pick(args.stat_members, 100_000, 2_000),
        stat_requests=pick(args.stat_requests, 20, 20),
    )


async def _run(settings: Settings) -> dict[str, Any]:
    """Start the sandbox and the gateway, run the suite's measurements, stop both."""
    measurements = SUITES[settings.suite]
    report: dict[str, Any] = {
        "suite": settings.suite,
        "machine": describe(node=settings.suite == "anchor"),
        "latency_ms": settings.latency_ms,
        "today": settings.today,
        "quick": settings.quick,
    }
    env = {"CREDIT_GATEWAY_TODAY": settings.today}
    with tempfile.TemporaryDirectory(prefix="credit-gateway-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        ports = {name: free_port() for name in DEPARTMENTS}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        info_path = workdir / "sandbox.json"
        sandbox_cmd = [sys.executable, "-m", "bench.sandbox_server"]
        sandbox_cmd += ["--seed", str(settings.seed), "--subjects", str(settings.subjects)]
        sandbox_cmd += ["--water-rows", str(settings.water_rows)]
        sandbox_cmd += ["--latency-ms", str(settings.latency_ms), "--info-out", str(info_path)]
        for name, port in ports.items():
            sandbox_cmd += [f"--{name}-port", str(port)]
        _say(f"sandbox: {settings.subjects:,} subjects, {settings.water_rows:,} water rows")
        sandbox = stack.enter_context(process(sandbox_cmd, env=env))
        # Generating 100,000 subjects takes about 10 s (docs/sandbox.md); padding, a few more.
        await wait_http(f"{urls['courts']}/_admin/faults", timeout_s=300, child=sandbox)
        info = json.loads(info_path.read_text(encoding="utf-8"))
        key = secrets.token_urlsafe(24)
        options = {"courts": {"max_rps": COURTS_MAX_RPS}}
        config_path = write_gateway_config(workdir, urls, key, BANK_CLIENT, options)
        regulator_key = add_regulator(config_path)
        config = load_config(config_path)
        port = free_port()
        serve_cmd = [sys.executable, "-m", "gateway.cli", "--log-level", "warning", "serve"]
        serve_cmd += ["--config", str(config_path), "--port", str(port)]
        _say("gateway: starting")
        gateway_process = stack.enter_context(process(serve_cmd, env=env))
        gateway = Server(f"http://127.0.0.1:{port}", gateway_process.pid)
        await wait_http(f"{gateway.url}/healthz", timeout_s=120, child=gateway_process)
        report["dataset"] = {k: v for k, v in info.items() if k not in DATASET_LISTS}
        report["gateway_config"] = {
            "courts_max_rps": COURTS_MAX_RPS,
            "timeout_s": config.sources["courts"].timeout_s,
            "max_in_flight": config.limits.max_in_flight,
            "background_share": config.background.share,
        }
        async with AsyncExitStack() as clients:
            session = await clients.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            )
            direct = await clients.enter_async_context(direct_session())
            bench = Bench(
                settings=settings,
                gateway=gateway,
                key=key,
                departments=urls,
                codes=CodePool(info["codes"], settings.seed),
                session=session,
                direct=direct,
                timeout_s=config.sources["courts"].timeout_s,
                courts_max_rps=COURTS_MAX_RPS,
                water_rows=int(info["water_rows"]),
                rss_after_start_mb=0.0,
                background_share=config.background.share,
                courts_calls={str(k): int(v) for k, v in info.get("courts_calls", {}).items()},
                store_url=config.store_url,
                client_id=BANK_CLIENT,
                regulator_key=regulator_key,
            )
            await _wait_water(bench)
            bench.rss_after_start_mb = rss_mb(gateway.pid)
            results, rows = await _measure(bench, measurements, gateway_process)
            report["results"] = results
            report["codes_asked"] = bench.codes.taken
    report["table"] = [row.as_json() for row in rows]
    finite: dict[str, Any] = _finite(report)
    return finite


def _finite(value: Any) -> Any:
    """NaN (nothing measured) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


async def _wait_water(bench: Bench, timeout_s: float = 120.0) -> None:
    """The water index must hold the files before memory is read or lookups are timed."""
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await bench.ask(SOURCES_QUERY, {})
        states = {s["department"]: s["state"] for s in reply.data.get("sources") or []}
        if states.get("WATER") == "OK":
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the gateway's water index is not synced: {states}")
        await asyncio.sleep(0.5)


async def _measure(
    bench: Bench, measurements: list[Measurement], gateway: subprocess.Popen[bytes]
) -> tuple[dict[str, Any], list[Row]]:
    """Each registered measurement in turn: its data filed under its name, its rows kept."""
    results: dict[str, Any] = {}
    rows: list[Row] = []
    for measurement in measurements:
        _say(f"{measurement.name}…")
        started = time.monotonic()
        try:
            result = await measurement.run(bench)
        except Exception as exc:
            # Others change the gateway meanwhile: a measurement their work breaks is
            # reported as broken, with why, and the others still run.
            traceback.print_exc()
            why = f"{type(exc).__name__}: {exc}"
            results[measurement.name] = {"error": why}
            rows.append(Row(measurement.name, f"not measured: {why}"))
        else:
            results[measurement.name] = result.data
            rows += result.rows
        _say(f"{measurement.name}: {time.monotonic() - started:.1f} s")
        if gateway.poll() is not None:
            why = f"the gateway process exited with {gateway.returncode}"
            results[measurement.name]["error"] = why
            rows.append(Row(measurement.name, f"not measured: {why}"))
            break
    return results, rows


def render_markdown(report: dict[str, Any]) -> str:
    """The report as the markdown printed to stdout (and quoted in docs/performance.md)."""
    machine = report["machine"]
    commit = machine.get("git_commit") or "unknown"
    dirty = " with uncommitted changes" if machine.get("git_dirty") else ""
    dataset = report.get("dataset", {})
    config = report.get("gateway_config", {})
    lines = [
        f"## credit-gateway bench ({report['suite']}{', quick' if report['quick'] else ''})",
        "",
        f"- machine: {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"{machine['cpu_model']}, {machine['ram_gib']} GiB RAM, Linux {machine['kernel']}, "
        f"Python {machine['python']}"
        + (f", Node {machine['node']}" if machine.get("node") else ""),
        f"- code: {commit}{dirty}",
        f"- date: {machine['date']}; pinned day (CREDIT_GATEWAY_TODAY) {report['today']}",
        f"- department latency: {report['latency_ms']:g} ms per call (sandbox `latency_ms`); "
        f"gateway as deployed: courts max_rps {config['courts_max_rps']}, timeout_s "
        f"{config['timeout_s']:g}, max_in_flight {config['max_in_flight']}"
        + (
            f", [background] share {config['background_share']:g}"
            if config.get("background_share") is not None
            else ""
        ),
        f"- dataset: {dataset.get('subjects', 0):,} subjects, "
        f"{dataset.get('water_rows', 0):,} water rows",
        "",
        "| figure | ours | reference | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["table"]:
        ratio_text = "" if row["ratio"] is None else f"{row['ratio']:.2f}×"
        met = {True: "yes", False: "no", None: ""}[row["met"]]
        cells = [row["figure"], row["value"], row["reference"] or "", ratio_text]
        cells += [row["goal"] or "", met]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _say(text: str) -> None:
    """Progress on stderr, so stdout holds the table alone."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
