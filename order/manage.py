import sys
from pathlib import Path

from order.db_config import APP, order_orm_config
from order.settings import OrderSettings
from shared.manage import ServiceDb, main

SERVICE_DB = ServiceDb(
    app=APP,
    migrations=Path(__file__).parent / "migrations",
    db_url=lambda: OrderSettings().database_url,
    orm_config=order_orm_config,
)

if __name__ == "__main__":
    sys.exit(main(SERVICE_DB))
