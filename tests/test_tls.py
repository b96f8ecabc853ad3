"""Both services over TLS to a PostgreSQL and a RabbitMQ of the test's own, each with a certificate from a
CA the test makes: verification on (`sslmode=verify-full` with `sslrootcert`, `amqps://` with `cafile`).

The servers accept nothing else (PostgreSQL: `hostssl` lines only; RabbitMQ: no plain listener), so
what works here went over TLS: migrations and seeds (aerich, `manage prepare`), the order service's
requests, its outbox relay and LISTEN session, the consumer. A URL that names another CA stops a
service before its workers start, and a command line, with one line that names the variable.
"""

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

import aiohttp
import pytest

from shared.testing import postgres, rabbitmq
from shared.testing.certificates import CertificateAuthority
from shared.testing.plugin import eventually
from shared.testing.processes import Services, free_port
from shared.testing.runs import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(rabbitmq.available() is not None, reason=str(rabbitmq.available())),
    pytest.mark.skipif(postgres.available() is not None, reason=str(postgres.available())),
]


@pytest.fixture(scope="module")
def servers():
    """The CA, another CA, and the two servers with certificates of the first, for the file's tests."""
    with tempfile.TemporaryDirectory(prefix="tls-") as tmp:
        os.chmod(tmp, 0o755)  # the servers' users read their certificates from here
        folder = Path(tmp)
        ca, other = CertificateAuthority(folder, "ca"), CertificateAuthority(folder, "other-ca")
        with postgres.server(ca.server("postgres")) as database, rabbitmq.cluster(1, ca.server("rabbitmq")) as broker:
            yield ca, other, database, broker.nodes[0]


def environment(ca_file: Path, database: postgres.Server, node: rabbitmq.Node, broker_ca: Path | None = None) -> dict:
    tls = f"sslmode=verify-full&sslrootcert={ca_file}"
    return {
        "CUSTOMER_DATABASE_URL": database.url("customers", "customer_service", tls),
        "ORDER_DATABASE_URL": database.url("orders", "order_service", tls),
        "AMQP_URL": f"{node.url}?cafile={broker_ca or ca_file}",
        "AUTH_MODE": "off",
        "LOG_LEVEL": "WARNING",
    }


async def run(*command: str, env: dict, timeout: float = 60) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout):
        _, stderr = await process.communicate()
    return process.returncode, stderr.decode(errors="replace")


async def test_an_order_reaches_the_customer_count_with_every_connection_verified(servers, tmp_path):
    ca, _, database, node = servers
    env = environment(ca.ca_file, database, node)
    prepared = await asyncio.gather(
        run(sys.executable, "-m", "customer.manage", "prepare", env=env),
        run(sys.executable, "-m", "order.manage", "prepare", env=env),
    )
    assert [code for code, _ in prepared] == [0, 0], prepared
    services = await Services(env=env, log_path=tmp_path / "services.log").start()
    try:
        async with aiohttp.ClientSession() as session:
            body = {
                "customer": {"name": "Ada", "email": f"ada-{uuid.uuid4().hex[:8]}@example.com", "address": "1 Loop"}
            }
            async with session.post(f"{services.customer_url}/customers", json=body) as response:
                assert response.status == 201, await response.text()
                customer_id = (await response.json())["id"]
            order = {"customer_id": customer_id, "product_name": "Kettle", "quantity": 1, "price": "25.00"}
            async with session.post(f"{services.order_url}/orders", json={"order": order}) as response:
                assert response.status == 201, await response.text()

            async def counted():
                async with session.get(f"{services.customer_url}/customers/{customer_id}") as response:
                    assert (await response.json())["orders_count"] == 1

            await eventually(counted, timeout=20)
    finally:
        await services.stop()
    assert "certificate" not in services.log_tail(200)


async def test_a_url_naming_another_ca_stops_the_start_with_a_line_that_says_so(servers):
    ca, other, database, node = servers
    wrong_database = environment(other.ca_file, database, node, broker_ca=ca.ca_file)
    wrong_broker = environment(ca.ca_file, database, node, broker_ca=other.ca_file)
    port = str(free_port())  # never bound: each start stops before its workers
    (customer, customer_err), (order, order_err), (migrate, migrate_err) = await asyncio.gather(
        run(sys.executable, "-m", "customer", env={**wrong_database, "CUSTOMER_PORT": port}),
        run(sys.executable, "-m", "order", env={**wrong_broker, "ORDER_PORT": port}),
        run(sys.executable, "-m", "order.manage", "migrate", env=wrong_database),
    )
    assert customer == 1, customer_err
    assert "(CUSTOMER_DATABASE_URL): certificate verify failed" in customer_err, customer_err
    assert "sslrootcert" in customer_err
    assert order == 1, order_err
    assert f"RabbitMQ at amqps://127.0.0.1:{node.amqp_port}/ (AMQP_URL): certificate verify failed" in order_err
    assert "cafile=" in order_err and "guest:guest" not in order_err
    assert migrate == 1, migrate_err
    (line,) = migrate_err.strip().splitlines()  # one line, no traceback
    assert "ORDER_DATABASE_URL" in line and "certificate verify failed" in line, line
