"""The whole docker-compose.yml through podman-compose, as `docker compose --profile observability up` runs it.

Every service whose image can be had here runs: the project's image (built once by the `project_image`
fixture, tagged as compose names it) and local stand-ins for postgres, rabbitmq and prometheus made from
Debian's packages (shared.testing.base_recipes.BASE_RECIPES). Grafana has no Debian package, so it does not run.
The compose file is used as it is, with one override written here: each published port moved to a free one
(the machine's own PostgreSQL and RabbitMQ hold 5432 and 5672).
"""

import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiormq
import asyncpg
import pytest

from shared.testing.api import get_json
from shared.testing.base_images import ensure_base
from shared.testing.base_recipes import base_recipe, full_name
from shared.testing.compose import (
    COMPOSE_FILE,
    ROOT,
    compose_services,
    depends_on,
    duration,
    one_shots,
    project_services,
    start_order,
)
from shared.testing.containers import readme_curl_example
from shared.testing.plugin import eventually
from shared.testing.podman import Podman, wait_exited
from shared.testing.processes import free_port
from shared.testing.project_image import new_run_id

pytestmark = pytest.mark.slow
PROFILE = "observability"
PODMAN_COMPOSE = Path(sys.executable).parent / "podman-compose"


@dataclass
class ComposeRun:
    podman: Podman
    project: str
    services: dict[str, dict]  # the ones started
    published: dict[int, int]  # the port compose publishes -> the free one used instead
    log: Path

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def url(self, compose_port: int) -> str:
        return f"http://127.0.0.1:{self.published[compose_port]}"


def runnable(services: dict[str, dict]) -> dict[str, dict]:
    """The services `--profile observability up` starts whose image is built or has a stand-in here."""
    ours = project_services(services)
    return {
        name: s
        for name, s in services.items()
        if set(s.get("profiles", [PROFILE])) & {PROFILE}
        and (name in ours or base_recipe(s.get("image", "")) is not None)
    }


def published_ports(service: dict) -> list[tuple[str, int, int]]:
    """(host ip, published, target) of each short-syntax port."""
    found = []
    for entry in service.get("ports", []):
        *ip, published, target = str(entry).split(":")
        found.append((ip[0] if ip else "0.0.0.0", int(published), int(target)))
    return found


def override_file(services: dict[str, dict], published: dict[int, int]) -> str:
    """Published ports moved to free ones; healthchecks without `start_interval`, which podman 4.3 lacks
    (podman-compose would pass it on as an option podman refuses)."""
    lines = ["services:"]
    for name, service in services.items():
        changes = []
        if service.get("ports"):
            changes.append("    ports: !override")
            changes += [f'      - "{ip}:{published[port]}:{target}"' for ip, port, target in published_ports(service)]
        if "start_interval" in (service.get("healthcheck") or {}):
            changes += ["    healthcheck:", "      start_interval: !reset null"]
        lines += [f"  {name}:", *changes] if changes else []
    return "\n".join(lines) + "\n"


def podman_compose(run: ComposeRun, override: Path, *args: str, timeout: float = 600) -> None:
    argv = [
        str(PODMAN_COMPOSE),
        "--in-pod",
        "false",
        "--project-name",
        run.project,
        "--file",
        str(COMPOSE_FILE),
        "--file",
        str(override),
        "--profile",
        PROFILE,
        *args,
    ]
    with run.log.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        result = subprocess.run(
            argv, env=run.podman.env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, cwd=COMPOSE_FILE.parent
        )
    assert result.returncode == 0, (
        f"podman-compose {' '.join(args)} exited {result.returncode}:\n" + (run.log.read_text()[-4000:])
    )


def wait_healthy(run: ComposeRun, name: str) -> None:
    """The service's health check, run by podman as compose's would be, until it passes."""
    check = run.services[name].get("healthcheck") or {}
    patience = duration(check.get("start_period"), 0) + duration(check.get("interval"), 30) * check.get("retries", 3)
    deadline = time.monotonic() + patience
    while True:
        state = run.podman.state(run.container(name))
        assert state["Running"], f"{name} exited {state['ExitCode']}:\n{run.podman.logs(run.container(name))}"
        if not check or run.podman("healthcheck", "run", run.container(name), check=False, timeout=60).returncode == 0:
            return
        assert time.monotonic() < deadline, (
            f"{name} not healthy after {patience:.0f} s:\n{run.podman.logs(run.container(name))}"
        )
        time.sleep(1)


