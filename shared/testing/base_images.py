"""The base images infra/Dockerfile and docker-compose.yml need, made from Debian with debootstrap by their
recipes (shared.testing.base_recipes) and cached in the suite's image store."""

import fcntl
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from shared.testing.base_recipes import HOST_CA_BUNDLE, RECIPE_LABEL, BaseRecipe, base_recipe, full_name
from shared.testing.podman import Podman, PodmanUnavailable

ROOT = Path(__file__).resolve().parents[2]


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


def ensure_base(podman: Podman, name: str) -> str:
    """Make the local stand-in for image `name` unless the store holds one from the same recipe."""
    recipe = base_recipe(name)
    if recipe is None:
        raise AssertionError(
            f"image {name} has no local recipe here: add one to BASE_RECIPES in shared/testing/base_recipes.py"
        )
    with (podman.cache / "bases.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the next finds the image
        if base_key(podman, name) == recipe.key():
            return "cached"
        build_base(podman, full_name(name), recipe)
    return "built"


def base_key(podman: Podman, name: str) -> str | None:
    result = podman(
        "image", "inspect", "--format", f'{{{{index .Labels "{RECIPE_LABEL}"}}}}', full_name(name), check=False
    )
    return result.stdout.strip() if result.returncode == 0 else None


def build_base(podman: Podman, name: str, recipe: BaseRecipe) -> None:
    mirror = debian_mirror(recipe.suite)
    if mirror is None:
        raise PodmanUnavailable(f"no Debian {recipe.suite} archive in this machine's apt sources")
    try:
        urllib.request.urlopen(f"{mirror.rstrip('/')}/dists/{recipe.suite}/Release", timeout=15).close()
    except OSError as exc:
        raise PodmanUnavailable(f"the Debian archive in apt's sources does not answer: {exc}") from exc
    with tempfile.TemporaryDirectory(dir=podman.cache) as tmp:
        rootfs = Path(tmp) / "rootfs"
        debootstrap(recipe, rootfs, mirror)
        import_rootfs(podman, rootfs, name, recipe)
    podman("image", "prune", "--force")  # the image this one replaced, if any


def debootstrap(recipe: BaseRecipe, rootfs: Path, mirror: str) -> None:
    """The recipe's root filesystem: Debian with its packages, the machine's certificates, its script run."""
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}", recipe.suite]
    done = subprocess.run([*argv, str(rootfs), mirror], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if HOST_CA_BUNDLE.exists() and (rootfs / "etc/ssl/certs").is_dir():
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    subprocess.run(["chroot", str(rootfs), "sh", "-c", recipe.script], check=True, capture_output=True)


def import_rootfs(podman: Podman, rootfs: Path, name: str, recipe: BaseRecipe) -> None:
    changes = [
        arg for change in (*recipe.changes, f"LABEL {RECIPE_LABEL}={recipe.key()}") for arg in ("--change", change)
    ]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["podman", "import", "--quiet", *changes, "-", name],
        stdin=tar.stdout,
        env=podman.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tar.stdout.close()  # so a tar still writing gets SIGPIPE if podman gave up early
    tar.wait()
    assert imported.returncode == 0, imported.stderr
