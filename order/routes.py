from aiohttp import web

from order import handlers

routes = [
    web.post("/orders", handlers.create_order, name="orders"),
    web.get("/orders", handlers.list_orders),
    web.get("/orders/counts", handlers.count_orders),
    web.get(r"/orders/{id:\d+}", handlers.get_order, name="order"),
    web.patch(r"/orders/{id:\d+}", handlers.change_order_status),
    web.get(r"/customers/{id:\d+}/orders", handlers.list_customer_orders, name="customer_orders"),
]
