"""`sources`: the health and freshness of each department, live."""

from __future__ import annotations

from sandbox.runner import SandboxThread
from tests.servers import GraphQLClient

SOURCES = "{ sources { department state asOf message } }"


def test_every_department_is_listed_ok(client: GraphQLClient) -> None:
    sources = client.query(SOURCES)["data"]["sources"]
    assert [s["department"] for s in sources] == ["COURTS", "MARKET", "TAX", "WATER"]
    assert all(s["state"] == "OK" and s["asOf"] for s in sources)


def test_a_department_under_maintenance_is_unavailable(
    client: GraphQLClient, faults: SandboxThread
) -> None:
    faults.set_faults("market", down=True)
    states = {s["department"]: s["state"] for s in client.query(SOURCES)["data"]["sources"]}
    assert states == {"COURTS": "OK", "MARKET": "UNAVAILABLE", "TAX": "OK", "WATER": "OK"}


def test_healthz_is_liveness_only(client: GraphQLClient, faults: SandboxThread) -> None:
    import httpx

    faults.set_faults("courts", down=True)
    response = httpx.get(f"{client.base_url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
