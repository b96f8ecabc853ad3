"""The soak's verdict: the checks over what a run learned, and the tables that show it.

Phases of the load (201s, errors, latency), each gunicorn process after the warm-up against the end (RSS,
descriptors, connections, channels), the service log's warnings, CPU per order; each check passes or fails
against the limits below.
"""

import argparse
import contextlib
import json
import os
import re
from collections import Counter
from pathlib import Path

import psutil
import report
from loadgen import latency_summary
from soak_load import PROGRESS_EVERY
from soak_phases import Soak

RSS_GROWTH_LIMIT = 0.10  # RSS at the end may exceed the RSS after warm-up by this share
# Open file descriptors other than PostgreSQL connections may grow by this many. The keep-alive
# connections of a load are gone once settled; the PostgreSQL pool may grow up to its bound.
FD_SLACK = 4
PG_POOL_BOUND = 10 + 1  # shared/db.py's pool maxsize per worker, plus the outbox relay's LISTEN connection


def phase_stats(run: Soak) -> list[dict]:
    """201s, errors and latency of the load generator's answers, by phase (1 s resolution)."""
    phases: dict[str, list[dict]] = {}
    for interval in run.load.intervals:
        phases.setdefault(run.phase(interval["t"] - run.t0), []).append(interval)
    phases["all"] = run.load.intervals
    rows = []
    for name, intervals in phases.items():
        latencies = [value / 1000 for i in intervals for value in i["lat_ms"]]
        errors = Counter()
        for interval in intervals:
            errors.update(interval["errors"])
        seconds = len(intervals) * PROGRESS_EVERY
        rows.append(
            {
                "phase": name,
                "seconds": seconds,
                "ok": len(latencies),
                "errors": sum(errors.values()),
                "error_kinds": dict(errors),
                "rps": len(latencies) / seconds if seconds else None,
                "latency_ms": latency_summary(latencies),
            }
        )
    return rows


def by_pid(sample: dict) -> dict[int, dict]:
    return {row["pid"]: row for row in sample["processes"]}


def channels_of(row: dict) -> int | None:
    return row.get("broker_channels")


def compare_processes(warm: dict, load_end: dict, settled: dict) -> list[dict]:
    """Per process: after warm-up vs the end, with a verdict.

    RSS: the larger of the end of the load and the settled sample. Descriptors, connections and channels:
    the settled sample (idle, keep-alive connections closed), so what is left is what the process holds.
    """
    rows, at_end, now = [], by_pid(load_end), by_pid(settled)
    for pid, before in by_pid(warm).items():
        row = {
            "service": before["service"],
            "role": before["role"],
            "pid": pid,
            "rss_warm": before["rss_mb"],
            "fds_warm": before["fds"],
            "broker_warm": len(before["broker_ports"]),
            "channels_warm": channels_of(before),
            "pg_warm": before["pg_conns"],
        }
        after = now.get(pid)
        if after is None:
            rows.append({**row, "pass": False, "why": ["gone (worker restarted?)"]})
            continue
        loaded = at_end.get(pid, after)
        row.update(
            rss_end=max(loaded["rss_mb"], after["rss_mb"]),
            fds_load_end=loaded["fds"],
            fds_end=after["fds"],
            broker_end=len(after["broker_ports"]),
            channels_end=channels_of(after),
            pg_end=after["pg_conns"],
            close_wait_end=after["close_wait"],
        )
        row["rss_growth"] = row["rss_end"] / row["rss_warm"] - 1
        row["other_fds_growth"] = (row["fds_end"] - row["pg_end"]) - (row["fds_warm"] - row["pg_warm"])
        why = []
        if row["rss_growth"] > RSS_GROWTH_LIMIT:
            why.append(f"RSS +{row['rss_growth']:.1%}")
        if row["other_fds_growth"] > FD_SLACK:
            why.append(f"fds other than PostgreSQL +{row['other_fds_growth']}")
        if row["pg_end"] > max(row["pg_warm"], PG_POOL_BOUND):
            why.append(f"{row['pg_end']} PostgreSQL connections, over the pool's bound")
        if row["broker_end"] > row["broker_warm"]:
            why.append("more broker connections")
        if None not in (row["channels_warm"], row["channels_end"]) and row["channels_end"] > row["channels_warm"]:
            why.append("more channels")
        if row["close_wait_end"]:
            why.append(f"{row['close_wait_end']} sockets in CLOSE_WAIT")
        rows.append({**row, "pass": not why, "why": why})
    for pid, after in now.items():
        if pid not in by_pid(warm):
            rows.append(
                {
                    "service": after["service"],
                    "role": after["role"],
                    "pid": pid,
                    "pass": False,
                    "why": ["new since warm-up (a worker restarted)"],
                }
            )
    return rows


