"""A PgBouncer of the test's own, in transaction pooling mode, in front of the machine's PostgreSQL."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shared.testing.processes import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
RUN_AS = "postgres"  # pgbouncer refuses to run as root


def available() -> str | None:
    """Why a PgBouncer cannot be started here, or None."""
    if not os.path.exists(PGBOUNCER):
        return "pgbouncer is not installed (Debian's package pgbouncer; make test installs it where it can)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser, and pgbouncer refuses to run as root"
    return None


@contextlib.contextmanager
def pgbouncer(server_host: str = "127.0.0.1", server_port: int = 5432) -> Iterator[int]:
    """Start one on a free port (trust auth, any database passed through); yields the port; stops it."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as tmp:
        folder = Path(tmp)
        (folder / "users.txt").write_text('"postgres" ""\n')
        (folder / "pgbouncer.ini").write_text(f"""[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
""")
        command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
        if os.geteuid() == 0:
            os.chmod(folder, 0o777)  # the folder is the server's, run as postgres
            command = ["runuser", "-u", RUN_AS, "--", *command]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {process.stderr.read().decode()[-500:]}")
                time.sleep(0.05)  # its start, polled with a deadline
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
