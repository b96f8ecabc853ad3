"""The relay's background work: it starts tasks and never waits on the broker or the database itself."""

import asyncio
from collections.abc import Coroutine

# Of each kind of batch. More than one only under a backlog: one at a time would cap the relay at a batch per
# confirm round trip. A claimed batch holds a pooled connection while it waits for the broker.
MAX_BATCHES_IN_FLIGHT = 4


class InFlight:
    """The relay's tasks of one kind. Each one's end wakes the relay: there is room for the next."""

    def __init__(self, wakeup: asyncio.Event) -> None:
        self.tasks: set[asyncio.Task] = set()
        self._wakeup = wakeup

    def __len__(self) -> int:
        return len(self.tasks)

    def start(self, work: Coroutine[None, None, None], name: str = "outbox batch") -> None:
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        self._wakeup.set()
