"""The customer service's queues: the work queue, its dead letters, and the delayed-retry queues.

    orders (topic) --order.created--> customer.orders (quorum) --delivery limit--> .dlx (fanout) --> .dlq (quorum)
    customer.orders.retry (direct) --customer.orders--> customer.orders           (a requeue that spends nothing)
                                   --customer.orders.retry.30s--> .retry.30s (quorum, TTL 30 s)
                                        --expired, at least once--> customer.orders.retry --> customer.orders

A retry is a new message, so it never spends the work queue's delivery limit; the broker holds it for
the queue's TTL and then dead-letters it back into the work queue. Every piece is an ordinary
declaration, so any client can (re)declare it. Every queue is a quorum queue: in a RabbitMQ cluster
a classic queue lives on one node, and while that node is down it can neither be declared (so the
consumer could not start) nor take dead letters.
"""

import logging

from aiormq.abc import AbstractChannel
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from customer.settings import CustomerSettings
from shared.amqp import declare_events_exchange
from shared.events import ORDER_CREATED

log = logging.getLogger(__name__)


async def declare_customer_queues(channel: AbstractChannel, settings: CustomerSettings) -> None:
    """The order service declares only the exchange: it publishes order.created as mandatory, so an
    event that no queue takes yet (the customer service has never started) stays in its outbox."""
    await ensure_events_exchange(channel, settings)
    await channel.exchange_declare(settings.dead_letter_exchange, exchange_type="fanout", durable=True)
    await declare_dead_letter_queue(channel, settings)
    await channel.queue_bind(settings.dead_letter_queue, settings.dead_letter_exchange, routing_key="")
    await channel.queue_declare(
        settings.orders_queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": settings.delivery_limit,
            "x-dead-letter-exchange": settings.dead_letter_exchange,
        },
    )
    await channel.queue_bind(settings.orders_queue, settings.events_exchange, routing_key=ORDER_CREATED)
    await channel.exchange_declare(settings.retry_exchange, exchange_type="direct", durable=True)
    await channel.queue_bind(settings.orders_queue, settings.retry_exchange, routing_key=settings.orders_queue)
    for delay in settings.retry_delays:
        queue = settings.retry_queue(delay)
        await channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": settings.retry_exchange,
                "x-dead-letter-routing-key": settings.orders_queue,
                # The broker moves an expired message back with confirms: never lost on the way.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        await channel.queue_bind(queue, settings.retry_exchange, routing_key=queue)


async def ensure_events_exchange(channel: AbstractChannel, settings: CustomerSettings) -> None:
    """The order service's exchange, declared passively (on a channel of its own, which a missing exchange
    closes): the customer service binds to it but may not configure it where its broker user has only the
    rights it uses (compose's: the broker's definitions make the exchange). Made here only when missing, as
    on a development broker whose user may configure anything."""
    side = await channel.connection.channel()
    try:
        await side.exchange_declare(settings.events_exchange, passive=True)
        return
    except ChannelNotFoundEntity:
        pass
    finally:
        if not side.is_closed:
            await side.close()
    await declare_events_exchange(channel, settings)


async def declare_dead_letter_queue(channel: AbstractChannel, settings: CustomerSettings) -> None:
    """A quorum queue; one made as a classic queue by an earlier version is left as it is, with a warning
    (declared on a channel of its own, as the broker closes the channel of a refused declaration)."""
    side = await channel.connection.channel()
    try:
        await side.queue_declare(settings.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
    except ChannelPreconditionFailed:
        log.warning(
            "%s is a classic queue (made by an earlier version): in a cluster it is lost with its node; "
            "see docs/operations.md (RabbitMQ cluster) to move it",
            settings.dead_letter_queue,
        )
    finally:
        if not side.is_closed:
            await side.close()
