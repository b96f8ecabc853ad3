"""The soak's load generator: a child process, so its CPU is not the soak's, and the soak's side of it.

`python bench/soak_load.py --url U --ids FILE --rate R --duration S` sends one POST /orders every 1/R s for
S s (open loop, built on bench/loadgen.py's client) and writes JSON lines on stdout: one when it starts,
one every second with the 201s (and their latencies) and errors since the last, and a final tally.
SteadyLoad starts it from the soak and collects those lines as they come.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import uvloop
from loadgen import OPEN_LOOP_CONNECTIONS, REQUEST_TIMEOUT, Client, cpu_seconds
from systems import RUN_DIR, BenchError

PROGRESS_EVERY = 1.0  # seconds between the load generator's progress lines
LOADGEN_START_TIMEOUT = 30.0


def emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Progress:
    """What the load generator reports every second: the 201s (with latencies) and errors since last time."""

    def __init__(self, client: Client, in_flight: set) -> None:
        self.tally, self.in_flight = client.tally, in_flight
        self.seen, self.errors = 0, Counter()

    def report(self) -> None:
        new = self.tally.latencies[self.seen :]
        self.seen += len(new)
        errors = self.tally.errors - self.errors
        self.errors = self.tally.errors.copy()
        emit(
            {
                "t": time.monotonic(),
                "ok": len(new),
                "lat_ms": [round(value * 1000, 2) for value in new],
                "errors": dict(errors),
                "sent": self.tally.requests,
                "in_flight": len(self.in_flight),
            }
        )


async def steady_load(url: str, ids: list[int], rate: float, duration: float) -> None:
    """One POST /orders every 1/rate s, whatever the answers (open loop); latency counts from the schedule."""
    parent, main = os.getppid(), asyncio.current_task()
    connector = aiohttp.TCPConnector(limit=OPEN_LOOP_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        client, in_flight = Client(session, url, "post-order", keep_orders=False), set()
        progress = Progress(client, in_flight)

        async def reporter() -> None:
            while True:
                await asyncio.sleep(PROGRESS_EVERY)
                progress.report()
                if os.getppid() != parent:  # the soak died without stopping us
                    main.cancel()

        start = time.monotonic()
        emit({"started": start})
        reporting = asyncio.create_task(reporter())
        next_id = itertools.cycle(ids).__next__
        try:
            for i in range(round(rate * duration)):
                scheduled = start + i / rate
                await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
                task = asyncio.create_task(client.send(next_id(), scheduled))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:  # each is bounded by REQUEST_TIMEOUT
                await asyncio.wait(set(in_flight))
        finally:
            reporting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporting
        progress.report()
    tally = client.tally
    emit(
        {
            "final": True,
            "ended": time.monotonic(),
            "sent": tally.requests,
            "ok": len(tally.latencies),
            "errors": dict(tally.errors),
            "created": {str(key): value for key, value in tally.created.items()},
            "cpu_s": cpu_seconds(),
        }
    )


def loadgen_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="soak_load.py")
    parser.add_argument("--url", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    ids = [int(value) for value in json.loads(Path(args.ids).read_text())]
    try:
        uvloop.run(steady_load(args.url, ids, args.rate, args.duration))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130
    return 0


class SteadyLoad:
    """The load generator process, seen from the soak: its progress lines as they come, then its result."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.started: float | None = None  # its CLOCK_MONOTONIC (system-wide) at the first request
        self.intervals: list[dict] = []
        self.final: dict | None = None
        self.log_path = RUN_DIR / "soak-loadgen.log"
        self._reader: asyncio.Task | None = None
        self._started = asyncio.Event()

    async def start(self, url: str, ids_file: Path, rate: float, duration: float) -> None:
        args = [
            sys.executable,
            __file__,
            "--url",
            url,
            "--ids",
            str(ids_file),
            "--rate",
            str(rate),
            "--duration",
            str(duration),
        ]
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=log, limit=2**24)
        self._reader = asyncio.create_task(self._read(), name="soak loadgen reader")
        started = asyncio.create_task(self._started.wait())
        try:
            await asyncio.wait(
                {started, self._reader}, timeout=LOADGEN_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            started.cancel()
        if self.started is None:
            raise BenchError(f"the load generator did not start; see {self.log_path}")

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            record = json.loads(line)
            if "started" in record:
                self.started = record["started"]
                self._started.set()
            elif record.get("final"):
                self.final = record
            else:
                self.intervals.append(record)

    async def wait(self, timeout: float) -> dict:
        assert self.process is not None and self._reader is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            raise BenchError("the load generator hung") from None
        if self.process.returncode != 0 or self.final is None:
            raise BenchError(f"the load generator failed ({self.process.returncode}); see {self.log_path}")
        return self.final

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ValueError):
                await self._reader


if __name__ == "__main__":
    sys.exit(loadgen_main(sys.argv[1:]))
