"""What a bench run ran on: the machine, the code and the day, carried by the table and the JSON."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def describe(node: bool = False) -> dict[str, Any]:
    """Used once per run, before measuring: machine, Python (and Node), commit, date."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        # The cores this process may run on (a container or taskset may allow fewer).
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **_git(),
    }
    if node:
        info["node"] = _output(["node", "--version"]) if shutil.which("node") else None
    return info


def _cpu_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or None
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def _ram_gib() -> float | None:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _git() -> dict[str, Any]:
    commit = _output(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    status = _output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    # Others change the code while a run is made: say whether it ran on the commit exactly.
    return {"git_commit": commit, "git_dirty": bool(status) if commit else None}


def _output(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()
