"""Podman for the container tests: the suite's own engine settings and image store, and the containers
the tests start there (labelled with their run, so the clean-up finds them).

Everything lives under CACHE (SHOP_CONTAINER_CACHE, default ~/.cache/shop-services/containers); the cached
base images (shared.testing.base_images) are the only thing the tests leave there.
"""

import hashlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

CACHE = Path(os.environ.get("SHOP_CONTAINER_CACHE") or Path.home() / ".cache" / "shop-services" / "containers")
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

    def logs(self, name: str) -> str:
        result = self("logs", name, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def state(self, name: str) -> dict:
        # podman 4.3 may fail to inspect a container in the instant its process exits ("read
        # /proc/<pid>/cgroup: no such process"): asked again, it answers.
        for _ in range(10):
            result = self("inspect", "--format", "{{json .State}}", name, check=False)
            if result.returncode == 0:
                return json.loads(result.stdout)
            if "no such process" not in result.stderr:
                break
            time.sleep(0.2)
        return json.loads(self("inspect", "--format", "{{json .State}}", name).stdout)  # raises, with the error

    def remove_test_objects(self, run_id: str, images: list[str]) -> None:
        """Every container labelled with this run, the images named, then dangling build layers."""
        containers = self("ps", "--all", "--quiet", "--filter", f"label={TEST_LABEL}={run_id}", check=False)
        for container in containers.stdout.split():
            self("rm", "--force", "--time", "0", container, check=False)
        for image in images:
            self("rmi", "--force", image, check=False)
        self("image", "prune", "--force", check=False)


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
