"""Reading docker-compose.yml as compose would on a fresh machine: the container tests and the static
infrastructure tests share these."""

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The one-shot service that makes the deployment's passwords into volumes (shared/deploy_secrets.py).
SECRETS_SERVICE = "secrets"


def compose_services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def interpolate(value: object) -> str:
    """Compose's `${VAR:-default}` with VAR unset: what a fresh machine gets."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", str(value)).replace("$$", "$")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: interpolate(value) for name, value in env.items()}


def project_services(services: dict[str, dict]) -> dict[str, dict]:
    """The services that run the project's image: those that build it, and those naming the image they build."""
    built = {s["image"] for s in services.values() if "build" in s and s.get("image")}
    return {name: s for name, s in services.items() if "build" in s or s.get("image") in built}


def depends_on(service: dict) -> dict[str, str]:
    """Each dependency with its condition."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def duration(value: str | int | float | None, default: float) -> float:
    """Compose durations: `30s`, `1m30s`, `500ms`, or plain seconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"([\d.]+)(h|ms|us|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a compose duration: {value!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def retarget_ports(text: str, ports: dict[int, int]) -> str:
    """`0.0.0.0:3000` or `http://127.0.0.1:3000/health` with the container port moved to its host one."""
    return re.sub(r"(?<=:)(\d+)\b", lambda m: str(ports.get(int(m[1]), m[1])), text)


def command_argv(service: dict, ports: dict[int, int]) -> list[str]:
    command = service.get("command") or []
    argv = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    return [retarget_ports(word, ports) for word in argv]


def healthcheck_argv(service: dict, ports: dict[int, int]) -> list[str] | None:
    """The healthcheck's command, as `podman exec` runs it (None: the service has none)."""
    test = (service.get("healthcheck") or {}).get("test")
    if not test or test == ["NONE"]:
        return None
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", " ".join(test[1:])]
    return [retarget_ports(word, ports) for word in argv]


def container_ports(service: dict) -> list[int]:
    """The ports the service listens on in its container (`ports` targets, `expose`)."""
    found = []
    for entry in service.get("ports", []):
        target = entry["target"] if isinstance(entry, dict) else str(entry).split(":")[-1].split("/")[0]
        found.append(int(target))
    return found + [int(port) for port in service.get("expose", [])]


def start_order(apps: dict[str, dict]) -> list[str]:
    """The services built from the project's image, each after the ones it depends on."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for dep in depends_on(apps[name]):
                if dep in apps:
                    visit(dep)
            ordered.append(name)

    for name in apps:
        visit(name)
    return ordered


def one_shots(apps: dict[str, dict]) -> set[str]:
    """Services another one waits for to exit 0 (a migrate step), not to be healthy."""
    return {
        dep
        for service in apps.values()
        for dep, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }
