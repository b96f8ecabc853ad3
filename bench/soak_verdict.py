"""The soak's verdict: the checks over what a run learned, and the tables that show it.

Phases of the load (201s, errors, latency), each gunicorn process after the warm-up against the end (RSS,
descriptors, connections, channels), the service log's warnings, CPU per order; each check passes or fails
against the limits below.
"""

import argparse
import contextlib
from collections import Counter

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


def growth(row: dict) -> list[str]:
    """What grew in one process between the warm-up and the end, past its limit."""
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
    return why


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
        why = growth(row)
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


def stray_processes(pids: set[int]) -> list[int]:
    """Any process we sampled (gunicorn masters and workers) that still runs."""
    strays = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if "gunicorn" in " ".join(psutil.Process(pid).cmdline()):
                strays.append(pid)
    return sorted(strays)


def exactness_check(result: dict) -> dict:
    exact, convergence = result["exactness"], result["convergence"]
    detail = (
        f"{exact['orders_created']} created, {exact['orders_stored']} stored, {exact['orders_counted']} counted; "
        f"converged {report.fmt(convergence['seconds'], 2)} s after the load"
    )
    if not exact["exact"]:
        detail += f"; mismatches {exact['mismatches']}"
    if not convergence["exact"]:
        detail += f"; still short {convergence['still_short']}, over {convergence['over']}"
    return {
        "check": "no order lost or doubled (per customer: 201s = stored = orders_count)",
        "pass": exact["exact"] and convergence["exact"],
        "detail": detail,
    }


def outage_checks(run: Soak, phases: list[dict]) -> list[dict]:
    cut = next((p for p in phases if p["phase"] == "during cut"), None)
    recovered = run.outage.get("recovered_after_s")
    return [
        {
            "check": "orders kept getting 201 during the broker cut",
            "pass": cut is not None and cut["ok"] > 0 and cut["errors"] == 0,
            "detail": "no cut"
            if cut is None
            else f"{cut['ok']} 201s in {cut['seconds']:g} s, {cut['errors']} errors, p99 "
            f"{report.fmt(cut['latency_ms']['p99'], 1)} ms",
        },
        {
            "check": "broker link and outbox back after the restore",
            "pass": recovered is not None,
            "detail": f"recovered {report.fmt(recovered, 1)} s after the restore; outbox backlog peak "
            f"{report.fmt(run.outage.get('backlog_peak'), 0)}",
        },
    ]


def verdict(args: argparse.Namespace, result: dict) -> tuple[list[dict], dict]:
    """The checks (name, pass, detail), and the figures for the JSON."""
    run: Soak = result["soak"]
    load, expected = result["load"], round(args.rate * run.load_seconds)
    phases = phase_stats(run)
    labelled = {s["label"]: s for s in run.samples if s["label"]}
    warm, settled = labelled["after warm-up"], labelled["settled"]
    processes = compare_processes(warm, labelled.get("end of load", settled), settled)
    dead = settled["metrics"]["customer"].get("events_dead_lettered_total", 0)
    checks = [
        exactness_check(result),
        {
            "check": "every POST /orders answered 201",
            "pass": load["sent"] == expected and load["ok"] == expected,
            "detail": f"{load['ok']} of {expected} scheduled got 201; errors {load['errors'] or 0}",
        },
        *outage_checks(run, phases),
        {
            "check": f"flat: RSS ≤ +{RSS_GROWTH_LIMIT:.0%}, fds ≤ +{FD_SLACK} (besides the PG pool), "
            "no more connections or channels, no restart",
            "pass": all(row["pass"] for row in processes),
            "detail": "; ".join(
                f"{r['service']} {r['role']} {r['pid']}: {', '.join(r['why'])}" for r in processes if not r["pass"]
            )
            or "every process flat",
        },
        {"check": "no event dead-lettered", "pass": dead == 0, "detail": f"{dead:g} dead-lettered"},
    ]
    return checks, {"phases": phases, "processes": processes, "warm_sample_t": warm["t"]}
