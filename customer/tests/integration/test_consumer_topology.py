"""The consumer's queues under what a cluster does to them: a consumer the broker cancels (basic.cancel)
consumes again by itself instead of falling silent; a classic dead-letter queue left by an earlier
version does not keep it from starting."""

import logging

import aiormq

from conftest import broker_connected, make_settings
from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from customer.tests.integration.test_consumer_at_size import publish_all
from shared.testing.api import create_customer, get_json, order_created_event
from shared.testing.plugin import eventually
from shared.testing.runs import AMQP_URL


async def test_a_consumer_cancelled_by_the_broker_consumes_again(aiohttp_client, scratch_run):
    run = scratch_run()
    client = await aiohttp_client(
        await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db))
    )
    await broker_connected(client.app)
    customer = await create_customer(client)
    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.queue_delete(run.queue)  # the broker sends basic.cancel to the consumer on it

        async def consumed_again():
            probe = await connection.channel()  # a passive declare of a missing queue closes its channel
            try:
                declared = await probe.queue_declare(run.queue, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                raise AssertionError("the queue was not declared again") from None
            assert declared.consumer_count == 1, declared
            await probe.close()

        await eventually(consumed_again, timeout=10)
        await publish_all(channel, run, [order_created_event(customer["id"])])

        async def counted():
            assert (await get_json(client, f"/customers/{customer['id']}"))["orders_count"] == 1

        await eventually(counted, timeout=10)
    finally:
        await connection.close()


async def test_a_classic_dead_letter_queue_of_an_earlier_version_is_kept_with_a_warning(
    aiohttp_client, scratch_run, caplog
):
    run = scratch_run()
    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.queue_declare(f"{run.queue}.dlq", durable=True)  # as earlier versions made it
        caplog.set_level(logging.WARNING, logger="customer.events.topology")
        client = await aiohttp_client(
            await create_customer_app(make_settings(CustomerSettings, run, database_url=run.customer_db))
        )
        await broker_connected(client.app)
        assert any("is a classic queue" in r.getMessage() for r in caplog.records)
        customer = await create_customer(client)
        await publish_all(channel, run, [order_created_event(customer["id"])])

        async def counted():
            assert (await get_json(client, f"/customers/{customer['id']}"))["orders_count"] == 1

        await eventually(counted, timeout=10)
    finally:
        await connection.close()
