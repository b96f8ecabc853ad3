"""Readers of the container and observability files (compose, Dockerfile, Prometheus, Grafana) that the
static infrastructure tests share: the file as parsed, and the names the code really has."""

import asyncio
import functools
import importlib
import json
import posixpath
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import customer.metrics
import order.metrics
import shared.admission
import shared.auth.metrics
import shared.metrics
import shared.tracing
from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.process_metrics import ServiceProcessCollector

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "infra" / "Dockerfile"
SETTINGS: dict[str, type[BaseSettings]] = {"customer": CustomerSettings, "order": OrderSettings}
APP_SERVICES = sorted(SETTINGS)
MIGRATE_SERVICES = [f"{name}-migrate" for name in APP_SERVICES]  # one-shot: prepare the service's database
# What each service cannot run without in a container (the contract's variables).
CONTRACT_VARS = {
    "customer": {"CUSTOMER_DATABASE_URL", "AMQP_URL"},
    "order": {"ORDER_DATABASE_URL", "AMQP_URL", "CUSTOMER_SERVICE_URL"},
}
# The series prometheus_client exposes for one metric family, by type.
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
}


def run(*argv: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=60)


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    return {name: {"condition": "service_started"} for name in deps} if isinstance(deps, list) else deps


def port_mappings(service: dict) -> list[tuple[int, int]]:
    """(published, target) pairs from short ("[ip:]published:target") or long syntax."""
    pairs = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
        else:
            *_, published, target = str(entry).split(":")
            pairs.append((int(published), int(target.split("/")[0])))
    return pairs


def container_ports(service: dict) -> set[int]:
    return {target for _, target in port_mappings(service)} | {int(port) for port in service.get("expose", [])}


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        else:
            names.add((cls.model_config.get("env_prefix", "") + name).upper())
    return names


def gunicorn_config_file(option: str) -> Path:
    """gunicorn's -c value, a file or `python:<module>`, as the file in the repo."""
    if option.startswith("python:"):
        return ROOT / (option.removeprefix("python:").replace(".", "/") + ".py")
    return ROOT / option


def gunicorn_env_names() -> set[str]:
    text = gunicorn_config_file(run_sh_gunicorn_config()).read_text()
    return set(re.findall(r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Za-z0-9_]+)["']""", text))


def run_sh() -> str:
    return (ROOT / "infra" / "scripts" / "run.sh").read_text()


def run_sh_gunicorn_config() -> str:
    (config,) = set(re.findall(r"\s-c\s+(\S+)", run_sh()))
    return config


def service_command(service: dict) -> list[list[str]]:
    """The command's steps: an exec-form list is one; a `sh -c` script its `&&`-chained steps."""
    command = service["command"]
    assert isinstance(command, list), f"a string command runs under a shell that gets the signals: {command}"
    if command[:2] != ["sh", "-c"]:
        return [command]
    assert len(command) == 3, command
    return [shlex.split(step) for step in command[2].split("&&")]


def gunicorn_step(service: dict) -> tuple[str, dict[str, str]]:
    (step,) = service_command(service)
    assert step[0] == "gunicorn", f"gunicorn must be the container's process (exec form), to get signals: {step}"
    app, rest = step[1], step[2:]
    assert len(rest) % 2 == 0, rest
    return app, dict(zip(rest[::2], rest[1::2], strict=True))


def bind_port(service: dict) -> int:
    host, port = gunicorn_step(service)[1]["--bind"].rsplit(":", 1)
    assert host == "0.0.0.0", "inside a container, 127.0.0.1 is unreachable from the other containers"
    return int(port)


@functools.cache
def app_routes(name: str) -> frozenset[tuple[str, str]]:
    """(method, route) pairs of the service's app, built as gunicorn builds it (no I/O happens before startup)."""
    module = importlib.import_module(f"{name}.app")
    app: web.Application = asyncio.run(module.create_app(SETTINGS[name](auth_mode="off")))
    return frozenset((route.method, route.resource.canonical) for route in app.router.routes() if route.resource)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def dockerignore_regex(pattern: str) -> re.Pattern:
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token.startswith("[") and token.endswith("]") and len(token) > 2:
            parts.append(token)  # Go's filepath.Match classes read like regex ones ([^...] negates)
        else:
            parts.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token)))
    return re.compile("".join(parts) + "$")


def in_build_context(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path or one of its parents wins."""
    included = True
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    prefixes = [path.split("/")[: i + 1] for i in range(path.count("/") + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = dockerignore_regex(pattern.lstrip("!"))
        if any(regex.match("/".join(prefix)) for prefix in prefixes):
            included = negated
    return included


def metric_series() -> dict[str, str]:
    """Every series name the services export, mapped to its metric family."""
    series = {}
    modules = (shared.metrics, shared.admission, shared.auth.metrics, customer.metrics, order.metrics)
    for metric in (value for module in modules for value in vars(module).values()):
        if isinstance(metric, MetricWrapperBase):
            (family,) = metric.describe()
            series.update({family.name + suffix: family.name for suffix in SERIES_SUFFIXES[family.type]})
    for family in ServiceProcessCollector().collect():  # CPU and memory, read from /proc at each scrape
        series.update({family.name + suffix: family.name for suffix in SERIES_SUFFIXES[family.type]})
    return series


def promql_series(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w$.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {name for name in names if name.lower() not in PROMQL_KEYWORDS}


def dashboard() -> dict:
    return json.loads((ROOT / "infra" / "grafana" / "dashboards" / "shop-services.json").read_text())


def panels(items: list[dict]) -> Iterator[dict]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in panels(dashboard()["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def volume_mounts(service: dict) -> dict[str, str]:
    """Bind mounts of repo paths: host path (relative to the repo) -> container path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[posixpath.normpath(source)] = target
    return mounts
