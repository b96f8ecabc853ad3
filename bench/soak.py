"""Soak: minutes of steady POST /orders with a broker outage in the middle; exactness and resource growth.

    python bench/soak.py [--minutes M] [--rate R] [--workers W] [--customers K] [--warmup S] [--outage S]

Starts our services as bench/run.py does (bench databases and broker names, ports 3300/3301), but with
AMQP_URL pointing at a TCP proxy this process runs on 127.0.0.1:3302 in front of RabbitMQ. A load generator
in its own process sends R orders/s (open loop) over K customers for a warm-up and then M minutes. In the
middle the proxy drops every broker connection and refuses new ones for --outage seconds: a broker restart
as the services see it (the shared broker is never touched). Every --sample-every seconds it records RSS,
open file descriptors and TCP connections of every gunicorn process, the channels RabbitMQ holds for them
(rabbitmqctl, when it works here), /ready and the outbox backlog. After the load it waits until every count
is exact, checks orders created (201) = orders stored = orders_count customer by customer, and compares the
end with the sample taken right after the warm-up.

Prints the tables and writes bench/results/soak-<timestamp>.json; service logs go to bench/.run/soak.log.
Exit status: 0 every check passed, 1 a check failed, 2 the soak itself could not run.
"""

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import report
from report import RESULTS_DIR, git_commit
from soak_phases import RECOVERED_BACKLOG, SETTLE_SECONDS, Soak, soak
from soak_verdict import (
    FD_SLACK,
    PG_POOL_BOUND,
    RSS_GROWTH_LIMIT,
    cpu_line,
    interval_summary,
    load_table,
    log_summary,
    process_table,
    render,
    stray_processes,
    verdict,
)
from systems import RUN_DIR, BenchError

ROOT = Path(__file__).resolve().parent.parent


async def main(args: argparse.Namespace) -> int:
    # SIGTERM cancels us like Ctrl-C does, so the cleanup below still stops everything.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    result: dict = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            await soak(stack, args, result)
    finally:
        run: Soak | None = result.get("soak")
        pids = {row["pid"] for sample in (run.samples if run else []) for row in sample["processes"]}
        strays = stray_processes(pids)
        if strays:
            print(f"soak: gunicorn processes still running after the stop: {strays}", file=sys.stderr)

    checks, figures = verdict(args, result)
    checks.append(
        {
            "check": "nothing left running after the stop",
            "pass": not strays,
            "detail": f"stray pids {strays}" if strays else f"{len(pids)} gunicorn processes all gone",
        }
    )
    run = result["soak"]
    warm = next(s for s in run.samples if s["label"] == "after warm-up")
    end_load = next(s for s in run.samples if s["label"] == "end of load")
    cpu_text, cpu_figures = cpu_line(
        run,
        warm,
        end_load,
        sum(p["ok"] for p in figures["phases"] if p["phase"] in ("before cut", "during cut", "after cut")),
    )
    logs = log_summary(run.system.log_path)
    last = run.samples[-1]["metrics"]

    print()
    print(
        f"soak: {args.workers} worker(s) per service, {args.rate:g} orders/s over {args.customers} customers, "
        f"{args.warmup:g} s warm-up + {args.minutes:g} min, broker cut {args.outage:g} s at "
        f"t={run.outage.get('cut_at_s', 0):.0f} s (t from the start of the load)"
    )
    print()
    print(load_table(figures["phases"]))
    print()
    print(
        f"processes: after warm-up (t={warm['t']:.0f} s) vs the end: RSS the larger of the end of the load and "
        f"settled ({SETTLE_SECONDS:g} s idle after convergence), the rest settled"
    )
    print(process_table(figures["processes"]))
    print()
    print(
        f"events: published {last['order'].get('events_published_total', 0):g}, consumed "
        f"{last['customer'].get('events_consumed_total', 0):g}, duplicates ignored "
        f"{last['customer'].get('events_duplicate_total', 0):g}, retried "
        f"{last['customer'].get('events_retried_total', 0):g}, dead-lettered "
        f"{last['customer'].get('events_dead_lettered_total', 0):g}; outbox pending at the end "
        f"{report.fmt(last['order'].get('outbox_pending_events'), 0)}"
    )
    print(cpu_text)
    channels_known = any(row.get("broker_channels") is not None for s in run.samples for row in s["processes"])
    if not channels_known:
        print("channels: rabbitmqctl could not list connections here (not root?), so no channel counts")
    print(f"service log {run.system.log_path.relative_to(ROOT)}: lines by level {logs['levels']}")
    for message, count in logs["warnings"].items():
        print(f"  {count:6d} x {message}")
    for line in logs["other_error_lines"]:
        print(f"  other line: {line}")
    print()
    print(
        render(
            ("check", "", "detail"), [(c["check"], "PASS" if c["pass"] else "FAIL", c["detail"]) for c in checks], "lll"
        )
    )

    stamp = started.strftime("%Y%m%d-%H%M%S")
    document = {
        "started_at": started.isoformat(),
        "git_commit": git_commit(),
        "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
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
        "cpu": cpu_figures,
        "logs": logs,
        "samples": run.samples,
        "load_intervals": [interval_summary(run, i) for i in run.load.intervals],
    }
    path = RESULTS_DIR / f"soak-{stamp}.json"
    report.save_json(path, document)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if not document["passed"]:
        print("soak: FAILED: " + " | ".join(c["check"] for c in checks if not c["pass"]), file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of load after the warm-up (default 5)")
    parser.add_argument("--rate", type=float, default=50.0, help="POST /orders per second, open loop (default 50)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS", "1")),
        help="gunicorn workers per service (default $WORKERS or 1)",
    )
    parser.add_argument("--customers", type=int, default=200, help="customers the orders go to (default 200)")
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds of load before the baseline sample (default 30)"
    )
    parser.add_argument("--outage", type=float, default=15.0, help="seconds the broker stays cut (default 15)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples (default 10)")
    args = parser.parse_args(argv)
    if min(args.minutes, args.rate, args.workers, args.customers, args.outage, args.sample_every) <= 0:
        parser.error("minutes, rate, workers, customers, outage and sample interval must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.minutes * 60 < args.outage + 20:
        parser.error("--minutes must leave at least 10 s of load on each side of the --outage")
    return args


def cli() -> int:
    args = parse_args()
    try:
        return asyncio.run(main(args))
    except BenchError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # everything was stopped on the way out
        print("soak: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
