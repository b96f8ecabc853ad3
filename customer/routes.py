from aiohttp import web

from customer import handlers
from customer.dead_letters import handlers as dead_letter_handlers
from shared.auth.access import Access
from shared.scopes import CUSTOMERS_READ, CUSTOMERS_WRITE, OPS_DEAD_LETTERS

DEAD_LETTER = r"/ops/dead-letters/{id:\d+}"

routes = [
    web.get("/customers", handlers.list_customers, name="customers"),
    web.post("/customers", handlers.create_customer),
    web.get(r"/customers/{id:\d+}", handlers.get_customer, name="customer"),
    web.patch(r"/customers/{id:\d+}", handlers.update_customer),
    web.delete(r"/customers/{id:\d+}", handlers.delete_customer),
    web.get("/ops/dead-letters", dead_letter_handlers.list_dead_letters, name="dead_letters"),
    web.get("/ops/dead-letters/groups", dead_letter_handlers.dead_letter_groups),
    web.post("/ops/dead-letters/replay", dead_letter_handlers.replay_dead_letters),
    web.post("/ops/dead-letters/discard", dead_letter_handlers.discard_dead_letters),
    web.get(DEAD_LETTER, dead_letter_handlers.get_dead_letter, name="dead_letter"),
    web.post(DEAD_LETTER + "/replay", dead_letter_handlers.replay_dead_letter),
    web.post(DEAD_LETTER + "/discard", dead_letter_handlers.discard_dead_letter),
    web.get("/ops/console", dead_letter_handlers.ops_console),
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
    dead_letter_handlers.list_dead_letters: OPS,
    dead_letter_handlers.dead_letter_groups: OPS,
    dead_letter_handlers.get_dead_letter: OPS,
    dead_letter_handlers.replay_dead_letter: OPS,
    dead_letter_handlers.discard_dead_letter: OPS,
    dead_letter_handlers.replay_dead_letters: OPS,
    dead_letter_handlers.discard_dead_letters: OPS,
}
