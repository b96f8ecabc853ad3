"""RabbitMQ users of compose's broker: each service gets only the rights its own calls need.

The rights stand in infra/rabbitmq/definitions.json, a template without users (the `secrets` service adds
them with their hashes, shared/deploy_secrets.py). The last tests give those rights to users of their own on
the shared broker, in a vhost of their own, and make the services' real calls and the calls they must not.
"""

import json
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import aiormq
import pytest
from aiormq.abc import AbstractChannel
from aiormq.exceptions import ChannelAccessRefused
from pamqp.commands import Basic

from customer.events.topology import declare_customer_queues
from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.amqp import declare_events_exchange
from shared.deploy_secrets import rabbit_hash
from shared.events import ORDER_CREATED
from shared.password_files import SUFFIX
from shared.testing.compose import SECRETS_SERVICE, environment
from shared.testing.plugin import AMQP_URL
from tests.infra_files import APP_SERVICES, ROOT, volume_mounts

DEFINITIONS = json.loads((ROOT / "infra" / "rabbitmq" / "definitions.json").read_text())
SECRETS_SPEC = json.loads((ROOT / "infra" / "secrets.json").read_text())


def broker_rights(user: str) -> dict[str, re.Pattern]:
    [granted] = [p for p in DEFINITIONS["permissions"] if p["user"] == user and p["vhost"] == "/"]
    return {right: re.compile(granted[right]) for right in ("configure", "write", "read")}


def test_the_definitions_hold_no_user_and_every_user_with_rights_gets_a_password():
    assert DEFINITIONS["users"] == []  # no password hash in the repository, and no guest
    users = SECRETS_SPEC["broker"]["users"]
    assert "guest" not in users
    assert {p["user"] for p in DEFINITIONS["permissions"]} <= set(users)
    assert all(entry["password"] in SECRETS_SPEC["passwords"] for entry in users.values())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_uses_its_own_broker_user_with_the_password_made_for_it(services, name):
    env = environment(services[name])
    url = urlsplit(env["AMQP_URL"])
    assert url.username == f"{name}_service" and url.password is None
    password_file = env["AMQP_URL" + SUFFIX].removeprefix("/run/secrets/")
    folder = services[SECRETS_SERVICE]["volumes"]  # the secrets service's mounts: volume -> /secrets/<folder>
    mounted = {v.split(":")[0]: v.split(":")[1].removeprefix("/secrets/") for v in folder}
    own = next(v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == "/run/secrets")
    password = SECRETS_SPEC["broker"]["users"][url.username]["password"]
    assert f"{mounted[own]}/{password_file}" in SECRETS_SPEC["passwords"][password]


def test_the_broker_loads_the_definitions_the_secrets_service_writes(services):
    mounts = volume_mounts(services["rabbitmq"])
    conf = (ROOT / next(s for s, t in mounts.items() if t == "/etc/rabbitmq/conf.d/20-definitions.conf")).read_text()
    loaded = re.search(r"^load_definitions = (\S+)$", conf, re.MULTILINE)[1]
    volume = next(v.split(":")[0] for v in services["rabbitmq"]["volumes"] if v.split(":")[1] == "/run/secrets")
    folder = next(v.split(":")[1] for v in services[SECRETS_SERVICE]["volumes"] if v.split(":")[0] == volume)
    assert SECRETS_SPEC["broker"]["output"] == f"{folder.removeprefix('/secrets/')}/{loaded.split('/')[-1]}"
    settings = [line for line in conf.splitlines() if line.strip() and not line.startswith("#")]
    assert not [line for line in settings if "guest" in line or "loopback_users" in line]


def test_the_customer_service_may_do_exactly_what_its_consumer_does():
    settings, rights = CustomerSettings(), broker_rights("customer_service")
    exchange, queue = settings.events_exchange, settings.orders_queue
    dlx, dlq = settings.dead_letter_exchange, settings.dead_letter_queue
    retry, retries = settings.retry_exchange, {settings.retry_queue(delay) for delay in settings.retry_delays}
    needed = {  # declare its own; bind (write queue, read exchange); consume; dead-letter and retry (write)
        "configure": {dlx, queue, dlq, retry, *retries},
        "write": {queue, dlq, dlx, retry, *retries},
        "read": {exchange, dlx, queue, dlq, retry, *retries},
    }
    for right, names in needed.items():
        assert all(rights[right].match(n) for n in names), right
    assert not rights["write"].match(exchange)  # it cannot publish order events itself
    assert not rights["configure"].match(exchange)  # nor delete or retype the exchange (it declares it passively)


def test_the_order_service_may_only_publish_to_the_orders_exchange():
    settings, rights = OrderSettings(), broker_rights("order_service")
    assert rights["configure"].match(settings.events_exchange) and rights["write"].match(settings.events_exchange)
    consumer = CustomerSettings()
    for other in (consumer.orders_queue, consumer.dead_letter_queue, consumer.dead_letter_exchange):
        assert not any(pattern.match(other) for pattern in rights.values()), other
    assert not rights["read"].match(settings.events_exchange)


