"""docker-compose.yml's services as `podman run` containers on the host network, against the machine's
PostgreSQL and RabbitMQ in the place of compose's own."""

import json
import os
import re
import secrets
import shlex
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from shared.deploy_secrets import rabbit_hash
from shared.password_files import SUFFIX
from shared.testing.compose import command_argv, environment
from shared.testing.podman import TEST_LABEL

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS_TEMPLATE = ROOT / "infra" / "rabbitmq" / "definitions.json"


def run_args(
    service: dict, *, name: str, image: str, run_id: str, env: dict[str, str], ports: dict[int, int]
) -> list[str]:
    """`podman run` arguments for a compose service on the host network (its ports moved by `ports`)."""
    args = [
        "run",
        "--detach",
        "--name",
        name,
        "--label",
        f"{TEST_LABEL}={run_id}",
        "--network",
        "host",
        "--pull",
        "never",
    ]
    if service.get("init"):
        args.append("--init")
    if service.get("read_only"):
        args += ["--read-only", "--read-only-tmpfs=false"]  # docker adds no writable /tmp, /run: neither here
    tmpfs = service.get("tmpfs") or []
    for mount in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        args += ["--tmpfs", mount]
    if service.get("user"):
        args += ["--user", str(service["user"])]
    # The hardening compose gives it (capabilities, no-new-privileges, memory and process limits).
    args += [f"--cap-drop={cap}" for cap in service.get("cap_drop", [])]
    args += [f"--cap-add={cap}" for cap in service.get("cap_add", [])]
    args += [f"--security-opt={option}" for option in service.get("security_opt", [])]
    if service.get("mem_limit"):
        args.append(f"--memory={service['mem_limit']}")
    if service.get("pids_limit"):
        args.append(f"--pids-limit={service['pids_limit']}")
    if service.get("working_dir"):
        args += ["--workdir", service["working_dir"]]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    if "entrypoint" in service:
        entrypoint = service["entrypoint"]
        args += ["--entrypoint", json.dumps(shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint)]
    return [*args, image, *command_argv(service, ports)]


