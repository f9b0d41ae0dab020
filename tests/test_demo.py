"""`credit-gateway demo` as a newcomer meets it: a real process, its banner and its port."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.demo import SAMPLE_LABELS
from gateway.listener import claim_port
from sandbox.generator import generate
from tests.cli import ROOT, run_cli, write_config
from tests.conftest import TODAY

README = ROOT / "README.md"
# A sample as the README's tour names it: `serious_illegal.active` or <person.relocation>.
README_LABEL = re.compile(r"[`<]([a-z_]+\.[a-z_0-9]+)[`>]")
SUBJECTS = "300"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Demo:
    """A running demo process and what its banner printed."""

    process: subprocess.Popen[str]
    banner: str
    base_url: str

    def samples(self) -> dict[str, str]:
        """The banner's sample identities by label."""
        block = self.banner.split("Sample identities:", 1)[1]
        return dict(re.findall(r"^\s+([a-z_]+\.[a-z_0-9]+)\s+(\S+)$", block, re.MULTILINE))

    def key(self, client_id: str) -> str:
        """The demo key printed for a client."""
        found = re.search(rf"{client_id}\s+Authorization: Bearer (\S+)", self.banner)
        assert found, self.banner
        return found.group(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`credit-gateway demo` on a free port with a small dataset, until the module ends."""
    port = _free_port()
    directory = tmp_path_factory.mktemp("demo")
    command = ["demo", "--port", str(port), "--subjects", SUBJECTS, "--dir", str(directory)]
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        # The banner ends with the sample identities and an empty line.
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Sample identities:" in "".join(lines) and line.strip() == "":
                break
        banner = "".join(lines)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_listening(base_url)
        yield Demo(process, banner, base_url)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_listening(base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the demo gateway did not answer /healthz")


def test_every_sample_the_readme_names_is_one_the_banner_prints(demo: Demo) -> None:
    named = set(README_LABEL.findall(README.read_text(encoding="utf-8")))
    named &= set(SAMPLE_LABELS) | _dataset_labels()
    assert named, "the README's tour names no samples"
    assert sorted(named - set(SAMPLE_LABELS)) == []
    printed = demo.samples()
    assert sorted(named - set(printed)) == [], demo.banner


def test_the_banner_names_graphiql_on_the_chosen_port(demo: Demo) -> None:
    assert f"GraphiQL:  {demo.base_url}/graphql" in demo.banner


def test_answers_carry_readable_chinese(demo: Demo) -> None:
    # curl shows the body as it is: Chinese must arrive as UTF-8, not as \\uXXXX escapes.
    uscc = demo.samples()["stitched.all_departments"]
    response = httpx.post(
        f"{demo.base_url}/graphql",
        json={"query": f'{{ subject(uscc: "{uscc}") {{ name region {{ name }} }} }}'},
        headers={"Authorization": f"Bearer {demo.key('bank-demo')}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert "\\u" not in response.text
    name = response.json()["data"]["subject"]["name"]
    assert re.search(r"[\u4e00-\u9fff]", name)
    assert name.encode("utf-8") in response.content


def test_a_taken_port_stops_the_demo_before_any_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli(
            "demo", "--port", str(port), "--subjects", "50", "--dir", str(tmp_path / "demo")
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Bearer" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was set up: no config with key hashes was written.
    assert not (tmp_path / "demo" / "config.toml").exists()


def test_a_taken_port_stops_serve_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    write_config(config, f"sqlite://{tmp_path}/audit.db")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("serve", "--config", str(config), "--port", str(port))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _dataset_labels() -> set[str]:
    return set(generate(2026, int(SUBJECTS), TODAY).examples)


def test_the_demo_audit_chain_is_keyed(demo: Demo) -> None:
    found = re.search(r"^config:\s+(\S+)$", demo.banner, re.MULTILINE)
    assert found, demo.banner
    config = tomllib.loads(Path(found.group(1)).read_text(encoding="utf-8"))
    key = Path(config["audit"]["key_file"])
    # contract §5: entries and the head are sealed; the key is the demo user's alone.
    assert key.stat().st_size == 32
    assert key.stat().st_mode & 0o077 == 0


async def test_connections_on_the_claimed_port_do_not_wait_for_delayed_acks() -> None:
    # asyncio turns Nagle's algorithm off only for connections accepted on a socket whose
    # protocol is TCP; a socket made with protocol 0 left every kept-alive response of
    # `serve` and `demo` waiting for the client's delayed ACK (about 40 ms).
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    listener = claim_port("127.0.0.1", 0)
    server = await loop.create_server(Accepted, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_the_readme_bulk_check_runs_against_the_demo(demo: Demo, tmp_path: Path) -> None:
    found = re.search(r"^config:\s+(\S+)$", demo.banner, re.MULTILINE)
    assert found, demo.banner
    codes = Path(found.group(1)).parent / "codes-1000.csv"
    lines = codes.read_text(encoding="utf-8").splitlines()
    # The dataset has SUBJECTS companies, fewer than 1,000: all of them.
    assert lines[0] == "uscc" and len(lines) == 1 + int(SUBJECTS)
    # The README's command, on the file's first few codes (the courts' pace is real here).
    few = tmp_path / "codes.csv"
    few.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    out = tmp_path / "results.csv"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "gateway.cli", "bulk", "--url", demo.base_url),
            *("--key-env", "BANK_KEY", str(few), "--scenario", "CREDIT_LOAN", "--out", str(out)),
        ],
        cwd=ROOT,
        env={**os.environ, "BANK_KEY": demo.key("bank-demo")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = out.read_bytes().decode("utf-8-sig").split("\r\n")
    assert rows[0].startswith("index,uscc,error,name,status") and len(rows) == 2 + 5
