from aiohttp import web

from customer import handlers, ops_handlers
from shared.auth.access import Access
from shared.scopes import CUSTOMERS_READ, CUSTOMERS_WRITE, OPS_DEAD_LETTERS

DEAD_LETTER = r"/ops/dead-letters/{id:\d+}"

routes = [
    web.get("/customers", handlers.list_customers, name="customers"),
    web.post("/customers", handlers.create_customer),
    web.get(r"/customers/{id:\d+}", handlers.get_customer, name="customer"),
    web.patch(r"/customers/{id:\d+}", handlers.update_customer),
    web.delete(r"/customers/{id:\d+}", handlers.delete_customer),
    web.get("/ops/dead-letters", ops_handlers.list_dead_letters, name="dead_letters"),
    web.get("/ops/dead-letters/groups", ops_handlers.dead_letter_groups),
    web.post("/ops/dead-letters/replay", ops_handlers.replay_dead_letters),
    web.post("/ops/dead-letters/discard", ops_handlers.discard_dead_letters),
    web.get(DEAD_LETTER, ops_handlers.get_dead_letter, name="dead_letter"),
    web.post(DEAD_LETTER + "/replay", ops_handlers.replay_dead_letter),
    web.post(DEAD_LETTER + "/discard", ops_handlers.discard_dead_letter),
    web.get("/ops/console", ops_handlers.ops_console),
]

# The scope each route needs (shared/auth/access.py); a token bound to one customer may read that customer only.
# The operator's page is open (OPEN_PATHS there): it holds no data and asks for a token itself.
OPS = Access(OPS_DEAD_LETTERS)
access = {
    handlers.list_customers: Access(CUSTOMERS_READ),
    handlers.create_customer: Access(CUSTOMERS_WRITE),
    handlers.get_customer: Access(CUSTOMERS_READ, customer="path"),
    handlers.update_customer: Access(CUSTOMERS_WRITE),
    handlers.delete_customer: Access(CUSTOMERS_WRITE),
    ops_handlers.list_dead_letters: OPS,
    ops_handlers.dead_letter_groups: OPS,
    ops_handlers.get_dead_letter: OPS,
    ops_handlers.replay_dead_letter: OPS,
    ops_handlers.discard_dead_letter: OPS,
    ops_handlers.replay_dead_letters: OPS,
    ops_handlers.discard_dead_letters: OPS,
}
