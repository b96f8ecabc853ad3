"""The consumer's subscription (basic.consume) on whatever channel BrokerLink has open."""

import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic

from customer.events.topology import declare_customer_queues
from customer.settings import CustomerSettings

log = logging.getLogger(__name__)


class Subscription:
    """Starts, pauses and restarts the consumer's deliveries of the orders queue.

    `wanted` says whether deliveries are wanted now (the consumer is not draining and its breaker is
    closed); `wake` tells the consumer's worker that the broker cancelled the subscription, and the
    worker then calls `consume_again`.
    """

    def __init__(
        self,
        settings: CustomerSettings,
        deliver: Callable[[DeliveredMessage], Coroutine[Any, Any, None]],
        wanted: Callable[[], bool],
        wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self._deliver = deliver
        self._wanted = wanted
        self._wake = wake
        self.channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self.cancelled = False  # the broker cancelled our consumer: the worker consumes again

    async def on_channel(self, channel: AbstractChannel) -> None:
        """BrokerLink runs this on every (re)connect."""
        await declare_customer_queues(channel, self.settings)
        await channel.basic_qos(prefetch_count=self.settings.prefetch)
        channel.on_consumer_cancel_callbacks.add(self._cancelled_by_broker)
        self.channel, self._consumer_tag = channel, None
        if self._wanted():
            await self.resume()

    def holds(self, message: DeliveredMessage) -> bool:
        """Whether a delivery came on the channel in use, which can still settle it."""
        return message.channel is self.channel and not message.channel.is_closed

    async def resume(self) -> None:
        """Start consuming on the current channel (BrokerLink's reconnect does it again on a new one)."""
        assert self.channel is not None
        if self._consumer_tag is not None:
            return  # consuming already
        ok = await self.channel.basic_consume(self.settings.orders_queue, self._deliver, no_ack=False)
        self._consumer_tag = ok.consumer_tag

    async def resume_if_open(self) -> None:
        """Consume again if the channel is still open and deliveries are wanted."""
        if self._wanted() and self.channel is not None and not self.channel.is_closed:
            with contextlib.suppress(Exception):  # a lost channel consumes again on its reconnect
                await self.resume()

    async def pause(self) -> None:
        """Stop the broker's deliveries (basic.cancel); what it already sent still arrives and is settled."""
        channel, tag, self._consumer_tag = self.channel, self._consumer_tag, None
        if channel is not None and tag is not None and not channel.is_closed:
            with contextlib.suppress(Exception):  # a channel lost meanwhile has stopped consuming anyway
                await channel.basic_cancel(tag)

    def _cancelled_by_broker(self, frame: Basic.Cancel) -> None:
        """The broker ended our consumer (basic.cancel: its queue was deleted, say). aiormq only logs it
        and the channel stays open, so nothing would ever be delivered again: the worker consumes anew.
        (This runs in the channel's frame reader, which must not wait for the broker's answer itself.)"""
        if frame.consumer_tag is not None and frame.consumer_tag == self._consumer_tag:
            log.warning(
                "consumer: the broker cancelled our consumer of %s; consuming again", self.settings.orders_queue
            )
            self._consumer_tag = None
            self.cancelled = True
            self._wake()

    async def consume_again(self) -> None:
        """After the broker's cancel: declare the queues again (they may be gone) and consume; on failure
        close the channel, so BrokerLink starts over on a new one."""
        self.cancelled = False
        channel = self.channel
        if channel is None or channel.is_closed or not self._wanted():
            return  # a new channel, the end of the drain or the breaker's close consumes again
        try:
            await declare_customer_queues(channel, self.settings)
            await self.resume()
        except Exception:
            log.exception("consumer: could not consume again; reconnecting")
            with contextlib.suppress(Exception):
                await channel.close()
