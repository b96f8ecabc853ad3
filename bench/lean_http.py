"""A lean HTTP/1.1 client for the load generator: prebuilt requests on keep-alive connections, answers
read as a status line, headers and a Content-Length body. The load generator shares the machine's CPU
with what it measures, so it should spend as little of it as it can."""

import asyncio
from urllib.parse import urlencode, urlsplit

import aiohttp


class LeanResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    async def read(self) -> bytes:
        return self.body

    async def __aenter__(self) -> "LeanResponse":
        return self

    async def __aexit__(self, *exc) -> None:
        return None


class _LeanConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; answers with Content-Length only
    (every answer of both systems has one)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in head[1:]))
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.closed = self.closed or headers.get("connection", "").lower() == "close"
        self.waiter.set_result(LeanResponse(int(head[0].split(" ", 2)[1]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(aiohttp.ServerDisconnectedError())


class LeanSession:
    """The few calls `Client` makes of an aiohttp.ClientSession, at a fraction of its CPU per request:
    with aiohttp's client, the overload phase measured the load generator as much as the services."""

    def __init__(self, limit: int, timeout: float, headers: dict[str, str] | None = None) -> None:
        self.limit = limit
        self.timeout = timeout
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())  # on every request
        self.idle: list[_LeanConnection] = []
        self.open = 0
        self.freed = asyncio.Condition()

    async def _connection(self, host: str, port: int) -> _LeanConnection:
        while True:
            while self.idle:
                connection = self.idle.pop()
                if not connection.closed:
                    return connection
                self.open -= 1
            if self.open < self.limit:
                self.open += 1
                try:
                    _, connection = await asyncio.get_running_loop().create_connection(_LeanConnection, host, port)
                except BaseException:
                    self.open -= 1
                    raise
                return connection
            async with self.freed:
                await self.freed.wait()

    async def _release(self, connection: _LeanConnection, reusable: bool) -> None:
        if reusable and not connection.closed:
            self.idle.append(connection)
        else:
            self.open -= 1
            if connection.transport is not None:
                connection.transport.close()
        async with self.freed:
            self.freed.notify()

    async def _request(self, method: str, url: str, body: bytes = b"", content_type: str | None = None):
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n{self.headers}"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        async with asyncio.timeout(self.timeout):
            connection = await self._connection(parts.hostname, parts.port or 80)
            ok = False
            try:
                connection.waiter = asyncio.get_running_loop().create_future()
                connection.transport.write(head.encode() + b"\r\n" + body)
                response = await connection.waiter
                ok = True
                return response
            finally:
                await self._release(connection, ok)

    def post(self, url: str, data: bytes, headers: dict) -> "_Pending":
        return _Pending(self._request("POST", url, data, headers.get("Content-Type")))

    def get(self, url: str, params: dict | None = None) -> "_Pending":
        return _Pending(self._request("GET", f"{url}?{urlencode(params)}" if params else url))

    async def close(self) -> None:
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()
        self.idle.clear()


class _Pending:
    """`async with session.post(...) as response`, as with aiohttp."""

    def __init__(self, request) -> None:
        self.request = request

    async def __aenter__(self) -> LeanResponse:
        return await self.request

    async def __aexit__(self, *exc) -> None:
        return None
