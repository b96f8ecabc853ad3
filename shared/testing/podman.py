"""Podman for the container tests (issue 18): the suite's own engine settings and image store, the base
images infra/Dockerfile builds FROM, and docker-compose.yml's services turned into `podman run` arguments.

No registry is reachable here, so each image the Dockerfile builds FROM or the compose file runs is made
locally from Debian with debootstrap (BASE_RECIPES) and cached in the suite's own image store, labelled
with a hash of its recipe: only a changed recipe builds it again. Everything lives under CACHE
(SHOP_CONTAINER_CACHE, default ~/.cache/shop-services/containers); the cached base images are the only
thing the tests leave there.
"""

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg

from shared.testing.compose import compose_services, environment

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SHOP_CONTAINER_CACHE") or Path.home() / ".cache" / "shop-services" / "containers")
RECIPE_LABEL = "shop-services.recipe"
TEST_LABEL = "shop-services.test"  # on every container the tests start: the clean-up finds them by it

# podman 4.3's defaults fail here (crun cannot set RLIMIT_NOFILE; cgroups in hybrid mode): runc, no
# ulimits or pids limit, cgroupfs. Given through CONTAINERS_CONF, so the machine's own config is untouched.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
pids_limit = 0

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
tmp_dir = "{run}/libpod"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{cache}/storage"
runroot = "{run}/storage"
"""
# The machine's trusted certificates (it may reach the package registries through a TLS proxy of its own).
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class BaseRecipe:
    """A stand-in for an official image: a Debian root filesystem with what the Dockerfile relies on."""

    suite: str
    packages: tuple[str, ...]
    script: str  # run with `chroot` in the new root filesystem
    changes: tuple[str, ...]  # `podman import --change` instructions (the official image's ENV, CMD)

    def key(self) -> str:
        digest = hashlib.sha256(repr(self).encode())
        if HOST_CA_BUNDLE.exists():
            digest.update(HOST_CA_BUNDLE.read_bytes())
        return digest.hexdigest()[:16]


# The official python image keeps its interpreter, pip and venv under /usr/local/bin; Debian's 3.11
# stands in, linked there, and pip may install outside a venv as in the official image.
PYTHON_311 = BaseRecipe(
    suite="bookworm",
    packages=("python3", "python3-venv", "python3-pip", "ca-certificates", "netbase"),
    script="""\
set -e
for name in python python3 python3.11; do ln -sf /usr/bin/python3.11 /usr/local/bin/$name; done
for name in pip pip3; do ln -sf /usr/bin/pip3 /usr/local/bin/$name; done
rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
""",
    changes=(
        "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
    ),
)
CLEAN_UP = "apt-get clean\nrm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*\n"
# docker-compose.yml's postgres: Debian's PostgreSQL 15 behind an entrypoint that honours what compose gives
# the official image (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_HOST_AUTH_METHOD, PGDATA as the volume).
POSTGRES_ENTRYPOINT = r"""#!/bin/sh
set -e
[ "${1#-}" = "$1" ] || set -- postgres "$@"  # flags only: for postgres, as in the official image
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  printf '%s' "${POSTGRES_PASSWORD:-}" > /tmp/pwfile
  chown postgres /tmp/pwfile
  as_postgres initdb -D "$PGDATA" --username="${POSTGRES_USER:-postgres}" --auth-local=trust \
    --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_PASSWORD:+--pwfile=/tmp/pwfile}
  rm -f /tmp/pwfile
  echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
