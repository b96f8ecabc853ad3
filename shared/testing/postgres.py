"""A PostgreSQL server of the test's own (initdb + pg_ctl, as the `postgres` user, a free port, a temporary
folder): for a test that must stop or reconfigure the server, never the machine's own."""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.testing.certificates import ServerFiles
from shared.testing.processes import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"  # initdb refuses root


def available() -> str | None:
    """Why a server cannot be started here, or None."""
    if not (BIN / "initdb").exists():
        return f"no {BIN / 'initdb'} (Debian's package postgresql-15)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser, and initdb refuses to run as root"
    return None


@dataclass(frozen=True)
class Server:
    port: int
    folder: Path

    def url(self, database: str = "postgres", user: str = "postgres", query: str = "") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    @property
    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *command] if os.geteuid() == 0 else list(command)


@contextlib.contextmanager
def server(tls: ServerFiles | None = None, max_connections: int = 40) -> Iterator[Server]:
    """Start one (trust authentication on loopback); with `tls`, TCP connections must use TLS with that
    certificate (`hostssl` only). Yields it; stops it and removes its folder, whatever happened."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="postgres-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        if os.geteuid() == 0:
            shutil.chown(folder, RUN_AS, RUN_AS)
        subprocess.run(
            _as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            check=True,
            capture_output=True,
            timeout=60,
        )
        settings = [f"port = {port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{folder}'"]
        settings += [f"max_connections = {max_connections}", "shared_buffers = 16MB", "fsync = off"]  # throwaway
        if tls is not None:
            for source, name in ((tls.cert, "server.crt"), (tls.key, "server.key")):
                shutil.copy(source, data / name)
                (data / name).chmod(0o600)
                if os.geteuid() == 0:
                    shutil.chown(data / name, RUN_AS, RUN_AS)
            settings += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
            # Only TLS over TCP: a connection without it is refused, so a test that connects proves TLS.
            (data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        pg_ctl = str(BIN / "pg_ctl")
        try:
            subprocess.run(
                _as_postgres(pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "start"),
                check=True,
                capture_output=True,
                timeout=90,
            )
            yield Server(port, folder)
        finally:
            subprocess.run(
                _as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"), capture_output=True, timeout=60
            )
