"""AUTH_MODE: a start without configuration fails closed; `off` is said and shown."""

import os
import subprocess
import sys

import pytest

from customer.app import create_app as create_customer_app
from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.auth.startup import AuthNotConfigured

ISSUER = {"auth_issuer": "https://issuer.example", "auth_jwks_url": "https://issuer.example/jwks"}
NO_AUTH_ENV = {name: value for name, value in os.environ.items() if not name.startswith(("AUTH_", "ORDER_CLIENT"))}


def start(service: str, metrics_dir, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", service, "--bind", "127.0.0.1:0"],
        env={**NO_AUTH_ENV, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("service", "env", "missing"),
    [
        ("customer", {}, "AUTH_ISSUER"),
        ("customer", {"AUTH_ISSUER": "https://issuer.example"}, "AUTH_JWKS_URL"),
        ("order", {"AUTH_ISSUER": "https://i.example", "AUTH_JWKS_URL": "https://i.example/j"}, "AUTH_TOKEN_URL"),
        (
            "order",
            {
                "AUTH_ISSUER": "https://i.example",
                "AUTH_JWKS_URL": "https://i.example/j",
                "AUTH_TOKEN_URL": "https://i.example/t",
                "ORDER_CLIENT_ID": "order-service",
            },
            "ORDER_CLIENT_SECRET",
        ),
    ],
)
def test_a_service_started_without_its_issuer_refuses_with_one_line_naming_it(service, env, missing, tmp_path):
    result = start(service, tmp_path, **env)
    assert result.returncode == 1
    # gunicorn's own "Starting gunicorn" line comes first; then ours, and no traceback.
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"{missing} is not set"), result.stderr
    assert "Traceback" not in result.stderr and len(lines) <= 2, result.stderr


def test_the_settings_name_the_first_missing_variable():
    assert CustomerSettings().missing_auth_setting() == "AUTH_ISSUER"
    assert CustomerSettings(**ISSUER).missing_auth_setting() is None
    assert OrderSettings(**ISSUER).missing_auth_setting() == "AUTH_TOKEN_URL"
    assert CustomerSettings(auth_mode="off").missing_auth_setting() is None


async def test_create_app_fails_closed_too():
    with pytest.raises(AuthNotConfigured, match="AUTH_ISSUER"):
        await create_customer_app(CustomerSettings())


async def test_auth_off_is_shown_in_ready(customer_client):
    response = await customer_client.get("/ready")
    body = await response.json()
    assert response.status == 200
    assert body["auth"] == "off" and body["status"] == "ready" and set(body["checks"]) == {"database", "broker"}
