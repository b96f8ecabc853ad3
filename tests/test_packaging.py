"""Packaging: the lock files pin what pyproject declares, the wheel holds only runtime code, and
`python -m <service>` serves like `make run`."""

import ast
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import aiohttp
import pytest

from shared.testing.plugin import eventually
from shared.testing.processes import ROOT, free_port

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME_LOCK, DEV_LOCK = ROOT / "requirements" / "runtime.txt", ROOT / "requirements" / "dev.txt"
PACKAGES = ("shared", "customer", "order")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        name, version = requirement.split(";")[0].split("==")
        found[normalise(name.strip())] = version.strip()
    return found


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a `uv pip compile --generate-hashes` file."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    entries = {}
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = line.split(" --hash")[0].split(";")[0].strip()
            name, version = requirement.split("==")
            entries[normalise(name)] = (version, line.count("--hash=sha256:"))
    return entries


def imported_top_level(folder: Path) -> set[str]:
    names = set()
    for file in folder.rglob("*.py"):
        if "tests" in file.parts or "testing" in file.parts or "migrations" in file.parts:
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_lock_files_pin_what_pyproject_declares_with_hashes():
    runtime, dev = locked(RUNTIME_LOCK), locked(DEV_LOCK)
    declared = pins(PYPROJECT["project"]["dependencies"])
    declared_dev = pins(PYPROJECT["project"]["optional-dependencies"]["dev"])
    stale = {name: version for name, version in declared.items() if runtime.get(name, ("",))[0] != version}
    stale |= {
        name: version for name, version in {**declared, **declared_dev}.items() if dev.get(name, ("",))[0] != version
    }
    assert not stale, f"pyproject.toml changed without `make lock`: {stale}"
    assert all(hashes for _, hashes in [*runtime.values(), *dev.values()]), "every entry needs its hashes"
    # The dev lock is the runtime lock plus the tools: the same versions of what both hold.
    assert {name: entry[0] for name, entry in dev.items() if name in runtime} == {
        name: entry[0] for name, entry in runtime.items()
    }


def test_what_the_runtime_code_imports_is_declared():
    distributions = packages_distributions()  # import name -> the installed distributions that provide it
    imported = set().union(*(imported_top_level(ROOT / package) for package in PACKAGES))
    third_party = imported - set(PACKAGES) - set(sys.stdlib_module_names)
    declared = set(pins(PYPROJECT["project"]["dependencies"]))
    undeclared = {name for name in third_party if not {normalise(d) for d in distributions.get(name, [])} & declared}
    assert "pamqp" in third_party and not undeclared


@pytest.mark.slow
def test_the_wheel_holds_the_services_and_shared_runtime_code_only(tmp_path):
    source = tmp_path / "src"  # what the Dockerfile copies, away from this checkout's build leftovers
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path / "dist", source],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        scripts = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    code = [name for name in names if ".dist-info/" not in name]
    assert {name.split("/")[0] for name in code} == set(PACKAGES)
    assert not [name for name in code if "/tests/" in name or name.startswith("shared/testing/")]
    migrations = {
        path.relative_to(ROOT).as_posix()
        for package in ("customer", "order")
        for path in (ROOT / package / "migrations").rglob("*.py")
    }
    assert migrations <= set(code)
    assert {"customer/__main__.py", "order/__main__.py", "shared/gunicorn_conf.py"} <= set(code)
    assert "customer/dead_letters/console.html" in code  # the operator's page, served from the installed package
    assert "License-Expression: MIT" in metadata and "Requires-Dist: pamqp==" in metadata
    for script in ("customer-manage", "order-manage", "customer-ops", "order-ops"):
        assert f"{script} = " in scripts


@pytest.mark.slow
async def test_python_m_customer_serves_until_told_to_stop(test_run, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "CUSTOMER_DATABASE_URL": test_run.customer_db,
        "EVENTS_EXCHANGE": test_run.exchange,
        "CUSTOMER_ORDERS_QUEUE": test_run.queue,
        "CUSTOMER_PORT": str(port),
        "RUN_DIR": str(tmp_path),
        "AUTH_MODE": "off",
    }
    log = (tmp_path / "customer.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "customer", cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def ready():
                try:
                    async with session.get(f"http://127.0.0.1:{port}/ready") as response:
                        assert response.status == 200
                except aiohttp.ClientError as exc:
                    raise AssertionError(exc) from exc
                assert process.returncode is None

            await eventually(ready, timeout=30)
        assert (tmp_path / "metrics-customer").is_dir()  # several workers could merge their metrics there
        os.killpg(process.pid, signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0, (tmp_path / "customer.log").read_text()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