def up_gated(run: ComposeRun, override: Path) -> None:
    """Each service started once its dependencies meet the conditions its depends_on names, as docker compose
    does (podman-compose skips `service_healthy` on podman < 4.6 and would start them all at once)."""
    for name in start_order(run.services):
        for dependency, condition in depends_on(run.services[name]).items():
            if dependency not in run.services:
                continue  # a service with no image here (Grafana, a tracing collector): not started
            if condition == "service_healthy":
                wait_healthy(run, dependency)
            elif condition == "service_completed_successfully":
                code = wait_exited(run.podman, run.container(dependency), timeout=300)
                assert code == 0, f"{dependency} exited {code}:\n{run.podman.logs(run.container(dependency))}"
        podman_compose(run, override, "up", "--detach", "--no-build", "--no-deps", name)
    for name in set(run.services) - one_shots(run.services):
        wait_healthy(run, name)


@pytest.fixture(scope="module")
def compose_run(podman, project_image, tmp_path_factory) -> ComposeRun:
    if not PODMAN_COMPOSE.exists():
        pytest.skip("podman-compose is not installed in this venv (make install)")
    services = runnable(compose_services())
    ours = project_services(services)
    for name, service in services.items():
        if name not in ours:
            ensure_base(podman, service["image"])
    tmp = tmp_path_factory.mktemp("compose")
    published = {port: free_port() for s in services.values() for _, port, _ in published_ports(s)}
    run = ComposeRun(podman, f"shoptest{new_run_id()}", services, published, tmp / "podman-compose.log")
    override = tmp / "ports.override.yml"
    override.write_text(override_file(services, published))
    # The names podman-compose gives the image it would build: the service's `image`, or project_service.
    built = sorted(
        {full_name(s["image"]) if s.get("image") else f"localhost/{run.project}_{name}" for name, s in ours.items()}
    )
    try:
        for tag in built:  # what `up --build` would build: the same Dockerfile, built once a session
            podman("tag", project_image, tag)
        up_gated(run, override)
        yield run
    finally:
        try:
            podman_compose(run, override, "down", "--volumes", "--remove-orphans", timeout=300)
        finally:
            remove_project(podman, run.project, built)


def remove_project(podman: Podman, project: str, images: list[str]) -> None:
    """Whatever `down` left of the project: containers, volumes, networks (by compose's label), its image tags."""
    label = f"label=io.podman.compose.project={project}"
    for container in podman("ps", "--all", "--quiet", "--filter", label, check=False).stdout.split():
        podman("rm", "--force", "--time", "0", container, check=False)
    for kind in ("volume", "network"):
        for name in podman(kind, "ls", "--quiet", "--filter", label, check=False).stdout.split():
            podman(kind, "rm", "--force", name, check=False)
    for image in images:
        podman("rmi", image, check=False)


async def test_the_readme_example_works_through_the_published_ports(compose_run):
    post_port, post_path, body, get_port, get_path = readme_curl_example()
    customer_url = compose_run.url(get_port) + get_path
    async with aiohttp.ClientSession() as session:
        before = (await get_json(session, customer_url))["orders_count"]
        async with session.post(
            compose_run.url(post_port) + post_path, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 201, await response.text()

        async def counted():
            assert (await get_json(session, customer_url))["orders_count"] == before + 1

        await eventually(counted, timeout=30, interval=0.2)


async def test_both_services_answer_ready_on_their_published_ports(compose_run):
    services = compose_run.services
    async with aiohttp.ClientSession() as session:
        for name in set(project_services(services)) - one_shots(services):
            for _, port, _ in published_ports(services[name]):
                await get_json(session, f"{compose_run.url(port)}/ready")


async def test_prometheus_scrapes_both_services(compose_run):
    if "prometheus" not in compose_run.services:
        pytest.skip("no local stand-in for the prometheus image")
    ((_, port, _),) = published_ports(compose_run.services["prometheus"])
    wanted = set(project_services(compose_run.services)) - one_shots(compose_run.services)
    async with aiohttp.ClientSession() as session:

        async def scraped():
            targets = (await get_json(session, f"{compose_run.url(port)}/api/v1/targets"))["data"]["activeTargets"]
            up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
            assert wanted <= up, targets

        await eventually(scraped, timeout=60, interval=1)


def test_no_service_restarted_each_found_its_dependencies_ready(compose_run):
    """Started only after its dependencies' health checks passed, no service failed its start (a
    healthcheck that passed too early would show here as a restart: `prepare` fails, restart policy)."""
    for name in compose_run.services:
        container = compose_run.container(name)
        restarts = compose_run.podman("inspect", "--format", "{{.RestartCount}}", container).stdout.strip()
        assert restarts == "0", f"{name} restarted {restarts} times:\n{compose_run.podman.logs(container)}"


def test_data_lives_in_the_named_volumes(compose_run):
    for name in ("postgres", "rabbitmq"):
        mounts = compose_run.podman(
            "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", compose_run.container(name)
        ).stdout.split()
        assert f"{compose_run.project}_{name}-data" in mounts, (name, mounts)


def test_each_container_runs_with_the_capabilities_and_limits_compose_gives(compose_run):
    for name, service in compose_run.services.items():
        host = json.loads(
            compose_run.podman("inspect", "--format", "{{json .HostConfig}}", compose_run.container(name)).stdout
        )
        assert "no-new-privileges" in " ".join(host.get("SecurityOpt") or []), name
        assert host["Memory"] == parse_bytes(service["mem_limit"]) and host["PidsLimit"] == service["pids_limit"], name
        state = compose_run.podman.state(compose_run.container(name))
        if state["Running"]:  # what its main process holds, as the kernel says
            status = compose_run.podman("exec", compose_run.container(name), "cat", "/proc/1/status").stdout
            bounding = int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.MULTILINE)[1], 16)
            wanted = sum(1 << CAPABILITY_BITS[cap] for cap in service.get("cap_add", []))
            assert bounding == wanted, (name, hex(bounding), service.get("cap_add"))