"""
POSTGRES_15 = BaseRecipe(
    suite="bookworm",
    packages=("postgresql-15",),
    script=f"cat > /usr/local/bin/docker-entrypoint.sh <<'EOF'\n{POSTGRES_ENTRYPOINT}EOF\n"
    "chmod 755 /usr/local/bin/docker-entrypoint.sh\n" + CLEAN_UP,
    changes=(
        "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV PGDATA=/var/lib/postgresql/data",
        "ENV LANG=C.UTF-8",
        "STOPSIGNAL SIGINT",
        "EXPOSE 5432",
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
        'CMD ["postgres"]',
    ),
)
# docker-compose.yml's rabbitmq: Debian's RabbitMQ (3.10, not 3.13) set up like the official management
# image: guest allowed from anywhere, management and Prometheus plugins, conf.d files read, node data in
# /var/lib/rabbitmq (the volume) named by the container's hostname.
RABBITMQ_ENTRYPOINT = r"""#!/bin/sh
set -e
# The cookie first: a CLI tool exec'd as root (the healthcheck) would otherwise write one the node cannot read.
cookie=/var/lib/rabbitmq/.erlang.cookie
[ -s "$cookie" ] || tr -dc A-Z </dev/urandom | head -c 20 > "$cookie"
chmod 400 "$cookie"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$@"
"""
RABBITMQ_DEFAULTS = "loopback_users.guest = false\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\n"
RABBITMQ_MANAGEMENT = BaseRecipe(
    suite="bookworm",
    packages=("rabbitmq-server",),
    script=f"cat > /usr/local/bin/docker-entrypoint.sh <<'EOF'\n{RABBITMQ_ENTRYPOINT}EOF\n"
    "chmod 755 /usr/local/bin/docker-entrypoint.sh\n"
    "mkdir -p /etc/rabbitmq/conf.d\n"
    f"printf '{RABBITMQ_DEFAULTS}' > /etc/rabbitmq/conf.d/10-defaults.conf\n"
    "echo '[rabbitmq_management,rabbitmq_prometheus].' > /etc/rabbitmq/enabled_plugins\n"
    "rm -f /etc/rabbitmq/rabbitmq-env.conf /var/lib/rabbitmq/.erlang.cookie\n" + CLEAN_UP,
    changes=(
        "ENV HOME=/var/lib/rabbitmq",
        "ENV RABBITMQ_CONFIG_FILES=/etc/rabbitmq/conf.d",
        "ENV LANG=C.UTF-8",
        "ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "EXPOSE 5672",
        "EXPOSE 15672",
        "EXPOSE 15692",
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
        'CMD ["rabbitmq-server"]',
    ),
)
# The observability profile's prometheus: Debian's Prometheus (2.42, not 2.55), laid out like the official
# image (/bin/prometheus as the entrypoint, /prometheus for the volume, run as nobody).
PROMETHEUS = BaseRecipe(
    suite="bookworm",
    packages=("prometheus",),
    script="mkdir -p /prometheus\nchown nobody:nogroup /prometheus\n" + CLEAN_UP,
    changes=(
        "USER nobody",
        "WORKDIR /prometheus",
        "EXPOSE 9090",
        'ENTRYPOINT ["/bin/prometheus"]',
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
    ),
)
# By image name (a pattern, so a pinned patch release of the same image finds its stand-in too).
BASE_RECIPES = {
    r"docker\.io/library/python:3\.11(\.\d+)?-slim-bookworm": PYTHON_311,
    r"docker\.io/library/postgres:15(\.\d+)?": POSTGRES_15,
    r"docker\.io/library/rabbitmq:3\.13(\.\d+)?-management": RABBITMQ_MANAGEMENT,
    r"docker\.io/prom/prometheus:v2\.55\.\d+": PROMETHEUS,
}


def base_recipe(image: str) -> BaseRecipe | None:
    name = full_name(image)
    return next((recipe for pattern, recipe in BASE_RECIPES.items() if re.fullmatch(pattern, name)), None)


def full_name(image: str) -> str:
    """An image reference as podman stores it: `python:3.11` is `docker.io/library/python:3.11`."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def dockerfile_bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile's FROM lines name (not its own stages), in order, without repeats."""
    stages, bases = set(), []
    for line in re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines():
        words = [w for w in line.split() if not w.startswith("--")]
        if words and words[0].upper() == "FROM":
            if words[1].lower() not in stages and words[1] not in bases:
                bases.append(words[1])
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3].lower())
    return bases


def debian_mirror(suite: str) -> str | None:
    """The Debian archive this machine's apt uses for `suite`, read from its sources on every run."""
    sources = Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for path in sources:
        if not path.is_file():
            continue
        if path.suffix == ".list":
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^\]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
        elif path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", path.read_text()):
                fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, re.MULTILINE))
                if (
                    "deb" in fields.get("Types", "").split()
                    and suite in fields.get("Suites", "").split()
                    and fields.get("Enabled", "yes").lower() != "no"
                    and fields.get("URIs")
                ):
                    return fields["URIs"].split()[0]
    return None


class PodmanUnavailable(Exception):
    """Podman cannot run here (the reason is the message): the tests skip, they do not fail."""


