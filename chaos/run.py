"""One chaos run: start the system, load it, let the nemesis loose, heal, settle, check, write the ledger."""

import asyncio
import contextlib
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from chaos import checker, ledger
from chaos.faults import KINDS, Nemesis, Record
from chaos.load import Book, Clients, tally
from chaos.system import start_system

CLIENTS = 6
SEED_CUSTOMERS = 20


@dataclass
class Options:
    minutes: float = 10.0
    seed: int = 0
    ledger_path: Path = Path(".run/chaos.jsonl")
    every_kind_first: bool = True  # each kind of fault once before any repeats
    durations: tuple[float, float] = (2.0, 8.0)
    gaps: tuple[float, float] = (0.5, 4.0)
    keep_folder: bool = False


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


async def run(options: Options) -> dict:
    """The verdict (also the ledger's last line): passed, violations, summary, fault kinds seen."""
    rng = random.Random(options.seed)
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    async with contextlib.AsyncExitStack() as stack:
        if not options.keep_folder:
            stack.callback(_remove, folder)
        say(f"seed {options.seed}; starting a RabbitMQ node, a PostgreSQL instance and both services in {folder}")
        began = time.monotonic()
        system = await start_system(stack, folder)
        t0 = time.monotonic()
        say(f"up in {t0 - began:.0f} s")
        book = Book(t0)
        clients = Clients(system.services, book, random.Random(rng.random()))
        stack.push_async_callback(clients.close)
        await clients.seed_customers(SEED_CUSTOMERS)
        sampler = ledger.Sampler(system.services.customer_url, t0)
        sampling = asyncio.create_task(sampler.run())
        load = [asyncio.create_task(clients.task()) for _ in range(CLIENTS)]
        nemesis = Nemesis(system, random.Random(rng.random()), t0, options.durations, options.gaps)
        say(f"{options.minutes:g} min of load and faults")
        records = await nemesis.run(time.monotonic() + options.minutes * 60, options.every_kind_first)
        healed = time.monotonic() - t0
        clients.stop.set()
        await asyncio.gather(*load)
        await clients.come_back()
        say(
            f"every fault healed at {healed:.0f} s; load stopped at {time.monotonic() - t0:.0f} s; "
            f"settling (at most {checker.SETTLE_TIMEOUT:g} s)"
        )
        settled_after, unsettled = await checker.settle(system)
        sampling.cancel()
        violations = [f"not settled {checker.SETTLE_TIMEOUT:g} s after the heal: {why}" for why in unsettled]
        violations += [f"the nemesis failed: {r.kind}: {r.error}" for r in records if r.error]
        violations += await checker.check(system, book)
        lines = ledger.fault_lines(records, book, sampler)
        verdict = verdict_of(options, records, book, settled_after, violations)
        ledger.write(options.ledger_path, lines, verdict)
        print(ledger.table(lines, verdict), flush=True)
        say(f"ledger: {options.ledger_path}; service log: {system.services.log_path}")
        return verdict


def verdict_of(
    options: Options, records: list[Record], book: Book, settled_after: float, violations: list[str]
) -> dict:
    totals = tally(book.answers)
    kinds = {record.kind for record in records}
    return {
        "verdict": "pass" if not violations else "fail",
        "passed": not violations,
        "seed": options.seed,
        "minutes": options.minutes,
        "faults": len(records),
        "kinds": sorted(kinds),
        "kinds_missing": sorted(set(KINDS) - kinds),
        "requests": totals,
        "orders": len(book.orders),
        "status_changes": sum(len(changes) for changes in book.transitions.values()),
        "settled_after_s": round(settled_after, 1),
        "violations": violations,
        "summary": f"{len(records)} faults of {len(kinds)} kinds, {len(book.answers)} requests "
        f"({totals.get('ok', 0)} ok), {len(book.orders)} orders; settled in {settled_after:.0f} s; "
        f"{len(violations)} violation(s)",
    }


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
