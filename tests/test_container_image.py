"""The project's image, built from infra/Dockerfile with podman and run the way docker-compose.yml runs it.

Each service built from the image runs as compose gives it (command, user, read-only root, tmpfs, init,
environment, health check), on the host network with ports of its own, against the machine's PostgreSQL
and RabbitMQ: compose's `postgres` and `rabbitmq` URLs are pointed there, at databases, roles, a vhost
and broker users of this run (shared.testing.containers.MachineBacking), all removed afterwards.
"""

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest

from shared.testing.api import get_json
from shared.testing.compose import (
    SECRETS_SERVICE,
    compose_services,
    container_ports,
    duration,
    environment,
    healthcheck_argv,
    one_shots,
    project_services,
    start_order,
)
from shared.testing.containers import MachineBacking, readme_curl_example, run_args
from shared.testing.plugin import eventually
from shared.testing.podman import Podman, wait_exited, wait_healthy
from shared.testing.processes import free_port
from shared.testing.project_image import new_run_id
from shared.testing.runs import AMQP_URL, SERVER_URL

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    podman: Podman
    image: str
    apps: dict[str, dict]  # compose services built from the image
    containers: dict[str, str]  # service -> container name
    ports: dict[str, dict[int, int]]  # service -> container port -> host port
    backing: MachineBacking
    one_shot_exits: dict[str, int]

    def url(self, service: str, container_port: int | None = None) -> str:
        ports = self.ports[service]
        return f"http://127.0.0.1:{ports[container_port or next(iter(ports))]}"

    def long_running(self) -> list[str]:
        return [name for name in start_order(self.apps) if name not in self.one_shot_exits]


@pytest.fixture(scope="module")
def stack(podman, project_image) -> Stack:
    run_id = new_run_id()
    services = compose_services()
    # The default stack, as `docker compose up` starts it: no service of an optional profile; and no
    # `secrets` service, whose passwords are for compose's servers (the run's roles and users get their own).
    apps = {
        name: s for name, s in project_services(services).items() if not s.get("profiles") and name != SECRETS_SERVICE
    }
    backing = MachineBacking(services, run_id, SERVER_URL, AMQP_URL)
    stack = Stack(podman, project_image, apps, {}, {}, backing, {})
    try:
        stack.ports = {name: {port: free_port() for port in container_ports(s)} for name, s in apps.items()}
        envs = {name: backing.localise_env(environment(s), stack.ports) for name, s in apps.items()}
        backing.create_broker()
        for name in start_order(apps):
            service, container = apps[name], f"shop-test-{run_id}-{name}"
            stack.containers[name] = container
            podman(
                *run_args(
                    service, name=container, image=stack.image, run_id=run_id, env=envs[name], ports=stack.ports[name]
                )
            )
            if name in one_shots(apps):
                stack.one_shot_exits[name] = wait_exited(podman, container, timeout=120)
                assert stack.one_shot_exits[name] == 0, f"{name} exited non-zero:\n{podman.logs(container)}"
            else:
                check = service.get("healthcheck") or {}
                # Compose's patience: the start period, then `retries` failed checks `interval` apart.
                patience = duration(check.get("start_period"), 0) + (
                    duration(check.get("interval"), 30) * check.get("retries", 3)
                )
                wait_healthy(podman, container, healthcheck_argv(service, stack.ports[name]), patience)
        yield stack
    finally:
        podman.remove_test_objects(run_id, [])
        asyncio.run(backing.remove())


def test_each_service_runs_as_a_non_root_user_on_a_read_only_root(stack):
    image_user = stack.podman("image", "inspect", "--format", "{{.Config.User}}", stack.image).stdout.strip()
    for name in stack.long_running():
        container = stack.containers[name]
        expected = str(stack.apps[name].get("user") or image_user).split(":")[0]
        assert expected not in ("", "0", "root"), f"{name} would run as root"
        assert stack.podman("exec", container, "id", "-u").stdout.strip() == expected
        blocked = stack.podman("exec", container, "touch", "/app/probe", check=False)
        assert blocked.returncode != 0 and "Read-only file system" in blocked.stderr, blocked
        for mount in stack.apps[name].get("tmpfs", []):  # the tmpfs compose gives it stays writable
            stack.podman("exec", container, "touch", f"{mount.split(':')[0]}/probe")


async def test_each_database_is_migrated_and_owned_by_its_owner_role(stack):
    owners = {stack.backing.roles[f"{service}_owner"] for service in ("customer", "order")}
    conn = await asyncpg.connect(SERVER_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        for compose_name, database in stack.backing.databases.items():
            owner = await conn.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database)
            assert owner in owners, (compose_name, owner)
    finally:
        await conn.close()
    for database in stack.backing.databases.values():
        url = SERVER_URL.rsplit("/", 1)[0].replace("postgres://", "postgresql://", 1) + f"/{database}"
        conn = await asyncpg.connect(url, timeout=5)
        try:
            assert await conn.fetchval("SELECT count(*) FROM aerich") >= 1, database
        finally:
            await conn.close()


async def test_both_services_answer_ready(stack):
    async with aiohttp.ClientSession() as session:
        for name in stack.long_running():
            await get_json(session, f"{stack.url(name)}/ready")


async def test_the_readme_example_order_is_counted_for_its_customer(stack):
    post_port, post_path, body, get_port, get_path = readme_curl_example()
    owner = {port: name for name, ports in stack.ports.items() for port in ports}
    order_url = stack.url(owner[post_port], post_port) + post_path
    customer_url = stack.url(owner[get_port], get_port) + get_path
    async with aiohttp.ClientSession() as session:
        before = (await get_json(session, customer_url))["orders_count"]
        async with session.post(order_url, data=body, headers={"Content-Type": "application/json"}) as response:
            assert response.status == 201, await response.text()

        async def counted():
            assert (await get_json(session, customer_url))["orders_count"] == before + 1

        await eventually(counted, timeout=30, interval=0.2)


def test_sigterm_stops_each_service_cleanly_within_its_grace_period(stack):
    for name in reversed(stack.long_running()):
        grace = duration(stack.apps[name].get("stop_grace_period"), 10)
        container = stack.containers[name]
        started = time.monotonic()
        stack.podman("stop", "--time", str(int(grace)), container, timeout=grace + 30)
        took = time.monotonic() - started
        state = stack.podman.state(container)
        assert state["ExitCode"] == 0, f"{name} exited {state['ExitCode']} on SIGTERM:\n{stack.podman.logs(container)}"
        assert took < grace, f"{name} took {took:.1f} s of its {grace:.0f} s to stop"
