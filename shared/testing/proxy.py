"""A TCP proxy a test puts between a service and a dependency, to cut, freeze and restore it.

The shared PostgreSQL and RabbitMQ are never stopped: outages happen here.
"""

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port: int = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self, port: int = 0) -> "TcpProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, template: str) -> str:
        """`template` with {port} filled in, e.g. 'amqp://guest:guest@127.0.0.1:{port}/'."""
        return template.format(port=self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a dead server would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def freeze(self) -> None:
        """Keep connections open but forward nothing, as a hung server would."""
        self._flowing.clear()

    async def restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            await self.start(self.port)

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self._flowing.is_set():
            self._writers.add(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        for reader, writer in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _gate(self, writer: asyncio.StreamWriter) -> None:
        """Wait until bytes may go on to `writer`."""
        await self._flowing.wait()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._gate(writer)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


FRAME_END = b"\xce"


def _method_frame(class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    payload = class_id.to_bytes(2, "big") + method_id.to_bytes(2, "big") + arguments
    return b"\x01\x00\x00" + len(payload).to_bytes(4, "big") + payload + FRAME_END


class AmqpProxy(TcpProxy):
    """A TcpProxy that can also act out a broker's memory or disk alarm, as RabbitMQ does it.

    `block()` sends the client `connection.blocked` between two of the broker's frames and stops
    passing the client's bytes on (the broker stops reading a blocked connection); `unblock()` sends
    `connection.unblocked` and lets the held bytes through.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self._unblocked = asyncio.Event()
        self._unblocked.set()
        self._to_clients: dict[asyncio.StreamWriter, asyncio.Lock] = {}

    async def block(self, reason: str = "low on memory") -> None:
        self._unblocked.clear()
        encoded = reason.encode()
        await self._to_all_clients(_method_frame(10, 60, bytes([len(encoded)]) + encoded))

    async def unblock(self) -> None:
        await self._to_all_clients(_method_frame(10, 61))
        self._unblocked.set()

    def _to_broker(self, writer: asyncio.StreamWriter) -> bool:
        return writer.transport.get_extra_info("peername") == self.target

    async def _gate(self, writer: asyncio.StreamWriter) -> None:
        await super()._gate(writer)
        if self._to_broker(writer):
            await self._unblocked.wait()  # the client's bytes are held while blocked

    async def _to_all_clients(self, frame: bytes) -> None:
        for writer, lock in list(self._to_clients.items()):
            async with lock:
                with contextlib.suppress(ConnectionError, OSError):
                    writer.write(frame)
                    await writer.drain()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._to_broker(writer):
            return await super()._pipe(reader, writer)
        self._to_clients[writer] = lock = asyncio.Lock()
        try:  # broker to client: whole frames, so an injected frame lands between two
            while header := await reader.readexactly(7):
                body = await reader.readexactly(int.from_bytes(header[3:7], "big") + 1)
                await self._gate(writer)
                async with lock:
                    writer.write(header + body)
                    await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._to_clients.pop(writer, None)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
