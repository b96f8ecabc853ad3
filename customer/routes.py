from aiohttp import web

from customer import handlers

routes = [
    web.get("/customers", handlers.list_customers, name="customers"),
    web.post("/customers", handlers.create_customer),
    web.get(r"/customers/{id:\d+}", handlers.get_customer, name="customer"),
    web.patch(r"/customers/{id:\d+}", handlers.update_customer),
    web.delete(r"/customers/{id:\d+}", handlers.delete_customer),
]
