"""A PostgreSQL instance of the caller's own: initdb'd into a temporary folder, on a free port.

Never the machine's server (127.0.0.1:5432): this one may be reconfigured, refuse connections or have
its sessions terminated at will. It runs as the `postgres` user (PostgreSQL refuses to run as root),
trusts local connections, and is stopped and removed by `own_postgres()`'s exit.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.testing.processes import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
TIMEOUT = 60.0


def available() -> str | None:
    """Why an instance cannot be started here, or None."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL 15's server binaries are not installed ({BIN})"
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        return f"there is no {RUN_AS!r} user to run PostgreSQL as"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return f"running as root without runuser, needed to start PostgreSQL as {RUN_AS!r}"
    return None


@dataclass
class Postgres:
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        """A Tortoise/asyncpg URL of one of its databases."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> str:
        full = [str(BIN / command[0]), *command[1:]]
        if os.geteuid() == 0:
            full = ["runuser", "-u", RUN_AS, "--", *full]
        done = subprocess.run(full, capture_output=True, text=True, timeout=TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}"[-2000:])
        return done.stdout

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, RUN_AS, RUN_AS)
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextlib.contextmanager
def own_postgres() -> Iterator[Postgres]:
    """Start an instance in a temporary folder; yields it; stops it and removes the folder, whatever happened."""
    with tempfile.TemporaryDirectory(prefix="own-postgres-") as tmp:
        os.chmod(tmp, 0o755)  # its user walks into its folder
        instance = Postgres(Path(tmp) / "pg", free_port())
        try:
            instance.start()
            yield instance
        finally:
            instance.stop()
