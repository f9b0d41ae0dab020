"""`sources`: the health and freshness of each department, live."""

from __future__ import annotations

from core.clock import Clock
from gateway.app import create_app
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import GatewayServer, GraphQLClient

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


def test_anonymous_sources_aliases_cost_one_probe_per_department(
    faults: SandboxThread,
) -> None:
    # 20 aliases of `sources` made 20 uncached court probes each: an anonymous caller could
    # spend the courts' 50 requests/s on health checks and starve bank lookups.
    config = gateway_config(faults.urls, courts={"health_ttl_s": 5}, market={"health_ttl_s": 5})
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    try:
        client = GraphQLClient(server.url)
        aliases = " ".join(f"s{n}: sources {{ department state }}" for n in range(20))
        faults.reset_counts()
        for _ in range(3):
            body = client.query(f"{{ {aliases} }}")
            assert all(len(body["data"][f"s{n}"]) == 4 for n in range(20))
        assert sum(faults.request_counts("courts").values()) == 1
        assert sum(faults.request_counts("market").values()) == 1
        # Tax keeps health_ttl_s 0 here: its probes are shared while in flight, not kept.
        assert faults.request_counts("tax")["SOAP queryNsxy"] == 3
    finally:
        server.stop()