def log_summary(path: Path, limit: int = 12) -> dict:
    """Lines by level in the services' log, the WARNING+ messages grouped (digits folded) with counts, and
    any other line (a traceback, a tool's output) that mentions an error."""
    levels, messages, other = Counter(), Counter(), []
    plain = re.compile(r"^\[[^\]]+\] \[\d+\] \[(\w+)\] (.*)$")  # gunicorn's own lines
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level, service = record.get("level", "?"), record.get("service", "?")
            message = str(record.get("message", ""))
        elif match := plain.match(line):
            level, service, message = match[1], "gunicorn", match[2]
        else:
            if re.search(r"error|exception|traceback", line, re.IGNORECASE) and len(other) < limit:
                other.append(line[:200])
            continue
        levels[level] += 1
        if level in ("WARNING", "ERROR", "CRITICAL"):
            messages[f"{level} {service}: {re.sub(r'[0-9]+', 'N', message)[:160]}"] += 1
    return {"levels": dict(levels), "warnings": dict(messages.most_common(limit)), "other_error_lines": other}


def render(header: tuple, lines: list[tuple], aligns: str) -> str:
    cells = [tuple(str(cell) for cell in line) for line in [header, *lines]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    text = [
        "  ".join(
            f"{cell:{'<' if align == 'l' else '>'}{width}}"
            for cell, align, width in zip(line, aligns, widths, strict=True)
        ).rstrip()
        for line in cells
    ]
    text.insert(1, "-" * max(len(line) for line in text))
    return "\n".join(text)


def arrow(before, after, digits: int = 0) -> str:
    return f"{report.fmt(before, digits)} → {report.fmt(after, digits)}"


def process_table(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        growth = row.get("rss_growth")
        lines.append(
            (
                row["service"],
                row["role"],
                row["pid"],
                report.fmt(row.get("rss_warm"), 1),
                report.fmt(row.get("rss_end"), 1),
                "-" if growth is None else f"{growth:+.1%}",
                f"{report.fmt(row.get('fds_warm'), 0)} → {report.fmt(row.get('fds_load_end'), 0)} → "
                f"{report.fmt(row.get('fds_end'), 0)}",
                arrow(row.get("broker_warm"), row.get("broker_end")),
                arrow(row.get("channels_warm"), row.get("channels_end")),
                arrow(row.get("pg_warm"), row.get("pg_end")),
                report.fmt(row.get("close_wait_end"), 0),
                "PASS" if row["pass"] else "FAIL " + "; ".join(row["why"]),
            )
        )
    header = (
        "service",
        "role",
        "pid",
        "RSS warm MB",
        "RSS end MB",
        "growth",
        "fds warm → load end → settled",
        "AMQP conns",
        "channels",
        "PG conns",
        "CLOSE_WAIT",
        "verdict",
    )
    return render(header, lines, "lllrrrrrrrrl")


def load_table(phases: list[dict]) -> str:
    lines = []
    for row in phases:
        latency = row["latency_ms"]
        kinds = ", ".join(f"{kind} {n}" for kind, n in row["error_kinds"].items())
        lines.append(
            (
                row["phase"],
                report.fmt(row["seconds"], 0),
                row["ok"],
                report.fmt(row["rps"], 1),
                row["errors"] if not kinds else f"{row['errors']} ({kinds})",
                report.fmt(latency["p50"], 1),
                report.fmt(latency["p99"], 1),
                report.fmt(latency["max"], 1),
            )
        )
    return render(("phase", "s", "201s", "201/s", "errors", "p50 ms", "p99 ms", "max ms"), lines, "lrrrrrrr")


def cpu_line(run: Soak, warm: dict, end: dict, orders: int) -> tuple[str, dict]:
    """CPU of each service (its gunicorn processes) per order between the two samples, and the machine's load."""
    before = {row["pid"]: row["cpu_s"] for row in warm["processes"]}
    used = Counter()
    for row in end["processes"]:
        if row["pid"] in before:
            used[row["service"]] += row["cpu_s"] - before[row["pid"]]
    seconds = end["t"] - warm["t"]
    busy = (end["machine_busy_s"] - warm["machine_busy_s"]) / seconds if seconds > 0 else None
    figures = {
        f"{service}_cpu_ms_per_order": used[service] * 1000 / orders if orders else None
        for service in ("customer", "order")
    }
    figures["machine_cores_busy"] = busy
    text = (
        f"CPU per order: customer {report.fmt(figures['customer_cpu_ms_per_order'], 2)} ms, order "
        f"{report.fmt(figures['order_cpu_ms_per_order'], 2)} ms; the whole machine kept "
        f"{report.fmt(busy, 2)} of {os.cpu_count()} cores busy on average (everything, not only the soak)"
    )
    return text, figures


def interval_summary(run: Soak, interval: dict) -> dict:
    """One second of the load for the JSON: its latency percentiles instead of every latency."""
    latency = latency_summary([value / 1000 for value in interval["lat_ms"]])
    return {
        "t": round(interval["t"] - run.t0, 2),
        "ok": interval["ok"],
        "errors": interval["errors"],
        "sent": interval["sent"],
        "in_flight": interval["in_flight"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
    }


def stray_processes(pids: set[int]) -> list[int]:
    """Any process we sampled (gunicorn masters and workers) that still runs."""
    strays = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if "gunicorn" in " ".join(psutil.Process(pid).cmdline()):
                strays.append(pid)
    return sorted(strays)


def verdict(args: argparse.Namespace, result: dict) -> tuple[list[dict], dict]:
    """The checks (name, pass, detail), and the figures for the JSON."""
    run: Soak = result["soak"]
    checks, exact, convergence = [], result["exactness"], result["convergence"]
    checks.append(
        {
            "check": "no order lost or doubled (per customer: 201s = stored = orders_count)",
            "pass": exact["exact"] and convergence["exact"],
            "detail": f"{exact['orders_created']} created, {exact['orders_stored']} stored, "
            f"{exact['orders_counted']} counted; converged "
            f"{report.fmt(convergence['seconds'], 2)} s after the load"
            + ("" if exact["exact"] else f"; mismatches {exact['mismatches']}")
            + (
                ""
                if convergence["exact"]
                else f"; still short {convergence['still_short']}, over {convergence['over']}"
            ),
        }
    )
    load = result["load"]
    expected = round(args.rate * run.load_seconds)
    checks.append(
        {
            "check": "every POST /orders answered 201",
            "pass": load["sent"] == expected and load["ok"] == expected,
            "detail": f"{load['ok']} of {expected} scheduled got 201; errors {load['errors'] or 0}",
        }
    )
    phases = phase_stats(run)
    cut = next((p for p in phases if p["phase"] == "during cut"), None)
    checks.append(
        {
            "check": "orders kept getting 201 during the broker cut",
            "pass": cut is not None and cut["ok"] > 0 and cut["errors"] == 0,
            "detail": "no cut"
            if cut is None
            else f"{cut['ok']} 201s in {cut['seconds']:g} s, "
            f"{cut['errors']} errors, p99 "
            f"{report.fmt(cut['latency_ms']['p99'], 1)} ms",
        }
    )
    recovered = run.outage.get("recovered_after_s")
    checks.append(
        {
            "check": "broker link and outbox back after the restore",
            "pass": recovered is not None,
            "detail": f"recovered {report.fmt(recovered, 1)} s after the restore; outbox backlog peak "
            f"{report.fmt(run.outage.get('backlog_peak'), 0)}",
        }
    )
    labelled = {s["label"]: s for s in run.samples if s["label"]}
    warm, settled = labelled["after warm-up"], labelled["settled"]
    processes = compare_processes(warm, labelled.get("end of load", settled), settled)
    checks.append(
        {
            "check": f"flat: RSS ≤ +{RSS_GROWTH_LIMIT:.0%}, fds ≤ +{FD_SLACK} (besides the PG pool), "
            "no more connections or channels, no restart",
            "pass": all(row["pass"] for row in processes),
            "detail": "; ".join(
                f"{r['service']} {r['role']} {r['pid']}: {', '.join(r['why'])}" for r in processes if not r["pass"]
            )
            or "every process flat",
        }
    )
    dead = settled["metrics"]["customer"].get("events_dead_lettered_total", 0)
    checks.append({"check": "no event dead-lettered", "pass": dead == 0, "detail": f"{dead:g} dead-lettered"})
    return checks, {"phases": phases, "processes": processes, "warm_sample_t": warm["t"]}
