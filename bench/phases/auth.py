"""Authentication's cost: two fresh systems of ours on ports of their own, one with AUTH_MODE=jwt
(tokens of the development issuer, run here as a subprocess) and one with AUTH_MODE=off, the same
POST /orders and GET /customers/{id} loads on each, alternated slice by slice so a slow stretch of the
machine falls on both; CPU per request and throughput, jwt over off. Fresh twins rather than the
round's system, whose tables the earlier phases have grown."""

import argparse
import asyncio
import contextlib
import sys
from collections import Counter

import aiohttp
from cpu import cpu_ms_per_order, cpu_sample, cpu_used
from figure import Figure, at_most, dig, over
from phases.post_load import merged_load
from systems import HOST, ROOT, RUN_DIR, BenchError, Ours
from target import Round, Target, alternated, create_customers, run_loadgen, started, write_ids
from variant import OursVariant

from shared.scopes import CUSTOMERS_READ, CUSTOMERS_WRITE, ORDERS_READ, ORDERS_WRITE
from shared.testing.processes import free_port

LOAD_SCOPES = f"{ORDERS_WRITE} {CUSTOMERS_READ}"  # what the measured requests need
SETUP_SCOPES = f"{CUSTOMERS_WRITE} {CUSTOMERS_READ} {ORDERS_READ}"  # creating the customers, the exactness check
DEV_CLIENT = ("dev", "dev-secret")  # the development issuer's client that may ask for any scope
TOKEN_LIFETIME = 3600  # seconds: longer than any run of this phase
ISSUER_START_TIMEOUT = 20.0
REFUSED = {"status 401", "status 403"}
TARGET = 1.05  # jwt / off, of CPU per request


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auth-duration",
        type=float,
        default=10.0,
        help="ours: seconds of POST /orders and of GET /customers/{id}, each, with AUTH_MODE=jwt and with "
        "AUTH_MODE=off (default 10; 0 skips)",
    )


def jwt_env(issuer: str) -> dict[str, str]:
    """AUTH_MODE=jwt, its issuer the development one; the order service its client."""
    return {
        "AUTH_MODE": "jwt",
        "AUTH_ISSUER": issuer,
        "AUTH_JWKS_URL": f"{issuer}/jwks",
        "AUTH_TOKEN_URL": f"{issuer}/token",
        "ORDER_CLIENT_ID": "order-service",
        "ORDER_CLIENT_SECRET": "order-service-secret",
    }


async def start_issuer(stack: contextlib.AsyncExitStack, http: aiohttp.ClientSession) -> str:
    """`python -m shared.devissuer serve` on a free loopback port, stopped when `stack` closes; its URL."""
    port = free_port()
    args = [sys.executable, "-m", "shared.devissuer", "serve", "--port", str(port), "--lifetime", str(TOKEN_LIFETIME)]
    with (RUN_DIR / "devissuer.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(*args, cwd=ROOT, stdout=log, stderr=log)

    async def stop() -> None:
        if process.returncode is None:
            process.terminate()
        await process.wait()

    stack.push_async_callback(stop)
    url = f"http://{HOST}:{port}"
    deadline = asyncio.get_running_loop().time() + ISSUER_START_TIMEOUT
    while process.returncode is None and asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{url}/jwks") as response:
                if response.status == 200:
                    return url
        await asyncio.sleep(0.05)  # polling for the issuer to listen, with a deadline
    raise BenchError("the development issuer did not start")


async def token(http: aiohttp.ClientSession, issuer: str, scopes: str) -> str:
    form = {"grant_type": "client_credentials", "scope": scopes}
    auth = aiohttp.BasicAuth(*DEV_CLIENT)
    async with http.post(f"{issuer}/token", data=form, auth=auth) as response:
        if response.status != 200:
            raise BenchError(f"the development issuer refused a token: {response.status} {await response.text()}")
        return (await response.json())["access_token"]


async def twin(system: Ours, stack: contextlib.AsyncExitStack, args: argparse.Namespace, setup: dict) -> Target:
    """Start it, with an HTTP session sending the `setup` headers (the jwt twin's token), and give it
    its customers."""
    _, db = await started(system, stack)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), headers=setup)
    target = Target(system, await stack.enter_async_context(http), db)
    target.say(f"ready; creating {args.customers} customers")
    target.load_ids = target.checked = await create_customers(http, system.customer_url, args.customers)
    write_ids(target.load_file.name, target.load_ids)
    return target


async def check_mode(http: aiohttp.ClientSession, target: Target, status: int) -> None:
    """A request without a token gets `status` (jwt: 401): each twin measures the mode it is named for."""
    async with http.get(f"{target.system.customer_url}/customers/{target.load_ids[0]}") as response:
        if response.status != status:
            raise BenchError(f"{target.name}: GET without a token answered {response.status}, not {status}")


