"""Helpers for tools that run the sandbox and the gateway as processes: `make soak`, `make bench`.

Loopback ports, starting and stopping a child process, waiting for it to answer HTTP, the
gateway's config file, and what /proc says about a process (memory, CPU time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

import aiohttp

# One value of a [sources.<name>] table (TOML scalars only).
OptionValue = str | int | float | bool


def free_port() -> int:
    """Used before starting a server process: a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process(
    command: list[str],
    env: Mapping[str, str] | None = None,
    stdout: int | IO[bytes] | None = subprocess.DEVNULL,
    cwd: str | Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Used to run the sandbox, the gateway (or another server) for as long as the block lasts."""
    environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, env=environment, stdout=stdout, cwd=cwd)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def wait_http(
    url: str, timeout_s: float = 30.0, child: subprocess.Popen[bytes] | None = None
) -> None:
    """Used after starting a server: returns once `url` answers below 500, else SystemExit."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            # A server that exited will never answer: say so now rather than at the deadline.
            if child is not None and child.poll() is not None:
                raise SystemExit(f"{url}: the process exited with {child.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up within {timeout_s:g} s")
            await asyncio.sleep(0.2)


def write_gateway_config(
    directory: Path,
    urls: Mapping[str, str],
    key: str,
    client_id: str,
    options: Mapping[str, Mapping[str, OptionValue]] | None = None,
) -> Path:
    """Used by the load tools: a config over the sandbox with one bank client, its rate lifted."""
    lines = []
    for name, url in urls.items():
        lines += [f"[sources.{name}]", f'url = "{url}"']
        lines += [f"{k} = {_toml(v)}" for k, v in (options or {}).get(name, {}).items()]
        lines.append("")
    lines += ["[audit]", f'url = "sqlite://{directory / "audit.db"}"', ""]
    # The tool's workers share one key: its rate is lifted so the departments, not the
    # per-client limit, are what is under test (tests/test_limits.py covers the limit).
    lines += ["[limits.bank]", "rate_per_s = 100000", "burst = 100000", ""]
    lines += [
        "[[clients]]",
        f'id = "{client_id}"',
        'role = "bank"',
        f'key_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"',
        'purposes = ["CREDIT_LOAN"]',
    ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: OptionValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def rss_mb(pid: int) -> float:
    """Used to sample a server's memory: its resident set now (VmRSS), in MiB."""
    return _status_kib(pid, "VmRSS:") / 1024


def peak_rss_mb(pid: int) -> float:
    """Used at the end of a run: the largest resident set the process has had (VmHWM), in MiB."""
    return _status_kib(pid, "VmHWM:") / 1024


def _status_kib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return float(line.split()[1])
    return float("nan")


def cpu_ms(pid: int) -> float:
    """Used around a measured stretch: CPU time the process used so far (user + system), in ms.

    /proc/<pid>/stat counts clock ticks (usually 100 a second, so 10 ms steps): measure a
    stretch long enough that a tick more or less does not matter.
    """
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) * 1000 / os.sysconf("SC_CLK_TCK")
