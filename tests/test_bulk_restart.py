"""A bulk check survives kill -9 (contract §7): the restarted gateway goes on, every index once."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import ROOT, write_config
from tests.servers import KEYS, GraphQLClient
from tests.stores import BACKENDS, store_url
from tests.test_bulk import CHECK, all_results, start, wait_done

LEASE_S = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServedGateway:
    """`credit-gateway serve` as its own process, killed and started again on one config."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gateway.cli", "serve"),
                    *("--config", str(self.config), "--port", str(self.port)),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "CREDIT_GATEWAY_TODAY": "2026-05-20"},
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text(encoding="utf-8")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(params=BACKENDS)
def served(
    request: pytest.FixtureRequest, faults: SandboxThread, tmp_path: Path
) -> Iterator[ServedGateway]:
    # The courts at their published 50 requests/s: the check takes seconds, not moments.
    faults.set_faults("courts", rate_limit_rps=50)
    with store_url(request.param, str(tmp_path / "state.db")) as url:
        clients = "\n".join(
            f'[[clients]]\nid = "{role}-test"\nrole = "{role}"\n'
            f'key_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
            f"purposes = {['CREDIT_LOAN'] if role == 'bank' else []}\n".replace("'", '"')
            for role, key in KEYS.items()
        )
        extra = f'[store]\nurl = "{url}"\n\n[background]\nlease_s = {LEASE_S}\n\n{clients}'
        config = write_config(
            tmp_path / "config.toml", f"sqlite://{tmp_path}/audit.db", faults.urls, extra
        )
        gateway = ServedGateway(config, tmp_path / "gateway.log")
        try:
            yield gateway
        finally:
            gateway.stop()


def test_kill_9_in_the_middle_loses_nothing_and_gives_every_index_once(
    served: ServedGateway, dataset: Dataset
) -> None:
    codes = [c.uscc for c in dataset.companies[200:260]]
    codes += codes[:5]  # duplicates: checked once, reported at each index
    served.start()
    bank = GraphQLClient(served.url, key=KEYS["bank"])
    check = start(bank, codes)
    deadline = time.monotonic() + 60
    while True:
        done = bank.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"]["done"]
        if done >= 10:
            break
        assert time.monotonic() < deadline, "no progress before the kill"
        time.sleep(0.1)
    before = {r["index"]: r["checkedAt"] for r in all_results(bank, check["id"])}
    served.kill()
    assert len(before) < len(codes), "the check ended before the kill"

    served.start()
    bank = GraphQLClient(served.url, key=KEYS["bank"])
    finished = wait_done(bank, check["id"], timeout_s=120)
    assert finished["state"] == "DONE"
    assert finished["done"] == finished["total"] == len(codes)
    results = all_results(bank, check["id"])
    assert [r["index"] for r in results] == list(range(len(codes)))
    # The results written before the kill are the ones kept, not checked again.
    assert all(results[i]["checkedAt"] == at for i, at in before.items())
    assert sum(c["count"] for c in finished["counts"]) == len(codes)
    assert all(r["jointPunishment"]["complete"] for r in results)
