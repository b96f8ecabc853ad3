"""RabbitMQ nodes of the test's own, clustered, on free ports under a temporary folder.

Never the machine's node (rabbit@localhost on 5672): each node here has its own name, its own config
file (the system-wide rabbitmq.conf pins 127.0.0.1:5672, so RABBITMQ_NODE_PORT alone would not move
it), its own plugins file (no management), distribution port, data, log and pid file. Nodes run as the
`rabbitmq` user with its home, where the Erlang cookie they share is.
"""

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shared.testing.certificates import ServerFiles
from shared.testing.processes import free_port

SCRIPTS = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"))  # the real scripts, not Debian's su wrapper
RUN_AS = "rabbitmq"
START_TIMEOUT = 90.0  # a node is up in about 8 s alone; three at once on two cores take longer
CTL_TIMEOUT = 60.0


def available() -> str | None:
    """Why nodes cannot be started here, or None."""
    if not SCRIPTS:
        return "RabbitMQ's server is not installed (Debian's package rabbitmq-server)"
    try:
        user = pwd.getpwnam(RUN_AS)
    except KeyError:
        return f"there is no {RUN_AS!r} user to run RabbitMQ nodes as"
    if os.geteuid() not in (0, user.pw_uid):
        return f"RabbitMQ nodes run as {RUN_AS!r} with its Erlang cookie: needs root or that user"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return f"running as root without runuser, needed to start nodes as {RUN_AS!r}"
    return None


@dataclass
class Node:
    name: str  # e.g. "t3f9a1c-1@localhost"
    folder: Path
    amqp_port: int
    dist_port: int
    tls: ServerFiles | None = None  # then it listens for AMQP over TLS only, with this certificate
    prometheus_port: int | None = None  # its rabbitmq_prometheus exporter on 127.0.0.1, when asked for

    @property
    def prometheus_address(self) -> str:
        assert self.prometheus_port is not None, f"{self.name} runs no exporter"
        return f"127.0.0.1:{self.prometheus_port}"

    @property
    def url(self) -> str:
        """AMQP_URL for this node (over TLS, the client still needs `?cafile=`)."""
        return f"{'amqps' if self.tls else 'amqp'}://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid_file(self) -> Path:
        return self.folder / "node.pid"

    def env(self) -> dict[str, str]:
        return {
            "HOME": pwd.getpwnam(RUN_AS).pw_dir,  # its .erlang.cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }

    def _command(self, script: str, *args: str) -> list[str]:
        command = ["env", *(f"{k}={v}" for k, v in self.env().items()), f"{SCRIPTS[-1]}/{script}", *args]
        return ["runuser", "-u", RUN_AS, "--", *command] if os.geteuid() == 0 else command

    def write_config(self) -> None:
        self.folder.mkdir(parents=True)
        config = f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}\nloopback_users = none\n"
        if self.tls is not None:
            shutil.copy(self.tls.cert, self.folder / "server.crt")
            shutil.copy(self.tls.key, self.folder / "server.key")
            config = (
                f"listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{self.amqp_port}\nloopback_users = none\n"
                f"ssl_options.certfile = {self.folder / 'server.crt'}\n"
                f"ssl_options.keyfile = {self.folder / 'server.key'}\n"
                "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"
            )
        plugins = "[]"
        if self.prometheus_port is not None:
            config += f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {self.prometheus_port}\n"
            plugins = "[rabbitmq_prometheus]"
        (self.folder / "rabbitmq.conf").write_text(config)
        (self.folder / "enabled_plugins").write_text(f"{plugins}.\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, RUN_AS, RUN_AS)
            for path in self.folder.iterdir():
                shutil.chown(path, RUN_AS, RUN_AS)

    def launch(self) -> None:
        """Start the node in the background (`wait_up` waits for it)."""
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        subprocess.run(
            self._command("rabbitmq-server", "-detached"), check=True, capture_output=True, timeout=CTL_TIMEOUT
        )

    def wait_up(self) -> None:
        self.ctl("wait", "--timeout", str(int(START_TIMEOUT)), str(self.pid_file), timeout=START_TIMEOUT + 10)
        self.ctl("await_startup", "--timeout", str(int(START_TIMEOUT)), timeout=START_TIMEOUT + 10)

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """rabbitmqctl against this node; its output, or RuntimeError with what it said."""
        done = subprocess.run(
            self._command("rabbitmqctl", "-n", self.name, *args), capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.name} {' '.join(args)}: {done.stdout}{done.stderr}"[-2000:])
        return done.stdout

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def kill(self) -> None:
        """kill -9 of the node's Erlang VM, as a crash or a power cut would end it; returns once it is gone."""
        pid = self.pid()
        assert pid is not None, f"{self.name} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid() is not None:
            assert time.monotonic() < deadline, f"{self.name} (pid {pid}) survived kill -9"
            time.sleep(0.05)  # the kernel reaping it, polled with a deadline

    def stop(self) -> None:
        """A graceful stop of the whole node (`rabbitmqctl stop`), waiting until its VM has exited."""
        self.ctl("stop", str(self.pid_file))

    def stop_quietly(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(Exception):
            self.ctl("stop", str(self.pid_file), timeout=30)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)


@dataclass
class Cluster:
    nodes: list[Node]

    @property
    def amqp_url(self) -> str:
        """AMQP_URL for a service: every node, comma-separated."""
        return ",".join(node.url for node in self.nodes)

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.pid() is not None]

    def queues(self, vhost: str = "/") -> list[dict]:
        """`list_queues` as seen by a running node: name, type, leader, members, online, consumers."""
        out = self.running()[0].ctl(
            "list_queues",
            "-p",
            vhost,
            "--formatter",
            "json",
            "name",
            "type",
            "leader",
            "members",
            "online",
            "consumers",
        )
        return json.loads(out)

    def queue(self, name: str, vhost: str = "/") -> dict | None:
        return next((queue for queue in self.queues(vhost) if queue["name"] == name), None)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def running_nodes(self) -> set[str]:
        """The cluster's running members, as a running node reports them."""
        status = json.loads(self.running()[0].ctl("cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])


@contextlib.contextmanager
def cluster(size: int = 3, tls: ServerFiles | None = None, prometheus: bool = False) -> Iterator[Cluster]:
    """Start `size` nodes and cluster them (the others join the first); yields; stops them all and removes
    their folder, whatever happened. With `tls`, each listens for AMQP over TLS only, with that certificate;
    with `prometheus`, each runs the rabbitmq_prometheus exporter."""
    prefix = f"t{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="rabbitmq-cluster-") as tmp:
        os.chmod(tmp, 0o755)  # the nodes' user walks into its folder
        nodes = [
            Node(
                f"{prefix}-{n}@localhost",
                Path(tmp) / f"node{n}",
                free_port(),
                free_port(),
                tls,
                free_port() if prometheus else None,
            )
            for n in range(1, size + 1)
        ]
        try:
            for node in nodes:
                node.write_config()
                node.launch()
            for node in nodes:
                node.wait_up()
            for node in nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", nodes[0].name)
                node.ctl("start_app")
            yield Cluster(nodes)
        finally:
            with ThreadPoolExecutor(len(nodes)) as pool:  # each stop waits seconds for its node
                list(pool.map(Node.stop_quietly, nodes))
