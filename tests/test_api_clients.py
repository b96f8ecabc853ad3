"""A client generated from each service's OpenAPI document drives the seed's flow, against the real services
in process: the documents are good enough for a client generator, not only for a reader.

`openapi-python-client` (a dev dependency) writes the clients into a temporary folder; nothing generated is
kept. Its typed models are the test's only view of the API: a wrong schema fails to parse.
"""

import importlib
import json
import subprocess
import sys
import uuid

import pytest

from customer.openapi import openapi_spec as customer_spec
from order.openapi import openapi_spec as order_spec
from shared.problems import problem_type

pytestmark = pytest.mark.slow

GENERATOR = [sys.executable, "-m", "openapi_python_client"]


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    """(customer, order): the generated packages, imported under names unique to this run."""
    folder = tmp_path_factory.mktemp("clients")
    run = uuid.uuid4().hex[:8]
    packages = []
    for service, spec in (("customer", customer_spec), ("order", order_spec)):
        name = f"{service}_client_{run}"
        (folder / f"{service}.json").write_text(json.dumps(spec()))
        (folder / f"{service}.yml").write_text(
            f"post_hooks: []\nproject_name_override: {name}\npackage_name_override: {name}\n"
        )
        paths = ["--path", f"{service}.json", "--config", f"{service}.yml", "--output-path", name]
        result = subprocess.run(
            [*GENERATOR, "generate", *paths, "--meta", "none"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr  # nothing skipped
        packages.append(name)
    sys.path.insert(0, str(folder))
    try:
        yield tuple(importlib.import_module(name) for name in packages)
    finally:
        sys.path.remove(str(folder))


def api(package, module: str):
    return importlib.import_module(f"{package.__name__}.{module}")


async def test_the_seed_flow_through_generated_clients(clients, customer_server, order_client):
    customer_pkg, order_pkg = clients
    cmodels, omodels = api(customer_pkg, "models"), api(order_pkg, "models")
    customers = customer_pkg.Client(base_url=str(customer_server.make_url("")).rstrip("/"))
    orders = order_pkg.Client(base_url=str(order_client.make_url("")).rstrip("/"))

    body = cmodels.CreateCustomerBody(customer=cmodels.CustomerIn(name="Ada Lovelace", address="London"))
    created = await api(customer_pkg, "api.customers.create_customer").asyncio_detailed(client=customers, body=body)
    assert created.status_code == 201, created.content
    customer = created.parsed
    assert isinstance(customer, cmodels.CustomerOut) and customer.orders_count == 0
    assert created.headers["Location"] == f"/customers/{customer.id}"

    order_in = omodels.OrderIn(customer_id=customer.id, product_name="Laptop", quantity=1, price="1200")
    placed = await api(order_pkg, "api.orders.create_order").asyncio_detailed(
        client=orders, body=omodels.CreateOrderBody(order=order_in), idempotency_key=uuid.uuid4().hex
    )
    assert placed.status_code == 201, placed.content
    assert isinstance(placed.parsed, omodels.OrderCreatedOut)
    assert placed.parsed.total == "1200.00" and placed.parsed.customer.name == "Ada Lovelace"

    order = await api(order_pkg, "api.orders.get_order").asyncio(client=orders, id=placed.parsed.id)
    assert isinstance(order, omodels.OrderOut) and order.status is omodels.OrderStatus.CREATED

    change = omodels.ChangeStatusBody(order=omodels.StatusChange(status=omodels.OrderStatus.PAID))
    paid = await api(order_pkg, "api.orders.change_order_status").asyncio(client=orders, id=order.id, body=change)
    assert paid.status is omodels.OrderStatus.PAID  # one OrderStatus type, in and out

    page = await api(order_pkg, "api.orders.list_customer_orders").asyncio(client=orders, id=customer.id)
    assert [o.id for o in page.items] == [order.id]


async def test_a_generated_client_tells_problem_kinds_apart_by_type(clients, customer_server, order_client):
    _, order_pkg = clients
    omodels = api(order_pkg, "models")
    orders = order_pkg.Client(base_url=str(order_client.make_url("")).rstrip("/"))
    unknown = omodels.OrderIn(customer_id=2**31 - 1, product_name="Laptop", quantity=1, price=1.5)
    refused = await api(order_pkg, "api.orders.create_order").asyncio_detailed(
        client=orders, body=omodels.CreateOrderBody(order=unknown)
    )
    assert refused.status_code == 422
    assert isinstance(refused.parsed, omodels.Problem) and refused.parsed.type_ == problem_type("unknown-customer")
