"""The ORM config of the service's one Tortoise app.

aerich's own command line reads TORTOISE_ORM from here, through customer/aerich.toml (run from the
repository root): `aerich -c customer/aerich.toml history`. TORTOISE_ORM is built on first use, from
CUSTOMER_DATABASE_URL, so importing this module reads no settings.
"""

from customer.settings import CustomerSettings
from shared.db import orm_config

APP = "customer"


def customer_orm_config(db_url: str) -> dict:
    return orm_config(db_url, APP, ["customer.models"])


def __getattr__(name: str) -> dict:
    if name == "TORTOISE_ORM":  # aerich's entry point only
        return customer_orm_config(CustomerSettings().database_url)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
