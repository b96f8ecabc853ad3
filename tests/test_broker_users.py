"""RabbitMQ users of compose's broker: each service gets only the rights its own calls need."""

import base64
import hashlib
import json
import re
from urllib.parse import urlsplit

import pytest

from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.testing.compose import environment
from tests.infra_files import (
    APP_SERVICES,
    ROOT,
)

DEFINITIONS = json.loads((ROOT / "infra" / "rabbitmq" / "definitions.json").read_text())


def broker_rights(user: str) -> dict[str, re.Pattern]:
    [granted] = [p for p in DEFINITIONS["permissions"] if p["user"] == user and p["vhost"] == "/"]
    return {right: re.compile(granted[right]) for right in ("configure", "write", "read")}


def rabbit_password_matches(user: str, password: str) -> bool:
    [entry] = [u for u in DEFINITIONS["users"] if u["name"] == user]
    assert entry["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    raw = base64.b64decode(entry["password_hash"])
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_uses_its_own_broker_user_defined_with_that_password(services, name):
    url = urlsplit(environment(services[name])["AMQP_URL"])
    assert url.username == f"{name}_service"
    assert rabbit_password_matches(url.username, url.password)


def test_the_broker_loads_the_definitions_compose_mounts(services):
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services["rabbitmq"]["volumes"]}
    conf = (ROOT / mounts["/etc/rabbitmq/conf.d/20-definitions.conf"].removeprefix("./")).read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    assert mounts["/etc/rabbitmq/definitions.json"] == "./infra/rabbitmq/definitions.json"


def test_the_customer_service_may_do_exactly_what_its_consumer_does():
    settings, rights = CustomerSettings(), broker_rights("customer_service")
    exchange, queue = settings.events_exchange, settings.orders_queue
    dlx, dlq = settings.dead_letter_exchange, settings.dead_letter_queue
    retry, retries = settings.retry_exchange, {settings.retry_queue(delay) for delay in settings.retry_delays}
    needed = {  # declare them all; bind (write queue, read exchange); consume; dead-letter and retry (write)
        "configure": {exchange, dlx, queue, dlq, retry, *retries},
        "write": {queue, dlq, dlx, retry, *retries},
        "read": {exchange, dlx, queue, retry},
    }
    for right, names in needed.items():
        assert all(rights[right].match(n) for n in names), right
    assert not rights["write"].match(exchange)  # it cannot publish order events itself


def test_the_order_service_may_only_publish_to_the_orders_exchange():
    settings, rights = OrderSettings(), broker_rights("order_service")
    assert rights["configure"].match(settings.events_exchange) and rights["write"].match(settings.events_exchange)
    consumer = CustomerSettings()
    for other in (consumer.orders_queue, consumer.dead_letter_queue, consumer.dead_letter_exchange):
        assert not any(pattern.match(other) for pattern in rights.values()), other
    assert not rights["read"].match(settings.events_exchange)
