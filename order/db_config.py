"""The ORM config of the service's one Tortoise app.

aerich's own command line reads TORTOISE_ORM from here, through order/aerich.toml (run from the
repository root): `aerich -c order/aerich.toml history`. TORTOISE_ORM is built on first use, from
ORDER_DATABASE_URL, so importing this module reads no settings.
"""

from order.settings import OrderSettings
from shared.db import orm_config

APP = "order"


def order_orm_config(db_url: str) -> dict:
    return orm_config(db_url, APP, ["order.models"])


def __getattr__(name: str) -> dict:
    if name == "TORTOISE_ORM":  # aerich's entry point only
        return order_orm_config(OrderSettings().database_url)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
