"""What the relay waits for, as outbox_relay_waiting{dependency} shows it: the broker (away, or blocking
our publishes) and the database (statements that keep failing)."""

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from order.metrics import RELAY_WAITING
from order.outbox.in_flight import InFlight
from shared.amqp import BrokerLink, backoff_delay
from shared.db import is_transient_database_error

log = logging.getLogger(__name__)


class BrokerWait:
    """While the broker is away or blocking us, the relay claims nothing (no transaction or row lock waits
    on it). A watch wakes the claim as soon as a lost link is back, not a sweep later."""

    def __init__(self, link: BrokerLink, when_back: Callable[[], None], wakeup: asyncio.Event) -> None:
        self.link = link
        self._when_back = when_back
        self._shown: str | None = None  # what the gauge says: "", "broker" or "blocked"
        self._watch = InFlight(wakeup)  # at most one

    def reason(self) -> str:
        """ "broker" (the link is down), "blocked" (the broker stopped reading us) or "" (neither)."""
        waiting = "broker" if not self.link.is_up else "blocked" if self.link.is_blocked else ""
        if waiting != self._shown:  # a multiprocess gauge write is not free: not on every wake
            RELAY_WAITING.labels("broker").set(waiting == "broker")
            RELAY_WAITING.labels("blocked").set(waiting == "blocked")
            self._shown = waiting
        return waiting

    def watch(self) -> None:
        """Wake the claim once the link is back (BrokerLink reconnects by itself)."""
        if not self._watch:
            self._watch.start(self._wake_when_back(), "outbox relay: waiting for the broker")

    def stop(self) -> None:
        for task in self._watch.tasks:
            task.cancel()

    async def _wake_when_back(self) -> None:
        await self.link.wait_up()
        self._when_back()


def show_database_error(exc: BaseException | None) -> None:
    """A statement failed with `exc` (None: one succeeded): the gauge says whether the database is away."""
    RELAY_WAITING.labels("database").set(exc is not None and is_transient_database_error(exc))


async def until_done(what: str, statement: Callable[[], Awaitable[None]], lease_seconds: float) -> None:
    """Run one statement, retried with backoff while the database is away, for at most `lease_seconds`
    (after that the leases have run out and a claim takes the rows anyway)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + lease_seconds
    for attempt in itertools.count():
        try:
            await statement()
        except Exception as exc:
            show_database_error(exc)
            delay = backoff_delay(attempt)
            if loop.time() + delay > give_up:
                log.warning("outbox relay: gave up %s (%s: %s); their leases run out", what, *named(exc))
                return
            log.warning("outbox relay: %s failed, will retry (%s: %s)", what, *named(exc))
            await asyncio.sleep(delay)
        else:
            show_database_error(None)
            return


def named(exc: BaseException) -> tuple[str, BaseException]:
    return type(exc).__name__, exc
