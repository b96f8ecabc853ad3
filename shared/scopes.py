"""The OAuth2 scopes of the API (the contract's names, as shared/events.py holds the events'): each route
asks for one (the services' routes.py), the order service asks for one for itself, and the development
issuer grants them."""

CUSTOMERS_READ = "customers:read"
CUSTOMERS_WRITE = "customers:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"  # place, and cancel
ORDERS_FULFIL = "orders:fulfil"  # pay, ship, deliver
OPS_DEAD_LETTERS = "ops:dead-letters"

SCOPES = {
    CUSTOMERS_READ: "Read customers",
    CUSTOMERS_WRITE: "Create, change and delete customers",
    ORDERS_READ: "Read orders",
    ORDERS_WRITE: "Place orders, and cancel them",
    ORDERS_FULFIL: "Mark orders paid, shipped and delivered",
    OPS_DEAD_LETTERS: "List and replay dead-lettered events",
}
