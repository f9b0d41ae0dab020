"""`credit-gateway cluster`: the sandbox, N gateway replicas on PostgreSQL and Redis, a front.

The local form of contract §11 (docs/deployment.md, "Several replicas"), for demos and
tests: the departments' sandbox in this process, one config every replica reads ([store]
and [audit] on one PostgreSQL database, [cache] on Redis, demo clients whose keys are shown
once), N `credit-gateway serve` processes on consecutive loopback ports, and a round-robin
TCP front (gateway/cluster_front.py) on --port. Ctrl-C (or SIGTERM) stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from core.clock import Clock
from gateway.audit_pg import shown_url
from gateway.cluster_front import RoundRobinFront, Upstream
from gateway.config import ConfigError, load_config
from gateway.demo import (
    DEMO_CLIENTS,
    DEMO_WEBHOOKS,
    EXAMPLE_LABEL,
    SAMPLE_LABELS,
    _url_host,
    demo_audit_key,
    write_demo_codes,
)
from gateway.listener import claim_port
from sandbox.generator import generate
from sandbox.runner import SandboxServers

log = logging.getLogger(__name__)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/credit_cluster"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# contract §11: work of a replica that stops is taken over after this long (default 30).
LEASE_S = 10
# Where the cluster says which process listens where, for tools and tests (removed at stop).
STATE_FILE = "cluster.json"
# A replica answers /healthz once its first water sync is done (up to 60 s without water).
START_TIMEOUT_S = 90.0
# As `docker stop`'s --stop-timeout of docs/deployment.md: requests in flight finish.
STOP_TIMEOUT_S = 30.0
MAX_REPLICAS = 32


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """What `credit-gateway cluster` was asked for."""

    replicas: int = 3
    host: str = "127.0.0.1"
    port: int = 8000
    # The first replica's port; the others follow it. None: the one after the front's.
    replica_port: int | None = None
    postgres: str = DEFAULT_POSTGRES
    redis: str = DEFAULT_REDIS
    directory: str = ".cluster"
    seed: int = 2026
    subjects: int = 2000
    log_level: str = "info"


@dataclass(slots=True)
class Replica:
    """One `credit-gateway serve` process of the cluster."""

    number: int
    port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    reported_exit: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exit_code(self) -> int | None:
        """None while running (or not started); the exit status, -9 after a SIGKILL."""
        return self.process.returncode if self.process is not None else None


def run_cluster(options: ClusterOptions) -> None:
    """Claim the ports, prepare PostgreSQL, then run the sandbox, the replicas and the front."""
    if not 1 <= options.replicas <= MAX_REPLICAS:
        raise ConfigError(f"--replicas must be between 1 and {MAX_REPLICAS}")
    # The front's port first: a taken port stops the cluster before a key is made or shown.
    listener = claim_port(options.host, options.port)
    try:
        first = options.replica_port if options.replica_port is not None else options.port + 1
        ports = list(range(first, first + options.replicas))
        for port in ports:
            try:
                claim_port("127.0.0.1", port).close()
            except ConfigError:
                raise ConfigError(
                    f"port {port} on 127.0.0.1, for a replica, is already in use; choose "
                    f"the replicas' first port with --replica-port (they use {len(ports)} "
                    "in a row)"
                ) from None
        directory = Path(options.directory)
        directory.mkdir(parents=True, exist_ok=True)
        notes = _Notes(
            created=ensure_database(options.postgres),
            new_key=not (directory / "audit.key").exists(),
            redis_problem=probe_redis(options.redis),
        )
        replicas = [
            Replica(n, port, (directory / f"replica-{n}.log").resolve())
            for n, port in enumerate(ports, start=1)
        ]
        asyncio.run(_serve(options, directory, listener, replicas, notes))
    finally:
        listener.close()


@dataclass(frozen=True, slots=True)
class _Notes:
    """What the banner adds below itself: a database made now, a new key, Redis silent."""

    created: bool
    new_key: bool
    redis_problem: str | None


async def _serve(
    options: ClusterOptions,
    directory: Path,
    listener: socket.socket,
    replicas: list[Replica],
    notes: _Notes,
) -> None:
    dataset = generate(options.seed, options.subjects, Clock.from_env().today())
    servers = await SandboxServers.start(dataset, host="127.0.0.1")
    try:
        keys = {client_id: secrets.token_urlsafe(24) for client_id, _, _ in DEMO_CLIENTS}
        config_path = write_cluster_config(
            directory,
            servers.urls,
            keys,
            postgres=options.postgres,
            redis=options.redis,
            replicas=options.replicas,
            example_uscc=dataset.examples.get(EXAMPLE_LABEL),
        )
        # The replicas would refuse it one by one: refused here, once, exit 2.
        load_config(config_path)
        codes_path = write_demo_codes(directory, [c.uscc for c in dataset.companies])
        try:
            await _start_replicas(replicas, config_path, options.log_level)
            front = RoundRobinFront([Upstream(r.number, "127.0.0.1", r.port) for r in replicas])
            server = await asyncio.start_server(front.handle, sock=listener)
            base = f"http://{_url_host(options.host)}:{listener.getsockname()[1]}"
            state_path = _write_state(directory, base, config_path, replicas, servers.urls)
            try:
                _banner(
                    base,
                    options,
                    config_path,
                    replicas,
                    servers.urls,
                    keys,
                    dataset.examples,
                    codes_path,
                    state_path,
                )
                _print_notes(options, notes)
                await _until_stopped(replicas)
            finally:
                print("\nstopping the front, the replicas and the sandbox …", flush=True)
                server.close()
                await front.close()
                _remove(state_path)
        finally:
            await _stop_replicas(replicas)
    finally:
        await servers.stop()


def ensure_database(url: str) -> bool:
    """The PostgreSQL database of `url` exists afterwards; True when it was created now."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    shown = shown_url(url)
    try:
        name = conninfo_to_dict(url).get("dbname")
    except psycopg.Error as exc:
        raise ConfigError(f"--postgres is not a PostgreSQL URL: {_first_line(exc)}") from None
    if not name:
        raise ConfigError(f"--postgres {shown} names no database (…/credit_cluster)")
    try:
        with psycopg.connect(url, connect_timeout=5):
            return False
    except psycopg.OperationalError as exc:
        if f'database "{name}" does not exist' not in str(exc):
            raise ConfigError(f"cannot connect to {shown}: {_first_line(exc)}") from None
    # Created from the server's maintenance database, as createdb does.
    try:
        with psycopg.connect(
            make_conninfo(url, dbname="postgres"), autocommit=True, connect_timeout=5
        ) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
    except psycopg.errors.DuplicateDatabase:
        return False  # made meanwhile by another cluster starting
    except psycopg.Error as exc:
        raise ConfigError(f"cannot create the database of {shown}: {_first_line(exc)}") from None
    return True


