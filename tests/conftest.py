"""Fixtures of the static infrastructure tests (tests/test_compose_file.py and its neighbours)."""

import pytest
import yaml

from shared.testing.compose import COMPOSE_FILE


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]
