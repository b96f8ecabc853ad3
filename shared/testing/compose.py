"""Reading docker-compose.yml as compose would on a fresh machine: the container tests and the static
infrastructure tests share these."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


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
