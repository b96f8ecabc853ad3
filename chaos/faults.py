"""The nemesis: faults from a menu, at random moments, overlapping, each healed after its duration.

Every fault is the pair (inject, heal) acting on the run's own servers, proxies and worker processes.
Two faults on the same resource (the broker, one database's server or its TCP path, the link between
the services, one service's workers) never overlap, so each heal undoes exactly its own fault; faults
on different resources overlap freely.
"""

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from chaos.system import CONFIRM_TIMEOUT, DATABASES, STATEMENT_TIMEOUT, System
from shared.db import asyncpg_dsn

WORKER_RESPAWN_TIMEOUT = 30.0
MEMORY_ALARM = "0.00001"  # of the machine's memory: far below what the node uses, so the alarm is on
MEMORY_NORMAL = "0.4"  # RabbitMQ's default


@dataclass
class Record:
    """One injected fault, as the ledger shows it."""

    kind: str
    start: float  # seconds since the run's start
    end: float = 0.0
    detail: str = ""
    error: str = ""


@dataclass
class Fault:
    kind: str
    resource: str
    act: Callable[[System, random.Random, float, Record], Awaitable[None]]  # inject, hold, heal


async def _hold(seconds: float) -> None:
    await asyncio.sleep(seconds)  # the fault's duration: what the nemesis is asked to do, not a synchronisation


async def _respawned(system: System, service: str, killed: int, count: int) -> None:
    deadline = time.monotonic() + WORKER_RESPAWN_TIMEOUT
    while time.monotonic() < deadline:
        workers = await asyncio.to_thread(system.workers, service)
        if killed not in workers and len(workers) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"gunicorn did not replace the {service} worker {killed} within {WORKER_RESPAWN_TIMEOUT:g} s")


def kill_worker(service: str) -> Callable:
    async def act(system: System, rng: random.Random, seconds: float, record: Record) -> None:
        workers = sorted(await asyncio.to_thread(system.workers, service))
        pid = rng.choice(workers)
        record.detail = f"kill -9 {service} worker {pid}"
        os.kill(pid, signal.SIGKILL)
        await _respawned(system, service, pid, len(workers))

    return act


