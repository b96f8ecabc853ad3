"""`python -m order.manage` (console script `order-manage`): see shared/manage.py."""

import sys
from pathlib import Path

from order.db_config import APP, order_orm_config
from order.settings import OrderSettings
from shared.cli import load_settings
from shared.manage import ServiceDb
from shared.manage import main as manage

SERVICE_DB = ServiceDb(
    app=APP,
    migrations=Path(__file__).parent / "migrations",
    db_variable="ORDER_DATABASE_URL",
    settings=lambda: load_settings(OrderSettings),
    queue_tables=("outbox",),
    orm_config=order_orm_config,
)


def main(argv: list[str] | None = None) -> int:
    return manage(SERVICE_DB, argv)


if __name__ == "__main__":
    sys.exit(main())