async def measured(target: Target, load, ids: list[int] | None) -> tuple[dict, dict]:
    """One load and the CPU it took; for POSTs (`ids`) until the counts are exact, the consumer's work."""
    before = cpu_sample(target.system)
    result = await load
    if ids is not None:
        await target.converged(ids, result["ended_monotonic"])
    return result, cpu_used(before, cpu_sample(target.system))


async def run(bench: Round) -> None:
    args = bench.args
    ours = bench.targets.get(Ours.name)
    if not args.auth_duration or ours is None:
        return
    options = {"duration": args.auth_duration / args.slices, "concurrency": args.concurrency, "keep_latencies": True}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)))
        issuer = await start_issuer(stack, http)
        bearer = {"Authorization": f"Bearer {await token(http, issuer, SETUP_SCOPES)}"}
        load_header = {"header": f"Authorization: Bearer {await token(http, issuer, LOAD_SCOPES)}"}
        off, jwt = OursVariant(args.workers, "auth-off", 3320), OursVariant(args.workers, "jwt", 3330, jwt_env(issuer))
        twins = [await twin(off, stack, args, {}), await twin(jwt, stack, args, bearer)]
        await check_mode(http, twins[0], 200)
        await check_mode(http, twins[1], 401)
        headers = {twins[0].name: {}, twins[1].name: load_header}
        kinds = {"post_orders": "cpu_ms_per_order", "get_customer": "cpu_ms_per_get"}  # each load's CPU figure
        loads: dict[tuple[str, str], list[dict]] = {(t.name, kind): [] for t in twins for kind in kinds}
        used: dict[tuple[str, str], Counter] = {(t.name, kind): Counter() for t in twins for kind in kinds}
        for target in twins:
            if args.warmup:  # also fetches the keys, and the order service's own token
                target.say(f"warm-up: {args.warmup:g} s of POST /orders")
                warm_up = {**options, **headers[target.name], "duration": args.warmup}
                warm = await target.post_orders(target.load_file, **warm_up)
                await target.converged(target.load_ids, warm["ended_monotonic"])
        for number in range(args.slices):
            for target in alternated(twins, number):
                target.say(f"POST /orders and GET /customers/{{id}}: slice {number + 1} of {args.slices}")
                extra = {**options, **headers[target.name]}
                post = target.post_orders(target.load_file, **extra)
                get = run_loadgen(target.system.customer_url, "get-customer", target.load_file, **extra)
                for kind, load, ids in (("post_orders", post, target.load_ids), ("get_customer", get, None)):
                    result, cpu = await measured(target, load, ids)
                    loads[target.name, kind].append(result)
                    used[target.name, kind].update(cpu)
        results: dict[str, dict] = {}
        for target in twins:
            results[target.name] = {"exactness": await target.exactness()}
            for kind, figure in kinds.items():
                load = results[target.name][kind] = merged_load(loads[target.name, kind])
                if REFUSED & set(load["error_kinds"]):  # the token itself, not the load: nothing to measure
                    raise BenchError(f"{target.name}: {kind} refused: {load['error_kinds']}")
                cpu = dict(used[target.name, kind])
                results[target.name][figure] = cpu_ms_per_order(cpu, load["loadgen_cpu_s"], load["ok"])
    bench.results[ours.name]["auth"] = {"jwt": results[jwt.name], "off": results[off.name]}
    ours.syncs.append({"exact": all(result["exactness"]["exact"] for result in results.values())})


def ratio(key: str, label: str, digits: int, *path: str, **judged) -> Figure:
    """jwt / off of one figure."""
    read = over(dig("auth", "jwt", *path), dig("auth", "off", *path))
    return Figure(f"auth_{key}", f"{label}, AUTH_MODE=jwt / off", digits, read, **judged)


def cpu(key: str, label: str, *path: str) -> Figure:
    return ratio(key, label, 3, *path, target=f"≤ {TARGET:g}", check=at_most(TARGET))


FIGURES = [
    cpu("cpu_order", "CPU ms/order, order service", "cpu_ms_per_order", "order"),
    cpu("cpu_both", "CPU ms/order, both services", "cpu_ms_per_order", "both"),
    cpu("cpu_get", "CPU ms per GET /customers/{id}, customer service", "cpu_ms_per_get", "customer"),
    ratio("post_rps", "POST /orders, orders/s", 3, "post_orders", "throughput_rps"),
    ratio("get_rps", "GET /customers/{id}, req/s", 3, "get_customer", "throughput_rps"),
]