async def stop_worker(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    service = rng.choice(sorted(DATABASES))
    pid = rng.choice(sorted(await asyncio.to_thread(system.workers, service)))
    record.detail = f"SIGSTOP {service} worker {pid} for {seconds:.1f} s"
    os.kill(pid, signal.SIGSTOP)
    try:
        await _hold(seconds)
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed meanwhile by another fault
            os.kill(pid, signal.SIGCONT)


async def broker_stop(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    record.detail = "rabbitmqctl stop_app, then start_app"
    await system.ctl("stop_app")
    try:
        await _hold(seconds)
    finally:
        await system.ctl("start_app")


async def broker_alarm(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    record.detail = f"set_vm_memory_high_watermark {MEMORY_ALARM}, then {MEMORY_NORMAL}"
    await system.ctl("set_vm_memory_high_watermark", MEMORY_ALARM)
    try:
        await _hold(seconds)
    finally:
        await system.ctl("set_vm_memory_high_watermark", MEMORY_NORMAL)


def refuse_connections(service: str) -> Callable:
    """The database refuses new connections at the server and its sessions are terminated: a restart,
    a failover or a maintenance window as a client sees it (SQLSTATE 55000, then 57P01)."""
    database = DATABASES[service]

    async def act(system: System, rng: random.Random, seconds: float, record: Record) -> None:
        record.detail = f"ALTER DATABASE {database} ALLOW_CONNECTIONS false; its sessions terminated"
        admin = await system.admin()
        try:
            await admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
                )
                await _hold(seconds)
            finally:
                await admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        finally:
            await admin.close()

    return act


def cut_database(service: str) -> Callable:
    async def act(system: System, rng: random.Random, seconds: float, record: Record) -> None:
        record.detail = f"{service} service's PostgreSQL connections cut at TCP, new ones refused"
        proxy = system.db_proxies[service]
        await proxy.cut()
        try:
            await _hold(seconds)
        finally:
            await proxy.restore()

    return act


async def slow_customer(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    link = system.customer_link
    link.delay = 2.5  # past the order service's CUSTOMER_SERVICE_TIMEOUT (2 s)
    record.detail = f"customer service answers {link.delay:g} s late"
    try:
        await _hold(seconds)
    finally:
        link.delay = 0.0


async def partition(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    record.detail = "order service cut off from the customer service"
    await system.customer_link.cut()
    try:
        await _hold(seconds)
    finally:
        await system.customer_link.restore()


async def broker_hangs(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    """The order service's broker connections stay open but carry nothing: its confirms stall."""
    seconds = max(seconds, CONFIRM_TIMEOUT + 1)
    record.detail = f"order service's broker connections frozen for {seconds:.1f} s (confirms stall)"
    system.broker_link.freeze()
    try:
        await _hold(seconds)
    finally:
        await system.broker_link.restore()


async def lock_customers(system: System, rng: random.Random, seconds: float, record: Record) -> None:
    """The customers table locked: statements wait past DATABASE_STATEMENT_TIMEOUT and are cancelled."""
    seconds = max(seconds, STATEMENT_TIMEOUT + 1)
    record.detail = f"customers table locked for {seconds:.1f} s (statements time out)"
    conn = await asyncpg.connect(asyncpg_dsn(system.database_url("customer")), timeout=10)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            await _hold(seconds)
    finally:
        await conn.close()


MENU = [
    Fault("kill order worker", "order workers", kill_worker("order")),
    Fault("kill customer worker", "customer workers", kill_worker("customer")),
    Fault("SIGSTOP worker", "stopped worker", stop_worker),
    Fault("broker stop/start", "broker", broker_stop),
    Fault("broker memory alarm", "broker", broker_alarm),
    Fault("customer db refuses", "customer db", refuse_connections("customer")),
    Fault("order db refuses", "order db", refuse_connections("order")),
    Fault("customer db TCP cut", "customer db tcp", cut_database("customer")),
    Fault("order db TCP cut", "order db tcp", cut_database("order")),
    Fault("broker confirms stall", "order broker link", broker_hangs),
    Fault("customers table locked", "customer db", lock_customers),
    Fault("customer service slow", "customer link", slow_customer),
    Fault("partition order|customer", "customer link", partition),
]
KINDS = [fault.kind for fault in MENU]


@dataclass
class Nemesis:
    system: System
    rng: random.Random
    t0: float
    durations: tuple[float, float] = (2.0, 8.0)  # seconds a fault lasts, at random between
    gaps: tuple[float, float] = (0.5, 4.0)  # seconds between two faults' starts
    records: list[Record] = field(default_factory=list)

    async def run(self, until: float, every_kind_first: bool) -> list[Record]:
        """Inject faults until `until` (monotonic), then wait for every heal. With `every_kind_first`
        each kind of the menu comes once, in a shuffled order, before any repeats."""
        owed = self.rng.sample(MENU, len(MENU)) if every_kind_first else []
        busy: dict[str, asyncio.Task] = {}
        while time.monotonic() < until or owed:  # every kind owed is injected, however short the run
            free = [fault for fault in MENU if fault.resource not in busy]
            due = [fault for fault in owed if fault.resource not in busy]
            fault = due[0] if due else (self.rng.choice(free) if free else None)
            if fault is not None:
                if fault in owed:
                    owed.remove(fault)
                seconds = self.rng.uniform(*self.durations)
                task = asyncio.create_task(self._inject(fault, seconds))
                busy[fault.resource] = task
                task.add_done_callback(lambda _, resource=fault.resource: busy.pop(resource, None))
            await asyncio.sleep(self.rng.uniform(*self.gaps))  # the next fault's moment
        await asyncio.gather(*busy.values())
        return self.records

    async def _inject(self, fault: Fault, seconds: float) -> None:
        record = Record(fault.kind, time.monotonic() - self.t0)
        self.records.append(record)
        try:
            await fault.act(self.system, self.rng, seconds, record)
        except Exception as exc:  # the nemesis failed: the run is void, and the checker says so
            record.error = f"{type(exc).__name__}: {exc}"[:300]
        record.end = time.monotonic() - self.t0
