"""A bulk check worked by two replicas on one PostgreSQL store and one Redis (contract §11)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import GatewayFactory
from tests.redis_support import cache_table, redis_prefix
from tests.servers import KEYS, GraphQLClient
from tests.stores import postgres_database
from tests.test_bulk import CHECK, all_results, start, wait_done


@pytest.fixture
def shared() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database and a Redis key prefix, both the two replicas'."""
    with postgres_database() as url, redis_prefix() as prefix:
        yield url, prefix


def _busiest(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered)


def test_two_replicas_share_a_bulk_check_within_the_courts_budget(
    shared: tuple[str, str],
    make_gateway: GatewayFactory,
    faults: SandboxThread,
    dataset: Dataset,
) -> None:
    # `shared` first: its database is dropped after the replicas have stopped.
    url, prefix = shared
    # The courts' documented 50 requests/s, in the sandbox and in each replica.
    faults.set_faults("courts", rate_limit_rps=50)
    tables = {"store": {"url": url}, "cache": cache_table(prefix, timeout_s=1.0)}
    replicas = [
        make_gateway(tables=tables, audit={"url": url}, courts={"max_rps": 50}) for _ in range(2)
    ]
    codes = [c.uscc for c in dataset.companies[:250]]
    faults.reset_counts()
    bank = GraphQLClient(replicas[0].url, key=KEYS["bank"])
    check = start(bank, codes)
    # Read through the other replica: one store.
    other = GraphQLClient(replicas[1].url, key=KEYS["bank"])
    assert other.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"]["id"] == check["id"]
    done = wait_done(other, check["id"], timeout_s=120)
    assert done["done"] == done["total"] == len(codes)
    results = all_results(other, check["id"])
    assert [r["index"] for r in results] == list(range(len(codes)))
    assert all(r["jointPunishment"]["complete"] for r in results)
    sent = [at for at, _ in faults.request_arrivals("courts")]
    assert len(sent) >= 4 * len(codes)
    # Two replicas, each allowed 50 a second alone: together the courts saw at most 50.
    assert _busiest(sent) <= 50, _busiest(sent)
    # Both worked it (three chunks of 100: the second replica claims one from the store).
    final = 'credit_gateway_background_jobs_done_total{kind="bulk_code",outcome="final"}'
    worked = []
    for replica in replicas:
        page = httpx.get(f"{replica.url}/metrics", timeout=10).text
        worked.append(
            next(float(line.split()[-1]) for line in page.splitlines() if line.startswith(final))
        )
    assert sum(worked) == len(codes) and min(worked) > 0, worked


def test_background_work_keeps_to_its_share_with_a_shared_pace(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    # contract §7: background work never takes more than [background] share (0.7) of the
    # courts' 50/s, here with the pace kept in Redis; measured before the fix: 50 in one
    # second (calls that got their slot late all went out at the department's full pace).
    faults.set_faults("courts", rate_limit_rps=50)
    with redis_prefix() as prefix:
        server = make_gateway(
            tables={"cache": cache_table(prefix, timeout_s=1.0)}, courts={"max_rps": 50}
        )
        codes = [c.uscc for c in dataset.companies[300:400]]
        faults.reset_counts()
        bank = GraphQLClient(server.url, key=KEYS["bank"])
        check = start(bank, codes)
        wait_done(bank, check["id"], timeout_s=120)
    sent = [at for at, _ in faults.request_arrivals("courts")]
    assert len(sent) >= 4 * len(codes)
    # 35 a second, and one more for a window's edges (the sandbox timestamps as it reads).
    assert _busiest(sent) <= 36, _busiest(sent)
