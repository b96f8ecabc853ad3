"""The Grafana dashboard against a real Prometheus: every panel's query is valid PromQL and returns data
once both services (two workers each) and a broker node with rabbitmq_prometheus have been scraped
after some traffic. Grafana itself does not install here; its variables are substituted as it would."""

import re

import aiohttp
import pytest
import yaml

from shared.testing import prometheus, rabbitmq
from shared.testing.plugin import eventually, unique
from shared.testing.processes import Services
from shared.testing.prometheus import api
from tests.infra_files import ROOT, dashboard, dashboard_exprs, panels

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(prometheus.PROMETHEUS is None, reason=f"prometheus {prometheus.MISSING}"),
    pytest.mark.skipif(rabbitmq.available() is not None, reason=str(rabbitmq.available())),
]

# What Grafana puts in place of its variables: every job and instance ("All"), and ranges that cover
# the test's few seconds of traffic.
VARIABLES = {"$__rate_interval": "5m", "$__range": "5m", "$job": ".+", "$instance": ".+"}


def substituted(expr: str) -> str:
    return re.sub(
        "|".join(re.escape(name) for name in sorted(VARIABLES, key=len, reverse=True)),
        lambda m: VARIABLES[m.group(0)],
        expr,
    )


def scrape_config(services: Services, node: rabbitmq.Node) -> dict:
    """The shipped scrape jobs for both services and the broker's per-queue exporter, at this test's addresses."""
    shipped = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in shipped["scrape_configs"]}
    targets = {
        "customer": services.customer_url.removeprefix("http://"),
        "order": services.order_url.removeprefix("http://"),
        "rabbitmq-queues": node.prometheus_address,
    }
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{**jobs[name], "static_configs": [{"targets": [t]}]} for name, t in targets.items()],
    }


async def some_traffic(session: aiohttp.ClientSession, services: Services) -> None:
    """Customers, orders (so events flow through the outbox, the broker and the consumer) and a 404."""
    for n in range(3):
        customer = {"customer": {"name": unique(f"Dash {n}"), "address": "Here"}}
        async with session.post(f"{services.customer_url}/customers", json=customer) as response:
            assert response.status == 201, await response.text()
            customer_id = (await response.json())["id"]
        order = {"order": {"customer_id": customer_id, "product_name": "Lamp", "quantity": 1, "price": "9.99"}}
        async with session.post(f"{services.order_url}/orders", json=order) as response:
            assert response.status == 201, await response.text()
    async with session.get(f"{services.customer_url}/customers/2147483647") as response:
        assert response.status == 404


async def test_every_panel_query_returns_data_from_the_services_and_the_broker(scratch_run, tmp_path):
    run = scratch_run()
    with rabbitmq.cluster(1, prometheus=True) as broker:
        [node] = broker.nodes
        services = Services(
            env={
                "AMQP_URL": node.url,
                "WORKERS": "2",
                "AUTH_MODE": "off",
                "CUSTOMER_DATABASE_URL": run.customer_db,
                "ORDER_DATABASE_URL": run.order_db,
                "EVENTS_EXCHANGE": run.exchange,
                "CUSTOMER_ORDERS_QUEUE": run.queue,
            },
            log_path=tmp_path / "services.log",
        )
        try:
            await services.start(timeout=60)
            folder = tmp_path / "prometheus"
            folder.mkdir()
            config = scrape_config(services, node)
            async with prometheus.running(config, folder) as base, aiohttp.ClientSession() as session:
                await some_traffic(session, services)
                exprs = dashboard_exprs()
                missing: dict[str, object] = {}

                async def every_query_has_data():
                    missing.clear()
                    for expr in exprs:
                        result = (await api(session, f"{base}/api/v1/query", query=substituted(expr)))["result"]
                        if not result:
                            missing[expr] = result
                    assert not missing, f"{len(missing)} of {len(exprs)} queries return nothing: {list(missing)}"

                # Gauges set by the housekeeping round (the outbox's) appear seconds after start.
                await eventually(every_query_has_data, timeout=90, interval=1)

                # The variables' own queries list both services and their instances.
                jobs = await api(session, f"{base}/api/v1/label/job/values", **{"match[]": "http_requests_total"})
                assert set(jobs) == {"customer", "order"}
                instances = await api(
                    session, f"{base}/api/v1/label/instance/values", **{"match[]": 'http_requests_total{job=~".+"}'}
                )
                assert len(instances) == 2

                # CPU and memory per process: the master and both workers of each service.
                result = await api(session, f"{base}/api/v1/query", query="process_resident_memory_bytes")
                roles = sorted((s["metric"]["job"], s["metric"]["role"]) for s in result["result"])
                assert roles == sorted(
                    [(job, role) for job in ("customer", "order") for role in ("master", "worker", "worker")]
                ), roles
        finally:
            await services.stop()


def test_the_substitution_leaves_no_variable_behind():
    queries = [
        *dashboard_exprs(),
        *(v["query"]["query"] for v in dashboard()["templating"]["list"] if isinstance(v.get("query"), dict)),
    ]
    assert all("$" not in substituted(q) for q in queries), [q for q in queries if "$" in substituted(q)]
    assert len(list(panels(dashboard()["panels"]))) > 20
