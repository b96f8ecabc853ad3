"""Hostile input: schemathesis against both services' documents, oversized and stalled requests, leaky errors.

The request line and each header line may be 8190 bytes and a request may carry 128 headers: aiohttp's HTTP
parser enforces these limits before any middleware runs. Past them it answers a plain-text 400 and closes the
connection, so those answers are not problem+json and carry no X-Request-ID.
"""

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from conftest import broker_connected, make_settings, secured_services
from customer.app import create_app as create_customer_app
from customer.manage import SERVICE_DB
from order.app import create_app as create_order_app
from order.settings import OrderSettings
from shared.manage import seed
from shared.scopes import SCOPES
from shared.testing.api import assert_problem, create_customer, get_json
from shared.testing.docs import schema_validator
from shared.testing.issuers import CUSTOMER_AUDIENCE, ORDER_AUDIENCE

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
SEED = 20261126
MAX_EXAMPLES = 20
SCHEMATHESIS_DEADLINE = 90  # seconds; a run takes about 15 here

ONE_MIB = 1024 * 1024
ANSWER_TIMEOUT = 5  # seconds for a plain request to be answered
STALLED_CONNECTIONS = 50

LEAKS = (
    "Traceback",
    'File "',
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "DELETE FROM",
    "asyncpg",
    "tortoise",
    "postgres",
    "127.0.0.1",
    "localhost",
)


@pytest.fixture
async def order_server(aiohttp_server, order_settings):
    """The real order service on a real port, validating customers against `customer_server`."""
    server = await aiohttp_server(await create_order_app(order_settings))
    await broker_connected(server.app)
    return server


# --- schemathesis ---


async def run_schemathesis(server, workdir: Path, config: str = "", token: str = "") -> tuple[int, str]:
    """The schemathesis CLI against the server's /openapi.json: every phase and check, bounded, seeded;
    with `token`, sent as the bearer token (its checks also try each operation without one).

    A subprocess, so this event loop keeps serving the app under test; it runs in `workdir` (a tmp_path),
    where it writes its `.hypothesis/` and `.schemathesis/` directories.
    """
    (workdir / "schemathesis.toml").write_text(config)
    process = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "--config-file",
        str(workdir / "schemathesis.toml"),
        "run",
        str(server.make_url("/openapi.json")),
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--continue-on-failure",
        "--generation-database",
        "none",
        "--no-color",
        *(["--header", f"Authorization: Bearer {token}"] if token else []),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(SCHEMATHESIS_DEADLINE):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode not in (0, 1):  # 1: it found failures; anything else: it could not do its job
        raise RuntimeError(f"schemathesis exited with {process.returncode}:\n{output.decode()}")
    return process.returncode, output.decode()


@dataclass
class Secured:
    customers: TestServer
    orders: TestServer
    token: str  # every scope, both audiences


@pytest.fixture
async def secured(aiohttp_server, test_run, own_issuer) -> Secured:
    """Both services checking tokens from `own_issuer`, as they run by default (AUTH_MODE=jwt)."""
    customers, orders = await secured_services(aiohttp_server, test_run, own_issuer)
    token = own_issuer.token(" ".join(SCOPES), audience=[CUSTOMER_AUDIENCE, ORDER_AUDIENCE])
    return Secured(customers, orders, token)


async def test_schemathesis_finds_nothing_wrong_with_the_customer_service(secured, tmp_path):
    code, output = await run_schemathesis(
        secured.customers,
        tmp_path,
        LIST_CONFIG.format(operation="list_customers") + LIST_CONFIG.format(operation="list_dead_letters"),
        token=secured.token,
    )
    assert code == 0, output


# A cursor is opaque: a well-formed string that no page gave is a 422 by the contract.
LIST_CONFIG = """
[[operations]]
include-operation-id = "{operation}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "422"]
"""


# A schema-valid POST /orders may still be a 422 by the contract: an Idempotency-Key reused with another
# body (schemathesis repeats small generated keys), or a customer that does not exist.
ORDER_CONFIG = (
    """
[parameters]
"body.order.customer_id" = 1

[[operations]]
include-operation-id = "create_order"
checks.positive_data_acceptance.expected-statuses = ["2xx", "409", "422"]
"""
    + LIST_CONFIG.format(operation="list_orders")
    + LIST_CONFIG.format(operation="list_customer_orders")
)


async def test_schemathesis_finds_nothing_wrong_with_the_order_service(secured, test_run, tmp_path):
    # The contract's seed customers 1-3: schemathesis's boundary cases use ids 1 and 2, and the
    # override below pins every other generated order to customer 1, so valid orders are accepted.
    await seed(SERVICE_DB, test_run.customer_db)
    code, output = await run_schemathesis(secured.orders, tmp_path, ORDER_CONFIG, token=secured.token)
    assert code == 0, output


# What schemathesis found (with this seed or others), and its neighbours, so a fix can be checked without it.


