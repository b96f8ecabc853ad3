"""The stand-ins for the official images infra/Dockerfile builds FROM and docker-compose.yml runs.

No registry is reachable here, so each such image is made locally from Debian (shared.testing.base_images)
by a recipe of this module, labelled with a hash of the recipe: only a changed recipe builds it again.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

RECIPE_LABEL = "shop-services.recipe"
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
# the official image (POSTGRES_USER, POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, POSTGRES_HOST_AUTH_METHOD,
# PGDATA as the volume).
POSTGRES_ENTRYPOINT = r"""#!/bin/sh
set -e
[ -z "${POSTGRES_PASSWORD_FILE:-}" ] || POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
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
# docker-compose.yml's rabbitmq: Debian's RabbitMQ (3.10, not 4.x) set up like the official management
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
    r"docker\.io/library/rabbitmq:4\.\d+(\.\d+)?-management": RABBITMQ_MANAGEMENT,
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
