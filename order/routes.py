from aiohttp import web

from order import handlers
from shared.auth.access import Access
from shared.scopes import ORDERS_FULFIL, ORDERS_READ, ORDERS_WRITE

routes = [
    web.post("/orders", handlers.create_order, name="orders"),
    web.get("/orders", handlers.list_orders),
    web.get("/orders/counts", handlers.count_orders),
    web.get(r"/orders/{id:\d+}", handlers.get_order, name="order"),
    web.patch(r"/orders/{id:\d+}", handlers.change_order_status),
    web.get(r"/customers/{id:\d+}/orders", handlers.list_customer_orders, name="customer_orders"),
]

# The scope each route needs (shared/auth/access.py), and what a token bound to one customer may do: read, place
# and cancel that customer's orders. A status change needs the scope of its target status (handlers.py).
access = {
    handlers.create_order: Access(ORDERS_WRITE, customer="handler"),
    handlers.list_orders: Access(ORDERS_READ, customer="handler"),
    handlers.count_orders: Access(ORDERS_READ),
    handlers.get_order: Access(ORDERS_READ, customer="handler"),
    handlers.change_order_status: Access(None, customer="handler", among=(ORDERS_WRITE, ORDERS_FULFIL)),
    handlers.list_customer_orders: Access(ORDERS_READ, customer="path"),
}
