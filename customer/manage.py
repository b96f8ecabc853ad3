import sys
from pathlib import Path

from customer.db_config import APP, customer_orm_config
from customer.seeds import seed_customers
from customer.settings import CustomerSettings
from shared.manage import ServiceDb, main

SERVICE_DB = ServiceDb(
    app=APP,
    migrations=Path(__file__).parent / "migrations",
    db_url=lambda: CustomerSettings().database_url,
    orm_config=customer_orm_config,
    seed=seed_customers,
)

if __name__ == "__main__":
    sys.exit(main(SERVICE_DB))