def probe_redis(url: str) -> str | None:
    """None when Redis answers PING, else why not (the replicas start anyway: §11 fallback)."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    except ValueError as exc:
        raise ConfigError(f"--redis is not a Redis URL: {exc}") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc) or type(exc).__name__
    finally:
        client.close()
    return None


def cache_prefix(postgres: str) -> str:
    """Redis key prefix of a cluster: its database's name, so two clusters never mix state."""
    from psycopg.conninfo import conninfo_to_dict

    name = str(conninfo_to_dict(postgres).get("dbname") or "cluster")
    return f"cg:{name[:40]}:"


def write_cluster_config(
    directory: Path,
    urls: dict[str, str],
    keys: dict[str, str],
    *,
    postgres: str,
    redis: str,
    replicas: int,
    example_uscc: str | None = None,
) -> Path:
    """The one config of every replica (contract §6, §11); only the keys' SHA-256 is in it."""
    directory.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for name, url in urls.items():
        lines += [f"[sources.{name}]", f"url = {json.dumps(url)}", ""]
    key_file = demo_audit_key(directory)
    lines += ["[store]", f"url = {json.dumps(postgres)}", ""]
    lines += [
        "[audit]",
        f"url = {json.dumps(postgres)}",
        f"key_file = {json.dumps(str(key_file))}",
        "",
    ]
    lines += [
        "[cache]",
        f"url = {json.dumps(redis)}",
        # While Redis is unreachable each replica keeps 1/replicas of every budget.
        f"replicas = {replicas}",
        f"key_prefix = {json.dumps(cache_prefix(postgres))}",
        "",
    ]
    lines += ["[background]", f"lease_s = {LEASE_S}", ""]
    if example_uscc is not None:
        lines += ["[graphiql]", f"example_uscc = {json.dumps(example_uscc)}", ""]
    lines += ["[webhooks]", f"allow = [{json.dumps(DEMO_WEBHOOKS)}]", ""]
    for client_id, role, purposes in DEMO_CLIENTS:
        digest = hashlib.sha256(keys[client_id].encode()).hexdigest()
        lines += [
            "[[clients]]",
            f"id = {json.dumps(client_id)}",
            f"role = {json.dumps(role)}",
            f"key_sha256 = {json.dumps(digest)}",
            f"purposes = {json.dumps(purposes)}",
            "",
        ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    # The database URLs may carry a password.
    path.chmod(0o600)
    return path.resolve()


async def _start_replicas(replicas: list[Replica], config: Path, log_level: str) -> None:
    """Start every replica, then wait until each answers /healthz (or say which did not)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for replica in replicas:
        out = _open_log(replica.log_path)
        try:
            replica.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "gateway.cli", "--log-level", log_level, "serve"),
                *("--config", str(config), "--host", "127.0.0.1", "--port", str(replica.port)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        finally:
            out.close()
        log.info("replica %d: pid %s on port %d", replica.number, replica.pid, replica.port)
    await asyncio.gather(*(_wait_healthy(r) for r in replicas))


async def _wait_healthy(replica: Replica) -> None:
    """Returns once the replica answers /healthz; ConfigError naming its log if it cannot."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    problem = f"no answer on {replica.url}/healthz within {START_TIMEOUT_S:g} s"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with session.get(f"{replica.url}/healthz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if replica.exit_code is not None:
                problem = f"it exited with {replica.exit_code}"
                break
            await asyncio.sleep(0.2)
    raise ConfigError(
        f"replica {replica.number} did not start: {problem}; its log, {replica.log_path}, "
        f"ends:\n{_tail(replica.log_path)}"
    )


async def _until_stopped(replicas: list[Replica]) -> None:
    """Until SIGINT or SIGTERM, or every replica has exited; says when one exits."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        while not stop.is_set():
            for replica in replicas:
                code = replica.exit_code
                if code is not None and not replica.reported_exit:
                    replica.reported_exit = True
                    log.warning(
                        "replica %d (pid %s, port %d) exited with %s; the front sends "
                        "connections to the others, which take over its leased work "
                        "within %d s",
                        replica.number,
                        replica.pid,
                        replica.port,
                        code,
                        LEASE_S,
                    )
            if all(r.reported_exit for r in replicas):
                log.error("every replica has exited; stopping the cluster")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def _stop_replicas(replicas: list[Replica]) -> None:
    """SIGTERM to every replica still running (they drain), SIGKILL after STOP_TIMEOUT_S."""
    running = [r.process for r in replicas if r.process is not None and r.exit_code is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    for process in running:
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _write_state(
    directory: Path,
    front: str,
    config: Path,
    replicas: list[Replica],
    sandbox: dict[str, str],
) -> Path:
    """cluster.json: which process listens where (no key, no password)."""
    state: dict[str, Any] = {
        "front": front,
        "pid": os.getpid(),
        "config": str(config),
        "replicas": [
            {
                "number": r.number,
                "url": r.url,
                "port": r.port,
                "pid": r.pid,
                "log": str(r.log_path),
            }
            for r in replicas
        ],
        "sandbox": sandbox,
    }
    path = (directory / STATE_FILE).resolve()
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def _banner(
    base: str,
    options: ClusterOptions,
    config_path: Path,
    replicas: list[Replica],
    department_urls: dict[str, str],
    keys: dict[str, str],
    examples: dict[str, str],
    codes_path: Path,
    state_path: Path,
) -> None:
    print("\n=== credit-gateway cluster ===")
    print(f"GraphiQL:  {base}/graphql  (round robin over {len(replicas)} replicas)")
    for replica in replicas:
        print(f"replica {replica.number}  {replica.url}  pid {replica.pid}  log {replica.log_path}")
    print(f"config:    {config_path}")
    print(f"store:     {shown_url(options.postgres)}  ([store] and [audit])")
    print(
        f"cache:     {_shown_redis(options.redis)}  (key prefix {cache_prefix(options.postgres)})"
    )
    print(f"processes: {state_path}")
    for name, department_url in department_urls.items():
        print(f"sandbox {name:<7} {department_url}")
    print("\nDemo API keys (shown once; only their SHA-256 is in the config):")
    for client_id, key in keys.items():
        print(f"  {client_id:<15} Authorization: Bearer {key}")
    print("\nSample identities:")
    for label in SAMPLE_LABELS:
        if label in examples:
            print(f"  {label:<24} {examples[label]}")
    print(f"\nCodes for a bulk check (docs/bulk.md): {codes_path}")
    print(f"Audit chain: credit-gateway audit verify --config {config_path}")
    print("Ctrl-C stops everything.\n", flush=True)


def _print_notes(options: ClusterOptions, notes: _Notes) -> None:
    out: IO[str] = sys.stdout
    if notes.created:
        print(f"note: created the database {shown_url(options.postgres)}", file=out)
    elif notes.new_key:
        # The audit head in the database is sealed with the key of the run that wrote it.
        print(
            f"note: {shown_url(options.postgres)} existed before and {options.directory} had "
            "no audit key: if an earlier cluster wrote audit entries there, the replicas "
            "report the audit store not ready; use that run's --dir, or another database",
            file=out,
        )
    if notes.redis_problem is not None:
        print(
            f"warning: Redis at {_shown_redis(options.redis)} does not answer "
            f"({notes.redis_problem}): each replica works in-process at 1/{options.replicas} of "
            "the departments' budgets until it does",
            file=out,
        )
    out.flush()


def _shown_redis(url: str) -> str:
    """A Redis URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
