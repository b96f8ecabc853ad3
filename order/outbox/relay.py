"""The relay's loop: on every wake-up it starts the batches that are due (hand-over, claim, give-back),
each a task, so that one order's publish never waits for another's."""

import asyncio
import contextlib

from order.outbox.claims import Claims
from order.outbox.give_back import LeaseReturns
from order.outbox.hand_over import HandOver
from order.outbox.publisher import EventPublisher
from order.outbox.waiting import BrokerWait
from order.settings import OrderSettings
from shared.amqp import BrokerLink

SHUTDOWN_GRACE = 5.0  # for the batches in flight to get their confirms and commit


class OutboxRelay:
    def __init__(self, settings: OrderSettings, link: BrokerLink) -> None:
        self.link = link
        self.wakeup = asyncio.Event()
        publisher = EventPublisher(link, settings.events_exchange, settings.outbox_confirm_timeout)
        self.claims = Claims(settings, publisher, self.wakeup)
        self.returns = LeaseReturns(settings.outbox_lease, self.claims.want, self.wakeup)
        self.handed = HandOver(settings, publisher, self.claims, self.returns, self.wakeup)
        self.broker = BrokerWait(link, self.claims.want, self.wakeup)

    async def run(self) -> None:
        """Each kind of batch waits for the one in flight of its kind and then takes all that came
        meanwhile, so batches grow with the load; under a backlog several of a kind run. While the broker
        is away or blocking us, nothing is claimed and handed-over rows go back to the claim."""
        claims, handed, returns = self.claims, self.handed, self.returns
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(claims.next_sweep()):
                        await self.wakeup.wait()
                self.wakeup.clear()
                claims.sweep_if_due()
                waiting = self.broker.reason()
                if waiting:
                    returns.add(handed.take())
                if returns.rows:
                    returns.start()
                if waiting:
                    claims.postpone()
                    if waiting == "broker":
                        self.broker.watch()
                    continue
                channel = self.link.channel
                assert channel is not None  # the link is up
                if handed.rows:
                    handed.start_if_due(channel)
                if claims.wanted:
                    claims.start_if_wanted(channel)
        finally:
            await self._stop()

    async def _stop(self) -> None:
        """Give back what was handed over and not sent (any relay may claim it now), and let the batches
        in flight finish within SHUTDOWN_GRACE."""
        self.returns.add(self.handed.take())
        self.returns.flush()
        self.broker.stop()
        batches = self.claims.in_flight.tasks | self.handed.in_flight.tasks | self.returns.in_flight.tasks
        if batches:
            await asyncio.wait(batches, timeout=SHUTDOWN_GRACE)
        for task in batches:
            task.cancel()
        await asyncio.gather(*batches, return_exceptions=True)
