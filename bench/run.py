"""Benchmark the real services against a bare aiohttp baseline, up together on this machine.

    python bench/run.py [--rounds R] [--slices S] [--duration D] [--warmup W] [--concurrency C] ...

Each round resets and starts both systems (ours and bench/baseline/), gives each its customers, and
runs the phases of bench/phases/ on them: the closed-loop ones (POST /orders, event lag, the GETs)
every round, the system that goes first alternating from round to round; the longer ones (overload,
backlog drain and aging, tracing, authentication) in the first round only. Then print each figure
with its ratio to the baseline and its target, the min-max over the rounds, and write
bench/results/<timestamp>.json and .png (and latest.png).
Exit status: 0 done, 1 exactness failed (a count or a stored order is off), 2 the bench itself failed.
"""

import argparse
import contextlib
import shutil
import sys
from datetime import UTC, datetime

import chart
import cli
import report
from phases import EVERY_ROUND, FIRST_ROUND, PHASES
from phases.light_load import lag_customers
from systems import Baseline, Ours
from target import Round, Target, alternated, create_customers, started, write_ids

BUSY_MACHINE_SHARE = 0.2  # above this share of CPU used by unrelated processes, warn that figures are noisy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the closed-loop phases (default 3)")
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="each round's POST and GET loads run in this many slices per system, the systems alternated "
        "slice by slice, so a slow minute of the machine falls on both (default 5)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each closed loop (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop clients (default 32)")
    parser.add_argument("--customers", type=int, default=200, help="customers the orders go to (default 200)")
    cli.add_workers_option(parser)
    parser.add_argument("--only", choices=["baseline", "ours"], help="run one system only")
    for phase in PHASES:
        if hasattr(phase, "add_options"):
            phase.add_options(parser)
    args = parser.parse_args(argv)
    if min(args.rounds, args.slices, args.duration, args.concurrency, args.customers, args.workers) <= 0:
        parser.error("rounds, slices, durations and counts must be positive")
    if (
        min(
            args.warmup,
            args.lag_duration,
            args.overload_duration,
            args.history,
            args.tracing_duration,
            args.event_rates,
            args.auth_duration,
        )
        < 0
    ):
        parser.error("--warmup and the phases' options must not be negative")
    return args


async def prepare(target: Target, args: argparse.Namespace) -> None:
    """Its customers: those of the closed loops, and fresh ones for the light load's one order each."""
    lag_count = lag_customers(args)
    target.say(f"ready; creating {args.customers} + {lag_count} customers")
    target.load_ids = await create_customers(target.http, target.system.customer_url, args.customers)
    target.lag_ids = await create_customers(target.http, target.system.customer_url, lag_count)
    target.checked = target.load_ids + target.lag_ids
    write_ids(target.load_file.name, target.load_ids)
    write_ids(target.lag_file.name, target.lag_ids)


async def bench_round(number: int, args: argparse.Namespace) -> dict[str, dict]:
    """Both systems up at once, each phase on one and then the other; the exactness check; stop them.

    Why together: this machine's speed drifts within minutes (its host takes the CPU away), so
    two systems measured a minute apart compare the two minutes as much as the code. The idle system
    meanwhile takes little CPU, and none of it is counted in the other's figures."""
    systems = [system(args.workers) for system in (Baseline, Ours) if args.only in (None, system.name)]
    turn = alternated(systems, number)
    async with contextlib.AsyncExitStack() as stack:
        targets = {}
        for system in turn:
            print(f"[{system.name}] resetting its databases and queues, starting it", flush=True)
            targets[system.name] = Target(system, *await started(system, stack))
        bench = Round(targets, args, {name: {"system": name, "workers": args.workers} for name in targets})
        for target in targets.values():
            await prepare(target, args)
        for phase in EVERY_ROUND + (FIRST_ROUND if number == 0 else ()):
            await phase.run(bench)
        for name, target in targets.items():
            bench.results[name]["exactness"] = await target.exactness()
    return {name: bench.results[name] for name in sorted(bench.results)}  # baseline, ours: the report's order


def verdict_lines(results: dict[str, dict], rows: list[dict]) -> tuple[list[str], bool]:
    lines, exact = [], True
    for name, result in results.items():
        check = result["exactness"]
        exact &= check["exact"]
        lines.append(
            f"{name}: {'exact' if check['exact'] else 'MISMATCH'}: {check['orders_created']} orders created (201), "
            f"{check['orders_counted']} counted in orders_count, {check['orders_stored']} stored"
        )
        if not check["exact"]:
            lines.append(f"  mismatches (first 20): {check['mismatches']}; convergence: {result['convergence']}")
        cpu = result.get("cpu_ms_per_order") or {}
        if cpu.get("machine") and cpu["other"] > BUSY_MACHINE_SHARE * cpu["machine"]:
            lines.append(
                f"  note: other processes took {cpu['other'] / cpu['machine']:.0%} of the machine's CPU "
                f"during {name}'s POST load: its figures are noisy; rerun on a quiet machine"
            )
    judged = [row for row in rows if row["pass"] is not None]
    if judged:
        missed = [row["label"] for row in judged if not row["pass"]]
        lines.append(
            f"targets: {len(judged) - len(missed)} of {len(judged)} met"
            + (f"; missed: {' | '.join(missed)}" if missed else "")
        )
    return lines, exact


async def rounds(args: argparse.Namespace) -> tuple[dict[str, dict], list[list[dict]], list[str], bool]:
    """Every round; the first round's results, every round's comparison, the verdict lines, exactness."""
    results = await bench_round(0, args)
    comparisons = [report.compare(results)]
    lines, exact = verdict_lines(results, comparisons[0])
    for number in range(1, args.rounds):
        print(f"round {number + 1} of {args.rounds}: the closed-loop phases again", flush=True)
        again = await bench_round(number, args)
        comparisons.append(report.compare(again))
        round_lines, round_exact = verdict_lines(again, [])
        if not round_exact:
            exact = False
            lines += [f"round {number + 1}: {line}" for line in round_lines]
    return results, comparisons, lines, exact


async def main(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    results, comparisons, lines, exact = await rounds(args)
    settings = (
        f"{args.workers} worker(s) per service, {args.concurrency} clients x {args.duration:g} s per closed loop "
        f"(+{args.warmup:g} s warm-up) in {args.slices} slice(s), {args.customers} customers, "
        f"light load {args.lag_duration:g} s"
    )
    print(f"\n{settings}")
    print(report.table(comparisons[0]))
    print("\n".join(lines))
    if len(comparisons) > 1:
        print(f"\nover {len(comparisons)} rounds (min to max; the first-round-only phases ran once):")
        print(report.rounds_table(comparisons))

    stamp, commit = started_at.strftime("%Y%m%d-%H%M%S"), report.git_commit()
    document = {
        **report.document_head(started_at, args),
        "exact": exact,
        "comparison": comparisons[0],
        "rounds": comparisons,
        "results": results,
    }
    json_path, png_path = report.RESULTS_DIR / f"{stamp}.json", report.RESULTS_DIR / f"{stamp}.png"
    report.save_json(json_path, document)
    chart.chart(png_path, results, f"ours vs baseline, {stamp} ({commit or 'no commit'}): {settings}")
    shutil.copyfile(png_path, report.RESULTS_DIR / "latest.png")
    print(f"results: {json_path.relative_to(report.ROOT)}, {png_path.relative_to(report.ROOT)} (and latest.png)")
    if not exact:
        print("bench: FAILED: orders_count increases do not match the orders created", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli.run("bench", main, parse_args()))