class MachineBacking:
    """The machine's PostgreSQL and RabbitMQ in the place of compose's `postgres` and `rabbitmq` services.

    `localise` turns a URL from the compose file into one for this machine: each service role, database
    and broker user gets a name of this run (a vhost of its own, with the rights infra/rabbitmq's
    definitions give the user it stands for). `create_broker` makes them; `remove` drops all of them.
    """

    def __init__(self, services: dict[str, dict], run_id: str, postgres_url: str, amqp_url: str) -> None:
        self.services, self.run_id = services, run_id
        self.postgres = next(name for name, s in services.items() if str(s.get("image", "")).startswith("postgres"))
        self.rabbitmq = next(name for name, s in services.items() if str(s.get("image", "")).startswith("rabbitmq"))
        self.pg_server = urlsplit(postgres_url)
        self.amqp_server = urlsplit(amqp_url)
        self.superuser = environment(services[self.postgres]).get("POSTGRES_USER", "postgres")
        self.roles: dict[str, str] = {}
        self.databases: dict[str, str] = {}
        self.broker_users: dict[str, tuple[str, str]] = {}  # compose user -> (this run's user, password)
        self.vhost = f"shop-test-{run_id}"

    def localise_env(self, env: dict[str, str], app_ports: dict[str, dict[int, int]]) -> dict[str, str]:
        """A service's environment pointed at this run's servers, ports, roles and broker users."""
        # The compose passwords live in volumes the test does not make: the run's roles are trusted as the
        # machine's server trusts them, and its broker users get passwords of the run (in their URLs).
        local = {key: self.localise(value, app_ports) for key, value in env.items() if not key.endswith(SUFFIX)}
        if "ORDER_EVENTS_PUBLISHERS" in local:  # broker user names, not URLs: this run's names too
            users = local["ORDER_EVENTS_PUBLISHERS"].split(",")
            local["ORDER_EVENTS_PUBLISHERS"] = ",".join(f"{user.strip()}.{self.run_id}" for user in users)
        return local

    def localise(self, value: str, app_ports: dict[str, dict[int, int]]) -> str:
        url = urlsplit(value)
        if not url.scheme or url.hostname not in self.services:
            return value
        if url.hostname == self.postgres:
            user, database = url.username or self.superuser, url.path.lstrip("/")
            if user != self.superuser:
                user = self.roles.setdefault(user, f"{user}_{self.run_id}")
            if database not in ("", "postgres"):
                database = self.databases.setdefault(database, f"{database}_{self.run_id}")
            secret = f":{url.password}" if url.password else ""
            return urlunsplit(
                (
                    url.scheme,
                    f"{user}{secret}@{self.pg_server.netloc.rsplit('@', 1)[-1]}",
                    f"/{database}",
                    url.query,
                    "",
                )
            )
        if url.hostname == self.rabbitmq:
            user, password = self.broker_users.setdefault(
                url.username, (f"{url.username}.{self.run_id}", url.password or secrets.token_urlsafe(16))
            )
            return urlunsplit(
                (
                    url.scheme,
                    f"{user}:{password}@{self.amqp_server.netloc.rsplit('@', 1)[-1]}",
                    f"/{quote(self.vhost, safe='')}",
                    url.query,
                    "",
                )
            )
        if url.hostname not in app_ports:
            return value  # a service the test does not run (a tracing collector): left unresolvable
        port = app_ports[url.hostname][url.port or 80]
        return urlunsplit((url.scheme, f"127.0.0.1:{port}", url.path, url.query, ""))

    def definitions(self) -> dict:
        """The rights compose's broker gives each user (the template the `secrets` service completes)."""
        return json.loads(DEFINITIONS_TEMPLATE.read_text())

    def create_broker(self) -> None:
        """The vhost, this run's users with the rights the definitions give the users they stand for, and
        the definitions' exchanges (the customer service finds `orders` passively), in one import."""
        template = self.definitions()
        permissions = {p["user"]: p for p in template["permissions"] if p["vhost"] == "/"}
        users, rights = [], []
        for compose_user, (user, password) in self.broker_users.items():
            hashed = {"password_hash": rabbit_hash(password), "hashing_algorithm": "rabbit_password_hashing_sha256"}
            users.append({"name": user, "tags": "", **hashed})
            rights.append({**permissions[compose_user], "user": user, "vhost": self.vhost})
        exchanges = [{**e, "vhost": self.vhost} for e in template.get("exchanges", []) if e["vhost"] == "/"]
        definitions = {"users": users, "vhosts": [{"name": self.vhost}], "permissions": rights, "exchanges": exchanges}
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir="/tmp") as file:  # rabbitmqctl's user reads it
            json.dump(definitions, file)
            file.flush()
            os.chmod(file.name, 0o644)
            rabbitmqctl("import_definitions", file.name)

    async def remove(self) -> None:
        rabbitmqctl("delete_vhost", self.vhost, check=False)
        for user, _ in self.broker_users.values():
            rabbitmqctl("delete_user", user, check=False)
        admin_dsn = urlunsplit(("postgresql", self.pg_server.netloc, "/postgres", "", ""))
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            for database in self.databases.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in self.roles.values():
                await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await conn.close()


def rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"rabbitmqctl {shlex.join(args)}: {result.stderr or result.stdout}")
    return result


def readme_curl_example() -> tuple[int, str, str, int, str]:
    """From the README's quick start: (port, path, JSON body) of the POST, (port, path) of the GET after it."""
    readme = (ROOT / "README.md").read_text()
    post = re.search(r"curl -X POST localhost:(\d+)(/\S+)[^`]*?-d '([^']+)'", readme)
    get = re.search(r"^curl localhost:(\d+)(/\S+)\s+# orders_count", readme[post.end() :], re.MULTILINE)
    return int(post[1]), post[2], post[3], int(get[1]), get[2]
