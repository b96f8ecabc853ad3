"""GET /customers/{id} and GET /orders?customer_id=, closed loop, in slices alternated as POST's are."""

from figure import Figure, at_least_times, dig
from phases.post_load import merged_load
from target import Round, run_loadgen


async def run(bench: Round) -> None:
    args = bench.args
    options = {"duration": args.duration / args.slices, "concurrency": args.concurrency, "keep_latencies": True}
    loads: dict[str, dict[str, list[dict]]] = {name: {"get_customer": [], "get_orders": []} for name in bench.targets}
    for number in range(args.slices):
        for target in bench.sliced(number):
            target.say(f"GET /customers/{{id}} and GET /orders?customer_id=: slice {number + 1} of {args.slices}")
            customer, order, steps = target.system.customer_url, target.system.order_url, loads[target.name]
            steps["get_customer"].append(await run_loadgen(customer, "get-customer", target.load_file, **options))
            # Customers with exactly one order each, so both systems serve identical pages.
            steps["get_orders"].append(await run_loadgen(order, "get-orders", target.lag_file, **options))
    for name, steps in loads.items():
        bench.results[name].update({step: merged_load(runs) for step, runs in steps.items()})


FIGURES = [
    Figure(
        "get_customer_rps",
        "GET /customers/{id}, req/s",
        0,
        dig("get_customer", "throughput_rps"),
        "≥ 0.9x baseline",
        at_least_times(0.9),
    ),
    Figure("get_customer_p99", "GET /customers/{id} p99, ms", 1, dig("get_customer", "latency_ms", "p99")),
    Figure("get_orders_rps", "GET /orders?customer_id=, req/s", 0, dig("get_orders", "throughput_rps")),
    Figure("get_orders_p99", "GET /orders?customer_id= p99, ms", 1, dig("get_orders", "latency_ms", "p99")),
]
