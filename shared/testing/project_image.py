"""The project's image, built with podman from infra/Dockerfile as docker-compose.yml builds it."""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from shared.testing.base_images import dockerfile_bases, ensure_base
from shared.testing.base_recipes import HOST_CA_BUNDLE
from shared.testing.compose import compose_services
from shared.testing.podman import Podman, PodmanUnavailable

ROOT = Path(__file__).resolve().parents[2]


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
        ensure_base(podman, base)
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
