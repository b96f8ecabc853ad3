"""The order service's outbox: an event commits with its order's change, and reaches the broker after.

Business code says only which commit stores an event (`Outbox.write`). Whether the event is leased to
this process and published by it straight after the commit, or left to any relay's claim, is decided
here. One order's events reach the broker in the order they were written.
"""

from types import TracebackType

from order.events import OutboxRow
from order.outbox.relay import OutboxRelay
from order.outbox.session import NOTIFY_CHANNEL, RelaySession
from order.outbox.store import Lease
from order.settings import OrderSettings
from shared.amqp import BrokerLink

__all__ = ["NOTIFY_CHANNEL", "Outbox", "OutboxWrite"]


class Outbox:
    def __init__(self, settings: OrderSettings, link: BrokerLink) -> None:
        self.link = link
        self.relay = OutboxRelay(settings, link)  # run() as a task
        self.wake = self.relay.claims.want  # claim pending events now
        self.session = RelaySession(settings, self.wake)  # hold() as a task
        self._hand_over = self.relay.handed.add
        self._give_back = self.relay.returns.give_back

    def write(self, new_order_event: OutboxRow | None = None) -> "OutboxWrite":
        """Around a commit that stores events: `with outbox.write(event) as lease: <store the event with
        lease>`. Give the event of a new order (nothing of its order can be pending before it): it may be
        leased to this process, and then it is published straight after the commit. Any other event goes
        to the claim, which the block's success wakes."""
        lease = None if new_order_event is None else self.lease()
        return OutboxWrite(self, new_order_event if lease is not None else None, lease)

    def lease(self) -> Lease | None:
        """The lease of an event written now; None (left to the claim) while the broker is away or
        blocking us, or this worker does not hold its liveness lock."""
        if not self.link.is_up or self.link.is_blocked:
            return None
        return self.session.lease


class OutboxWrite:
    """One commit's dealings with the outbox (Outbox.write)."""

    __slots__ = ("_lease", "_leased", "_outbox")

    def __init__(self, outbox: Outbox, leased: OutboxRow | None, lease: Lease | None) -> None:
        self._outbox = outbox
        self._leased = leased
        self._lease = lease

    def __enter__(self) -> Lease | None:
        return self._lease

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        leased = self._leased
        if leased is None:
            if exc_type is None:
                self._outbox.wake()
        elif exc_type is None:
            self._outbox._hand_over(leased)
        else:
            self._outbox._give_back(leased)  # the commit may have happened, its answer lost
