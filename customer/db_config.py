"""The ORM config; aerich reads TORTOISE_ORM from here (`aerich -t customer.db_config.TORTOISE_ORM`)."""

from customer.settings import CustomerSettings
from shared.db import orm_config

APP = "customer"


def customer_orm_config(db_url: str) -> dict:
    return orm_config(db_url, APP, ["customer.models"])


TORTOISE_ORM = customer_orm_config(CustomerSettings().database_url)
