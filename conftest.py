"""System fixtures: each service's app, on the test run's own databases and broker names."""

import pytest

from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings


def make_settings(cls, test_run, **overrides):
    return cls(events_exchange=test_run.exchange, orders_queue=test_run.queue, **overrides)


@pytest.fixture
def customer_settings(test_run) -> CustomerSettings:
    return make_settings(CustomerSettings, test_run, database_url=test_run.customer_db)


@pytest.fixture
async def customer_client(aiohttp_client, customer_settings):
    return await aiohttp_client(await create_customer_app(customer_settings))
