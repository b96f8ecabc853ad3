from aiohttp import web

from customer import handlers
from shared.auth.access import Access
from shared.scopes import CUSTOMERS_READ, CUSTOMERS_WRITE

routes = [
    web.get("/customers", handlers.list_customers, name="customers"),
    web.post("/customers", handlers.create_customer),
    web.get(r"/customers/{id:\d+}", handlers.get_customer, name="customer"),
    web.patch(r"/customers/{id:\d+}", handlers.update_customer),
    web.delete(r"/customers/{id:\d+}", handlers.delete_customer),
]

# The scope each route needs (shared/auth/access.py); a token bound to one customer may read that customer only.
access = {
    handlers.list_customers: Access(CUSTOMERS_READ),
    handlers.create_customer: Access(CUSTOMERS_WRITE),
    handlers.get_customer: Access(CUSTOMERS_READ, customer="path"),
    handlers.update_customer: Access(CUSTOMERS_WRITE),
    handlers.delete_customer: Access(CUSTOMERS_WRITE),
}
