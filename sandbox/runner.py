"""Runs the four sandbox department servers: in the caller's event loop or in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web

from sandbox import courts, market, tax, water
from sandbox.faults import DEPARTMENTS, FaultState, check_knobs
from sandbox.listings import ADD, END, ChangeListings, ListingAnswer
from sandbox.model import Dataset

__all__ = ["DEPARTMENTS", "SandboxServers", "SandboxThread", "serve_forever"]

# Short, so stopping a department with hanging requests in flight really takes it down now.
_SHUTDOWN_TIMEOUT_S: Final = 0.5
_THREAD_CALL_TIMEOUT_S: Final = 120.0
_T = TypeVar("_T")


class _DepartmentModule(Protocol):
    def create_app(self, dataset: Dataset, faults: FaultState) -> web.Application: ...

    def replace_dataset(self, app: web.Application, dataset: Dataset) -> None: ...


_MODULES: Final[Mapping[str, _DepartmentModule]] = {
    "courts": courts,
    "market": market,
    "tax": tax,
    "water": water,
}


# The departments whose lists change while they run (POST /_admin/listings).
_LISTINGS: Final[Mapping[str, ChangeListings]] = {
    "courts": courts.change_listings,
    "market": market.change_listings,
}


def _check_department(name: str) -> None:
    if name not in DEPARTMENTS:
        raise ValueError(f"unknown department {name!r}; departments are {', '.join(DEPARTMENTS)}")


def _check_names(mapping: Mapping[str, object] | None) -> None:
    for name in mapping or {}:
        _check_department(name)


class SandboxServers:
    """The four departments listening on loopback, in the caller's loop (async tests, CLI)."""

    def __init__(
        self,
        dataset: Dataset,
        host: str,
        apps: dict[str, web.Application],
        fault_states: dict[str, FaultState],
    ) -> None:
        self.dataset = dataset
        self.host = host
        self.faults = fault_states
        self.urls: dict[str, str] = {}
        self._apps = apps
        self._ports: dict[str, int] = {}
        self._runners: dict[str, web.AppRunner] = {}

    @classmethod
    async def start(
        cls,
        dataset: Dataset,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        faults: Mapping[str, FaultState] | None = None,
    ) -> SandboxServers:
        """Index the dataset and listen; a port of 0 or a missing port picks a free one."""
        _check_names(ports)
        _check_names(faults)
        given = faults or {}
        states = {n: given[n] if n in given else FaultState.for_department(n) for n in DEPARTMENTS}
        apps = {n: _MODULES[n].create_app(dataset, states[n]) for n in DEPARTMENTS}
        servers = cls(dataset, host, apps, states)
        try:
            for name in DEPARTMENTS:
                await servers._listen(name, (ports or {}).get(name, 0))
        except BaseException:
            await servers.stop()
            raise
        return servers

    async def stop(self) -> None:
        """Close every department and its connections."""
        for name in list(self._runners):
            await self.stop_department(name)

    async def stop_department(self, name: str) -> None:
        """Close one department's listening socket and connections: connection refused."""
        _check_department(name)
        runner = self._runners.pop(name, None)
        if runner is not None:
            await runner.cleanup()

    async def start_department(self, name: str) -> None:
        """Listen again on the same port after stop_department."""
        _check_department(name)
        if name not in self._runners:
            await self._listen(name, self._ports[name])

    def request_counts(self, name: str) -> dict[str, int]:
        """Requests a department received, by "<METHOD> <path>" (admin calls not counted)."""
        _check_department(name)
        return dict(self.faults[name].requests)

    def request_headers(self, name: str) -> list[tuple[str, dict[str, str]]]:
        """The latest requests' "<METHOD> <path>" and headers, oldest first (at most 200)."""
        _check_department(name)
        return list(self.faults[name].headers)

    def request_arrivals(self, name: str) -> list[tuple[float, str]]:
        """Monotonic arrival time and "<METHOD> <path>" of the latest requests, oldest first."""
        _check_department(name)
        return list(self.faults[name].arrivals)

    def reset_counts(self) -> None:
        """Zero every department's request counters."""
        for state in self.faults.values():
            state.requests.clear()
            state.arrivals.clear()
            state.headers.clear()

    def replace_dataset(self, dataset: Dataset) -> None:
        """Publish a new dataset version: all four re-index (water files get new ETags).

        Listings added or ended with add_listing/end_listing belong to the old version: the
        departments answer from the new dataset alone.
        """
        for name in DEPARTMENTS:
            _MODULES[name].replace_dataset(self._apps[name], dataset)
        self.dataset = dataset

    def add_listing(self, department: str, list: str, uscc: str) -> ListingAnswer:
        """List a dataset company anew, published today, as POST /_admin/listings does.

        courts: list "shixin" or "xgl"; market: "abnormal", "serious_illegal" or "penalty".
        Returns the admin answer ({"id", "gateway_id", "records", ...}, sandbox/listings.py);
        raises sandbox.listings.ListingError (a ValueError) for what the endpoint answers 400.
        """
        return self._change_listings(department, {"action": ADD, "list": list, "uscc": uscc})

    def end_listing(self, department: str, list: str, record_id: str) -> ListingAnswer:
        """End a listing by the department's record id, as POST /_admin/listings does.

        courts delete the case; market sets remDate today, or repairs a penalty. Raises
        UnknownListing (a LookupError, 404) for an unknown id, ListingEnded (409) when it
        has already ended, ListingError (400) for an unknown list.
        """
        body = {"action": END, "list": list, "id": record_id}
        return self._change_listings(department, body)

    def _change_listings(self, department: str, body: dict[str, str]) -> ListingAnswer:
        _check_department(department)
        change = _LISTINGS.get(department)
        if change is None:
            raise ValueError(
                f"{department} has no listings to change; only {', '.join(_LISTINGS)} have"
            )
        return change(self._apps[department], body)

    async def __aenter__(self) -> SandboxServers:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _listen(self, name: str, port: int) -> None:
        sock = await _bound_socket(self.host, port)
        # handler_cancellation: a `hang` request ends as soon as its client goes away.
        runner = web.AppRunner(
            self._apps[name],
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
            access_log=None,
        )
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runners[name] = runner
        self._ports[name] = sock.getsockname()[1]
        self.urls[name] = _url(self.host, self._ports[name])


