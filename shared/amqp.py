"""RabbitMQ: one long-lived connection per role that comes back by itself, and the event topology.

aiormq has no reconnect: after a broker restart a publish raises
ChannelInvalidStateError and a consumer silently stops. BrokerLink owns the
connection, watches it close, and reconnects with capped exponential backoff
and jitter, running `on_channel` (declare topology, start consuming) each time.

AMQP_URL may name several brokers (the nodes of a cluster), comma-separated: each process starts
at a random one, so instances spread over the nodes, and moves on to the next on every failure.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

import aiormq
from aiohttp import web
from aiormq.abc import AbstractChannel

from shared.broker_urls import broker_urls, where
from shared.settings import SharedSettings
from shared.tls import RABBITMQ_FIX, certificate_failure

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
CA_FIX = RABBITMQ_FIX.format(variable="AMQP_URL")
PERSISTENT = 2


async def connect_first(urls: list[str], timeout: float = 5.0) -> aiormq.abc.AbstractConnection:
    """A connection to the first broker that answers, trying them in the order given (operator tools)."""
    failures = []
    for url in urls:
        try:
            async with asyncio.timeout(timeout):
                return await aiormq.connect(url)
        except Exception as exc:  # aiormq raises several unrelated types for an unreachable broker
            failures.append(f"{where(url)}: {type(exc).__name__}: {exc}")
    raise ConnectionError("no broker answered (" + "; ".join(failures) + ")")


def raise_if_cancelled() -> None:
    """Deliver a cancellation that a library swallowed: aiormq can lose one that arrives while it opens
    a connection or channel, and the task would then wait on the new connection for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    """Capped exponential backoff with full jitter in its upper half."""
    return min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)


class BrokerLink:
    def __init__(self, url: str, name: str, on_channel: Callable[[AbstractChannel], Awaitable[None]]) -> None:
        self.urls = broker_urls(url)
        self._next = random.randrange(len(self.urls))  # instances spread over a cluster's nodes
        self.url = self.urls[self._next]  # the broker of the current (or next) connection
        self.name = name
        self.on_channel = on_channel
        self.channel: AbstractChannel | None = None
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._up = asyncio.Event()

    @property
    def is_up(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    @property
    def is_blocked(self) -> bool:
        """The broker stopped reading our publishes (connection.blocked: a memory or disk alarm).

        aiormq tracks connection.blocked/unblocked but keeps the flag private; read it, and say
        "not blocked" should a later aiormq rename it.
        """
        unblocked = getattr(self._connection, "_Connection__connection_unblocked", None)
        return self.is_up and isinstance(unblocked, asyncio.Event) and not unblocked.is_set()

    async def wait_up(self) -> AbstractChannel:
        await self._up.wait()
        assert self.channel is not None
        return self.channel

    async def reset(self, reason: str) -> None:
        """Drop the connection (after a failed publish, say); `run` opens a new one."""
        log.warning("%s: dropping broker connection: %s", self.name, reason)
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close(ConnectionError(reason))

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connect()
                raise_if_cancelled()
                attempt = 0
                log.info("%s: connected to the broker at %s", self.name, where(self.url))
                await self._until_closed()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # aiormq cancels its own pending calls when the connection drops under them.
                log.warning("%s: broker connection dropped during setup", self.name)
            except Exception as exc:  # every broker failure means the same here: try again later
                if (failure := certificate_failure(exc)) is not None:  # retried: the CA file is read on each connect
                    log.error("%s: broker at %s: %s -> %s", self.name, where(self.url), failure, CA_FIX)
                else:
                    log.warning(
                        "%s: broker at %s unavailable (%s: %s)", self.name, where(self.url), type(exc).__name__, exc
                    )
            finally:
                self._up.clear()
                self.channel = None
                await self._close_quietly()
            delay = backoff_delay(attempt)
            attempt += 1
            log.info("%s: reconnecting in %.2fs", self.name, delay)
            await asyncio.sleep(delay)

    async def _connect(self) -> None:
        self.url = self.urls[self._next]
        self._next = (self._next + 1) % len(self.urls)  # after this one fails or is lost: the next
        async with asyncio.timeout(CONNECT_TIMEOUT):
            self._connection = await aiormq.connect(self.url)
            channel = await self._connection.channel()
            await self.on_channel(channel)
        self.channel = channel
        self._up.set()

    async def _until_closed(self) -> None:
        assert self._connection is not None and self.channel is not None
        watchers = [self._connection.closing, self.channel.closing]
        try:
            done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()
        # Never re-raise the closing reason itself: aiormq closes with CancelledError by default,
        # and raising that here would end `run` as if the task had been cancelled.
        reasons = [repr(f.exception()) for f in done if not f.cancelled() and f.exception() is not None]
        raise ConnectionError(f"connection closed ({', '.join(reasons) or 'no reason given'})")

    async def _close_quietly(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            try:
                await asyncio.shield(connection.close())
            except Exception:
                log.debug("%s: error while closing the connection", self.name, exc_info=True)


BROKER = web.AppKey("broker", BrokerLink)


def broker_user(channel: AbstractChannel) -> str:
    """The broker user of the channel's connection, as aiormq logs in (no user in the URL: `guest`).

    The `user_id` a message published on that channel may carry: RabbitMQ refuses any other, so a
    consumer can trust it as the name of whoever published the copy it received.
    """
    return channel.connection.url.user or "guest"


async def declare_events_exchange(channel: AbstractChannel, settings: SharedSettings) -> None:
    await channel.exchange_declare(settings.events_exchange, exchange_type="topic", durable=True)
