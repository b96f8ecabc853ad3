"""CPU per order: samples of every process that works for an order, and the differences between two."""

import psutil
from systems import System

# The shared infrastructure's processes (by process name), whose CPU per order we report too.
INFRA_PROCESSES = {"postgres": "postgresql", "beam.smp": "rabbitmq"}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent working, all cores (Linux: guest time is already in user)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def infra_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (part, CPU seconds) of every PostgreSQL and RabbitMQ process."""
    found = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        part, cpu = INFRA_PROCESSES.get(process.info["name"]), process.info["cpu_times"]
        if part and cpu:
            found[process.pid] = (part, cpu.user + cpu.system)
    return found


def cpu_sample(system: System) -> dict:
    """Everything CPU per order is computed from, at one moment."""
    return {"services": system.snapshot(), "infra": infra_cpu(), "machine": machine_busy_seconds()}


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds between two samples: each service, postgresql, rabbitmq and the machine.

    Processes are matched by pid; one that started or ended in between is left out.
    """
    used = {}
    for service, rows in after["services"].items():
        start = {row["pid"]: row["cpu_s"] for row in before["services"].get(service, [])}
        used[service] = sum(row["cpu_s"] - start[row["pid"]] for row in rows if row["pid"] in start)
    used.update(dict.fromkeys(INFRA_PROCESSES.values(), 0.0))
    for pid, (part, cpu) in after["infra"].items():
        if pid in before["infra"]:
            used[part] += cpu - before["infra"][pid][1]
    used["machine"] = after["machine"] - before["machine"]
    return used


def cpu_ms_per_order(used: dict[str, float], loadgen_cpu: float, orders: int) -> dict[str, float]:
    """CPU ms per order created, by part; `other` is what the rest of the machine spent meanwhile."""
    if not orders:
        return {}
    ms = {part: seconds * 1000 / orders for part, seconds in used.items()}
    ms["both"] = ms["customer"] + ms["order"]
    ms["loadgen"] = loadgen_cpu * 1000 / orders
    ms["other"] = ms["machine"] - ms["both"] - ms["postgresql"] - ms["rabbitmq"] - ms["loadgen"]
    return ms