async def test_an_empty_patch_is_answered_as_the_document_says(customer_client):
    spec = await get_json(customer_client, "/openapi.json")
    documented_invalid = spec["components"]["schemas"]["CustomerPatch"].get("minProperties", 0) > 0
    customer = await create_customer(customer_client)
    response = await customer_client.patch(f"/customers/{customer['id']}", json={"customer": {}})
    assert response.status == (422 if documented_invalid else 200), await response.text()


def disagrees(reason: str):
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"the document {reason}")


PRICES = [
    "1200.00",
    "1200",
    "0.5",
    12,
    0.01,
    9999999999.99,
    "9999999999.99",  # valid
    0,
    -1,
    "0.001",
    0.001,
    "12345678901",
    "NaN",
    "Infinity",
    True,
    "",  # invalid
    "0",
    "0.00",
    "1e3",
    " 12",
    "12 ",
    "+5",
    "1_000",
    "12.",
    ".5",
    "١٢",
]


@pytest.mark.parametrize("price", PRICES, ids=repr)
async def test_the_document_and_the_service_agree_on_a_price(order_client, customer_api, price):
    valid_order = schema_validator(await get_json(order_client, "/openapi.json"), "OrderIn")
    customer = await create_customer(customer_api)
    order = {"customer_id": customer["id"], "product_name": "Pen", "quantity": 1, "price": price}
    response = await order_client.post("/orders", json={"order": order})
    expected = 201 if valid_order.is_valid(order) else 422
    assert response.status == expected, await response.text()


@pytest.mark.parametrize("path", ["/customers", "/orders", "/customers/1/orders"])
async def test_an_offset_over_64_bits_is_a_client_error(customer_client, order_client, path):
    client = order_client if "orders" in path else customer_client
    response = await client.get(path, params={"offset": str(2**64)})
    assert response.status in (200, 422), await response.text()


# --- limits ---


@pytest.mark.parametrize("method, path", [("POST", "/orders"), ("PATCH", "/orders/1")])
async def test_an_order_body_over_one_mib_is_a_413_problem(order_client, method, path):
    big = {"order": {"customer_id": 1, "product_name": "x" * (ONE_MIB + 10), "quantity": 1, "price": 1}}
    await assert_problem(await order_client.request(method, path, json=big), 413)


async def test_a_customer_patch_over_one_mib_is_a_413_problem(customer_client):
    customer = await create_customer(customer_client)
    big = {"customer": {"name": "x" * (ONE_MIB + 10)}}
    await assert_problem(await customer_client.patch(f"/customers/{customer['id']}", json=big), 413)