async def test_postgres_asks_every_client_for_its_password(compose_run):
    ((_, port, _),) = published_ports(compose_run.services["postgres"])
    dsn = f"postgresql://postgres@127.0.0.1:{compose_run.published[port]}/postgres"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn, timeout=10, password="postgres")
    password = secret(compose_run, "postgres", "postgres_password")
    conn = await asyncpg.connect(dsn, timeout=10, password=password)
    try:
        assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
    finally:
        await conn.close()


async def test_the_broker_has_no_guest_and_each_user_logs_in_with_its_own_password(compose_run):
    ((_, port, _), *_) = published_ports(compose_run.services["rabbitmq"])
    server = f"127.0.0.1:{compose_run.published[port]}"
    users = compose_run.podman("exec", compose_run.container("rabbitmq"), "rabbitmqctl", "-q", "list_users").stdout
    assert "guest" not in users and "customer_service" in users
    with pytest.raises(aiormq.exceptions.AMQPConnectionError):
        await aiormq.connect(f"amqp://guest:guest@{server}/")
    with pytest.raises(aiormq.exceptions.AMQPConnectionError):
        await aiormq.connect(f"amqp://customer_service:customer_service@{server}/")
    connection = await aiormq.connect(
        f"amqp://customer_service:{secret(compose_run, 'customer', 'amqp_password')}@{server}/"
    )
    await connection.close()


def secret(run: ComposeRun, service: str, name: str) -> str:
    return run.podman("exec", run.container(service), "cat", f"/run/secrets/{name}").stdout.strip()


def parse_bytes(limit: str) -> int:
    return int(limit[:-1]) * {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[limit[-1].lower()]


CAPABILITY_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "SETGID": 6, "SETUID": 7}


async def test_rotated_passwords_take_effect_as_docs_operations_says(compose_run):
    """Last (it changes passwords under the running services): `rotate`, the superuser's ALTER ROLE as
    docs/operations.md gives it, then the migrate service again; the new passwords are the ones that work."""
    old = secret(compose_run, "customer", "database_password")
    override = compose_run.log.parent / "ports.override.yml"
    podman_compose(compose_run, override, "run", "--rm", "secrets", "rotate", "postgres", "customer_service")
    operations = (ROOT / "docs" / "operations.md").read_text()
    command = re.search(r"^docker compose exec postgres (sh -c .*)$", operations, re.MULTILINE)[1]
    compose_run.podman("exec", compose_run.container("postgres"), *shlex.split(command))
    migrate = compose_run.container("customer-migrate")
    code = compose_run.podman("start", "--attach", migrate, check=False, timeout=300).returncode
    assert code == 0, compose_run.podman.logs(migrate)
    ((_, port, _),) = published_ports(compose_run.services["postgres"])
    dsn = f"postgresql://customer_service@127.0.0.1:{compose_run.published[port]}/customers"
    new = secret(compose_run, "customer", "database_password")
    assert new != old
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn, timeout=10, password=old)
    await (await asyncpg.connect(dsn, timeout=10, password=new)).close()