class Podman:
    """`podman` with the suite's own containers.conf and image store."""

    def __init__(self, cache: Path = CACHE) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        # Run-time state of this store only (another cache folder is another store).
        run = f"/run/shop-services-podman/{hashlib.sha256(str(cache).encode()).hexdigest()[:8]}"
        (cache / "containers.conf").write_text(CONTAINERS_CONF.format(run=run))
        (cache / "storage.conf").write_text(STORAGE_CONF.format(cache=cache, run=run))
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(cache / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(cache / "storage.conf"),
        }

    def __call__(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {shlex.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result

    def check_usable(self) -> None:
        info = self("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
        if info.returncode != 0:
            raise PodmanUnavailable(f"podman cannot run here: {info.stderr.strip()[-500:]}")

    def ensure_base(self, name: str) -> str:
        """Make the local stand-in for image `name` unless the store holds one from the same recipe."""
        recipe = base_recipe(name)
        if recipe is None:
            raise AssertionError(
                f"image {name} has no local recipe here: add one to BASE_RECIPES in {Path(__file__).relative_to(ROOT)}"
            )
        with (self.cache / "bases.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the next finds the image
            if self.base_key(name) == recipe.key():
                return "cached"
            self.build_base(full_name(name), recipe)
        return "built"

    def base_key(self, name: str) -> str | None:
        result = self(
            "image", "inspect", "--format", f'{{{{index .Labels "{RECIPE_LABEL}"}}}}', full_name(name), check=False
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def build_base(self, name: str, recipe: BaseRecipe) -> None:
        mirror = debian_mirror(recipe.suite)
        if mirror is None:
            raise PodmanUnavailable(f"no Debian {recipe.suite} archive in this machine's apt sources")
        try:
            urllib.request.urlopen(f"{mirror.rstrip('/')}/dists/{recipe.suite}/Release", timeout=15).close()
        except OSError as exc:
            raise PodmanUnavailable(f"the Debian archive in apt's sources does not answer: {exc}") from exc
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            rootfs = Path(tmp) / "rootfs"
            debootstrap = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(recipe.packages)}",
                    recipe.suite,
                    str(rootfs),
                    mirror,
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert debootstrap.returncode == 0, debootstrap.stdout[-3000:] + debootstrap.stderr[-3000:]
            if HOST_CA_BUNDLE.exists() and (rootfs / "etc/ssl/certs").is_dir():
                shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
            subprocess.run(["chroot", str(rootfs), "sh", "-c", recipe.script], check=True, capture_output=True)
            changes = [
                arg
                for change in (*recipe.changes, f"LABEL {RECIPE_LABEL}={recipe.key()}")
                for arg in ("--change", change)
            ]
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                ["podman", "import", "--quiet", *changes, "-", name],
                stdin=tar.stdout,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            tar.stdout.close()  # so a tar still writing gets SIGPIPE if podman gave up early
            tar.wait()
            assert imported.returncode == 0, imported.stderr
        self("image", "prune", "--force")  # the image this one replaced, if any

    def logs(self, name: str) -> str:
        result = self("logs", name, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def state(self, name: str) -> dict:
        return json.loads(self("inspect", "--format", "{{json .State}}", name).stdout)

    def remove_test_objects(self, run_id: str, images: list[str]) -> None:
        """Every container labelled with this run, the images named, then dangling build layers."""
        containers = self("ps", "--all", "--quiet", "--filter", f"label={TEST_LABEL}={run_id}", check=False)
        for container in containers.stdout.split():
            self("rm", "--force", "--time", "0", container, check=False)
        for image in images:
            self("rmi", "--force", image, check=False)
        self("image", "prune", "--force", check=False)


def check_package_index() -> None:
    """The image build installs from the package index: without it, skip rather than fail."""
    with tempfile.TemporaryDirectory() as tmp:
        cert = ["--cert", str(HOST_CA_BUNDLE)] if HOST_CA_BUNDLE.exists() else []
        probe = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--isolated",
                "--no-deps",
                "--no-cache-dir",
                *cert,
                "--dest",
                tmp,
                "pip",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if probe.returncode != 0:
        raise PodmanUnavailable(
            f"the package index does not answer (the image build installs from it): {probe.stderr.strip()[-300:]}"
        )


def prepared_podman() -> Podman:
    """Podman ready to build infra/Dockerfile: usable here, every FROM image in the store."""
    if os.geteuid() != 0:
        raise PodmanUnavailable("the container tests run podman as root (rootless needs subuid set-up)")
    missing = [tool for tool in ("podman", "runc", "debootstrap") if not shutil.which(tool)]
    if missing:
        raise PodmanUnavailable(f"{', '.join(missing)} missing (infra/scripts/install-test-deps.sh installs them)")
    podman = Podman()
    podman.check_usable()
    check_package_index()
    for base in dockerfile_bases(ROOT / "infra" / "Dockerfile"):
        podman.ensure_base(base)
    return podman


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def build_project_image(podman: Podman, run_id: str) -> str:
    """The image docker-compose.yml's services build (one build section for all of them), as `localhost/`."""
    builds = {
        (s["build"].get("context", "."), s["build"].get("dockerfile", "Dockerfile"))
        for s in compose_services().values()
        if "build" in s
    }
    assert len(builds) == 1, f"the test builds one image; compose has {builds}"
    ((context, dockerfile),) = builds
    image = f"localhost/shop-services-test:{run_id}"
    podman(
        "build",
        "--pull=never",
        "--network",
        "host",
        "--file",
        str(ROOT / context / dockerfile),
        "--tag",
        image,
        str(ROOT / context),
        timeout=900,
    )
    return image


# --- docker-compose.yml ---------------------------------------------------------------------------------------


def project_services(services: dict[str, dict]) -> dict[str, dict]:
    """The services that run the project's image: those that build it, and those naming the image they build."""
    built = {s["image"] for s in services.values() if "build" in s and s.get("image")}
    return {name: s for name, s in services.items() if "build" in s or s.get("image") in built}


def depends_on(service: dict) -> dict[str, str]:
    """Each dependency with its condition."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def duration(value: str | int | float | None, default: float) -> float:
    """Compose durations: `30s`, `1m30s`, `500ms`, or plain seconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"([\d.]+)(h|ms|us|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a compose duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def retarget_ports(text: str, ports: dict[int, int]) -> str:
    """`0.0.0.0:3000` or `http://127.0.0.1:3000/health` with the container port moved to its host one."""
    return re.sub(r"(?<=:)(\d+)\b", lambda m: str(ports.get(int(m[1]), m[1])), text)


def command_argv(service: dict, ports: dict[int, int]) -> list[str]:
    command = service.get("command") or []
    argv = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    return [retarget_ports(word, ports) for word in argv]


def healthcheck_argv(service: dict, ports: dict[int, int]) -> list[str] | None:
    """The healthcheck's command, as `podman exec` runs it (None: the service has none)."""
    test = (service.get("healthcheck") or {}).get("test")
    if not test or test == ["NONE"]:
        return None
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", " ".join(test[1:])]
    return [retarget_ports(word, ports) for word in argv]


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
    if service.get("working_dir"):
        args += ["--workdir", service["working_dir"]]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    if "entrypoint" in service:
        entrypoint = service["entrypoint"]
        args += ["--entrypoint", json.dumps(shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint)]
    return [*args, image, *command_argv(service, ports)]


def wait_healthy(podman: Podman, name: str, argv: list[str] | None, timeout: float) -> None:
    """Run the healthcheck's command in the container until it passes, as compose's health check does."""
    deadline = time.monotonic() + timeout
    while True:
        state = podman.state(name)
        assert state["Running"], f"{name} exited {state['ExitCode']} before it was healthy:\n{podman.logs(name)}"
        if argv is None or podman("exec", name, *argv, check=False, timeout=30).returncode == 0:
            return
        assert time.monotonic() < deadline, f"{name} not healthy after {timeout:.0f} s:\n{podman.logs(name)}"
        time.sleep(0.5)


def wait_exited(podman: Podman, name: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (state := podman.state(name))["Running"]:
        assert time.monotonic() < deadline, f"{name} still running after {timeout:.0f} s:\n{podman.logs(name)}"
        time.sleep(0.5)
    return state["ExitCode"]


def container_ports(service: dict) -> list[int]:
    """The ports the service listens on in its container (`ports` targets, `expose`)."""
    found = []
    for entry in service.get("ports", []):
        target = entry["target"] if isinstance(entry, dict) else str(entry).split(":")[-1].split("/")[0]
        found.append(int(target))
    return found + [int(port) for port in service.get("expose", [])]


def start_order(apps: dict[str, dict]) -> list[str]:
    """The services built from the project's image, each after the ones it depends on."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for dep in depends_on(apps[name]):
                if dep in apps:
                    visit(dep)
            ordered.append(name)

    for name in apps:
        visit(name)
    return ordered


def one_shots(apps: dict[str, dict]) -> set[str]:
    """Services another one waits for to exit 0 (a migrate step), not to be healthy."""
    return {
        dep
        for service in apps.values()
        for dep, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }


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
            user, password = self.broker_users.setdefault(url.username, (f"{url.username}.{self.run_id}", url.password))
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
        for volume in self.services[self.rabbitmq].get("volumes", []):
            source, target = volume.split(":")[:2] if isinstance(volume, str) else (volume["source"], volume["target"])
            if target.endswith(".json") and source.startswith("."):
                return json.loads((ROOT / source).read_text())
        raise AssertionError(f"the {self.rabbitmq} service mounts no definitions file")

    def create_broker(self) -> None:
        permissions = {p["user"]: p for p in self.definitions()["permissions"] if p["vhost"] == "/"}
        rabbitmqctl("add_vhost", self.vhost)
        for compose_user, (user, password) in self.broker_users.items():
            rabbitmqctl("add_user", user, password)
            rights = permissions[compose_user]
            rabbitmqctl("set_permissions", "-p", self.vhost, user, rights["configure"], rights["write"], rights["read"])

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


async def get_json(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.json()
