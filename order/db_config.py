"""The ORM config; aerich reads TORTOISE_ORM from here (`aerich -t order.db_config.TORTOISE_ORM`)."""

from order.settings import OrderSettings
from shared.db import orm_config

APP = "order"


def order_orm_config(db_url: str) -> dict:
    return orm_config(db_url, APP, ["order.models"])


TORTOISE_ORM = order_orm_config(OrderSettings().database_url)
