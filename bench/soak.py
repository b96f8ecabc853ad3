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
import contextlib
import sys
from datetime import UTC, datetime

import cli
import report
from report import RESULTS_DIR, ROOT
from soak_phases import Soak, soak
from soak_report import cpu_line, document, log_summary, print_report, sample
from soak_verdict import stray_processes, verdict


async def main(args: argparse.Namespace) -> int:
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
    measured = sum(p["ok"] for p in figures["phases"] if p["phase"] in ("before cut", "during cut", "after cut"))
    cpu_text, figures["cpu"] = cpu_line(run, sample(run, "after warm-up"), sample(run, "end of load"), measured)
    figures["logs"] = log_summary(run.system.log_path)
    print_report(args, run, checks, figures, cpu_text)
    saved = document(args, started, result, checks, figures)
    path = RESULTS_DIR / f"soak-{started.strftime('%Y%m%d-%H%M%S')}.json"
    report.save_json(path, saved)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if not saved["passed"]:
        print("soak: FAILED: " + " | ".join(c["check"] for c in checks if not c["pass"]), file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of load after the warm-up (default 5)")
    parser.add_argument("--rate", type=float, default=50.0, help="POST /orders per second, open loop (default 50)")
    cli.add_workers_option(parser)
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


if __name__ == "__main__":
    sys.exit(cli.run("soak", main, parse_args()))
