"""POST /orders in a closed loop: throughput, latency, CPU per order by process, RSS, convergence.

After each system's warm-up, the measured load runs in `--slices` slices per system, the systems
alternated slice by slice (A B, B A, ...): this machine's speed drifts within minutes, so a
slow stretch falls on both. CPU is sampled before each slice and after its convergence (so the
consumer's share of the work is in it) and summed over the slices; the idle system's processes are
not counted."""

from collections import Counter

from cpu import cpu_ms_per_order, cpu_sample, cpu_used
from figure import Figure, at_least_times, at_most, at_most_times, dig
from loadgen import latency_summary
from target import Round, Target

RSS_LIMIT_MB = 150.0


def merged_load(loads: list[dict]) -> dict:
    """One closed-loop result from a step's slices: counts summed, throughput over their time, the
    latency percentiles of all their requests pooled."""
    elapsed, ok = sum(load["elapsed_s"] for load in loads), sum(load["ok"] for load in loads)
    loadgen_cpu = sum(load["loadgen_cpu_s"] for load in loads)
    return {
        "target": loads[0]["target"],
        "concurrency": loads[0]["concurrency"],
        "slices": len(loads),
        "requests": sum(load["requests"] for load in loads),
        "ok": ok,
        "errors": sum(load["errors"] for load in loads),
        "error_kinds": dict(sum((Counter(load["error_kinds"]) for load in loads), Counter())),
        "elapsed_s": elapsed,
        "throughput_rps": ok / elapsed if elapsed > 0 else 0.0,
        "latency_ms": latency_summary([latency for load in loads for latency in load["latencies_s"]]),
        "loadgen_cpu_s": loadgen_cpu,
        "loadgen_cpu_share": loadgen_cpu / elapsed if elapsed > 0 else 0.0,
        "ended_monotonic": loads[-1]["ended_monotonic"],
    }


async def warm_up(target: Target, bench: Round) -> dict:
    args = bench.args
    target.say(f"warm-up: {args.warmup:g} s of POST /orders")
    warm = await target.post_orders(target.load_file, duration=args.warmup, concurrency=args.concurrency)
    return await target.converged(target.load_ids, warm["ended_monotonic"])


async def run(bench: Round) -> None:
    args = bench.args
    if args.warmup:
        for target in bench.targets.values():
            bench.results[target.name]["warmup_convergence"] = await warm_up(target, bench)
    seconds = args.duration / args.slices
    loads: dict[str, list[dict]] = {name: [] for name in bench.targets}
    syncs: dict[str, list[dict]] = {name: [] for name in bench.targets}
    used: dict[str, Counter] = {name: Counter() for name in bench.targets}
    samples: dict[str, list[dict]] = {name: [] for name in bench.targets}
    for number in range(args.slices):
        for target in bench.sliced(number):
            target.say(f"POST /orders: {args.concurrency} clients, slice {number + 1} of {args.slices} ({seconds:g} s)")
            before = cpu_sample(target.system)
            load = await target.post_orders(
                target.load_file, duration=seconds, concurrency=args.concurrency, keep_latencies=True
            )
            syncs[target.name].append(await target.converged(target.load_ids, load["ended_monotonic"]))
            after = cpu_sample(target.system)
            used[target.name].update(cpu_used(before, after))
            samples[target.name] += [before, after]
            loads[target.name].append(load)
    for name in bench.targets:
        load = merged_load(loads[name])
        slowest = max(syncs[name], key=lambda sync: float("inf") if sync["seconds"] is None else sync["seconds"])
        bench.results[name].update(
            post_orders=load,
            convergence=slowest,  # the slowest slice's (a failed one's, if any)
            processes={"before": samples[name][0]["services"], "after": samples[name][-1]["services"]},
            cpu_ms_per_order=cpu_ms_per_order(dict(used[name]), load["loadgen_cpu_s"], load["ok"]),
        )


def max_worker_rss(when: str, service: str):
    def read(result: dict) -> float | None:
        rows = dig("processes", when, service)(result) or []
        workers = [row["rss_mb"] for row in rows if row["role"] == "worker"]
        return max(workers) if workers else None

    return read


def rss_figures(service: str) -> list[Figure]:
    label = f"RSS max per {service} worker"
    return [
        Figure(f"rss_{service}_before", f"{label} before, MB", 1, max_worker_rss("before", service)),
        Figure(
            f"rss_{service}_after",
            f"{label} after, MB",
            1,
            max_worker_rss("after", service),
            f"< {RSS_LIMIT_MB:.0f} MB",
            lambda ours, _: None if ours is None else ours < RSS_LIMIT_MB,
        ),
    ]


def cpu(part: str, label: str, target: bool = False) -> Figure:
    judged = {"target": "≤ 1.25x baseline", "check": at_most_times(1.25)} if target else {}
    return Figure(f"cpu_{part}", f"CPU ms/order, {label}", 3, dig("cpu_ms_per_order", part), **judged)


def post(key: str, label: str, digits: int, *path: str, **judged) -> Figure:
    return Figure(key, f"POST /orders{label}", digits, dig("post_orders", *path), **judged)


FIGURES = [
    post("post_rps", ", orders/s", 0, "throughput_rps", target="≥ 0.85x baseline", check=at_least_times(0.85)),
    post("post_p50", " p50, ms", 1, "latency_ms", "p50"),
    post("post_p90", " p90, ms", 1, "latency_ms", "p90"),
    post("post_p99", " p99, ms", 1, "latency_ms", "p99", target="≤ 1.5x baseline", check=at_most_times(1.5)),
    post("post_max", " max, ms", 1, "latency_ms", "max"),
    post("post_errors", " errors", 0, "errors", target="0", check=lambda ours, _: ours == 0),
    cpu("customer", "customer service", target=True),
    cpu("order", "order service", target=True),
    cpu("both", "both services", target=True),
    cpu("postgresql", "PostgreSQL"),
    cpu("rabbitmq", "RabbitMQ"),
    cpu("loadgen", "load generator"),
    cpu("other", "anything else running"),
    Figure("loadgen_cpu", "load generator CPU, cores busy", 2, dig("post_orders", "loadgen_cpu_share")),
    *rss_figures("customer"),
    *rss_figures("order"),
    Figure("convergence_s", "convergence after load, s", 3, dig("convergence", "seconds"), "≤ 1 s", at_most(1)),
]