async def _bound_socket(host: str, port: int) -> socket.socket:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family = infos[0][0]
    # create_server sets SO_REUSEADDR, so a restarted department gets its old port back.
    return socket.create_server((host, port), family=family)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_forever(
    dataset: Dataset,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    faults: Mapping[str, FaultState] | None = None,
) -> None:
    """Used by the `credit-gateway sandbox` command: serve until cancelled."""
    servers = await SandboxServers.start(dataset, host, ports, faults)
    try:
        for name, url in servers.urls.items():
            print(f"{name:<7} {url}", flush=True)
        await asyncio.Event().wait()
    finally:
        await servers.stop()


class SandboxThread:
    """The four departments in a background thread with its own loop, for synchronous tests."""

    def __init__(
        self,
        dataset: Dataset,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        faults: Mapping[str, FaultState] | None = None,
    ) -> None:
        self._dataset = dataset
        self._host = host
        self._ports = dict(ports or {})
        self._faults = dict(faults or {})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: SandboxServers | None = None

    def start(self) -> None:
        """Start the loop thread and block until all four departments listen."""
        if self._loop is not None:
            raise RuntimeError("the sandbox thread is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="sandbox", daemon=True)
        self._thread.start()
        try:
            self._servers = self._wait(
                SandboxServers.start(self._dataset, self._host, self._ports, self._faults)
            )
        except BaseException:
            self._halt_loop()
            raise

    def stop(self) -> None:
        """Stop the departments, then the loop and its thread."""
        if self._loop is None:
            return
        try:
            if self._servers is not None:
                self._wait(self._servers.stop())
        finally:
            self._servers = None
            self._halt_loop()

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each department; stable across stop_department/start_department."""
        return dict(self._running().urls)

    def set_faults(self, name: str, **knobs: object) -> None:
        """Change a department's knobs; a bad knob raises ValueError here, in the caller."""
        _check_department(name)
        checked = check_knobs(knobs)
        servers = self._running()
        self._call(lambda: servers.faults[name].update(checked))

    def clear_faults(self, name: str | None = None) -> None:
        """Reset one department's knobs (or all four) to those it started with."""
        names = DEPARTMENTS if name is None else (name,)
        for each in names:
            _check_department(each)
        servers = self._running()

        def reset() -> None:
            for each in names:
                servers.faults[each].reset()

        self._call(reset)

    def request_counts(self, name: str) -> dict[str, int]:
        """Requests a department received, by "<METHOD> <path>"."""
        servers = self._running()
        return self._call(lambda: servers.request_counts(name))

    def request_headers(self, name: str) -> list[tuple[str, dict[str, str]]]:
        """The latest requests' "<METHOD> <path>" and headers, oldest first."""
        servers = self._running()
        return self._call(lambda: servers.request_headers(name))

    def request_arrivals(self, name: str) -> list[tuple[float, str]]:
        """Monotonic arrival time and "<METHOD> <path>" of the latest requests, oldest first."""
        servers = self._running()
        return self._call(lambda: servers.request_arrivals(name))

    def reset_counts(self) -> None:
        """Zero every department's request counters."""
        self._call(self._running().reset_counts)

    def stop_department(self, name: str) -> None:
        """Take one department down: connection refused until start_department."""
        self._wait(self._running().stop_department(name))

    def start_department(self, name: str) -> None:
        """Bring a stopped department back on its port."""
        self._wait(self._running().start_department(name))

    def replace_dataset(self, dataset: Dataset) -> None:
        """Publish a new dataset version to all four departments."""
        servers = self._running()
        self._call(lambda: servers.replace_dataset(dataset))

    def add_listing(self, department: str, list: str, uscc: str) -> ListingAnswer:
        """SandboxServers.add_listing, run in the loop thread; its errors raised here."""
        servers = self._running()
        return self._call(lambda: servers.add_listing(department, list, uscc))

    def end_listing(self, department: str, list: str, record_id: str) -> ListingAnswer:
        """SandboxServers.end_listing, run in the loop thread; its errors raised here."""
        servers = self._running()
        return self._call(lambda: servers.end_listing(department, list, record_id))

    def __enter__(self) -> SandboxThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _running(self) -> SandboxServers:
        if self._servers is None:
            raise RuntimeError("the sandbox thread is not started")
        return self._servers

    def _wait(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the sandbox thread is not started")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=_THREAD_CALL_TIMEOUT_S)

    def _call(self, fn: Callable[[], _T]) -> _T:
        # Runs fn inside the loop thread, where the servers' state lives.
        async def run() -> _T:
            return fn()

        return self._wait(run())

    def _halt_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