async def test_a_declared_body_over_one_mib_is_refused_before_it_is_sent(order_server):
    head = (
        f"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {2 * ONE_MIB}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(order_server.host, order_server.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(2):  # the answer comes at once, without the body ever being sent
            answer = (await reader.readuntil(b"\r\n\r\n")).decode()
    finally:
        writer.close()
    assert answer.startswith("HTTP/1.1 413 ")
    assert "content-type: application/problem+json" in answer.lower()
    assert "connection: close" in answer.lower()


async def raw_exchange(server, data: bytes, timeout: float = ANSWER_TIMEOUT) -> tuple[int, dict[str, str], str]:
    """Send raw bytes, read the answer until the server closes; (status, lower-cased headers, body)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.decode(errors="replace").partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def request_with(target: str = "/customers", headers: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode()


OVER_LIMITS = {
    "a 20 kB path": request_with("/customers/" + "1" * 20_000),
    "a 20 kB query": request_with("/customers?limit=" + "1" * 20_000),
    "a 20 kB header value": request_with(headers=f"X-Big: {'a' * 20_000}\r\n"),
    "a 20 kB header name": request_with(headers=f"X-{'a' * 20_000}: 1\r\n"),
    "200 headers": request_with(headers="".join(f"X-Header-{i}: 1\r\n" for i in range(200))),
}


@pytest.mark.parametrize("request_bytes", OVER_LIMITS.values(), ids=OVER_LIMITS.keys())
async def test_a_request_over_the_parser_limits_is_a_clean_400(customer_server, request_bytes):
    status, headers, body = await raw_exchange(customer_server, request_bytes)
    assert status == 400
    assert headers["content-type"].split(";")[0] in ("text/plain", "application/problem+json")
    assert len(body) < 300
    assert not [leak for leak in LEAKS if leak in body], body


async def test_a_request_just_under_the_limits_is_served(customer_server):
    headers = f"X-Big: {'a' * 8000}\r\n" + "".join(f"X-Header-{i}: 1\r\n" for i in range(120))
    status, _, body = await raw_exchange(customer_server, request_with("/customers?offset=" + "0" * 8000, headers))
    assert status == 200, body


# --- slow clients ---


def stalls(path: str) -> list[bytes]:
    """Starts of requests to `path`: half a request line, half the headers, and the headers but half the body."""
    return [
        f"GET {path[:3]}".encode(),
        f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode(),
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{".encode(),
    ]


@contextlib.asynccontextmanager
async def stalled_connections(server, path: str, count: int):
    """`count` connections that each send the start of a request and then nothing."""
    starts = stalls(path)
    connections = []
    try:
        for i in range(count):
            reader, writer = await asyncio.open_connection(server.host, server.port)
            connections.append((reader, writer))
            writer.write(starts[i % len(starts)])
            await writer.drain()
        yield connections
    finally:
        for _, writer in connections:
            writer.close()


@pytest.mark.parametrize("path", ["/customers", "/orders"])
async def test_stalled_clients_do_not_block_other_clients(customer_server, order_server, path):
    server = customer_server if path == "/customers" else order_server
    async with stalled_connections(server, path, STALLED_CONNECTIONS) as stalled:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            answers = await asyncio.gather(*(raw_exchange(server, request_with("/health")) for _ in range(10)))
        assert [status for status, _, _ in answers] == [200] * 10
        assert not any(reader.at_eof() for reader, _ in stalled)  # they were all still waiting


async def test_a_client_that_stops_mid_request_is_disconnected_after_the_keepalive_timeout(
    aiohttp_server, customer_settings
):
    # gunicorn's `keepalive` (shared/gunicorn_conf.py) becomes this keepalive_timeout in aiohttp's worker.
    server = await aiohttp_server(await create_customer_app(customer_settings), keepalive_timeout=0.5)
    async with stalled_connections(server, "/customers", 2) as stalled:  # half a request line, half the headers
        async with asyncio.timeout(ANSWER_TIMEOUT):
            assert [await reader.read() for reader, _ in stalled] == [b"", b""]


# --- no internals in error answers ---


async def test_no_error_answer_reveals_internals(customer_client, order_client, aiohttp_client, test_run, tcp_proxy):
    proxy = await tcp_proxy("127.0.0.1", 9)  # a customer service that is down
    await proxy.cut()
    settings = make_settings(
        OrderSettings,
        test_run,
        database_url=test_run.order_db,
        customer_service_url=proxy.url("http://127.0.0.1:{port}"),
    )
    orphan_order_client = await aiohttp_client(await create_order_app(settings))
    taken = await create_customer(customer_client)
    order = {"customer_id": taken["id"], "product_name": "Pen", "quantity": 1, "price": 2}
    json_type = {"Content-Type": "application/json"}
    html = {"Accept": "text/html"}  # a browser: still no HTML page, no stack trace

    answers = {
        404: await customer_client.get("/nope", headers=html),
        405: await customer_client.put("/customers", json={}, headers=html),
        409: await customer_client.post(
            "/customers", json={"customer": {"name": "Twin", "address": "Here", "email": taken["email"]}}
        ),
        413: await order_client.post("/orders", json={"order": {**order, "product_name": "x" * (ONE_MIB + 1)}}),
        415: await order_client.post("/orders", data=b"order", headers={"Content-Type": "text/plain"}),
        422: await order_client.post("/orders", json={"order": {**order, "customer_id": "1; DROP TABLE orders"}}),
        400: await order_client.post("/orders", data=b'{"order": ', headers=json_type),
        503: await orphan_order_client.post("/orders", json={"order": order}),
    }
    for status, response in answers.items():
        problem = await assert_problem(response, status)
        assert not [leak for leak in LEAKS if leak.lower() in str(problem).lower()], problem

    # Whatever an absurd offset is answered with, the answer reveals nothing.
    odd = await order_client.get("/orders", params={"offset": str(2**64)}, headers=html)
    body = await odd.text()
    assert odd.content_type in ("application/json", "application/problem+json")
    assert not [leak for leak in LEAKS if leak.lower() in body.lower()], body


async def test_a_body_that_stalls_is_answered_408_after_the_read_timeout(order_server, monkeypatch):
    monkeypatch.setattr("shared.http.BODY_READ_TIMEOUT", 0.3)
    head = (
        b'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"order": '
    )
    reader, writer = await asyncio.open_connection(order_server.host, order_server.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(ANSWER_TIMEOUT):
            answer = (await reader.readuntil(b"\r\n\r\n")).decode()
    finally:
        writer.close()
    assert answer.startswith("HTTP/1.1 408 ")
    assert "application/problem+json" in answer


async def test_slow_bodies_hold_sockets_not_admission_slots(aiohttp_server, order_settings):
    """Three times as many stalled bodies as there are slots, and other requests are still served at once."""
    settings = order_settings.model_copy(update={"admission_max_in_flight": 2, "admission_queue_timeout": 0.5})
    server = await aiohttp_server(await create_order_app(settings))
    head = (
        b'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"order": '
    )
    stalled = []
    try:
        for _ in range(3 * settings.admission_max_in_flight):
            _, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(head)
            await writer.drain()
            stalled.append(writer)
        async with aiohttp.ClientSession() as client:
            for _ in range(3):  # each would wait out the queue timeout and be refused if a slot were held
                async with client.get(server.make_url("/orders/2147483000")) as answer:
                    assert answer.status == 404, await answer.text()
    finally:
        for writer in stalled:
            writer.close()
