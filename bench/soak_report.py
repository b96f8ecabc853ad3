"""The soak's report: the tables and lines it prints, and the JSON document it saves."""

import argparse
import json
import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import report
from loadgen import latency_summary
from report import ROOT, aligned
from soak_phases import RECOVERED_BACKLOG, SETTLE_SECONDS, Soak
from soak_verdict import FD_SLACK, PG_POOL_BOUND, RSS_GROWTH_LIMIT


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
    return aligned([header, *lines], "<<<>>>>>>>><")


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
    header = ("phase", "s", "201s", "201/s", "errors", "p50 ms", "p99 ms", "max ms")
    return aligned([header, *lines], "<>>>>>>>")


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


def sample(run: Soak, label: str) -> dict:
    return next(s for s in run.samples if s["label"] == label)


def print_events(run: Soak) -> None:
    last = run.samples[-1]["metrics"]
    customer, order = last["customer"], last["order"]
    print(
        f"events: published {order.get('events_published_total', 0):g}, consumed "
        f"{customer.get('events_consumed_total', 0):g}, duplicates ignored "
        f"{customer.get('events_duplicate_total', 0):g}, retried "
        f"{customer.get('events_retried_total', 0):g}, dead-lettered "
        f"{customer.get('events_dead_lettered_total', 0):g}; outbox pending at the end "
        f"{report.fmt(order.get('outbox_pending_events'), 0)}"
    )
    channels_known = any(row.get("broker_channels") is not None for s in run.samples for row in s["processes"])
    if not channels_known:
        print("channels: rabbitmqctl could not list connections here (not root?), so no channel counts")


def print_logs(run: Soak, logs: dict) -> None:
    print(f"service log {run.system.log_path.relative_to(ROOT)}: lines by level {logs['levels']}")
    for message, count in logs["warnings"].items():
        print(f"  {count:6d} x {message}")
    for line in logs["other_error_lines"]:
        print(f"  other line: {line}")


def print_report(args: argparse.Namespace, run: Soak, checks: list[dict], figures: dict, cpu_text: str) -> None:
    print(
        f"\nsoak: {args.workers} worker(s) per service, {args.rate:g} orders/s over {args.customers} customers, "
        f"{args.warmup:g} s warm-up + {args.minutes:g} min, broker cut {args.outage:g} s at "
        f"t={run.outage.get('cut_at_s', 0):.0f} s (t from the start of the load)\n"
    )
    print(load_table(figures["phases"]))
    print(
        f"\nprocesses: after warm-up (t={sample(run, 'after warm-up')['t']:.0f} s) vs the end: RSS the larger of "
        f"the end of the load and settled ({SETTLE_SECONDS:g} s idle after convergence), the rest settled"
    )
    print(process_table(figures["processes"]))
    print()
    print_events(run)
    print(cpu_text)
    print_logs(run, figures["logs"])
    print()
    print(
        aligned(
            [("check", "", "detail")] + [(c["check"], "PASS" if c["pass"] else "FAIL", c["detail"]) for c in checks],
            "<<<",
        )
    )


def document(args: argparse.Namespace, started: datetime, result: dict, checks: list[dict], figures: dict) -> dict:
    run: Soak = result["soak"]
    return {
        **report.document_head(started, args),
        "passed": all(c["pass"] for c in checks),
        "checks": checks,
        "limits": {
            "rss_growth": RSS_GROWTH_LIMIT,
            "fd_slack": FD_SLACK,
            "pg_pool_bound": PG_POOL_BOUND,
            "settle_s": SETTLE_SECONDS,
            "recovered_backlog": RECOVERED_BACKLOG,
        },
        "load": result["load"],
        "phases": figures["phases"],
        "processes": figures["processes"],
        "convergence": result["convergence"],
        "exactness": result["exactness"],
        "outage": run.outage,
        "cpu": figures["cpu"],
        "logs": figures["logs"],
        "samples": run.samples,
        "load_intervals": [interval_summary(run, i) for i in run.load.intervals],
    }
