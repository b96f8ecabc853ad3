"""`.env.example` stays true: every setting the services read is in it, with its default."""

import re
from pathlib import Path

import pytest

from customer.settings import CustomerSettings
from order.settings import OrderSettings

ROOT = Path(__file__).resolve().parent.parent
LISTED = dict(
    line[2:].split("=", 1)
    for line in (ROOT / ".env.example").read_text().splitlines()
    if re.match(r"^# [A-Z_]+=", line)
)


def shown(default) -> str:
    if default is None:
        return ""
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    return str(default)


@pytest.mark.parametrize(
    "field",
    [field for settings in (CustomerSettings, OrderSettings) for field in settings.model_fields.values()],
    ids=lambda field: str(field.validation_alias),
)
def test_every_setting_is_listed_with_its_default(field):
    assert field.validation_alias in LISTED
    listed = LISTED[field.validation_alias]
    if isinstance(field.default, bool):
        assert listed == str(field.default).lower()
    elif isinstance(field.default, int | float):
        assert float(listed) == field.default  # 24 and 24.0 alike
    else:
        assert listed == shown(field.default)


def test_the_run_script_variables_are_listed_too():
    for name in ("HOST", "CUSTOMER_PORT", "ORDER_PORT", "WORKERS", "CUSTOMER_AMQP_URL", "ORDER_AMQP_URL"):
        assert name in LISTED