@pytest.fixture
def granted_users():
    """The definitions' users, made on the shared broker under names of this test, with the definitions'
    rights in a vhost of their own (where the default names are free); all removed afterwards."""
    run = uuid.uuid4().hex[:8]
    vhost, server = f"shop-grants-{run}", urlsplit(AMQP_URL).netloc.rsplit("@", 1)[-1]
    passwords = {grant["user"]: uuid.uuid4().hex for grant in DEFINITIONS["permissions"]}
    users = [
        {
            "name": f"{user}.{run}",
            "password_hash": rabbit_hash(password),
            "tags": "",
            "hashing_algorithm": "rabbit_password_hashing_sha256",
        }
        for user, password in passwords.items()
    ]
    permissions = [{**grant, "user": f"{grant['user']}.{run}", "vhost": vhost} for grant in DEFINITIONS["permissions"]]
    definitions = {"users": users, "vhosts": [{"name": vhost}], "permissions": permissions}
    # One import (each rabbitmqctl call costs about two seconds), from a file its own user can read.
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir="/tmp") as file:
        json.dump(definitions, file)
        file.flush()
        os.chmod(file.name, 0o644)
        subprocess.run(["rabbitmqctl", "-q", "import_definitions", file.name], check=True, timeout=60)
    try:
        yield {
            user: f"amqp://{user}.{run}:{password}@{server}/{quote(vhost, safe='')}"
            for user, password in passwords.items()
        }
    finally:
        removals = [["delete_vhost", vhost]] + [["delete_user", user["name"]] for user in users]
        for process in [subprocess.Popen(["rabbitmqctl", "-q", *args]) for args in removals]:  # all at once
            process.wait(timeout=60)


async def refused(connection: aiormq.Connection, call: Callable[[AbstractChannel], Awaitable[object]]) -> None:
    """The call is refused by the broker (ACCESS_REFUSED closes its channel, a fresh one each time)."""
    with pytest.raises(ChannelAccessRefused):
        await call(await connection.channel())


async def test_the_granted_users_can_make_the_services_calls_and_nothing_more(granted_users):
    customer_settings, order_settings = CustomerSettings(), OrderSettings()
    order = await aiormq.connect(granted_users["order_service"])
    customer = await aiormq.connect(granted_users["customer_service"])
    try:
        # The services' own calls: the relay declares its exchange and publishes; the consumer (passively)
        # finds it, declares and binds its queues, takes the event, retries and dead-letters it.
        order_channel = await order.channel()
        await declare_events_exchange(order_channel, order_settings)
        await declare_customer_queues(await customer.channel(), customer_settings)
        confirmation = await order_channel.basic_publish(
            b"{}",
            exchange=order_settings.events_exchange,
            routing_key=ORDER_CREATED,
            mandatory=True,
            properties=Basic.Properties(user_id=order.url.user, delivery_mode=2),
        )
        assert isinstance(confirmation, Basic.Ack)
        channel = await customer.channel()
        got = await channel.basic_get(customer_settings.orders_queue)
        assert got.body == b"{}"
        for exchange, key in (
            (customer_settings.retry_exchange, customer_settings.retry_queue(customer_settings.retry_delays[0])),
            (customer_settings.retry_exchange, customer_settings.orders_queue),  # a requeue; a replay
            (customer_settings.dead_letter_exchange, ""),
        ):
            properties = Basic.Properties(user_id=customer.url.user, delivery_mode=2)
            assert isinstance(
                await channel.basic_publish(b"{}", exchange=exchange, routing_key=key, properties=properties), Basic.Ack
            )
        await channel.basic_ack(got.delivery_tag)
        assert (await channel.basic_get(customer_settings.dead_letter_queue)).body == b"{}"  # what ops reads

        # The customer service cannot touch the order events: declare (retype), delete, publish.
        exchange = customer_settings.events_exchange
        await refused(customer, lambda c: c.exchange_declare(exchange, exchange_type="fanout", durable=True))
        await refused(customer, lambda c: c.exchange_declare(exchange, exchange_type="topic", durable=True))
        await refused(customer, lambda c: c.exchange_delete(exchange))
        await refused(customer, lambda c: c.basic_publish(b"{}", exchange=exchange, routing_key=ORDER_CREATED))
        await refused(customer, lambda c: c.queue_declare("elsewhere", durable=True))
        # The order service cannot read, declare, delete or feed the consumer's queues and exchanges.
        queue = customer_settings.orders_queue
        await refused(order, lambda c: c.basic_get(queue))
        await refused(order, lambda c: c.queue_declare(queue, passive=False, durable=True))
        await refused(order, lambda c: c.queue_delete(queue))
        await refused(order, lambda c: c.exchange_delete(customer_settings.dead_letter_exchange))
        for other in (customer_settings.retry_exchange, customer_settings.dead_letter_exchange):
            await refused(order, lambda c, other=other: c.basic_publish(b"{}", exchange=other, routing_key=queue))
    finally:
        await customer.close()
        await order.close()
