"""CPU and memory of each process of a service, for `/metrics` under gunicorn.

prometheus_client's multiprocess mode drops its process collector (each worker's numbers would be
summed into nonsense), so a scrape reads them here instead, at the moment of the scrape, from
/proc: the gunicorn master and each of its workers, one series per `pid` (and `role`). Read at
scrape time rather than written by each worker, so a worker whose loop is stuck still shows its
CPU. The names are the usual process collector's, so one dashboard query serves a single process
(whose default collector has them without `pid`) and a worker pool alike.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces); None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in (PROC / str(pid) / "task" / str(pid) / "children").read_text().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: look at every process's parent
        found = []
        for entry in PROC.iterdir():
            if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
                found.append(int(entry.name))
        return found


def service_processes() -> dict[int, str]:
    """pid -> role: the gunicorn master (this worker's parent) and its workers, this one included."""
    master = os.getppid()
    return {master: "master", **dict.fromkeys(_children(master) or [os.getpid()], "worker")}


class ServiceProcessCollector(Collector):
    """process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes and
    process_open_fds of every process of the service, labelled by pid and role."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["pid", "role"]
        cpu = CounterMetricFamily("process_cpu_seconds_total", "User and system CPU time", labels=labels)
        rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size", labels=labels)
        vms = GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size", labels=labels)
        fds = GaugeMetricFamily("process_open_fds", "Open file descriptors", labels=labels)
        for pid, role in service_processes().items():
            fields = _stat(pid)
            if fields is None:
                continue  # exited between the listing and now
            values = [str(pid), role]
            # Fields 14-15 (utime, stime) in clock ticks, 23 (vsize) in bytes, 24 (rss) in pages.
            cpu.add_metric(values, (int(fields[11]) + int(fields[12])) / _TICKS)
            vms.add_metric(values, int(fields[20]))
            rss.add_metric(values, int(fields[21]) * _PAGE)
            with contextlib.suppress(OSError):  # another user's process, or gone
                fds.add_metric(values, len(os.listdir(PROC / str(pid) / "fd")))
        yield from (cpu, rss, vms, fds)
