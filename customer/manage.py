"""`python -m customer.manage` (console script `customer-manage`): see shared/manage.py."""

import sys
from pathlib import Path

from customer.db_config import APP, customer_orm_config
from customer.seeds import seed_customers
from customer.settings import CustomerSettings
from shared.cli import load_settings
from shared.manage import ServiceDb
from shared.manage import main as manage

SERVICE_DB = ServiceDb(
    app=APP,
    migrations=Path(__file__).parent / "migrations",
    db_variable="CUSTOMER_DATABASE_URL",
    settings=lambda: load_settings(CustomerSettings),
    queue_tables=("processed_events",),
    orm_config=customer_orm_config,
    seed=seed_customers,
)


def main(argv: list[str] | None = None) -> int:
    return manage(SERVICE_DB, argv)


if __name__ == "__main__":
    sys.exit(main())
